#include "test_util.hpp"
#include "test_gelu_bodies.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

namespace {

double normal_cdf(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0));
}
double gelu_reference(double x) {
  return x * normal_cdf(x);
}
double x_pdf_reference(double x) {
  return x * std::exp(-0.5 * x * x) * 0.39894228040143267794;
}

/// The float ulp at `value` (the spacing of floats in its binade; 2^-149 below the normal range).
double float_ulp(double value) {
  const double magnitude = std::fabs(value);
  if (magnitude < std::numeric_limits<float>::min()) return std::ldexp(1.0, -149);
  int exponent = 0;
  std::frexp(magnitude, &exponent);
  return std::ldexp(1.0, exponent - 24);
}

/// Every `step`-th float in [0, limit], with its negative.
std::vector<float> float_sweep(float limit, uint32_t step) {
  uint32_t end = 0;
  std::memcpy(&end, &limit, sizeof(end));
  std::vector<float> values;
  for (uint32_t bits = 0; bits <= end; bits += step) {
    float v = 0;
    std::memcpy(&v, &bits, sizeof(v));
    values.push_back(v);
    values.push_back(-v);
  }
  return values;
}

float erf_one(float x) {
  float y = 0;
  ops::simd::erf(&x, &y, 1);
  return y;
}

}  // namespace

/// Runs the rest of the test case once with the 4-lane and once with the 16-lane (AVX-512) code.
/// Returns false (after a SKIPPED warning) for the 16-lane pass on a CPU without AVX-512F.
static bool select_lanes(bool wide) {
  if (ops::simd::set_wide(wide) != wide) {
    WARN("SKIPPED: this CPU has no AVX-512F, so the 16-lane code is not run");
    return false;
  }
  return true;
}

TEST_CASE("simd::erf is within 2 ulp of double erf", "[ops][gelu][erf]") {
  const bool wide = GENERATE(false, true);
  if (!select_lanes(wide)) return;
  INFO((wide ? "16 lanes" : "4 lanes"));
  const std::vector<float> x = float_sweep(10.0f, 131);  // about 17 million values in [-10, 10]
  std::vector<float> y(x.size());
  ops::simd::erf(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double reference = std::erf(static_cast<double>(x[i]));
    const double error = std::fabs(y[i] - reference) / float_ulp(reference);
    if (!(error <= worst)) {
      worst = error;
      worst_x = x[i];
    }
  }
  INFO("max error " << worst << " ulp at x = " << worst_x);
  CHECK(worst <= 2.0);
  // special values
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(erf_one(inf) == 1.0f);
  CHECK(erf_one(-inf) == -1.0f);
  CHECK(std::isnan(erf_one(std::numeric_limits<float>::quiet_NaN())));
  CHECK(erf_one(0.0f) == 0.0f);
  CHECK(std::signbit(erf_one(-0.0f)));
  CHECK(erf_one(1e30f) == 1.0f);
  CHECK(erf_one(-1e30f) == -1.0f);
  for (const float tiny :
       {1e-30f, -1e-30f, std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(),
        -std::numeric_limits<float>::denorm_min()}) {
    const double reference = std::erf(static_cast<double>(tiny));
    INFO("x = " << tiny);
    CHECK(std::fabs(erf_one(tiny) - reference) <= 2 * float_ulp(reference));
  }
}

