// tests/ops/test_linear_bodies.hpp — the templated test bodies of test_linear.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_linear.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_linear {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("linear forward: hand-computed, with and without bias", "[ops][linear]",
                        bindery::testing::Backends) {
  using B = TestType;
  const auto x = Tensor<float, B>::from_vector({1, 2, 3, -1, 0, 1}, {2, 3});
  const auto w = Tensor<float, B>::from_vector({1, 0, 0, 1, 1, 1}, {2, 3});  // (out=2, in=3)
  const auto b = Tensor<float, B>::from_vector({10, -10});
  // rows: [1 2 3] -> (1, 6); [-1 0 1] -> (-1, 0)
  require_values(ops::linear_forward(x, w), Shape{2, 2}, {1, 6, -1, 0});
  require_values(ops::linear_forward(x, w, b), Shape{2, 2}, {11, -4, 9, -10});
  // leading axes are kept: (1, 2, 3) -> (1, 2, 2); a vector maps to a vector
  require_values(ops::linear_forward(x.reshape({1, 2, 3}), w, b), Shape{1, 2, 2}, {11, -4, 9, -10});
  require_values(ops::linear_forward(Tensor<float, B>::from_vector({1, 2, 3}), w, b), Shape{2}, {11, -4});
  // a transposed weight view (tied weights) is read in place
  const auto wt = Tensor<float, B>::from_vector({1, 1, 0, 1, 0, 1}, {3, 2}).transpose(0, 1);
  require_values(ops::linear_forward(x, wt, b), Shape{2, 2}, {11, -4, 9, -10});
  // a transposed x view
  const auto xt = Tensor<float, B>::from_vector({1, -1, 2, 0, 3, 1}, {3, 2}).transpose(0, 1);
  require_values(ops::linear_forward(xt, w, b), Shape{2, 2}, {11, -4, 9, -10});
  Var<float, B> vx(x), vw(w), vb(b);
  require_values(ops::linear(vx, vw, vb).value(), Shape{2, 2}, {11, -4, 9, -10});
  require_values(ops::linear(vx, vw).value(), Shape{2, 2}, {1, 6, -1, 0});
}

}  // namespace bindery_tests::ops_linear
