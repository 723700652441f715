// tests/ops/test_layer_norm_bodies.hpp — the templated test bodies of test_layer_norm.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_layer_norm.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_layer_norm {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("layer_norm forward: hand-computed values", "[ops][layer_norm]",
                        bindery::testing::Backends) {
  using B = TestType;
  // Row [1 2 3 4]: mean 2.5, variance 1.25 -> x̂ = [-1.5 -0.5 0.5 1.5] / sqrt(1.25 + eps).
  // Row [5 5 5 5]: variance 0 -> x̂ = 0 (eps > 0 keeps 0 / sqrt(eps) finite), y = bias.
  const auto x = Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 5, 5, 5}, {2, 4});
  const auto w = Tensor<double, B>::from_vector({1, 2, 1, 2});
  const auto b = Tensor<double, B>::from_vector({0, 0, 1, 1});
  const double r = 1 / std::sqrt(1.25 + 1e-6);
  require_values(ops::layer_norm_forward(x, Tensor<double, B>(), Tensor<double, B>(), 1e-6), Shape{2, 4},
                 {-1.5 * r, -0.5 * r, 0.5 * r, 1.5 * r, 0, 0, 0, 0}, 1e-12);
  require_values(ops::layer_norm_forward(x, w, b, 1e-6), Shape{2, 4},
                 {-1.5 * r, -1.0 * r, 1 + 0.5 * r, 1 + 3.0 * r, 0, 0, 1, 1}, 1e-12);
  // eps enters under the square root: variance 1.25 + 0.75 = 2
  const double r2 = 1 / std::sqrt(2.0);
  require_values(ops::layer_norm_forward(x.slice(0, 0, 1), Tensor<double, B>(), Tensor<double, B>(), 0.75),
                 Shape{1, 4}, {-1.5 * r2, -0.5 * r2, 0.5 * r2, 1.5 * r2}, 1e-12);
  // float, rank 3, weight only
  const auto xf = Tensor<float, B>::from_vector({1, 2, 3, 4}, {1, 1, 4});
  require_values(ops::layer_norm_forward(xf, w.template cast<float>(), Tensor<float, B>(), 1e-6),
                 Shape{1, 1, 4}, {-1.5 * r, -1.0 * r, 0.5 * r, 3.0 * r}, 1e-6);
}

}  // namespace bindery_tests::ops_layer_norm
