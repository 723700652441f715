#include "test_util.hpp"

#include <bindery/nn/activation.hpp>
#include <bindery/nn/embedding.hpp>
#include <bindery/nn/linear.hpp>
#include <bindery/nn/mlp.hpp>
#include <bindery/nn/module.hpp>
#include <bindery/nn/sequential.hpp>

using namespace bindery;
using bindery::testing::require_values;

namespace {

// TUTORIAL: a user-written module. Register what you own in the constructor (parameters, buffers,
// children), keep the returned handles as members, and write a typed forward from ops and children.
template <class T, class B = Cpu>
class ScaledProjection : public nn::Module<T, B> {
 public:
  ScaledProjection(int64_t in, int64_t out, uint64_t seed = 7) {
    gamma_ = this->register_parameter("gamma", Tensor<T, B>::full(Shape{in}, T(2)));
    count_ = this->register_buffer("count", Tensor<T, B>::zeros(Shape{1}));
    scratch_ = this->register_buffer("scratch", Tensor<T, B>::zeros(Shape{3}), /*persistent=*/false);
    proj_ = this->register_module("proj", std::make_shared<nn::Linear<T, B>>(in, out, true, seed));
  }
  // x: (..., in) -> (..., out)
  Var<T, B> forward(const Var<T, B>& x) { return proj_->forward(x * gamma_); }

  Var<T, B> gamma() const { return gamma_; }
  Tensor<T, B> count() const { return count_; }
  nn::Linear<T, B>& proj() { return *proj_; }

