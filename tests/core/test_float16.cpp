// tests/core/test_float16.cpp — bfloat16 / float16: conversions, limits, 16-bit tensors and GEMMs.
#include "test_util.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

// bindery reads OpenBLAS headers with their global `bfloat16` typedef renamed (backend/cpu.hpp), so
// `using namespace bindery` would work; these short aliases just keep the long tables readable.
using BF16 = bindery::bfloat16;
using F16 = bindery::float16;

/// Round-to-nearest-even of f onto the representable values of a 16-bit format, computed the
/// slow, obvious way: find the two neighbours by their float bits, compare distances in double.
/// `to_float(bits)` decodes the format; `step_up(bits)` is the next larger magnitude.
template <class Decode>
uint16_t nearest_even(float f, uint16_t below, uint16_t above, Decode decode) {
  const double x = f, lo = decode(below), hi = decode(above);
  const double d_lo = std::fabs(x - lo), d_hi = std::fabs(x - hi);
  if (d_lo < d_hi) return below;
  if (d_hi < d_lo) return above;
  return (below & 1u) == 0 ? below : above;
}

uint16_t reference_bfloat16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const auto below = static_cast<uint16_t>(bits >> 16);  // truncation: the neighbour towards zero
  if ((bits & 0xffffu) == 0) return below;
  return nearest_even(f, below, static_cast<uint16_t>(below + 1), [](uint16_t b) {
    // Past the largest finite value the next "neighbour" is 2^128 (unbounded exponent), which the
    // format stores as infinity: IEEE rounding overflows exactly when the nearest value is 2^128.
    if ((b & 0x7fffu) == 0x7f80u) return (b & 0x8000u) ? -std::ldexp(1.0, 128) : std::ldexp(1.0, 128);
    return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(b) << 16));
  });
}

/// Every bit pattern of a 16-bit format whose value is finite, in order of magnitude (positive).
double decode_half(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double magnitude =
      exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
  return (h & 0x8000) ? -magnitude : magnitude;
}

uint16_t reference_half(float f) {
  const float a = std::fabs(f);
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (a >= 65520.0f) return sign | 0x7c00;
  // The largest F16 magnitude <= a (binary search over the ordered positive patterns 0..0x7bff).
  uint16_t lo = 0, hi = 0x7bff;
  while (lo < hi) {
    const auto mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (decode_half(mid) <= a) {
      lo = mid;
    } else {
      hi = static_cast<uint16_t>(mid - 1);
    }
  }
  if (decode_half(lo) == a) return sign | lo;
  const uint16_t above = static_cast<uint16_t>(lo + 1);
  const double d_lo = a - decode_half(lo), d_hi = (above == 0x7c00 ? 65536.0 : decode_half(above)) - a;
  const uint16_t pick = d_lo < d_hi ? lo : (d_hi < d_lo ? above : ((lo & 1) == 0 ? lo : above));
  return sign | pick;
}

/// A spread of float bit patterns: a stride through all 2^32 plus every pattern near the
/// rounding boundaries of both formats (ties and one float ulp either side).
std::vector<uint32_t> probe_floats() {
  std::vector<uint32_t> probes;
  for (uint64_t bits = 0; bits < (uint64_t(1) << 32); bits += 65521)
    probes.push_back(static_cast<uint32_t>(bits));
  for (uint32_t b = 0; b < 0x10000; ++b) {  // BF16 ties: low 16 bits 0x8000
    const uint32_t tie = (b << 16) | 0x8000u;
    for (uint32_t d : {tie - 1, tie, tie + 1}) probes.push_back(d);
  }
  for (uint16_t h = 0; h < 0x7c00; ++h) {  // F16 ties: midpoints between neighbours
    const double mid =
        (decode_half(h) + (h + 1 == 0x7c00 ? 65536.0 : decode_half(static_cast<uint16_t>(h + 1)))) / 2;
    const auto f = static_cast<float>(mid);  // exact: a midpoint of halves has ≤ 12 significant bits
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    for (uint32_t d : {bits - 1, bits, bits + 1}) {
      probes.push_back(d);
      probes.push_back(d | 0x80000000u);
    }
  }
  return probes;
}

}  // namespace

TEST_CASE("BF16: round to nearest even on every tie and a stride of all floats", "[core][float16]") {
  int64_t checked = 0, mismatches = 0;
  for (const uint32_t bits : probe_floats()) {
    const float f = std::bit_cast<float>(bits);
    const uint16_t got = BF16(f).bits;
    if (std::isnan(f)) {
      REQUIRE(std::isnan(static_cast<float>(BF16::from_bits(got))));
      continue;
    }
    ++checked;
    if (got != reference_bfloat16(f)) ++mismatches;
  }
  INFO(checked << " floats checked");
  REQUIRE(checked > 200000);
  REQUIRE(mismatches == 0);
}

