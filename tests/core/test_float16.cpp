// tests/core/test_float16.cpp — bfloat16 / float16: conversions, limits, 16-bit tensors and GEMMs.
#include "test_util.hpp"
#include "test_float16_bodies.hpp"

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
