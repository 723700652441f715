// tests/ops/test_normalize_bodies.hpp — the templated test bodies of test_normalize.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_normalize.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_normalize {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("l2_normalize forward: hand-computed values", "[ops][normalize]",
                        bindery::testing::Backends) {
  using B = TestType;
  // rows (3, 4) -> /5, (0, 0) stays 0 (the norm is clamped to eps)
  const auto x = Tensor<float, B>::from_vector({3, 4, 0, 0}, {2, 2});
  require_values(ops::l2_normalize_forward(x), Shape{2, 2}, {0.6, 0.8, 0, 0}, 1e-7);
  // along axis 0: columns (3, 0) -> (1, 0) and (4, 0) -> (1, 0)
  require_values(ops::l2_normalize_forward(x, 0), Shape{2, 2}, {1, 1, 0, 0}, 1e-7);
  // a norm below eps divides by eps instead
  const auto tiny = Tensor<double, B>::from_vector({3e-13, 4e-13});
  require_values(ops::l2_normalize_forward(tiny, -1, 1e-12), Shape{2}, {0.3, 0.4}, 1e-12);
  // middle axis of a (1, 2, 2): columns (3, 0) and (4, 0)
  require_values(ops::l2_normalize_forward(x.reshape({1, 2, 2}), 1), Shape{1, 2, 2}, {1, 1, 0, 0}, 1e-7);
}

TEMPLATE_LIST_TEST_CASE("l2_normalize matches loops on every axis", "[ops][normalize]",
                        bindery::testing::Backends) {
  using B = TestType;
  Philox rng(5);
  const Shape shape{3, 4, 70};
  const auto x = Tensor<double, B>::uniform(shape, rng, -1, 1);
  const std::vector<double> v = x.to_vector();
  for (int64_t axis = 0; axis < 3; ++axis) {
    std::vector<double> expected(v.size());
    const int64_t len = shape[axis];
    const int64_t inner = axis == 0 ? 280 : (axis == 1 ? 70 : 1), outer = shape.numel() / (len * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        double n = 0;
        for (int64_t j = 0; j < len; ++j)
          n += v[size_t((o * len + j) * inner + i)] * v[size_t((o * len + j) * inner + i)];
        for (int64_t j = 0; j < len; ++j)
          expected[size_t((o * len + j) * inner + i)] = v[size_t((o * len + j) * inner + i)] / std::sqrt(n);
      }
    INFO("axis " << axis);
    require_values(ops::l2_normalize_forward(x, axis), shape, expected, 1e-12);
    require_values(ops::l2_normalize_forward(x.template cast<float>(), axis), shape, expected, 1e-6);
  }
}

}  // namespace bindery_tests::ops_normalize
