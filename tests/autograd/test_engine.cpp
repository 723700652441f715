#include "test_util.hpp"

using namespace bindery;
using bindery::testing::require_values;

TEST_CASE("backward accumulates through a diamond graph", "[autograd]") {
  Var<double> x(Tensor<double>::from_vector({1, 2, 3}), true);
  Var<double> a = x * x;            // x²
  Var<double> b = x * 3.0;          // 3x
  Var<double> y = ops::sum(a + b);  // Σ x² + 3x
  y.backward();
  require_values(x.grad(), Shape{3}, {5, 7, 9});  // 2x + 3
  REQUIRE(y.item() == Approx(1 + 4 + 9 + 18));
}

TEST_CASE("gradients accumulate over backward calls until zero_grad", "[autograd]") {
  Var<double> x(Tensor<double>::from_vector({2}), true);
  ops::sum(x * x).backward();
  ops::sum(x * x).backward();
  require_values(x.grad(), Shape{1}, {8});
  x.zero_grad();
  REQUIRE_FALSE(x.has_grad());
}

TEST_CASE("retain_graph allows a second backward, otherwise it is an error", "[autograd]") {
  Var<double> x(Tensor<double>::from_vector({3}), true);
  Var<double> y = ops::sum(ops::exp(x));
  y.backward(true);
  y.backward();
  require_values(x.grad(), Shape{1}, {2 * std::exp(3.0)}, 1e-9);
  REQUIRE_THROWS_AS(y.backward(), AutogradError);
}

TEST_CASE("NoGrad records nothing; frozen leaves get no gradient", "[autograd]") {
  Var<double> x(Tensor<double>::from_vector({1, 2}), true);
  Var<double> frozen(Tensor<double>::from_vector({5, 5}), false);
  {
    NoGrad guard;
    Var<double> y = x * x;
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(y.is_leaf());
  }
  Var<double> y = ops::sum(x * frozen);
  y.backward();
  require_values(x.grad(), Shape{2}, {5, 5});
  REQUIRE_FALSE(frozen.has_grad());
  REQUIRE_THROWS_AS(y.set_requires_grad(false), AutogradError);
  Var<double> d = (x * x).detach();
  REQUIRE(d.is_leaf());
  REQUIRE_FALSE(d.requires_grad());
}

TEST_CASE("non-scalar backward needs an explicit seed", "[autograd]") {
  Var<double> x(Tensor<double>::from_vector({1, 2}), true);
  Var<double> y = x * 2.0;
  REQUIRE_THROWS_AS(y.backward(), AutogradError);
  REQUIRE_THROWS_AS(y.backward(Tensor<double>::ones({3})), ShapeError);
  y.backward(Tensor<double>::from_vector({1, 10}));
  require_values(x.grad(), Shape{2}, {2, 20});
}

TEST_CASE("gradcheck detects a wrong gradient", "[autograd][gradcheck]") {
  // A deliberately wrong op: forward x², backward claims 3x.
  auto wrong_square = [](const std::vector<Var<double>>& in) {
    const Var<double>& x = in[0];
    return make_result<double, Cpu>(ops::mul_forward(x.value(), x.value()), "wrong", {x},
                                    [xv = x.value()](const Tensor<double>& g) {
                                      return std::vector{ops::mul_forward(g, ops::scale_forward(xv, 3.0))};
                                    });
  };
  auto x = bindery::testing::random_var<double>({4}, 1, 0.5, 1.5);
  const GradcheckResult bad = gradcheck<Cpu>(wrong_square, {x});
  REQUIRE_FALSE(bad.ok);
  REQUIRE(bad.max_error > 0.1);
  const GradcheckResult good = gradcheck<Cpu>([](const auto& in) { return in[0] * in[0]; }, {x});
  REQUIRE(good.ok);
}

TEST_CASE("a deep chain does not overflow the stack", "[autograd]") {
  Var<double> x(Tensor<double>::from_vector({1}), true);
  Var<double> y = x;
  for (int i = 0; i < 100000; ++i) y = y + 0.0;
  ops::sum(y).backward();
  require_values(x.grad(), Shape{1}, {1});
}