TEST_CASE("simd::exp_shifted_sum: e^(x - shift) within 2 ulp, exactly 0 below the normal range",
          "[ops][gelu][exp][attention]") {
  const bool wide = GENERATE(false, true);
  if (!select_lanes(wide)) return;
  INFO((wide ? "16 lanes" : "4 lanes"));
  // Every 257th float of [-104, 104], shifted down by 104 or 16 (x - shift spans [-208, 88]),
  // in one call of an odd length: whole vectors and a partial one.
  for (const float shift : {104.0f, 16.0f}) {
    const std::vector<float> x = float_sweep(104.0f, 257);
    std::vector<float> y = x;
    const auto n = static_cast<int64_t>(y.size()) - 3;
    const float sum = ops::simd::exp_shifted_sum(y.data(), n, shift);
    double worst = 0, reference_sum = 0;
    float worst_x = 0;
    int64_t not_flushed = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float arg = x[i] - shift;  // the contract is e^ of the float difference
      const double reference = std::exp(static_cast<double>(arg));
      reference_sum += y[i];
      if (reference < std::numeric_limits<float>::min() * 0.999) {
        not_flushed += y[i] != 0.0f;
        continue;
      }
      if (reference < std::numeric_limits<float>::min() * 1.001) continue;  // either side of the edge
      const double error = std::fabs(y[i] - reference) / float_ulp(reference);
      if (!(error <= worst)) worst = error, worst_x = x[i];
    }
    for (int64_t i = n; i < n + 3; ++i) CHECK(y[i] == x[i]);  // past n: untouched
    INFO("shift " << shift << ": max " << worst << " ulp at x = " << worst_x);
    CHECK(worst <= 2.0);  // measured: 1.12 on 4 lanes, 0.87 on 16
    CHECK(not_flushed == 0);
    if (shift == 104.0f) {  // every output <= 1 (with shift 16 the float sum overflows, as it should)
      CHECK(std::fabs(sum - reference_sum) <= 1e-5 * reference_sum);
    }
  }
  // -inf (a masked key) and an underflow give exactly 0, NaN stays NaN, 0 gives 1; the tail lanes
  // (n = 5) add nothing to the sum.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> special = {-inf, -100.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f, 3.0f};
  const float total = ops::simd::exp_shifted_sum(special.data(), 5, 3.0f);
  CHECK(special[0] == 0.0f);
  CHECK(special[1] == 0.0f);
  CHECK(std::isnan(special[2]));
  CHECK(std::isnan(total));
  CHECK(std::fabs(special[3] - std::exp(-3.0)) <= 2 * float_ulp(std::exp(-3.0)));
  CHECK(special[4] == 1.0f);
  std::vector<float> masked = {-inf, -inf, 0.0f};
  CHECK(ops::simd::exp_shifted_sum(masked.data(), 3, 0.0f) == 1.0f);
  // max_of: whole vectors, the tail and the start value, NaN skipped
  std::vector<float> values(37);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(static_cast<float>(i)) * 10.0f;
  for (const size_t at : {size_t(0), size_t(17), size_t(36)}) {
    std::vector<float> v = values;
    v[at] = 50.0f;
    v[(at + 5) % v.size()] = std::numeric_limits<float>::quiet_NaN();
    CHECK(ops::simd::max_of(v.data(), 37, -inf) == 50.0f);
    CHECK(ops::simd::max_of(v.data(), 37, 60.0f) == 60.0f);
  }
  CHECK(ops::simd::max_of(values.data(), 0, -inf) == -inf);
}

