#include "test_util.hpp"
#include "test_softmax_bodies.hpp"

#include <limits>

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEST_CASE("softmax and log_softmax pass gradcheck on every axis", "[ops][softmax][gradcheck]") {
  for (const Shape& shape : {Shape{3, 5}, Shape{2, 3, 70}}) {
    for (int64_t axis : {0, -1, 1}) {
      INFO("shape " << shape << " axis " << axis);
      auto x = random_var<double>(shape, 5, -2, 2);
      require_gradcheck<Cpu>([axis](const std::vector<Var<double>>& in) { return ops::softmax(in[0], axis); },
                             {x});
      require_gradcheck<Cpu>(
          [axis](const std::vector<Var<double>>& in) { return ops::log_softmax(in[0], axis); }, {x});
    }
  }
}

TEST_CASE("softmax backward matches the composite exp / sum formula", "[ops][softmax]") {
  auto x = random_var<double>({3, 4}, 9, -2, 2);
  Philox rng(10);
  const Tensor<double> g = Tensor<double>::uniform({3, 4}, rng, -1, 1);
  ops::softmax(x, 1).backward(g);
  const auto fused = x.grad().to_vector();
  x.zero_grad();
  const Var<double> e = ops::exp(x);
  (e / ops::sum(e, {1}, true)).backward(g);
  REQUIRE(testing::max_abs_diff(fused, x.grad().to_vector()) < 1e-12);
}

TEST_CASE("softmax rejects bad axes and shapes", "[ops][softmax]") {
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::softmax_forward(Tensor<float>::ones({2, 3}), 2), IndexError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::softmax_forward(Tensor<float>::scalar(1.f)), IndexError, "()");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::softmax_backward(Tensor<float>::ones({2, 3}), Tensor<float>::ones({3, 2})), ShapeError, "(2, 3)",
      "(3, 2)");
}
