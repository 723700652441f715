// tests/ops/test_index_bodies.hpp — the templated test bodies of test_index.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_index.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_index {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("index_select forward picks rows of an axis", "[ops][index]",
                        bindery::testing::Backends) {
  using B = TestType;
  using Index = Tensor<int64_t, B>;
  const auto x = Tensor<float, B>::arange(6).reshape({3, 2});  // [[0, 1], [2, 3], [4, 5]]
  require_values(ops::index_select_forward(x, 0, Index::from_vector({2, 0, 2})), Shape{3, 2},
                 {4, 5, 0, 1, 4, 5});
  require_values(ops::index_select_forward(x, -1, Index::from_vector({1, 1, 0})), Shape{3, 3},
                 {1, 1, 0, 3, 3, 2, 5, 5, 4});
  require_values(ops::index_select_forward(x, 0, Index::zeros({0})), Shape{0, 2}, {});
  const auto y = Tensor<float, B>::arange(12).reshape({2, 3, 2});  // y[i][j][k] = 6i + 2j + k
  require_values(ops::index_select_forward(y, 1, Index::from_vector({1})), Shape{2, 1, 2}, {2, 3, 8, 9});
  // A strided x (transpose) is read correctly: x^T = [[0, 2, 4], [1, 3, 5]].
  require_values(ops::index_select_forward(x.transpose(0, 1), 1, Index::from_vector({2, 0})), Shape{2, 2},
                 {4, 0, 5, 1});
}

TEMPLATE_LIST_TEST_CASE("index_select backward accumulates repeated indices", "[ops][index]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> x(Tensor<double, B>::arange(6).reshape({3, 2}), true);
  Var<double, B> y = ops::index_select(x, 0, Tensor<int64_t, B>::from_vector({2, 0, 2}));
  y.backward(Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}));
  require_values(x.grad(), Shape{3, 2}, {3, 4, 0, 0, 6, 8});

  Var<double, B> z(Tensor<double, B>::arange(12).reshape({2, 3, 2}), true);
  Var<double, B> w = ops::index_select(z, 1, Tensor<int64_t, B>::from_vector({1, 1}));
  w.backward(Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}));
  require_values(z.grad(), Shape{2, 3, 2}, {0, 0, 4, 6, 0, 0, 0, 0, 12, 14, 0, 0});
}

TEMPLATE_LIST_TEST_CASE("index_select passes gradcheck", "[ops][index][gradcheck]",
                        bindery::testing::Backends) {
  using B = TestType;
  const auto index = Tensor<int64_t, B>::from_vector({3, 0, 3, 1, 3});
  auto x = random_var<double, B>({2, 4, 3}, 11);
  require_gradcheck<B>([&](const auto& in) { return ops::index_select(in[0], 1, index); }, {x});
  auto v = random_var<double, B>({4}, 12);
  require_gradcheck<B>([&](const auto& in) { return ops::index_select(in[0], 0, index); }, {v});
}

TEMPLATE_LIST_TEST_CASE("gather_rows picks one row per sample", "[ops][index][gather_rows]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> x(Tensor<double, B>::arange(12).reshape({2, 3, 2}), true);  // x[n][l][d] = 6n + 2l + d
  Var<double, B> y = ops::gather_rows(x, Tensor<int64_t, B>::from_vector({2, 0}));
  require_values(y.value(), Shape{2, 2}, {4, 5, 6, 7});
  y.backward(Tensor<double, B>::from_vector({1, 2, 3, 4}, {2, 2}));
  require_values(x.grad(), Shape{2, 3, 2}, {0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0});

  const auto index = Tensor<int64_t, B>::from_vector({1, 3, 0});
  auto z = random_var<double, B>({3, 4, 5}, 21);
  require_gradcheck<B>([&](const auto& in) { return ops::gather_rows(in[0], index); }, {z});
}

}  // namespace bindery_tests::ops_index