 private:
  Var<T, B> gamma_;
  Tensor<T, B> count_, scratch_;
  std::shared_ptr<nn::Linear<T, B>> proj_;
};

// A nested model: a Sequential, a ModuleList and a user module, to check the dotted names.
template <class T>
class Toy : public nn::Module<T> {
 public:
  Toy() {
    head_ = this->register_module(
        "head", std::make_shared<nn::Sequential<nn::Linear<T>, nn::Gelu<T>, nn::Linear<T>>>(
                    std::make_shared<nn::Linear<T>>(4, 8, true, 1), std::make_shared<nn::Gelu<T>>(),
                    std::make_shared<nn::Linear<T>>(8, 2, false, 2)));
    layers_ = this->register_module("layers", std::make_shared<nn::ModuleList<ScaledProjection<T>>>());
    layers_->push_back(std::make_shared<ScaledProjection<T>>(4, 4, 3));
    layers_->push_back(std::make_shared<ScaledProjection<T>>(4, 4, 4));
    token_ = this->register_parameter("token", Tensor<T>::zeros(Shape{1, 4}));
  }
  Var<T> forward(const Var<T>& x) {
    Var<T> h = x + token_;
    for (const auto& layer : *layers_) h = layer->forward(h);
    return head_->forward(h);
  }
  std::shared_ptr<nn::Sequential<nn::Linear<T>, nn::Gelu<T>, nn::Linear<T>>> head_;
  std::shared_ptr<nn::ModuleList<ScaledProjection<T>>> layers_;
  Var<T> token_;
};

template <class Pairs>
std::vector<std::string> names_of(const Pairs& pairs) {
  std::vector<std::string> names;
  for (const auto& [name, value] : pairs) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("named_parameters, named_buffers and state_dict use PyTorch's dotted names", "[nn][module]") {
  Toy<float> toy;
  // Own parameters first, then children in registration order (PyTorch's named_parameters order).
  const std::vector<std::string> expected_parameters{"token",
                                                     "head.0.weight",
                                                     "head.0.bias",
                                                     "head.2.weight",
                                                     "layers.0.gamma",
                                                     "layers.0.proj.weight",
                                                     "layers.0.proj.bias",
                                                     "layers.1.gamma",
                                                     "layers.1.proj.weight",
                                                     "layers.1.proj.bias"};
  REQUIRE(names_of(toy.named_parameters()) == expected_parameters);
  REQUIRE(names_of(toy.named_buffers()) == std::vector<std::string>{"layers.0.count", "layers.0.scratch",
                                                                    "layers.1.count", "layers.1.scratch"});
  // state_dict: per module own parameters, own PERSISTENT buffers, then children.
  const std::vector<std::string> expected_state{
      "token",          "head.0.weight",  "head.0.bias",          "head.2.weight",
      "layers.0.gamma", "layers.0.count", "layers.0.proj.weight", "layers.0.proj.bias",
      "layers.1.gamma", "layers.1.count", "layers.1.proj.weight", "layers.1.proj.bias"};
  REQUIRE(toy.state_dict().keys() == expected_state);
  REQUIRE(names_of(toy.named_parameters(/*recurse=*/false)) == std::vector<std::string>{"token"});
  REQUIRE(names_of(toy.named_children()) == std::vector<std::string>{"head", "layers"});
  REQUIRE(names_of(toy.named_modules()) == std::vector<std::string>{"", "head", "head.0", "head.1", "head.2",
                                                                    "layers", "layers.0", "layers.0.proj",
                                                                    "layers.1", "layers.1.proj"});
  REQUIRE(toy.num_parameters() == 4 + (32 + 8 + 16) + 2 * (4 + 16 + 4));
  REQUIRE(&toy.submodule("layers.1.proj") == &toy.layers_->operator[](1).proj());
  BINDERY_REQUIRE_THROWS_WITH_ALL(toy.submodule("layers.7"), IndexError, "'7'", "layers.7");
  REQUIRE(toy.head_->size() == 3);
  REQUIRE(toy.head_->get<2>().out_features() == 2);
}

TEST_CASE("Mlp and Embedding register PyTorch's names and shapes", "[nn][module]") {
  nn::Mlp<float> mlp(6, 24, 5, 0.1, 3);
  const auto params = mlp.named_parameters();
  REQUIRE(names_of(params) == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  REQUIRE(params[0].second.shape() == Shape{24, 6});
  REQUIRE(params[2].second.shape() == Shape{5, 24});
  REQUIRE(names_of(mlp.named_modules()) == std::vector<std::string>{"", "fc1", "act", "fc2", "drop"});
  nn::Embedding<double> embedding(10, 3, 5);
  REQUIRE(names_of(embedding.named_parameters()) == std::vector<std::string>{"weight"});
  REQUIRE(embedding.weight().shape() == Shape{10, 3});
}

TEST_CASE("registration rejects bad and duplicate names", "[nn][module]") {
  nn::Module<float> m;
  m.register_parameter("w", Tensor<float>::zeros({2}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(m.register_parameter("w", Tensor<float>::zeros({2})), ValueError, "'w'",
                                  "already registered");
  BINDERY_REQUIRE_THROWS_WITH_ALL(m.register_buffer("w", Tensor<float>::zeros({2})), ValueError, "'w'");
  BINDERY_REQUIRE_THROWS_WITH_ALL(m.register_module("w", std::make_shared<nn::Gelu<float>>()), ValueError,
                                  "'w'");
  BINDERY_REQUIRE_THROWS_WITH_ALL(m.register_parameter("a.b", Tensor<float>::zeros({2})), ValueError,
                                  "'a.b'");
  BINDERY_REQUIRE_THROWS_WITH_ALL(m.register_parameter("", Tensor<float>::zeros({2})), ValueError,
                                  "non-empty");
  BINDERY_REQUIRE_THROWS_WITH_ALL(m.register_parameter("u", Tensor<float>()), ValueError, "'u'", "undefined");
}

TEST_CASE("state_dict round trip copies values in place", "[nn][module]") {
  Toy<double> source, target;
  // Same architecture, different seeds? Toy fixes its seeds: perturb the source instead.
  for (auto [name, var] : source.named_parameters()) {
    Philox rng(std::hash<std::string>{}(name));
    var.assign(Tensor<double>::uniform(var.shape(), rng, -1, 1));
  }
  source.layers_->operator[](1).count().fill_(42.0);
  const Var<double> token_before = target.token_;
  const double* storage_before = target.token_.value().data();

  const nn::LoadResult result = target.load_state_dict(source.state_dict());
  REQUIRE(result.missing_keys.empty());
  REQUIRE(result.unexpected_keys.empty());
  const auto a = source.state_dict(), b = target.state_dict();
  for (const auto& [name, tensor] : a) {
    INFO(name);
    REQUIRE(testing::max_abs_diff(tensor.to_vector(), b.at(name).to_vector()) == 0.0);
  }
  // In place: the same Var node and the same storage, so optimizers holding the Var see the values.
  REQUIRE(target.token_.node() == token_before.node());
  REQUIRE(target.token_.value().data() == storage_before);
  REQUIRE(target.layers_->operator[](1).count().item() == 42.0);
  // The state dict shares storage with the module (like PyTorch); clone() for a snapshot.
  REQUIRE(target.state_dict().at("token").shares_storage_with(target.token_.value()));

  Var<double> x = testing::random_var(Shape{3, 4}, 11, -1, 1, false);
  REQUIRE(testing::max_abs_diff(target.forward(x).value().to_vector(),
                                source.forward(x).value().to_vector()) == 0.0);
}

TEST_CASE("strict load_state_dict lists every missing, unexpected and mis-shaped key", "[nn][module]") {
  Toy<float> toy;
  nn::StateDict<float> dict = toy.state_dict();
  REQUIRE(dict.erase("head.0.bias"));
  REQUIRE(dict.erase("layers.1.count"));
  dict.insert("head.1.weight", Tensor<float>::zeros({3}));
  dict.insert("extra", Tensor<float>::zeros({1}));
  dict.insert_or_assign("layers.0.proj.weight", Tensor<float>::zeros({4, 5}));
  dict.insert_or_assign("token", Tensor<float>::zeros({4}));
  const std::vector<float> before = toy.token_.value().to_vector();
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      toy.load_state_dict(dict), nn::StateDictError, "missing keys (2)", "head.0.bias", "layers.1.count",
      "unexpected keys (2)", "head.1.weight", "extra", "shape mismatches (2)",
      "layers.0.proj.weight: checkpoint (4, 5) vs model (4, 4)", "token: checkpoint (4,) vs model (1, 4)");
  // Nothing was written: the load checks everything first.
  REQUIRE(toy.token_.value().to_vector() == before);

  // Non-strict: missing and unexpected keys are reported, not thrown; shapes still must match.
  BINDERY_REQUIRE_THROWS_WITH_ALL(toy.load_state_dict(dict, false), nn::StateDictError,
                                  "shape mismatches (2)");
  dict.erase("token");
  dict.erase("layers.0.proj.weight");
  dict.insert_or_assign("head.2.weight", Tensor<float>::full({2, 8}, 0.5f));
  const nn::LoadResult result = toy.load_state_dict(dict, /*strict=*/false);
  REQUIRE(result.missing_keys ==
          std::vector<std::string>{"token", "head.0.bias", "layers.0.proj.weight", "layers.1.count"});
  REQUIRE(result.unexpected_keys == std::vector<std::string>{"head.1.weight", "extra"});
  require_values(toy.head_->get<2>().weight().value(), Shape{2, 8}, std::vector<double>(16, 0.5));
  BINDERY_REQUIRE_THROWS_WITH_ALL(dict.at("nope"), nn::StateDictError, "'nope'");
  BINDERY_REQUIRE_THROWS_WITH_ALL(dict.insert("extra", Tensor<float>::zeros({1})), ValueError, "'extra'");
}

TEST_CASE("train/eval propagate to every descendant", "[nn][module]") {
  Toy<float> toy;
  REQUIRE(toy.is_training());
  toy.eval();
  for (auto& [name, module] : toy.named_modules()) {
    INFO(name);
    REQUIRE_FALSE(module->is_training());
  }
  toy.layers_->train();
  REQUIRE(toy.layers_->operator[](0).proj().is_training());
  REQUIRE_FALSE(toy.head_->get<0>().is_training());
  toy.train();
  for (auto& [name, module] : toy.named_modules()) REQUIRE(module->is_training());
}

TEST_CASE("Dropout is active in training only", "[nn][module]") {
  nn::Dropout<double> drop(0.5, 9);
  Var<double> x(Tensor<double>::ones({1000}), true);
  const std::vector<double> y = drop.forward(x).value().to_vector();
  int zeros = 0;
  for (double v : y) {
    REQUIRE((v == 0.0 || v == 2.0));
    zeros += v == 0.0;
  }
  REQUIRE(zeros > 400);
  REQUIRE(zeros < 600);
  drop.eval();
  REQUIRE(drop.forward(x).node() == x.node());
}

TEST_CASE("set_requires_grad freezes parameters; zero_grad clears gradients", "[nn][module]") {
  Toy<double> toy;
  Var<double> x = testing::random_var(Shape{2, 4}, 5, -1, 1, false);
  ops::sum(toy.forward(x)).backward();
  for (const auto& [name, var] : toy.named_parameters()) {
    INFO(name);
    REQUIRE(var.has_grad());
  }
  toy.zero_grad();
  for (const auto& var : toy.parameters()) REQUIRE_FALSE(var.has_grad());

  toy.layers_->set_requires_grad(false);  // freeze a sub-tree
  REQUIRE(toy.num_parameters(/*trainable_only=*/true) == 4 + 32 + 8 + 16);
  ops::sum(toy.forward(x)).backward();
  for (const auto& [name, var] : toy.named_parameters()) {
    INFO(name);
    REQUIRE(var.has_grad() == (name.rfind("layers.", 0) != 0));
  }
  toy.set_requires_grad(false);
  REQUIRE_FALSE(toy.forward(x).requires_grad());
  toy.set_requires_grad(true);
  REQUIRE(toy.num_parameters(true) == toy.num_parameters());
}

TEST_CASE("shared parameters are listed once, state_dict keeps every name", "[nn][module]") {
  nn::Module<float> model;
  auto shared = std::make_shared<nn::Linear<float>>(2, 2, false, 1);
  model.register_module("encoder", shared);
  model.register_module("decoder", shared);
  REQUIRE(names_of(model.named_parameters()) == std::vector<std::string>{"encoder.weight"});
  REQUIRE(model.state_dict().keys() == std::vector<std::string>{"encoder.weight", "decoder.weight"});
  REQUIRE(model.num_parameters() == 4);
}

TEST_CASE("Linear forward against a hand computation", "[nn][linear]") {
  nn::Linear<double> linear(3, 2);
  REQUIRE(linear.weight().shape() == Shape{2, 3});
  REQUIRE(linear.bias().shape() == Shape{2});
  linear.weight().assign(Tensor<double>::from_vector({1, 2, 3, -1, 0, 1}, {2, 3}));
  linear.bias().assign(Tensor<double>::from_vector({0.5, -0.5}));
  Var<double> x(Tensor<double>::from_vector({1, 1, 1, 2, 0, -1}, {2, 3}));
  // row 0: (1+2+3)+0.5 = 6.5, (-1+0+1)-0.5 = -0.5; row 1: (2+0-3)+0.5 = -0.5, (-2+0-1)-0.5 = -3.5
  require_values(linear.forward(x).value(), Shape{2, 2}, {6.5, -0.5, -0.5, -3.5});
  Var<double> x3(Tensor<double>::from_vector({1, 1, 1, 2, 0, -1}, {2, 1, 3}));
  require_values(linear.forward(x3).value(), Shape{2, 1, 2}, {6.5, -0.5, -0.5, -3.5});

  nn::Linear<double> no_bias(3, 2, false);
  REQUIRE(no_bias.named_parameters().size() == 1);
  REQUIRE_FALSE(no_bias.bias().defined());
  BINDERY_REQUIRE_THROWS_WITH_ALL(linear.forward(testing::random_var(Shape{2, 4}, 1)), ShapeError, "(2, 4)",
                                  "(2, 3)");
}

TEST_CASE("Linear init follows torch's default bounds and is deterministic", "[nn][linear]") {
  nn::Linear<double> a(16, 8, true, 42), b(16, 8, true, 42), c(16, 8, true, 43);
  REQUIRE(a.weight().value().to_vector() == b.weight().value().to_vector());
  REQUIRE(a.weight().value().to_vector() != c.weight().value().to_vector());
  double largest = 0.0;
  for (double w : a.weight().value().to_vector()) largest = std::max(largest, std::fabs(w));
  for (double w : a.bias().value().to_vector()) largest = std::max(largest, std::fabs(w));
  REQUIRE(largest <= 0.25);  // 1 / sqrt(16)
  REQUIRE(largest > 0.2);
}

TEST_CASE("Linear gradcheck through the module", "[nn][linear]") {
  nn::Linear<double> linear(3, 4, true, 3);
  Var<double> x = testing::random_var(Shape{2, 3}, 8);
  testing::require_gradcheck<Cpu>([&](const std::vector<Var<double>>& in) { return linear.forward(in[0]); },
                                  {x, linear.weight(), linear.bias()});
}
