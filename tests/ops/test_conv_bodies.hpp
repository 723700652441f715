// tests/ops/test_conv_bodies.hpp — the templated test bodies of test_conv.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_conv.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <array>

namespace bindery_tests::ops_conv {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("conv2d forward on a hand-computed case", "[ops][conv]", bindery::testing::Backends) {
  using B = TestType;
  const auto x = Tensor<float, B>::arange(1.0, 10.0).reshape({1, 1, 3, 3});  // [[1 2 3] [4 5 6] [7 8 9]]
  const auto w = Tensor<float, B>::from_vector({1, 0, 0, 1}, {1, 1, 2, 2});  // main diagonal
  const auto b = Tensor<float, B>::from_vector({0.5f});
  require_values(ops::conv2d_forward(x, w, b, {1, 1}), Shape{1, 1, 2, 2}, {6.5, 8.5, 12.5, 14.5});
  require_values(ops::conv2d_forward(x, w, Tensor<float, B>(), {2, 2}), Shape{1, 1, 1, 1}, {6});
  // Padding 1: the corners see one input element each through the diagonal kernel.
  require_values(ops::conv2d_forward(x, w, Tensor<float, B>(), {2, 2}, {1, 1}), Shape{1, 1, 2, 2},
                 {1, 3, 7, 14});
}

TEMPLATE_LIST_TEST_CASE("conv2d and conv3d pass gradcheck", "[ops][conv][gradcheck]",
                        bindery::testing::Backends) {
  using B = TestType;
  auto x = random_var<double, B>({2, 2, 5, 4}, 51);
  auto w = random_var<double, B>({3, 2, 3, 2}, 52);
  auto b = random_var<double, B>({3}, 53);
  // overlapping windows + padding + bias
  require_gradcheck<B>(
      [](const auto& in) {
        return ops::conv2d(in[0], in[1], in[2], {2, 1}, {1, 1});
      },
      {x, w, b});
  // kernel == stride, no bias
  auto xp = random_var<double, B>({1, 2, 4, 6}, 54);
  auto wp = random_var<double, B>({2, 2, 2, 2}, 55);
  require_gradcheck<B>([](const auto& in) { return ops::conv2d(in[0], in[1], {}, {2, 2}); }, {xp, wp});
  // 3-D with padding on time and width
  auto x3 = random_var<double, B>({1, 2, 3, 4, 4}, 56);
  auto w3 = random_var<double, B>({2, 2, 2, 2, 3}, 57);
  auto b3 = random_var<double, B>({2}, 58);
  require_gradcheck<B>(
      [](const auto& in) {
        return ops::conv3d(in[0], in[1], in[2], {1, 2, 1}, {1, 0, 1});
      },
      {x3, w3, b3});
}

TEMPLATE_LIST_TEST_CASE("conv2d computes only the gradients that are needed", "[ops][conv]",
                        bindery::testing::Backends) {
  using B = TestType;
  auto x = random_var<double, B>({2, 2, 6, 5}, 61);
  auto w = random_var<double, B>({3, 2, 3, 3}, 62);
  auto b = random_var<double, B>({3}, 63);
  const auto seed = Tensor<double, B>::ones({2, 3, 2, 3});
  ops::conv2d(x, w, b, {2, 2}, {0, 1}).backward(seed);
  const auto dx = x.grad(), dw = w.grad(), db = b.grad();
  require_values(db, Shape{3}, {12, 12, 12});  // each bias sees every output position of both samples

  auto x_frozen = Var<double, B>(x.value(), false);
  w.zero_grad();
  b.zero_grad();
  ops::conv2d(x_frozen, w, b, {2, 2}, {0, 1}).backward(seed);
  REQUIRE_FALSE(x_frozen.has_grad());
  require_values(w.grad(), dw.shape(), dw.template cast<double>().to_vector(), 1e-12);

  auto w_frozen = Var<double, B>(w.value(), false);
  x.zero_grad();
  ops::conv2d(x, w_frozen, Var<double, B>(), {2, 2}, {0, 1}).backward(seed);
  REQUIRE_FALSE(w_frozen.has_grad());
  require_values(x.grad(), dx.shape(), dx.to_vector(), 1e-12);
}

}  // namespace bindery_tests::ops_conv