TEST_CASE("BF16 and F16: 16 bits -> float -> 16 bits is the identity", "[core][float16]") {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const auto bits = static_cast<uint16_t>(b);
    const float fb = BF16::from_bits(bits), fh = F16::from_bits(bits);
    if (std::isnan(fb)) {
      REQUIRE(std::isnan(static_cast<float>(BF16(fb))));
    } else {
      REQUIRE(BF16(fb).bits == bits);
    }
    if (std::isnan(fh)) {
      REQUIRE(std::isnan(static_cast<float>(F16(fh))));
    } else {
      if (!std::isinf(fh)) REQUIRE(static_cast<double>(fh) == decode_half(bits));  // F16 -> float is exact
      REQUIRE(F16(fh).bits == bits);
    }
  }
}

TEST_CASE("F16: round to nearest even, subnormals, overflow to infinity", "[core][float16]") {
  int64_t mismatches = 0, checked = 0;
  for (const uint32_t bits : probe_floats()) {
    const float f = std::bit_cast<float>(bits);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(static_cast<float>(F16(f))));
      continue;
    }
    if (std::isinf(f)) {
      REQUIRE(F16(f).bits == (f > 0 ? 0x7c00 : 0xfc00));
      continue;
    }
    ++checked;
    const uint16_t got = F16(f).bits;
    if (got != reference_half(f)) {
      ++mismatches;
      UNSCOPED_INFO("float " << f << " (0x" << std::hex << bits << ") -> 0x" << got << ", expected 0x"
                             << reference_half(f) << std::dec);
    }
#if defined(__FLT16_MANT_DIG__) && !BINDERY_COMPILING_CUDA
    // The compiler's own conversion (libgcc / F16C) agrees as well.
    const _Float16 native = static_cast<_Float16>(f);
    if (got != std::bit_cast<uint16_t>(native)) ++mismatches;
#endif
  }
  INFO(checked << " floats checked");
  REQUIRE(mismatches == 0);
  // Named cases.
  REQUIRE(F16(65504.0f).bits == 0x7bff);
  REQUIRE(F16(65519.99f).bits == 0x7bff);
  REQUIRE(F16(65520.0f).bits == 0x7c00);       // the tie above max rounds to infinity
  REQUIRE(F16(5.9604645e-8f).bits == 0x0001);  // 2^-24, the smallest subnormal
  REQUIRE(F16(2.9802322e-8f).bits == 0x0000);  // 2^-25: a tie, rounds to even zero
  REQUIRE(F16(2.9802326e-8f).bits == 0x0001);  // just above the tie
  REQUIRE(F16(-0.0f).bits == 0x8000);
  REQUIRE(F16(6.097555e-5f).bits == 0x03ff);        // the largest subnormal
  REQUIRE(F16(1.0f + 1.0f / 2048).bits == 0x3c00);  // tie between 1 and 1 + 2^-10: even
  REQUIRE(F16(1.0f + 3.0f / 2048).bits == 0x3c02);  // tie between odd and even: even
}

TEST_CASE("BF16 and F16: limits and float arithmetic", "[core][float16]") {
  using LB = std::numeric_limits<BF16>;
  using LH = std::numeric_limits<F16>;
  REQUIRE(static_cast<float>(LB::max()) == std::bit_cast<float>(0x7f7f0000u));
  REQUIRE(static_cast<float>(LB::lowest()) == -static_cast<float>(LB::max()));
  REQUIRE(static_cast<float>(LB::epsilon()) == 0.0078125f);
  REQUIRE(static_cast<float>(LB::min()) == std::numeric_limits<float>::min());
  REQUIRE(std::isinf(static_cast<float>(LB::infinity())));
  REQUIRE(std::isnan(static_cast<float>(LB::quiet_NaN())));
  REQUIRE(static_cast<float>(LH::max()) == 65504.0f);
  REQUIRE(static_cast<float>(LH::lowest()) == -65504.0f);
  REQUIRE(static_cast<float>(LH::epsilon()) == 0.0009765625f);
  REQUIRE(static_cast<float>(LH::min()) == 6.103515625e-05f);
  REQUIRE(static_cast<float>(LH::denorm_min()) == 5.9604644775390625e-08f);
  REQUIRE(std::isinf(static_cast<float>(LH::infinity())));

  // Arithmetic runs in float; assignment rounds.
  const BF16 a = 1.5f, b = 3;
  const BF16 product = a * b;
  REQUIRE(static_cast<float>(product) == 4.5f);
  REQUIRE(static_cast<float>(BF16(1.0f + 1.0f / 256)) == 1.0f);  // 8 significant bits: a tie, even
  REQUIRE(a < b);
  REQUIRE(static_cast<float>(std::sqrt(F16(4.0f))) == 2.0f);
  REQUIRE(static_cast<float>(-F16(2.5)) == -2.5f);
  static_assert(std::is_same_v<bindery::accumulate_t<BF16>, float>);
  static_assert(std::is_same_v<bindery::accumulate_t<F16>, float>);
  static_assert(std::is_same_v<bindery::accumulate_t<double>, double>);
}

