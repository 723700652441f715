// tests/nn/test_layers_bodies.hpp — the templated test bodies of test_layers.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_nn (test_layers.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_layers_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <bindery/nn/embedding.hpp>
#include <bindery/nn/layer_norm.hpp>
#include <bindery/nn/mlp.hpp>
#include <bindery/nn/patch_embed.hpp>

namespace bindery_tests::nn_layers {

using namespace bindery;
using bindery::testing::require_values;

template <class Pairs>
std::vector<std::string> names_of(const Pairs& pairs) {
  std::vector<std::string> names;
  for (const auto& [name, value] : pairs) names.push_back(name);
  return names;
}

TEMPLATE_LIST_TEST_CASE("LayerNorm forward against a hand computation", "[nn][layer_norm]",
                        bindery::testing::Backends) {
  using B = TestType;
  nn::LayerNorm<double, B> norm(4);
  REQUIRE(names_of(norm.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  require_values(norm.weight().value(), Shape{4}, {1, 1, 1, 1});
  require_values(norm.bias().value(), Shape{4}, {0, 0, 0, 0});
  norm.weight().assign(Tensor<double, B>::from_vector({1, 2, 1, 1}));
  norm.bias().assign(Tensor<double, B>::from_vector({0, 0, 1, 0}));
  // Row [0, 0, 3, 3]: mean 1.5, biased variance 2.25 -> (x - 1.5) / sqrt(2.25 +
  // 1e-5). Row [1, 1, 1, 1]: variance 0 -> all zeros before the affine part.
  Var<double, B> x(Tensor<double, B>::from_vector({0, 0, 3, 3, 1, 1, 1, 1}, {2, 4}));
  const double s = 1.5 / std::sqrt(2.25 + 1e-5);
  require_values(norm.forward(x).value(), Shape{2, 4}, {-s, -2 * s, s + 1, s, 0, 0, 1, 0}, 1e-12);

  nn::LayerNorm<double, B> plain(4, 1e-6, /*affine=*/false);
  REQUIRE(plain.named_parameters().empty());
  const double t = 1.5 / std::sqrt(2.25 + 1e-6);
  require_values(plain.forward(x).value(), Shape{2, 4}, {-t, -t, t, t, 0, 0, 0, 0}, 1e-12);
  BINDERY_REQUIRE_THROWS_WITH_ALL(norm.forward(testing::random_var<double, B>(Shape{2, 3}, 1)), ShapeError,
                                  "(2, 3)", "4");
}

}  // namespace bindery_tests::nn_layers
