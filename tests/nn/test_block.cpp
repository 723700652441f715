#include "test_util.hpp"

#include <bindery/nn/transformer.hpp>

#include <limits>

using namespace bindery;
using bindery::testing::require_values;

namespace {

template <class Pairs>
std::vector<std::string> names_of(const Pairs& pairs) {
  std::vector<std::string> names;
  for (const auto& [name, value] : pairs) names.push_back(name);
  return names;
}

template <class T>
void randomize(nn::Module<T>& module, uint64_t seed) {
  for (auto [name, var] : module.named_parameters()) {
    Philox rng(seed++);
    var.assign(Tensor<T>::uniform(var.shape(), rng, -0.8, 0.8));
  }
}

nn::BlockConfig small_block(bool add_bias_kv, nn::LayerScale layer_scale = nn::LayerScale::kNone) {
  nn::BlockConfig config;
  config.dim = 4;
  config.num_heads = 2;
  config.add_bias_kv = add_bias_kv;
  config.layer_scale = layer_scale;
  config.seed = 17;
  return config;
}

/// Three blocks of small_block's size with bias_kv and the pre-transformer LayerNorm.
nn::TransformerConfig small_trunk(uint64_t seed, double drop_path_rate = 0.0) {
  nn::TransformerConfig config;
  config.embed_dim = 4;
  config.num_blocks = 3;
  config.num_heads = 2;
  config.add_bias_kv = true;
  config.pre_transformer_ln = true;
  config.drop_path_rate = drop_path_rate;
  config.seed = seed;
  return config;
}

}  // namespace

TEST_CASE("Block has ImageBind's BlockWithMasking keys", "[nn][block]") {
  nn::Block<float> block(small_block(true));
  const std::vector<std::string> expected{
      "attn.in_proj_weight", "attn.in_proj_bias", "attn.bias_k",   "attn.bias_v",    "attn.out_proj.weight",
      "attn.out_proj.bias",  "norm_1.weight",     "norm_1.bias",   "mlp.fc1.weight", "mlp.fc1.bias",
      "mlp.fc2.weight",      "mlp.fc2.bias",      "norm_2.weight", "norm_2.bias"};
  REQUIRE(block.state_dict().keys() == expected);
  REQUIRE(block.mlp().fc1().weight().shape() == Shape{16, 4});
  REQUIRE(block.norm_1().eps() == 1e-6);
  REQUIRE(names_of(block.named_modules()) ==
          std::vector<std::string>{"", "attn", "attn.out_proj", "drop_path", "norm_1", "mlp", "mlp.fc1",
                                   "mlp.act", "mlp.fc2", "mlp.drop", "norm_2"});

  nn::Block<float> scaled(small_block(false, nn::LayerScale::kPerChannel));
  const auto keys = scaled.state_dict().keys();
  REQUIRE(keys[0] == "layer_scale_gamma1");
  REQUIRE(keys[1] == "layer_scale_gamma2");
  REQUIRE(scaled.layer_scale_gamma1().shape() == Shape{1, 1, 4});
  require_values(scaled.layer_scale_gamma2().value(), Shape{1, 1, 4}, {1e-4, 1e-4, 1e-4, 1e-4}, 1e-9);
  nn::Block<float> scalar(small_block(false, nn::LayerScale::kScalar));
  REQUIRE(scalar.layer_scale_gamma1().shape() == Shape{1, 1, 1});
}

TEST_CASE("Block forward is the pre-norm residual composition of its children", "[nn][block]") {
  for (auto scale : {nn::LayerScale::kNone, nn::LayerScale::kPerChannel}) {
    nn::Block<double> block(small_block(true, scale));
    randomize(block, 40);
    Var<double> x = testing::random_var(Shape{2, 3, 4}, 1, -1, 1, false);
    Var<double> mask = testing::random_var(Shape{3, 3}, 2, -1, 1, false);
    Var<double> a = block.attn().forward(block.norm_1().forward(x), mask);
    if (scale != nn::LayerScale::kNone) a = a * block.layer_scale_gamma1();
    const Var<double> h = x + a;
    Var<double> m = block.mlp().forward(block.norm_2().forward(h));
    if (scale != nn::LayerScale::kNone) m = m * block.layer_scale_gamma2();
    require_values(block.forward(x, mask).value(), Shape{2, 3, 4}, (h + m).value().to_vector(), 1e-12);
  }
}

