#include "test_util.hpp"
#include "test_dropout_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEST_CASE("dropout and drop_path reject bad probabilities and shapes", "[ops][dropout][errors]") {
  Philox rng(1);
  const Var<float> x(Tensor<float>::ones({2, 3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::dropout(x, -0.1, true, rng), ValueError, "[0, 1]", "-0.1");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::dropout(x, 1.5, false, rng), ValueError, "1.5");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::drop_path(x, 2.0, true, rng), ValueError, "drop_path", "2");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::drop_path(Var<float>(Tensor<float>::scalar(1.f)), 0.5, true, rng),
                                  ShapeError, "()");
}
