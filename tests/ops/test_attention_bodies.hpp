// tests/ops/test_attention_bodies.hpp — the templated test bodies of test_attention.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_attention.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <limits>

namespace bindery_tests::ops_attention {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("attention forward: hand-computed values", "[ops][attention]",
                        bindery::testing::Backends) {
  using B = TestType;
  // q = [1 0], keys [1 0] and [0 1], scale 1: logits (1, 0) -> p = (e, 1) / (e + 1)
  const auto q = Tensor<double, B>::from_vector({1, 0}, {1, 2});
  const auto k = Tensor<double, B>::from_vector({1, 0, 0, 1}, {2, 2});
  const auto v = Tensor<double, B>::from_vector({1, 2, 3, 4}, {2, 2});
  const double e = std::exp(1.0), p0 = e / (e + 1), p1 = 1 / (e + 1);
  require_values(ops::scaled_dot_product_attention_forward(q, k, v, Tensor<double, B>(), 1.0), Shape{1, 2},
                 {p0 * 1 + p1 * 3, p0 * 2 + p1 * 4}, 1e-12);
  // default scale 1/sqrt(2)
  const double s = 1 / std::sqrt(2.0), d0 = std::exp(s) / (std::exp(s) + 1), d1 = 1 - d0;
  require_values(ops::scaled_dot_product_attention_forward(q, k, v), Shape{1, 2},
                 {d0 + 3 * d1, 2 * d0 + 4 * d1}, 1e-12);
  // additive mask: -inf removes key 0 exactly, +log 3 on key 1 triples its weight
  const double inf = std::numeric_limits<double>::infinity();
  require_values(ops::scaled_dot_product_attention_forward(
                     q, k, v, Tensor<double, B>::from_vector({-inf, 0}, {1, 2}), 1.0),
                 Shape{1, 2}, {3, 4}, 0.0);
  const double w0 = e / (e + 3), w1 = 3 / (e + 3);
  require_values(ops::scaled_dot_product_attention_forward(
                     q, k, v, Tensor<double, B>::from_vector({0, std::log(3.0)}, {1, 2}), 1.0),
                 Shape{1, 2}, {w0 + 3 * w1, 2 * w0 + 4 * w1}, 1e-12);
}

}  // namespace bindery_tests::ops_attention