TEMPLATE_LIST_TEST_CASE("16-bit tensors: creation, casts to and from float, host round trip",
                        "[core][float16]", bindery::testing::Backends) {
  using B = TestType;
  using bindery::Shape;
  using bindery::Tensor;
  const std::vector<float> values = {0.0f, 1.0f, -2.5f, 3.14159265f, 1e-3f, 65504.0f, 1e5f, -1e-8f};
  const Tensor<float, B> x = Tensor<float, B>::from_vector(values, Shape{2, 4});
  const Tensor<BF16, B> xb = x.template cast<BF16>();
  const Tensor<F16, B> xh = x.template cast<F16>();
  REQUIRE(xb.shape() == Shape{2, 4});
  const std::vector<BF16> hb = xb.to_vector();
  const std::vector<F16> hh = xh.to_vector();
  for (size_t i = 0; i < values.size(); ++i) {
    REQUIRE(hb[i].bits == BF16(values[i]).bits);
    REQUIRE(hh[i].bits == F16(values[i]).bits);
  }
  // Back to float: exact.
  const std::vector<float> back = xh.template cast<float>().to_vector();
  REQUIRE(back[3] == static_cast<float>(F16(3.14159265f)));
  REQUIRE(std::isinf(back[6]));  // 1e5 overflows F16
  REQUIRE(back[7] == 0.0f);      // -1e-8 underflows F16 (to -0)
  // Fill, zeros and a strided copy work on 16-bit storage.
  const Tensor<BF16, B> ones = Tensor<BF16, B>::full(Shape{3, 2}, BF16(1.0f));
  const Tensor<BF16, B> t = ones.transpose(0, 1).contiguous();
  for (const BF16 v : t.to_vector()) REQUIRE(static_cast<float>(v) == 1.0f);
}

