#include "test_util.hpp"

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

TEST_CASE("view gradients (fp64 gradcheck)", "[ops][shape][gradcheck]") {
  auto x = random_var({2, 3, 4}, 31);
  auto weights = random_var({4, 3, 2}, 32, -1, 1, false);  // makes every output element matter differently
  require_gradcheck<Cpu>([](const auto& in) { return ops::reshape(in[0], {4, -1}); }, {x});
  require_gradcheck<Cpu>([&](const auto& in) { return ops::permute(in[0], {2, 1, 0}) * weights; }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::transpose(in[0], 0, 2); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::slice(in[0], 2, 1, 4, 2); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::select(in[0], 1, -1); }, {x});
  require_gradcheck<Cpu>(
      [](const auto& in) {
        return ops::expand(ops::slice(in[0], 0, 0, 1), Shape{3, 3, 4});
      },
      {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::unsqueeze(in[0], 1); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::contiguous(ops::transpose(in[0], 1, 2)); }, {x});
  require_gradcheck<Cpu>([](const auto& in) { return ops::flatten(in[0], 1); }, {x});
}

TEST_CASE("view ops reject bad shapes", "[ops][shape][errors]") {
  Var<float> x(Tensor<float>::zeros({2, 3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::reshape(x, {4, 2}), ShapeError, "(2, 3)", "(4, 2)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::expand(x, Shape{3, 3}), ShapeError, "(2, 3)", "(3, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::squeeze(x, 0), ShapeError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::select(x, 1, 3), IndexError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::permute(x, {0}), ShapeError, "(2, 3)");
}
