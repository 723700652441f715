#include "test_util.hpp"
#include "test_layer_norm_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

namespace {

/// The composite twin: layer norm from mean, sub, mul, sqrt and div ops (autograd gives its
/// gradient), against which the fused kernel is checked.
template <class T>
Var<T> layer_norm_composite(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps) {
  const Var<T> centered = x - ops::mean(x, {-1}, true);
  const Var<T> variance = ops::mean(centered * centered, {-1}, true);
  Var<T> y = centered / ops::sqrt(variance + static_cast<T>(eps));
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

template <class T>
void require_fused_matches_composite(const Shape& shape, bool affine_w, bool affine_b, double tolerance) {
  INFO("shape " << shape << " weight " << affine_w << " bias " << affine_b << " sizeof(T) " << sizeof(T));
  const int64_t d = shape.back();
  auto x = random_var<T>(shape, 21, -2, 3);
  auto w = affine_w ? random_var<T>({d}, 22, 0.5, 1.5) : Var<T>();
  auto b = affine_b ? random_var<T>({d}, 23) : Var<T>();
  Philox rng(24);
  const Tensor<T> g = Tensor<T>::uniform(shape, rng, -1, 1);
  const Var<T> fused = ops::layer_norm(x, w, b, 1e-5);
  fused.backward(g);
  const auto gx = x.grad().to_vector();
  const auto gw = affine_w ? w.grad().to_vector() : std::vector<T>();
  const auto gb = affine_b ? b.grad().to_vector() : std::vector<T>();
  x.zero_grad();
  if (affine_w) w.zero_grad();
  if (affine_b) b.zero_grad();
  const Var<T> twin = layer_norm_composite(x, w, b, 1e-5);
  twin.backward(g);
  CHECK(testing::max_abs_diff(fused.value().to_vector(), twin.value().to_vector()) < tolerance);
  CHECK(testing::max_abs_diff(gx, x.grad().to_vector()) < tolerance);
  if (affine_w)
    CHECK(testing::max_abs_diff(gw, w.grad().to_vector()) < tolerance * std::sqrt(double(shape.numel())));
  if (affine_b)
    CHECK(testing::max_abs_diff(gb, b.grad().to_vector()) < tolerance * std::sqrt(double(shape.numel())));
}

}  // namespace

TEST_CASE("fused layer_norm matches its composite twin", "[ops][layer_norm]") {
  for (bool w : {false, true}) {
    for (bool b : {false, true}) {
      require_fused_matches_composite<double>({3, 5, 7}, w, b, 1e-12);
      require_fused_matches_composite<float>({3, 5, 7}, w, b, 2e-5);
    }
  }
  require_fused_matches_composite<double>({130, 33}, true, true, 1e-12);  // more rows than chunks
  require_fused_matches_composite<float>({4, 1280}, true, true, 5e-5);    // an ImageBind-huge width
}

TEST_CASE("layer_norm passes gradcheck", "[ops][layer_norm][gradcheck]") {
  auto x = random_var<double>({2, 3, 6}, 31, -2, 2);
  auto w = random_var<double>({6}, 32, 0.5, 1.5);
  auto b = random_var<double>({6}, 33);
  require_gradcheck<Cpu>(
      [](const std::vector<Var<double>>& in) { return ops::layer_norm(in[0], in[1], in[2], 1e-5); },
      {x, w, b});
  require_gradcheck<Cpu>(
      [](const std::vector<Var<double>>& in) {
        return ops::layer_norm(in[0], Var<double>(), Var<double>(), 1e-5);
      },
      {x});
  require_gradcheck<Cpu>(
      [](const std::vector<Var<double>>& in) { return ops::layer_norm(in[0], in[1], Var<double>(), 0.1); },
      {x, w});
  // only the affine parameters need a gradient (a frozen input)
  Var<double> frozen(x.value(), false);
  require_gradcheck<Cpu>(
      [&frozen](const std::vector<Var<double>>& in) { return ops::layer_norm(frozen, in[0], in[1], 1e-5); },
      {w, b});
}

TEST_CASE("layer_norm saves mean and rstd and skips unneeded gradients", "[ops][layer_norm]") {
  auto x = random_var<double>({4, 8}, 41);
  Var<double> w(Tensor<double>::ones({8}), false);
  Var<double> b(Tensor<double>::zeros({8}), true);
  ops::sum(ops::layer_norm(x, w, b)).backward();
  REQUIRE(x.has_grad());
  REQUIRE_FALSE(w.has_grad());
  require_values(b.grad(), Shape{8}, std::vector<double>(8, 4.0));
  // Σ dx over a row is 0 when dy is constant along the row (shift invariance)
  for (double v : ops::sum_forward(x.grad(), {1}).to_vector()) REQUIRE(std::fabs(v) < 1e-12);
}

TEST_CASE("layer_norm rejects mismatched shapes", "[ops][layer_norm]") {
  const auto x = Tensor<float>::ones({2, 4});
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::layer_norm_forward(x, Tensor<float>::ones({3}), Tensor<float>()),
                                  ShapeError, "(2, 4)", "(3,)", "(4,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::layer_norm_forward(x, Tensor<float>::ones({4}), Tensor<float>::ones({2, 4})), ShapeError,
      "(2, 4)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::layer_norm_forward(Tensor<float>::scalar(1.f), Tensor<float>(), Tensor<float>()), ShapeError,
      "()");
  REQUIRE_THROWS_AS(ops::layer_norm_forward(x, Tensor<float>(), Tensor<float>(), -1.0), ValueError);
}
