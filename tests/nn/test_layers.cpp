#include "test_util.hpp"
#include "test_layers_bodies.hpp"

#include <bindery/nn/embedding.hpp>
#include <bindery/nn/layer_norm.hpp>
#include <bindery/nn/mlp.hpp>
#include <bindery/nn/patch_embed.hpp>

using namespace bindery;
using bindery::testing::require_values;
using namespace bindery_tests::nn_layers;  // the helpers shared with the templated bodies

TEST_CASE("LayerNorm gradcheck through the module", "[nn][layer_norm]") {
  nn::LayerNorm<double> norm(5, 1e-5);
  norm.weight().assign(testing::random_var(Shape{5}, 3, 0.5, 1.5).value());
  norm.bias().assign(testing::random_var(Shape{5}, 4).value());
  Var<double> x = testing::random_var(Shape{2, 3, 5}, 8, -2, 2);
  testing::require_gradcheck<Cpu>([&](const std::vector<Var<double>>& in) { return norm.forward(in[0]); },
                                  {x, norm.weight(), norm.bias()});
}

TEST_CASE("Embedding forward picks weight rows", "[nn][embedding]") {
  nn::Embedding<float> embedding(4, 2);
  embedding.weight().assign(Tensor<float>::from_vector({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2}));
  const auto ids = Tensor<int64_t>::from_vector({3, 0, 3, 2}, {2, 2});
  require_values(embedding.forward(ids).value(), Shape{2, 2, 2}, {30, 31, 0, 1, 30, 31, 20, 21});
  // Default init N(0, 1): a large table has unit spread.
  nn::Embedding<double> big(1000, 10, 1);
  double sum = 0, sum_sq = 0;
  for (double w : big.weight().value().to_vector()) sum += w, sum_sq += w * w;
  REQUIRE(sum / 10000 == Approx(0).margin(0.05));
  REQUIRE(sum_sq / 10000 == Approx(1).epsilon(0.05));
}

TEST_CASE("Mlp forward is fc2(gelu(fc1(x)))", "[nn][mlp]") {
  nn::Mlp<double> mlp(2, 3, 1);
  mlp.fc1().weight().assign(Tensor<double>::from_vector({1, 0, 0, 1, 1, -1}, {3, 2}));
  mlp.fc1().bias().assign(Tensor<double>::from_vector({0, 0, 0.5}));
  mlp.fc2().weight().assign(Tensor<double>::from_vector({1, 2, 3}, {1, 3}));
  mlp.fc2().bias().assign(Tensor<double>::from_vector({-1}));
  auto gelu = [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); };
  Var<double> x(Tensor<double>::from_vector({1, 2}, {1, 2}));
  // h = (1, 2, 1 - 2 + 0.5) -> y = gelu(1) + 2 gelu(2) + 3 gelu(-0.5) - 1
  require_values(mlp.forward(x).value(), Shape{1, 1}, {gelu(1) + 2 * gelu(2) + 3 * gelu(-0.5) - 1}, 1e-12);
}

TEST_CASE("PatchEmbed 2-D: conv stem + LayerNorm, keys and tokens", "[nn][patch_embed]") {
  nn::PatchEmbedConfig config;
  config.in_channels = 1;
  config.embed_dim = 3;
  config.kernel = {2, 2};
  config.bias = true;
  config.norm = true;
  nn::PatchEmbed<double> stem(config);
  REQUIRE(names_of(stem.named_parameters()) ==
          std::vector<std::string>{"proj.weight", "proj.bias", "norm_layer.weight", "norm_layer.bias"});
  REQUIRE(stem.conv2d()->weight().shape() == Shape{3, 1, 2, 2});

  // Without norm, token (h, w) of image b is conv(x)[b, :, h, w], tokens in
  // row-major grid order.
  config.norm = false;
  nn::PatchEmbed<double> bare(config);
  REQUIRE(names_of(bare.named_parameters()) == std::vector<std::string>{"proj.weight", "proj.bias"});
  Var<double> x = testing::random_var(Shape{2, 1, 4, 6}, 5, -1, 1, false);
  const Var<double> tokens = bare.forward(x);
  REQUIRE(tokens.shape() == Shape{2, 6, 3});
  const Tensor<double> w = bare.conv2d()->weight().value(), bias = bare.conv2d()->bias().value();
  std::vector<double> expected;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t c = 0; c < 3; ++c) {
        for (int64_t d = 0; d < 3; ++d) {
          double acc = bias.at({d});
          for (int64_t i = 0; i < 2; ++i) {
            for (int64_t j = 0; j < 2; ++j)
              acc += w.at({d, 0, i, j}) * x.value().at({b, 0, 2 * h + i, 2 * c + j});
          }
          expected.push_back(acc);
        }
      }
    }
  }
  require_values(tokens.value(), Shape{2, 6, 3}, expected, 1e-12);
  BINDERY_REQUIRE_THROWS_WITH_ALL(bare.forward(testing::random_var(Shape{2, 3, 4, 4}, 1)), ShapeError,
                                  "(2, 3, 4, 4)");
}

TEST_CASE(
    "PatchEmbed 3-D with PadIm2Video: keys proj.1.*, an image becomes a "
    "2-frame video",
    "[nn][patch_embed]") {
  nn::PatchEmbedConfig config;
  config.in_channels = 2;
  config.embed_dim = 4;
  config.kernel = {2, 2, 2};
  config.pad_time = 2;
  nn::PatchEmbed<double> stem(config);
  REQUIRE(names_of(stem.named_parameters()) == std::vector<std::string>{"proj.1.weight"});
  REQUIRE(names_of(stem.named_modules()) == std::vector<std::string>{"", "proj", "proj.0", "proj.1"});
  Var<double> image = testing::random_var(Shape{1, 2, 4, 4}, 9, -1, 1, false);
  const Var<double> tokens = stem.forward(image);
  REQUIRE(tokens.shape() == Shape{1, 4, 4});
  // Both frames are the image: token = sum over t of w[d, c, t, i, j] * x[c,
  // 2h+i, 2w+j].
  const Tensor<double> w = stem.conv3d()->weight().value();
  std::vector<double> expected;
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t c = 0; c < 2; ++c) {
      for (int64_t d = 0; d < 4; ++d) {
        double acc = 0;
        for (int64_t ch = 0; ch < 2; ++ch) {
          for (int64_t t = 0; t < 2; ++t) {
            for (int64_t i = 0; i < 2; ++i) {
              for (int64_t j = 0; j < 2; ++j) {
                acc += w.at({d, ch, t, i, j}) * image.value().at({0, ch, 2 * h + i, 2 * c + j});
              }
            }
          }
        }
        expected.push_back(acc);
      }
    }
  }
  require_values(tokens.value(), Shape{1, 4, 4}, expected, 1e-12);
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      nn::PatchEmbed<double>(nn::PatchEmbedConfig{3, 8, {2, 2}, {}, false, false, 1e-5, 2, 0}), ValueError,
      "pad_time");
}

TEST_CASE("PatchEmbed gradcheck (conv stem + LayerNorm)", "[nn][patch_embed]") {
  nn::PatchEmbedConfig config{2, 3, {2, 2}, {2, 2}, true, true, 1e-5, 0, 4};
  nn::PatchEmbed<double> stem(config);
  std::vector<Var<double>> inputs{testing::random_var(Shape{2, 2, 4, 4}, 1)};
  for (const auto& p : stem.parameters()) inputs.push_back(p);
  testing::require_gradcheck<Cpu>([&](const std::vector<Var<double>>& in) { return stem.forward(in[0]); },
                                  inputs);
}
