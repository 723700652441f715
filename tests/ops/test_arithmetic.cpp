#include "test_util.hpp"
#include "test_arithmetic_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEST_CASE("arithmetic gradients (fp64 gradcheck, broadcasting)", "[ops][arithmetic][gradcheck]") {
  auto a = random_var({2, 3}, 1);
  auto row = random_var({3}, 2);
  auto col = random_var({2, 1}, 3, 0.5, 1.5);  // away from 0 for division
  require_gradcheck<Cpu>([](const auto& in) { return in[0] + in[1]; }, {a, row});
  require_gradcheck<Cpu>([](const auto& in) { return in[0] - in[1]; }, {a, col});
  require_gradcheck<Cpu>([](const auto& in) { return in[0] * in[1]; }, {a, row});
  require_gradcheck<Cpu>([](const auto& in) { return in[0] / in[1]; }, {a, col});
  require_gradcheck<Cpu>([](const auto& in) { return in[1] / in[0]; }, {col, row});
  require_gradcheck<Cpu>([](const auto& in) { return (in[0] * 3.0 - 1.0) / 2.0 + 4.0 / in[1]; }, {a, col});
  require_gradcheck<Cpu>([](const auto& in) { return 1.0 - in[0] * in[0]; }, {a});
}

TEST_CASE("arithmetic bad shapes name both shapes", "[ops][arithmetic][errors]") {
  Var<float> a(Tensor<float>::zeros({2, 3})), b(Tensor<float>::zeros({4}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(a + b, ShapeError, "(2, 3)", "(4,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(a - b, ShapeError, "(2, 3)", "(4,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(a * b, ShapeError, "(2, 3)", "(4,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(a / b, ShapeError, "(2, 3)", "(4,)");
}

TEST_CASE("pointwise gradients (fp64 gradcheck)", "[ops][pointwise][gradcheck]") {
  auto x = random_var({3, 4}, 11, -2.0, 2.0);
  auto positive = random_var({3, 4}, 12, 0.3, 3.0);
  require_gradcheck<Cpu>([](const auto& in) { return ops::exp(in[0]); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::tanh(in[0]); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::sigmoid(in[0]); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::gelu(in[0]); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::neg(in[0]); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::log(in[0]); }, {positive});
  require_gradcheck<Cpu>([](const auto& in) { return ops::sqrt(in[0]); }, {positive});
  require_gradcheck<Cpu>([](const auto& in) { return ops::pow(in[0], 2.5); }, {positive});
  require_gradcheck<Cpu>([](const auto& in) { return ops::pow(in[0], -1.0); }, {positive});
  // clamp: sample away from the kinks at ±0.5
  Var<double> away(Tensor<double>::from_vector({-1.5, -0.3, 0.1, 0.4, 0.9, 2.0}), true);
  require_gradcheck<Cpu>([](const auto& in) { return ops::clamp(in[0], -0.5, 0.5); }, {away});
}

TEST_CASE("pointwise on a strided view and bad arguments", "[ops][pointwise][errors]") {
  Var<double> x(Tensor<double>::arange(6).reshape({2, 3}).transpose(0, 1));  // (3, 2), strided
  require_values(ops::neg(x).value(), Shape{3, 2}, {-0, -3, -1, -4, -2, -5});
  require_values(ops::exp(x).value(), Shape{3, 2},
                 {1, std::exp(3.0), std::exp(1.0), std::exp(4.0), std::exp(2.0), std::exp(5.0)}, 1e-12);
  REQUIRE_THROWS_AS(ops::clamp(x, 1.0, 0.0), ValueError);
}

TEST_CASE("reduction gradients (fp64 gradcheck)", "[ops][reduce][gradcheck]") {
  auto x = random_var({3, 4, 2}, 21);
  require_gradcheck<Cpu>([](const auto& in) { return ops::sum(in[0]); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::sum(in[0], {0, 2}); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::sum(in[0], {1}, true); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::mean(in[0], {2}); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::mean(in[0]); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::max(in[0], {1}); },
                         {x});  // distinct values: no ties
  require_gradcheck<Cpu>([](const auto& in) { return ops::max(in[0], {0, 2}, true); }, {x});
}

TEST_CASE("max sends the gradient to the first maximum on ties", "[ops][reduce]") {
  Var<double> x(Tensor<double>::from_vector({1, 3, 3, 2}), true);
  ops::max(x).backward();
  require_values(x.grad(), Shape{4}, {0, 1, 0, 0});
}

TEST_CASE("reduction bad axes", "[ops][reduce][errors]") {
  Var<float> x(Tensor<float>::zeros({2, 3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::sum(x, {2}), IndexError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::mean(x, {0, 0}), ShapeError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::max(x, {-3}), IndexError, "(2, 3)");
  Var<float> empty(Tensor<float>::zeros({0, 3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::max(empty, {0}), ShapeError, "(0, 3)");
}
