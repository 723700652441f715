#include "test_util.hpp"

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

TEST_CASE("linear gradients pass gradcheck", "[ops][linear][gradcheck]") {
  auto x = random_var<double>({2, 3, 4}, 1);
  auto w = random_var<double>({5, 4}, 2);
  auto b = random_var<double>({5}, 3);
  require_gradcheck<Cpu>([](const std::vector<Var<double>>& in) { return ops::linear(in[0], in[1], in[2]); },
                         {x, w, b});
  require_gradcheck<Cpu>([](const std::vector<Var<double>>& in) { return ops::linear(in[0], in[1]); },
                         {x, w});
  auto v = random_var<double>({4}, 4);
  require_gradcheck<Cpu>([](const std::vector<Var<double>>& in) { return ops::linear(in[0], in[1], in[2]); },
                         {v, w, b});
}

TEST_CASE("linear matches matmul + add and skips unneeded gradients", "[ops][linear]") {
  auto x = random_var<double>({3, 2, 4}, 5);
  auto w = random_var<double>({6, 4}, 6);
  auto b = random_var<double>({6}, 7);
  Philox rng(8);
  const Tensor<double> g = Tensor<double>::uniform({3, 2, 6}, rng, -1, 1);
  ops::linear(x, w, b).backward(g);
  const auto gx = x.grad(), gw = w.grad(), gb = b.grad();
  x.zero_grad(), w.zero_grad(), b.zero_grad();
  (ops::matmul(x, w, false, true) + b).backward(g);
  REQUIRE(testing::max_abs_diff(gx.to_vector(), x.grad().to_vector()) < 1e-12);
  REQUIRE(testing::max_abs_diff(gw.to_vector(), w.grad().to_vector()) < 1e-12);
  REQUIRE(testing::max_abs_diff(gb.to_vector(), b.grad().to_vector()) < 1e-12);

  Var<double> frozen_w(w.value(), false);
  x.zero_grad();
  ops::linear(x, frozen_w).backward(g);
  REQUIRE(x.has_grad());
  REQUIRE_FALSE(frozen_w.has_grad());
}

TEST_CASE("linear rejects mismatched shapes", "[ops][linear]") {
  const auto x = Tensor<float>::ones({2, 3});
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::linear_forward(x, Tensor<float>::ones({4, 5})), ShapeError, "(2, 3)",
                                  "(4, 5)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::linear_forward(x, Tensor<float>::ones({4, 3}), Tensor<float>::ones({3})), ShapeError, "(3,)",
      "(4, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::linear_forward(x, Tensor<float>::ones({3})), ShapeError, "(2, 3)",
                                  "(3,)");
}
