// tests/ops/test_shape_bodies.hpp — the templated test bodies of test_shape.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_shape.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_shape {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("differentiable views forward", "[ops][shape]", bindery::testing::Backends) {
  using B = TestType;
  Var<float, B> x(Tensor<float, B>::arange(6).reshape({2, 3}));
  require_values(ops::reshape(x, {3, 2}).value(), Shape{3, 2}, {0, 1, 2, 3, 4, 5});
  require_values(ops::transpose(x, 0, 1).value(), Shape{3, 2}, {0, 3, 1, 4, 2, 5});
  require_values(ops::permute(x, {1, 0}).value(), Shape{3, 2}, {0, 3, 1, 4, 2, 5});
  require_values(ops::slice(x, 1, 1, 3).value(), Shape{2, 2}, {1, 2, 4, 5});
  require_values(ops::select(x, 0, 1).value(), Shape{3}, {3, 4, 5});
  require_values(ops::expand(ops::select(x, 1, 0), Shape{2, 2}).value(), Shape{2, 2}, {0, 3, 0, 3});
  require_values(ops::unsqueeze(x, 1).value(), Shape{2, 1, 3}, {0, 1, 2, 3, 4, 5});
  require_values(ops::squeeze(ops::unsqueeze(x, 0), 0).value(), Shape{2, 3}, {0, 1, 2, 3, 4, 5});
  require_values(ops::flatten(x).value(), Shape{6}, {0, 1, 2, 3, 4, 5});
  require_values(ops::contiguous(ops::transpose(x, 0, 1)).value(), Shape{3, 2}, {0, 3, 1, 4, 2, 5});
}

}  // namespace bindery_tests::ops_shape
