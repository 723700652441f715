#include "test_util.hpp"
#include "test_linear_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

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
