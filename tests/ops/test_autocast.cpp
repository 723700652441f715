// Autocast (core/autocast.hpp): inside a scope, the GEMMs of linear, matmul and conv multiply
// operands rounded to bfloat16 / half and accumulate in float; backward uses the forward's precision.
#include "test_util.hpp"
#include "test_autocast_bodies.hpp"

#include <cmath>
#include <vector>

using namespace bindery;
using namespace bindery_tests::ops_autocast;  // the helpers shared with the templated bodies

TEST_CASE("autocast: scopes nest and restore; double ignores autocast", "[ops][autocast]") {
  REQUIRE(autocast_precision() == Precision::kFloat32);
  {
    Autocast outer(Precision::kFloat16);
    REQUIRE(autocast_precision() == Precision::kFloat16);
    {
      Autocast inner(Precision::kFloat32);
      REQUIRE(autocast_precision() == Precision::kFloat32);
    }
    REQUIRE(autocast_precision() == Precision::kFloat16);
  }
  REQUIRE(autocast_precision() == Precision::kFloat32);
  REQUIRE(std::string(precision_name(Precision::kBFloat16)) == "bf16");

  const auto x = bindery::testing::random_var<double>({4, 200}, 1);
  const auto w = bindery::testing::random_var<double>({3, 200}, 2);
  const std::vector<double> plain = ops::linear_forward(x.value(), w.value()).to_vector();
  Autocast autocast(Precision::kBFloat16);
  REQUIRE(ops::linear_forward(x.value(), w.value()).to_vector() == plain);
}
