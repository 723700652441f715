// tests/ops/test_unfold_bodies.hpp — the templated test bodies of test_unfold.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_unfold.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_unfold {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("unfold forward is a strided view of sliding windows", "[ops][unfold]",
                        bindery::testing::Backends) {
  using B = TestType;
  const auto x = Tensor<float, B>::arange(7);
  const auto y = ops::unfold_forward(x, 0, 3, 2);
  require_values(y, Shape{3, 3}, {0, 1, 2, 2, 3, 4, 4, 5, 6});
  REQUIRE(y.shares_storage_with(x));
  // step > size leaves gaps and drops the tail that does not fill a window.
  require_values(ops::unfold_forward(x, -1, 2, 3), Shape{2, 2}, {0, 1, 3, 4});
  // A leading axis: y[w, j, s] = x[w + s, j] with x[i][j] = 2i + j.
  const auto m = Tensor<float, B>::arange(10).reshape({5, 2});
  require_values(ops::unfold_forward(m, 0, 2, 1), Shape{4, 2, 2},
                 {0, 2, 1, 3, 2, 4, 3, 5, 4, 6, 5, 7, 6, 8, 7, 9});
  // The IMU stem's patching: (B, 6, 16) -> (B, 6, 2, 8) with y[b, c, w, s] = x[b, c, 8w + s].
  const auto imu = Tensor<float, B>::arange(2 * 6 * 16).reshape({2, 6, 16});
  const auto patches = ops::unfold_forward(imu, -1, 8, 8);
  REQUIRE(patches.shape() == Shape{2, 6, 2, 8});
  REQUIRE(patches.at({1, 4, 1, 3}) == imu.at({1, 4, 11}));
  require_values(patches.contiguous().reshape({-1}), Shape{192},
                 imu.reshape({-1}).template cast<double>().to_vector());
  // Unfolding a view composes with its strides: columns of m.
  require_values(ops::unfold_forward(m.transpose(0, 1), 1, 3, 2), Shape{2, 2, 3},
                 {0, 2, 4, 4, 6, 8, 1, 3, 5, 5, 7, 9});
}

TEMPLATE_LIST_TEST_CASE("unfold backward accumulates overlapping windows", "[ops][unfold]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> x(Tensor<double, B>::zeros({7}), true);
  ops::unfold(x, 0, 3, 2).backward(Tensor<double, B>::ones({3, 3}));
  require_values(x.grad(), Shape{7}, {1, 1, 2, 1, 2, 1, 1});  // how many windows cover each element

  Var<double, B> g(Tensor<double, B>::zeros({7}), true);
  ops::unfold(g, 0, 2, 3).backward(Tensor<double, B>::from_vector({1, 2, 3, 4}, {2, 2}));
  require_values(g.grad(), Shape{7}, {1, 2, 0, 3, 4, 0, 0});

  Var<double, B> m(Tensor<double, B>::zeros({3, 2}), true);
  // windows along axis 0 of size 2, step 1: y[w, j, s] = m[w + s, j]
  ops::unfold(m, 0, 2, 1).backward(Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}));
  // m[0, 0] <- y[0,0,0]=1; m[0, 1] <- y[0,1,0]=3; m[1, 0] <- y[0,0,1]+y[1,0,0]=2+5; m[1, 1] <- 4+7;
  // m[2, 0] <- y[1,0,1]=6; m[2, 1] <- y[1,1,1]=8.
  require_values(m.grad(), Shape{3, 2}, {1, 3, 7, 11, 6, 8});
}

TEMPLATE_LIST_TEST_CASE("unfold passes gradcheck", "[ops][unfold][gradcheck]", bindery::testing::Backends) {
  using B = TestType;
  auto x = random_var<double, B>({2, 9, 3}, 41);
  require_gradcheck<B>([](const auto& in) { return ops::unfold(in[0], 1, 4, 2); }, {x});
  require_gradcheck<B>([](const auto& in) { return ops::unfold(in[0], -1, 2, 1); }, {x});
  require_gradcheck<B>([](const auto& in) { return ops::unfold(in[0], 0, 1, 1); }, {x});
  // Unfold of a strided view, and a gap between windows (step > size).
  require_gradcheck<B>([](const auto& in) { return ops::unfold(ops::transpose(in[0], 0, 1), 0, 2, 3); }, {x});
}

}  // namespace bindery_tests::ops_unfold
