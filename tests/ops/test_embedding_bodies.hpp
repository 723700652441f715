// tests/ops/test_embedding_bodies.hpp — the templated test bodies of test_embedding.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_embedding.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_embedding {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("embedding looks up weight rows for ids of any shape", "[ops][embedding]",
                        bindery::testing::Backends) {
  using B = TestType;
  // weight[v] = (10v, 10v + 1, 10v + 2)
  const auto weight = Tensor<float, B>::from_vector({0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, {4, 3});
  require_values(ops::embedding_forward(Tensor<int64_t, B>::from_vector({3, 0}), weight), Shape{2, 3},
                 {30, 31, 32, 0, 1, 2});
  const auto ids = Tensor<int64_t, B>::from_vector({1, 1, 2, 0, 3, 1}, {2, 3});
  require_values(ops::embedding_forward(ids, weight), Shape{2, 3, 3},
                 {10, 11, 12, 10, 11, 12, 20, 21, 22, 0, 1, 2, 30, 31, 32, 10, 11, 12});
  require_values(ops::embedding_forward(Tensor<int64_t, B>::scalar(2), weight), Shape{3}, {20, 21, 22});
  // A strided ids tensor (transpose) is read in logical order.
  require_values(ops::embedding_forward(ids.transpose(0, 1), weight), Shape{3, 2, 3},
                 {10, 11, 12, 0, 1, 2, 10, 11, 12, 30, 31, 32, 20, 21, 22, 10, 11, 12});
}

TEMPLATE_LIST_TEST_CASE("embedding backward accumulates repeated ids", "[ops][embedding]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> weight(Tensor<double, B>::zeros({4, 2}), true);
  const auto ids = Tensor<int64_t, B>::from_vector({1, 3, 1, 1}, {2, 2});
  Var<double, B> y = ops::embedding(ids, weight);
  REQUIRE(y.shape() == Shape{2, 2, 2});
  y.backward(Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}));
  // id 1 at positions 0, 2, 3: (1 + 5 + 7, 2 + 6 + 8); id 3 at position 1: (3, 4).
  require_values(weight.grad(), Shape{4, 2}, {0, 0, 13, 16, 0, 0, 3, 4});

  auto w = random_var<double, B>({5, 3}, 31);
  const auto many = Tensor<int64_t, B>::from_vector({4, 0, 4, 2, 2, 2}, {3, 2});
  require_gradcheck<B>([&](const auto& in) { return ops::embedding(many, in[0]); }, {w});
}

}  // namespace bindery_tests::ops_embedding
