// Tests of layer options structs and of the seeds of layers built without one (nn/seed.hpp).
#include "test_util.hpp"

#include <bindery/nn/all.hpp>

#include <thread>

using namespace bindery;

namespace {

/// Every parameter's values, in registration order.
template <class T, class B>
std::vector<std::vector<T>> weights(const nn::Module<T, B>& m) {
  std::vector<std::vector<T>> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(p.value().to_vector());
  return out;
}

/// A user module whose children are built without seeds.
class Net : public nn::Module<double> {
 public:
  Net() {
    fc1 = register_module("fc1", std::make_shared<nn::Linear<double>>(4, 8));
    mlp = register_module("mlp", std::make_shared<nn::Mlp<double>>(8, 16, 8));
    fc2 =
        register_module("fc2", std::make_shared<nn::Linear<double>>(8, 2, nn::LinearOptions{.bias = false}));
  }
  std::shared_ptr<nn::Linear<double>> fc1, fc2;
  std::shared_ptr<nn::Mlp<double>> mlp;
};

}  // namespace

TEST_CASE("layer options structs build the same layers as the positional forms", "[nn][seed]") {
  REQUIRE(weights(nn::Linear<double>(5, 3, {.seed = 7})) == weights(nn::Linear<double>(5, 3, true, 7)));
  const nn::Linear<double> no_bias(5, 3, {.bias = false, .seed = 7});
  REQUIRE(weights(no_bias) == weights(nn::Linear<double>(5, 3, false, 7)));
  REQUIRE(!no_bias.bias().defined());
  REQUIRE(weights(nn::Embedding<double>(10, 3, {.seed = 5})) == weights(nn::Embedding<double>(10, 3, 5)));
  REQUIRE(
      weights(nn::Conv2d<double>(2, 4, {.kernel = {3, 3}, .stride = {2, 1}, .padding = {1, 0}, .seed = 4})) ==
      weights(nn::Conv2d<double>(2, 4, {3, 3}, {2, 1}, {1, 0}, true, 4)));
  const nn::Conv3d<double> conv(2, 4, {.kernel = {1, 2, 2}, .stride = {1, 2, 2}, .bias = false, .seed = 1});
  REQUIRE(weights(conv) == weights(nn::Conv3d<double>(2, 4, {1, 2, 2}, {1, 2, 2}, {}, false, 1)));
  REQUIRE(weights(nn::Mlp<double>(6, 24, 5, {.drop = 0.1, .seed = 3})) ==
          weights(nn::Mlp<double>(6, 24, 5, 0.1, 3)));
  const nn::LayerNorm<double> norm(4, {.eps = 1e-6, .affine = false});
  REQUIRE((norm.eps() == 1e-6 && !norm.weight().defined()));
  REQUIRE(nn::LayerNorm<double>(4, 1e-6).eps() == 1e-6);
  REQUIRE(weights(nn::MultiheadAttention<double>(
              {.embed_dim = 8, .num_heads = 2, .add_bias_kv = true, .seed = 9})) ==
          weights(nn::MultiheadAttention<double>(8, 2, true, true, 0.0, 9)));
}

TEST_CASE("an explicit seed gives exactly the weights it always gave", "[nn][seed]") {
  // Linear(in, out, seed): weight then bias, U(-1/sqrt(in), 1/sqrt(in)), from one Philox(seed) stream.
  Philox rng(11);
  const Tensor<double> w = nn::init::default_uniform<double, Cpu>(Shape{4, 3}, 3, rng);
  const Tensor<double> b = nn::init::default_uniform<double, Cpu>(Shape{4}, 3, rng);
  nn::Linear<double> first(2, 2);  // unseeded layers around it do not change it
  const nn::Linear<double> linear(3, 4, {.seed = 11});
  REQUIRE(weights(linear) == std::vector<std::vector<double>>{w.to_vector(), b.to_vector()});
  // Mlp(seed): each child on init::derive_seed(seed, child index).
  nn::Mlp<double> mlp(3, 5, 2, {.seed = 4});
  REQUIRE(weights(mlp.fc1()) == weights(nn::Linear<double>(3, 5, {.seed = nn::init::derive_seed(4, 0)})));
}

TEST_CASE("layers built without a seed differ, deterministically", "[nn][seed]") {
  nn::Linear<double> a(4, 4), b(4, 4);
  REQUIRE(weights(a) != weights(b));
  REQUIRE(weights(nn::Embedding<double>(6, 3)) != weights(nn::Embedding<double>(6, 3)));
  REQUIRE(weights(nn::Conv2d<double>(1, 2, {.kernel = {2, 2}, .stride = {2, 2}})) !=
          weights(nn::Conv2d<double>(1, 2, {.kernel = {2, 2}, .stride = {2, 2}})));
  REQUIRE(weights(nn::MultiheadAttention<double>(4, 2)) != weights(nn::MultiheadAttention<double>(4, 2)));
  nn::TransformerConfig config{.embed_dim = 8, .num_blocks = 1, .num_heads = 2};
  REQUIRE(weights(nn::Transformer<double>(config)) != weights(nn::Transformer<double>(config)));

  // The same unseeded tree, built twice in the same scope: the same weights; another scope seed: others.
  auto build = [](uint64_t seed) {
    nn::SeedScope scope(seed);
    return weights(Net());
  };
  REQUIRE(build(3) == build(3));
  REQUIRE(build(3) != build(4));
  // Inside the tree, every layer differs (fc1 vs the Mlp's fc1 of another shape is trivially so:
  // compare two same-shape unseeded Mlps in one scope).
  {
    nn::SeedScope scope(3);
    REQUIRE(weights(nn::Mlp<double>(4, 4, 4)) != weights(nn::Mlp<double>(4, 4, 4)));
  }

  // An explicitly seeded layer does not draw from the sequence; scopes nest and restore it.
  std::vector<std::vector<double>> second, again;
  {
    nn::SeedScope scope(5);
    nn::Linear<double> x(4, 4);
    nn::Linear<double> pinned(4, 4, {.seed = 1});
    {
      nn::SeedScope inner(6);
      nn::Linear<double> inside(4, 4);
    }
    second = weights(nn::Linear<double>(4, 4));
  }
  {
    nn::SeedScope scope(5);
    nn::Linear<double> x(4, 4);
    again = weights(nn::Linear<double>(4, 4));
  }
  REQUIRE(second == again);

  // Every thread's sequence starts the same way: the same program gives the same weights in every run.
  std::vector<std::vector<float>> t1, t2;
  std::thread([&] { t1 = weights(nn::Linear<float>(4, 4)); }).join();
  std::thread([&] { t2 = weights(nn::Linear<float>(4, 4)); }).join();
  REQUIRE(t1 == t2);
  nn::manual_seed(0);  // this thread's sequence restarts: the same first layer as a fresh thread's
  REQUIRE(weights(nn::Linear<float>(4, 4)) == t1);
}