TEST_CASE("Block gradcheck of the input, the mask and every parameter", "[nn][block]") {
  for (bool add_bias_kv : {false, true}) {
    DYNAMIC_SECTION("add_bias_kv " << add_bias_kv) {
      nn::Block<double> block(small_block(add_bias_kv, nn::LayerScale::kPerChannel));
      randomize(block, 60);
      std::vector<Var<double>> inputs{testing::random_var(Shape{2, 3, 4}, 31),
                                      testing::random_var(Shape{3, 3}, 32)};
      for (const auto& p : block.parameters()) inputs.push_back(p);
      for (bool training : {true, false}) {
        block.train(training);  // drop_path 0 and no dropout: both modes are
                                // deterministic
        testing::require_gradcheck<Cpu>(
            [&](const std::vector<Var<double>>& in) { return block.forward(in[0], in[1]); }, inputs);
      }
    }
  }
}

TEST_CASE("Block drop_path acts in training only", "[nn][block]") {
  nn::BlockConfig config = small_block(false);
  config.drop_path = 0.5;
  nn::Block<double> block(config);
  nn::Block<double> reference(small_block(false));
  reference.load_state_dict(block.state_dict());
  Var<double> x = testing::random_var(Shape{64, 2, 4}, 3, -1, 1, false);
  block.eval();
  reference.eval();
  const std::vector<double> expected = reference.forward(x).value().to_vector();
  REQUIRE(testing::max_abs_diff(block.forward(x).value().to_vector(), expected) == 0.0);
  block.train();
  REQUIRE(testing::max_abs_diff(block.forward(x).value().to_vector(), expected) > 0.0);
}

TEST_CASE("Transformer keys, drop-path schedule and forward", "[nn][transformer]") {
  nn::Transformer<double> trunk(small_trunk(5, 0.2));
  const auto keys = trunk.state_dict().keys();
  REQUIRE(keys.size() == 2 + 3 * 14);
  REQUIRE(keys[0] == "pre_transformer_layer.0.weight");
  REQUIRE(keys[1] == "pre_transformer_layer.0.bias");
  REQUIRE(keys[2] == "blocks.0.attn.in_proj_weight");
  REQUIRE(keys.back() == "blocks.2.norm_2.bias");
  REQUIRE(trunk.block(0).drop_path().p() == 0.0);
  REQUIRE(trunk.block(1).drop_path().p() == Approx(0.1));
  REQUIRE(trunk.block(2).drop_path().p() == Approx(0.2));
  REQUIRE(trunk.pre_transformer_norm()->eps() == 1e-6);

  // Default (pytorch-style) re-init: Linear weights trunc_normal(0.02), Linear
  // biases 0.
  double largest = 0;
  for (double w : trunk.block(1).mlp().fc1().weight().value().to_vector())
    largest = std::max(largest, std::fabs(w));
  REQUIRE(largest < 0.1);
  require_values(trunk.block(1).attn().out_proj().bias().value(), Shape{4}, {0, 0, 0, 0});

  // Forward = pre LayerNorm, then each block with the same causal mask.
  randomize(trunk, 70);
  trunk.eval();
  const double inf = std::numeric_limits<double>::infinity();
  Var<double> causal(Tensor<double>::from_vector({0, -inf, -inf, 0, 0, -inf, 0, 0, 0}, {3, 3}));
  Var<double> x = testing::random_var(Shape{2, 3, 4}, 8, -1, 1, false);
  Var<double> h = trunk.pre_transformer_norm()->forward(x);
  for (int64_t i = 0; i < 3; ++i) h = trunk.block(i).forward(h, causal);
  require_values(trunk.forward(x, causal).value(), Shape{2, 3, 4}, h.value().to_vector(), 0.0);

  nn::TransformerConfig plain = small_trunk(5, 0.2);
  plain.pre_transformer_ln = false;
  plain.num_blocks = 1;
  nn::Transformer<float> one(plain);
  REQUIRE(one.state_dict().keys().front() == "blocks.0.attn.in_proj_weight");
  REQUIRE(one.block(0).drop_path().p() == 0.0);
  BINDERY_REQUIRE_THROWS_WITH_ALL(one.forward(Var<float>(Tensor<float>::zeros({2, 3, 5}))), ShapeError,
                                  "(2, 3, 5)");
  // Same seed, same weights.
  nn::Transformer<float> again(plain);
  REQUIRE(again.block(0).attn().in_proj_weight().value().to_vector() ==
          one.block(0).attn().in_proj_weight().value().to_vector());
}

