// tests/ops/test_cross_entropy_bodies.hpp — the templated test bodies of test_cross_entropy.cpp, one instance
// per backend of bindery::testing::Backends: Cpu in test_ops (test_cross_entropy.cpp includes this file), Cpu
// and Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_cross_entropy {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;
using ops::Reduction;

TEMPLATE_LIST_TEST_CASE("cross_entropy forward: hand-computed values", "[ops][cross_entropy]",
                        bindery::testing::Backends) {
  using B = TestType;
  // row 0: uniform over 3 classes -> log 3; row 1: softmax(log 1, log 2, log 1) = (1/4, 1/2, 1/4),
  // target 1 -> log 2
  const auto logits = Tensor<double, B>::from_vector({0, 0, 0, 0, std::log(2.0), 0}, {2, 3});
  const auto targets = Tensor<int64_t, B>::from_vector({2, 1});
  require_values(ops::cross_entropy_forward(logits, targets, Reduction::kNone), Shape{2},
                 {std::log(3.0), std::log(2.0)}, 1e-12);
  require_values(ops::cross_entropy_forward(logits, targets), Shape{}, {(std::log(3.0) + std::log(2.0)) / 2},
                 1e-12);
  require_values(ops::cross_entropy_forward(logits, targets, Reduction::kSum), Shape{},
                 {std::log(3.0) + std::log(2.0)}, 1e-12);
  // label smoothing 0.3 on row 1: q = (0.1, 0.8, 0.1) -> -(0.1 log 1/4 + 0.8 log 1/2 + 0.1 log 1/4)
  const double smoothed = -(0.2 * std::log(0.25) + 0.8 * std::log(0.5));
  require_values(ops::cross_entropy_forward(logits, targets, Reduction::kNone, 0.3), Shape{2},
                 {std::log(3.0), smoothed}, 1e-12);
  // float, with large logits (no overflow)
  const auto big = Tensor<float, B>::from_vector({1000, 1000}, {1, 2});
  require_values(ops::cross_entropy_forward(big, Tensor<int64_t, B>::from_vector({0})), Shape{},
                 {std::log(2.0)}, 1e-6);
}

}  // namespace bindery_tests::ops_cross_entropy