TEST_CASE("gelu float fast path is within a few ulp of double precision", "[ops][gelu]") {
  const bool wide = GENERATE(false, true);
  if (!select_lanes(wide)) return;
  INFO((wide ? "16 lanes" : "4 lanes"));
  // |x| <= 16 (every 131st float), through the Tensor kernels: many parallel chunks and a partial vector.
  const std::vector<float> sweep = float_sweep(16.0f, 131);
  const auto n = static_cast<int64_t>(sweep.size());
  const Tensor<float> x = Tensor<float>::from_vector(sweep, Shape{n});
  const Tensor<float> ones = Tensor<float>::ones(Shape{n});
  const std::vector<float> y = ops::gelu_forward(x).to_vector();
  const std::vector<float> slope = ops::gelu_backward(ones, x).to_vector();
  double worst_y = 0, worst_slope = 0;
  float worst_y_x = 0, worst_slope_x = 0;
  int64_t tail_not_flushed = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = sweep[i];
    if (v < -ops::simd::kGeluTail) {  // |gelu| < 3e-37: flushed to -0, slope 0
      tail_not_flushed += !(y[i] == 0 && std::signbit(y[i]) && slope[i] == 0);
      continue;
    }
    const double error_y = std::fabs(y[i] - gelu_reference(v)) / float_ulp(gelu_reference(v));
    // the slope Φ + x φ crosses zero near x = -0.75: its error is measured in ulp of |Φ| + |x φ|
    const double cdf = normal_cdf(v), x_pdf = x_pdf_reference(v);
    const double error_slope =
        std::fabs(slope[i] - (cdf + x_pdf)) / float_ulp(std::fabs(cdf) + std::fabs(x_pdf));
    if (!(error_y <= worst_y)) worst_y = error_y, worst_y_x = sweep[i];
    if (!(error_slope <= worst_slope)) worst_slope = error_slope, worst_slope_x = sweep[i];
  }
  INFO("forward: max " << worst_y << " ulp at x = " << worst_y_x << "; backward: max " << worst_slope
                       << " ulp at x = " << worst_slope_x);
  CHECK(worst_y <= 6.0);      // measured on every float of [-12.9, 16]: 5.6
  CHECK(worst_slope <= 4.0);  // measured: 3.4
  CHECK(tail_not_flushed == 0);

  // special values: the limits of x Φ(x) and of its slope; NaN propagates
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor<float> special =
      Tensor<float>::from_vector({inf, -inf, nan, 0.0f, -0.0f, 1e-30f, -1e30f, 1e30f});
  const std::vector<float> ys = ops::gelu_forward(special).to_vector();
  const std::vector<float> ds = ops::gelu_backward(Tensor<float>::ones(Shape{8}), special).to_vector();
  CHECK(ys[0] == inf);
  CHECK((ys[1] == 0 && std::signbit(ys[1])));
  CHECK(std::isnan(ys[2]));
  CHECK((ys[3] == 0 && !std::signbit(ys[3])));
  CHECK((ys[4] == 0 && std::signbit(ys[4])));
  CHECK(ys[5] == 5e-31f);
  CHECK((ys[6] == 0 && std::signbit(ys[6])));
  CHECK(ys[7] == 1e30f);
  CHECK(ds[0] == 1.0f);
  CHECK(ds[1] == 0.0f);
  CHECK(std::isnan(ds[2]));
  CHECK(ds[3] == 0.5f);
  CHECK(ds[4] == 0.5f);
  CHECK(ds[5] == 0.5f);
  CHECK(ds[6] == 0.0f);
  CHECK(ds[7] == 1.0f);
}

TEST_CASE("gelu double path is the std::erf functor, and its gradient checks", "[ops][gelu][gradcheck]") {
  const Tensor<double> x = random_var({5, 37}, 21, -4.0, 4.0).value();
  const std::vector<double> fast = ops::gelu_forward(x).to_vector();
  const std::vector<double> functor = ops::map(x, functors::Gelu{}).to_vector();
  CHECK(fast == functor);  // bit for bit
  const Tensor<double> g = random_var({5, 37}, 22).value();
  CHECK(ops::gelu_backward(g, x).to_vector() == ops::zip(g, x, functors::GeluGrad{}).to_vector());
  auto xv = random_var({3, 4}, 23, -2.0, 2.0);
  require_gradcheck<Cpu>([](const auto& in) { return ops::gelu(in[0]); }, {xv});
}

TEST_CASE("gelu on non-contiguous views equals gelu on their copies", "[ops][gelu]") {
  const Tensor<float> base = random_var<float>({6, 9}, 31, -3.0, 3.0).value();
  const Tensor<float> view = base.transpose(0, 1);  // (9, 6), strided
  REQUIRE(!view.is_contiguous());
  CHECK(ops::gelu_forward(view).to_vector() == ops::gelu_forward(view.contiguous()).to_vector());
  const Tensor<float> g = random_var<float>({6, 9}, 32).value().transpose(0, 1);
  CHECK(ops::gelu_backward(g, view).to_vector() ==
        ops::gelu_backward(g.contiguous(), view.contiguous()).to_vector());
  // through autograd: dL/dx of sum(gelu(xᵀ) ∘ w) lands in the (6, 9) leaf's layout
  Var<float> leaf(base, true);
  Var<float> w(g.contiguous());
  ops::sum(ops::gelu(ops::transpose(leaf, 0, 1)) * w).backward();
  const Tensor<float> expected = ops::gelu_backward(g.contiguous(), view.contiguous()).transpose(0, 1);
  CHECK(leaf.grad().to_vector() == expected.contiguous().to_vector());
}

