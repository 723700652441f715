#include "test_util.hpp"
#include "test_normalize_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEST_CASE("l2_normalize passes gradcheck, also where the norm is clamped", "[ops][normalize][gradcheck]") {
  auto x = random_var<double>({3, 4, 70}, 7);
  for (int64_t axis : {-1, 0, 1}) {
    INFO("axis " << axis);
    require_gradcheck<Cpu>(
        [axis](const std::vector<Var<double>>& in) { return ops::l2_normalize(in[0], axis); }, {x});
  }
  // eps = 10 exceeds every norm: y = x / 10, dx = dy / 10
  auto small = random_var<double>({3, 4}, 8);
  require_gradcheck<Cpu>(
      [](const std::vector<Var<double>>& in) { return ops::l2_normalize(in[0], -1, 10.0); }, {small});
  small.zero_grad();
  ops::sum(ops::l2_normalize(small, -1, 10.0)).backward();
  require_values(small.grad(), Shape{3, 4}, std::vector<double>(12, 0.1), 1e-15);
}

TEST_CASE("l2_normalize backward matches the composite formula", "[ops][normalize]") {
  auto x = random_var<double>({5, 6}, 9);
  Philox rng(10);
  const Tensor<double> g = Tensor<double>::uniform({5, 6}, rng, -1, 1);
  ops::l2_normalize(x, 1).backward(g);
  const auto fused = x.grad().to_vector();
  x.zero_grad();
  (x / ops::sqrt(ops::sum(x * x, {1}, true))).backward(g);
  REQUIRE(testing::max_abs_diff(fused, x.grad().to_vector()) < 1e-12);
}

TEST_CASE("l2_normalize rejects bad axes and eps", "[ops][normalize]") {
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::l2_normalize_forward(Tensor<float>::ones({2, 3}), 2), IndexError,
                                  "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::l2_normalize_forward(Tensor<float>::ones({2, 3}), -1, -1.0),
                                  ValueError, "(2, 3)");
}