namespace {

/// C = op(A)·op(B) in double from float copies of the 16-bit operands, and the bound
/// K·2^-24·Σ|a||b| (+ the output's own rounding for 16-bit C) that float accumulation stays within.
template <class T>
void reference_gemm(const std::vector<T>& a, const std::vector<T>& b, int64_t m, int64_t n, int64_t k,
                    bool trans_a, bool trans_b, std::vector<double>& c, std::vector<double>& bound) {
  c.assign(static_cast<size_t>(m * n), 0.0);
  bound.assign(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = static_cast<float>(a[static_cast<size_t>(trans_a ? p * m + i : i * k + p)]);
        const double bv = static_cast<float>(b[static_cast<size_t>(trans_b ? j * k + p : p * n + j)]);
        sum += av * bv;
        magnitude += std::fabs(av * bv);
      }
      c[static_cast<size_t>(i * n + j)] = sum;
      bound[static_cast<size_t>(i * n + j)] = 2.0 * static_cast<double>(k) * std::ldexp(magnitude, -24);
    }
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("16-bit GEMM: BF16 and F16 storage accumulate in float", "[core][float16][gemm]",
                        bindery::testing::Backends) {
  using B = TestType;
  using bindery::Philox;
  using bindery::Shape;
  using bindery::Tensor;
  const int64_t m = 7, n = 9, k = 300;
  for (const bool trans_a : {false, true}) {
    for (const bool trans_b : {false, true}) {
      Philox rng(11 + (trans_a ? 2 : 0) + (trans_b ? 1 : 0));
      const Tensor<float, B> af = Tensor<float, B>::uniform(trans_a ? Shape{k, m} : Shape{m, k}, rng, -1, 1);
      const Tensor<float, B> bf = Tensor<float, B>::uniform(trans_b ? Shape{n, k} : Shape{k, n}, rng, -1, 1);
      auto check = [&]<class Low>(Low) {
        const Tensor<Low, B> a = af.template cast<Low>(), b = bf.template cast<Low>();
        Tensor<Low, B> c = Tensor<Low, B>::zeros(Shape{m, n});
        B::gemm(trans_a, trans_b, m, n, k, Low(1.0f), a.data(), trans_a ? m : k, b.data(), trans_b ? k : n,
                Low(0.0f), c.data(), n);
        std::vector<double> expected, bound;
        reference_gemm(a.to_vector(), b.to_vector(), m, n, k, trans_a, trans_b, expected, bound);
        const std::vector<Low> got = c.to_vector();
        const double unit = std::is_same_v<Low, BF16> ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
        for (size_t i = 0; i < got.size(); ++i) {
          // float accumulation error, then one rounding of the result to the 16-bit format
          const double tolerance = bound[i] + unit * (std::fabs(expected[i]) + bound[i]);
          INFO("trans " << trans_a << trans_b << " element " << i);
          REQUIRE(std::fabs(static_cast<float>(got[i]) - expected[i]) <= tolerance);
        }
      };
      check(BF16{});
      check(F16{});
    }
  }
}

TEMPLATE_LIST_TEST_CASE("gemm_batched_rounded: float operands rounded to 16 bits, float result",
                        "[core][float16][gemm]", bindery::testing::Backends) {
  using B = TestType;
  using bindery::Philox;
  using bindery::Shape;
  using bindery::Tensor;
  const int64_t m = 5, n = 6, k = 257, batch = 3;
  Philox rng(5);
  const Tensor<float, B> a = Tensor<float, B>::uniform(Shape{batch, m, k}, rng, -2, 2);
  const Tensor<float, B> b = Tensor<float, B>::uniform(Shape{k, n}, rng, -2, 2);  // shared: stride 0
  auto check = [&]<class Low>(Low) {
    Tensor<float, B> c = Tensor<float, B>::full(Shape{batch, m, n}, 1.0f);
    B::template gemm_batched_rounded<Low>(false, false, m, n, k, 1.0f, a.data(), k, m * k, b.data(), n, 0,
                                          0.5f, c.data(), n, m * n, batch);
    const std::vector<float> got = c.to_vector();
    const std::vector<Low> ar = a.template cast<Low>().to_vector(), br = b.template cast<Low>().to_vector();
    for (int64_t s = 0; s < batch; ++s) {
      const std::vector<Low> as(ar.begin() + s * m * k, ar.begin() + (s + 1) * m * k);
      std::vector<double> expected, bound;
      reference_gemm(as, br, m, n, k, false, false, expected, bound);
      for (int64_t i = 0; i < m * n; ++i) {
        const double want = expected[static_cast<size_t>(i)] + 0.5;  // beta · C = 0.5
        REQUIRE(std::fabs(got[static_cast<size_t>(s * m * n + i)] - want) <=
                bound[static_cast<size_t>(i)] + 1e-6);
      }
    }
    // The rounding is real: the float GEMM of the unrounded operands differs.
    Tensor<float, B> exact = Tensor<float, B>::zeros(Shape{m, n});
    B::gemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, exact.data(), n);
    std::vector<float> exact_plus_c = exact.to_vector();
    for (float& v : exact_plus_c) v += 0.5f;
    REQUIRE(bindery::testing::max_abs_diff(exact_plus_c,
                                           std::vector<float>(got.begin(), got.begin() + m * n)) > 1e-3);
  };
  check(BF16{});
  check(F16{});
}

TEMPLATE_LIST_TEST_CASE(
    "16-bit tensors through linear, gelu, softmax, add and sum (float math, 16-bit storage)",
    "[core][float16]", bindery::testing::Backends) {
  using B = TestType;
  using bindery::Philox;
  using bindery::Shape;
  using bindery::Tensor;
  using bindery::Var;
  namespace ops = bindery::ops;
  Philox rng(1);
  const auto xf = Tensor<float, B>::normal({4, 64}, rng);
  const auto wf = Tensor<float, B>::normal({32, 64}, rng, 0, 0.1);
  const auto bf = Tensor<float, B>::normal({32}, rng);
  // Each result is compared with the float op on the same (rounded) inputs; the bound is a few
  // units of bfloat16's 2^-8 relative precision at the outputs' magnitudes.
  const auto x = xf.template cast<BF16>(), w = wf.template cast<BF16>(), b = bf.template cast<BF16>();
  const auto xr = x.template cast<float>(), wr = w.template cast<float>(), br = b.template cast<float>();
  auto near = [](const Tensor<BF16, B>& got, const Tensor<float, B>& want, double tolerance) {
    REQUIRE(got.shape() == want.shape());
    REQUIRE(bindery::testing::max_abs_diff(got.template cast<float>().to_vector(), want.to_vector()) <=
            tolerance);
  };
  near(ops::linear_forward(x, w, b), ops::linear_forward(xr, wr, br), 0.02);
  near(ops::gelu(Var<BF16, B>(x)).value(), ops::gelu(Var<float, B>(xr)).value(), 0.02);
  near(ops::softmax(Var<BF16, B>(x), -1).value(), ops::softmax(Var<float, B>(xr), -1).value(), 0.004);
  near((Var<BF16, B>(x) + Var<BF16, B>(x)).value(), (Var<float, B>(xr) + Var<float, B>(xr)).value(), 0.04);
  near(ops::sum_forward(x, {1}), ops::sum_forward(xr, {1}), 0.1);
}
