#include "test_util.hpp"
#include "test_shape_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

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
