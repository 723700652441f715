// tests/ops/test_concat_bodies.hpp — the templated test bodies of test_concat.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_concat.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_concat {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("concat forward joins along an existing axis", "[ops][concat]",
                        bindery::testing::Backends) {
  using B = TestType;
  using TensorF = Tensor<float, B>;
  const TensorF a = TensorF::from_vector({1, 2, 3, 4}, {2, 2});
  const TensorF b = TensorF::from_vector({5, 6}, {2, 1});
  const TensorF c = TensorF::from_vector({7, 8}, {1, 2});
  require_values(ops::concat_forward<float, B>({a, b}, 1), Shape{2, 3}, {1, 2, 5, 3, 4, 6});
  require_values(ops::concat_forward<float, B>({a, b}, -1), Shape{2, 3}, {1, 2, 5, 3, 4, 6});
  require_values(ops::concat_forward<float, B>({a, c}, 0), Shape{3, 2}, {1, 2, 3, 4, 7, 8});
  // A strided input (a transpose) takes the general copy path.
  require_values(ops::concat_forward<float, B>({a.transpose(0, 1), b}, 1), Shape{2, 3}, {1, 3, 5, 2, 4, 6});
  // Middle axis of a rank-3 tensor; an input with extent 0 contributes nothing.
  const TensorF x = TensorF::arange(8).reshape({2, 2, 2});  // x[i][j][k] = 4i + 2j + k
  const TensorF y = TensorF::full({2, 1, 2}, -1.f);
  const TensorF empty = TensorF::zeros({2, 0, 2});
  require_values(ops::concat_forward<float, B>({y, empty, x}, 1), Shape{2, 3, 2},
                 {-1, -1, 0, 1, 2, 3, -1, -1, 4, 5, 6, 7});
}

TEMPLATE_LIST_TEST_CASE("stack forward joins along a new axis", "[ops][concat][stack]",
                        bindery::testing::Backends) {
  using B = TestType;
  using TensorD = Tensor<double, B>;
  const TensorD a = TensorD::from_vector({1, 2});
  const TensorD b = TensorD::from_vector({3, 4});
  require_values(ops::stack_forward<double, B>({a, b}, 0), Shape{2, 2}, {1, 2, 3, 4});
  require_values(ops::stack_forward<double, B>({a, b}, 1), Shape{2, 2}, {1, 3, 2, 4});
  require_values(ops::stack_forward<double, B>({a, b}, -1), Shape{2, 2}, {1, 3, 2, 4});
  require_values(ops::stack_forward<double, B>({a, b, a}, 0), Shape{3, 2}, {1, 2, 3, 4, 1, 2});
}

TEMPLATE_LIST_TEST_CASE("concat backward hands each input its slab of dL/dy", "[ops][concat]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> a(Tensor<double, B>::from_vector({1, 2, 3, 4}, {2, 2}), true);
  Var<double, B> b(Tensor<double, B>::from_vector({5, 6}, {2, 1}), true);
  Var<double, B> frozen(Tensor<double, B>::from_vector({0, 0}, {2, 1}), false);
  Var<double, B> y = ops::concat({a, frozen, b}, 1);
  REQUIRE(y.shape() == Shape{2, 4});
  y.backward(Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}));
  require_values(a.grad(), Shape{2, 2}, {1, 2, 5, 6});
  require_values(b.grad(), Shape{2, 1}, {4, 8});
  REQUIRE_FALSE(frozen.has_grad());

  Var<double, B> s0(Tensor<double, B>::from_vector({1, 2}), true);
  Var<double, B> s1(Tensor<double, B>::from_vector({3, 4}), true);
  Var<double, B> st = ops::stack({s0, s1}, 1);
  st.backward(Tensor<double, B>::from_vector({10, 20, 30, 40}, {2, 2}));
  require_values(s0.grad(), Shape{2}, {10, 30});
  require_values(s1.grad(), Shape{2}, {20, 40});
}

TEMPLATE_LIST_TEST_CASE("concat and stack pass gradcheck", "[ops][concat][gradcheck]",
                        bindery::testing::Backends) {
  using B = TestType;
  auto a = random_var<double, B>({2, 1, 3}, 1);
  auto b = random_var<double, B>({2, 3, 3}, 2);
  auto c = random_var<double, B>({2, 2, 3}, 3);
  require_gradcheck<B>([](const auto& in) { return ops::concat(in, 1); }, {a, b, c});
  require_gradcheck<B>([](const auto& in) { return ops::concat(std::vector{in[1], in[0]}, -2); }, {a, b});
  auto d = random_var<double, B>({2, 3}, 4);
  auto e = random_var<double, B>({2, 3}, 5);
  require_gradcheck<B>([](const auto& in) { return ops::stack(in, 1); }, {d, e});
  require_gradcheck<B>([](const auto& in) { return ops::stack(in, 2); }, {d, e});
}

}  // namespace bindery_tests::ops_concat
