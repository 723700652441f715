// tests/core/test_tensor_bodies.hpp — the templated test bodies of test_tensor.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_core (test_tensor.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_layers_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::core_tensor {

using namespace bindery;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("tensor creation", "[core][tensor]", bindery::testing::Backends) {
  using B = TestType;
  require_values(Tensor<float, B>::zeros({2, 3}), Shape{2, 3}, {0, 0, 0, 0, 0, 0});
  require_values(Tensor<float, B>::ones({2}), Shape{2}, {1, 1});
  require_values(Tensor<double, B>::full({1, 2}, 2.5), Shape{1, 2}, {2.5, 2.5});
  require_values(Tensor<float, B>::arange(5), Shape{5}, {0, 1, 2, 3, 4});
  require_values(Tensor<double, B>::arange(1.0, 2.0, 0.25), Shape{4}, {1, 1.25, 1.5, 1.75});
  require_values(Tensor<float, B>::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}), Shape{3, 2}, {1, 2, 3, 4, 5, 6});
  REQUIRE(Tensor<float, B>::scalar(3.f).item() == 3.f);
  REQUIRE(Tensor<float, B>::scalar(3.f).rank() == 0);
}

}  // namespace bindery_tests::core_tensor