TEST_CASE("Block and Transformer forward_rows: one token per sample, the full forward's rows",
          "[nn][block]") {
  // forward_rows runs the (last) block on one query row per sample: the same value and, through the
  // autograd, the same gradients as gathering those rows from the full forward.
  const Tensor<int64_t> rows = Tensor<int64_t>::from_vector({2, 0, 4}, Shape{3});
  for (bool add_bias_kv : {false, true}) {
    for (auto scale : {nn::LayerScale::kNone, nn::LayerScale::kPerChannel}) {
      DYNAMIC_SECTION("add_bias_kv " << add_bias_kv << ", layer scale " << int(scale)) {
        nn::Block<double> block(small_block(add_bias_kv, scale));
        randomize(block, 80);
        const Var<double> x = testing::random_var(Shape{3, 5, 4}, 81);
        const Var<double> mask = testing::random_var(Shape{5, 5}, 82, -1, 1, false);
        for (const Var<double>& m : {Var<double>(), mask}) {
          const Var<double> pooled = block.forward_rows(x, m, rows);
          REQUIRE(pooled.shape() == Shape{3, 4});
          require_values(pooled.value(), Shape{3, 4},
                         ops::gather_rows(block.forward(x, m), rows).value().to_vector(), 1e-13);
        }
        // A mask that is not (L, L) runs the whole block, then gathers.
        const Var<double> padding = testing::random_var(Shape{3, 1, 1, 5}, 83, -1, 1, false);
        require_values(block.forward_rows(x, padding, rows).value(), Shape{3, 4},
                       ops::gather_rows(block.forward(x, padding), rows).value().to_vector(), 1e-13);
        testing::require_gradcheck<Cpu>(
            [&](const std::vector<Var<double>>& in) { return block.forward_rows(in[0], in[1], rows); },
            {x, testing::random_var(Shape{5, 5}, 84)});
      }
    }
  }
  nn::Block<double> block(small_block(true));
  const Var<double> x = testing::random_var(Shape{3, 5, 4}, 85, -1, 1, false);
  REQUIRE_THROWS_AS(block.forward_rows(x, Var<double>(), Tensor<int64_t>::from_vector({0, 5, 1}, Shape{3})),
                    IndexError);
  REQUIRE_THROWS_AS(block.forward_rows(x, testing::random_var(Shape{4, 4}, 86, -1, 1, false), rows),
                    ShapeError);

  nn::Transformer<double> trunk(small_trunk(9));
  randomize(trunk, 90);
  const Var<double> mask = testing::random_var(Shape{5, 5}, 91, -1, 1, false);
  require_values(trunk.forward_rows(x, mask, rows).value(), Shape{3, 4},
                 ops::gather_rows(trunk.forward(x, mask), rows).value().to_vector(), 1e-13);
}