TEST_CASE("gelu float kernels are bit-identical on 1 and 2 threads", "[ops][gelu]") {
  const int threads = Cpu::num_threads();
  const int64_t n = 3 * ops::GeluKernel<Cpu>::kChunk + 5;  // four tasks, the last one partial
  const Tensor<float> x = random_var<float>({n}, 41, -6.0, 6.0).value();
  const Tensor<float> g = random_var<float>({n}, 42).value();
  const Tensor<float> rows = random_var<float>({257, 129}, 43, -4.0, 4.0).value();
  const Tensor<float> bias = random_var<float>({129}, 44).value();
  const Tensor<float> g_rows = random_var<float>({257, 129}, 45).value();
  auto run = [&] {
    return std::vector{ops::gelu_forward(x).to_vector(), ops::gelu_backward(g, x).to_vector(),
                       ops::bias_gelu_forward(rows, bias).to_vector(),
                       ops::bias_gelu_backward(g_rows, rows, bias).to_vector()};
  };
  Cpu::set_num_threads(1);
  const auto one = run();
  Cpu::set_num_threads(2);
  const auto two = run();
  Cpu::set_num_threads(threads);
  for (size_t k = 0; k < one.size(); ++k) CHECK(one[k] == two[k]);
}

TEST_CASE("bias_gelu gradients (fp64 gradcheck)", "[ops][gelu][bias_gelu][gradcheck]") {
  auto x = random_var({3, 2, 5}, 51, -2.0, 2.0);
  auto bias = random_var({5}, 52);
  require_gradcheck<Cpu>([](const auto& in) { return ops::bias_gelu(in[0], in[1]); }, {x, bias});
  auto frozen = random_var({5}, 53, -1.0, 1.0, false);  // no gradient for a frozen bias
  require_gradcheck<Cpu>([&](const auto& in) { return ops::bias_gelu(in[0], frozen); }, {x});
}

TEST_CASE("bias_gelu equals its composite gelu(x + bias)", "[ops][gelu][bias_gelu]") {
  const Tensor<float> xt = random_var<float>({4, 3, 7}, 61, -3.0, 3.0).value();
  const Tensor<float> bt = random_var<float>({7}, 62).value();
  const Tensor<float> wt = random_var<float>({4, 3, 7}, 63).value();
  Var<float> x1(xt, true), b1(bt, true), x2(xt, true), b2(bt, true);
  const Var<float> fused = ops::bias_gelu(x1, b1);
  const Var<float> composite = ops::gelu(x2 + b2);
  CHECK(fused.value().to_vector() == composite.value().to_vector());  // bit for bit: same z, same kernel
  ops::sum(fused * Var<float>(wt)).backward();
  ops::sum(composite * Var<float>(wt)).backward();
  CHECK(x1.grad().to_vector() == x2.grad().to_vector());
  CHECK(b1.grad().to_vector() == b2.grad().to_vector());
  REQUIRE(b1.grad().shape() == Shape{7});
}

TEST_CASE("bias_gelu bad shapes name both shapes", "[ops][gelu][bias_gelu][errors]") {
  Var<float> x(Tensor<float>::zeros({2, 3})), wrong(Tensor<float>::zeros({4})),
      matrix(Tensor<float>::zeros({1, 3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::bias_gelu(x, wrong), ShapeError, "(2, 3)", "(4,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::bias_gelu(x, matrix), ShapeError, "(2, 3)", "(1, 3)");
  Var<float> scalar(Tensor<float>::scalar(1.0f));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::bias_gelu(scalar, wrong), ShapeError, "()", "(4,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::gelu_backward(Tensor<float>::zeros({3, 2}), x.value()), ShapeError,
                                  "(3, 2)", "(2, 3)");
}
