#include "test_util.hpp"
#include "test_concat_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEST_CASE("concat and stack reject mismatched shapes", "[ops][concat][errors]") {
  auto a = Var<float>(Tensor<float>::zeros({2, 3}));
  auto b = Var<float>(Tensor<float>::zeros({3, 4}));
  auto c = Var<float>(Tensor<float>::zeros({2, 3, 1}));
  const std::vector<Var<float>> ab{a, b}, aac{a, a, c}, aa{a, a}, none;
  const std::vector<Tensor<float>> ab_values{a.value(), b.value()};
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::concat(ab, 1), ShapeError, "(2, 3)", "(3, 4)", "concat");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::concat(aac, 0), ShapeError, "(2, 3)", "(2, 3, 1)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::concat(aa, 2), IndexError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::concat(none, 0), ValueError, "at least one");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::stack(ab, 0), ShapeError, "(2, 3)", "(3, 4)", "stack");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::concat_forward(ab_values, 0), ShapeError, "(2, 3)", "(3, 4)");
}
