#include "test_util.hpp"
#include "test_unfold_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEST_CASE("unfold rejects windows that do not fit", "[ops][unfold][errors]") {
  const Var<float> x(Tensor<float>::zeros({2, 3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::unfold(x, 1, 4, 1), ShapeError, "(2, 3)", "size 4");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::unfold(x, 1, 0, 1), ValueError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::unfold(x, 0, 1, 0), ValueError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::unfold(x, 2, 1, 1), IndexError, "(2, 3)");
}
