// bindery/ops/simd_math.hpp — float erf, GELU and exp 4 or 16 lanes at a time, for the Cpu kernels.
//
// Why hand-written (DESIGN §6): libm's erff is scalar (GELU through it ran at 1 GB/s on one core),
// and Eigen 3.4's vectorized erf (unsupported/Eigen/SpecialFunctions) measured 7.5 ulp over
// [-10, 10] and 37 ulp for arguments near FLT_MIN, against a goal of 2 ulp. Whatever the erf,
// GELU written as 0.5 x (1 + erf(x/√2)) loses its relative accuracy for x < -3, where 1 + erf
// cancels (x = -5: 4% off in float). Here GELU uses Φ(x) directly, 0.5 erfc(|x|/√2) on the
// negative side, and stays within a few ulp everywhere.
//
// Why GCC vector extensions rather than plain loops under `#pragma omp simd`: with the default
// -ftrapping-math, GCC 12 does not if-convert the clamps and the branch selects of these functions
// and leaves the loop scalar ("control flow in loop"). Written on lanes, every select is a blend.
// The lane code lives in simd_math_body.inc and is compiled twice: namespace v4 (16 bytes: SSE2 on
// every x86-64 CPU, NEON on ARM) and namespace v16 (64 bytes, under `#pragma GCC target("avx512f")`,
// so no -march flag is needed). The array functions at the end pick v16 at run time where the CPU
// has AVX-512F (7x the 4-lane speed measured on GELU here). v16 may contract a*b+c into FMA; both
// widths meet the accuracy figures below (tests/ops/test_gelu.cpp runs each). v16 is built only with
// g++ on x86-64 (BINDERY_HOST_SIMD_X86_GCC, config.hpp); elsewhere (clang, nvcc's host side) the array
// functions are 4-lane only. The two sets of array functions are different symbols (inline
// namespaces simd_x86 / simd_portable), so a program mixing .cpp and .cu translation units links both
// and each caller keeps its own.

// Method (float arithmetic throughout; coefficients fitted for this file, minimax on relative error
// with the coefficients rounded to float):
// - exp(-k v²), k = 1/2 or 1: v = hi + lo with hi the top 12 bits of v, so hi² is exact and only
//   the small part of the argument is rounded; Cody-Waite reduction by n ln 2, degree-6
//   polynomial, times 2^n.
// - e^x (the attention's online softmax, exp_shifted_sum): the same reduction and polynomial on x
//   itself, results below the smallest normal float set to exactly 0.
// - erfc(z) = exp(-z²) erfcx(z), erfcx(z) = U(t) / (z + a) with U a degree-8 polynomial in
//   t = (z - a)/(z + a), z in [0.5, 9.2].
// - erf(x): |x| < 1: x + x P(x²); else ±(1 - erfc(|x|)), |x| clamped to 4 (erf(4) rounds to 1).
// - Φ(x): |x| < 1/√2: 1/2 + x Q(x²); else Φ(-|x|) = erfc(|x|/√2)/2, and Φ(x) = 1 - Φ(-x) for x > 0.
// Measured against double precision on every float (erf on [-10, 10], GELU on [-12.9, 16]):
// erf <= 1.32 ulp; GELU <= 5.6 ulp, 99.94% of inputs within 2 ulp (below x = -12.9, gelu(x) is
// under 3e-37 and returns -0); the GELU derivative Φ(x) + x φ(x) within 3.4 ulp of
// |Φ(x)| + |x φ(x)| (it crosses zero near x = -0.75, where a relative bound means nothing). The
// scalar std::erf path had 0.9 ulp for erf but, through 1 + erf, errors of percents in the
// negative tail of GELU.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "bindery/config.hpp"

namespace bindery::ops::simd {

/// Below -kGeluTail, x Φ(x) is under 3e-37 (Φ(x) below the smallest normal float): gelu returns -0.
constexpr float kGeluTail = 12.9f;

/// 4 lanes (16 bytes): SSE2 on every x86-64 CPU, NEON on ARM.
namespace v4 {
using Floats = float __attribute__((vector_size(16)));
using Ints = int32_t __attribute__((vector_size(16)));
constexpr int64_t kLanes = 4;
#include "bindery/ops/simd_math_body.inc"
}  // namespace v4

/// Whether the array functions below may take the 16-lane AVX-512 code (they do only where it is
/// built and the CPU has AVX-512F: on by default; tests turn it off to check the 4-lane code on the
/// same machine). One switch for the whole program, the same in every translation unit.
inline std::atomic<bool>& wide_enabled() {
  static std::atomic<bool> enabled{true};
  return enabled;
}

#if BINDERY_HOST_SIMD_X86_GCC
/// 16 lanes (64 bytes), compiled for AVX-512F (FMA contraction allowed); used only where the CPU
/// has it.
#pragma GCC push_options
#pragma GCC target("avx512f")
namespace v16 {
using Floats = float __attribute__((vector_size(64)));
using Ints = int32_t __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;
#include "bindery/ops/simd_math_body.inc"
}  // namespace v16
#pragma GCC pop_options
#endif

/// Elements per vector of the widest code: parallel chunks that are multiples of it split no vector.
constexpr int64_t kMaxLanes = 16;

#if BINDERY_HOST_SIMD_X86_GCC
inline namespace simd_x86 {
/// Whether this translation unit has the 16-lane code and the CPU runs it (checked once).
inline bool wide_supported() {
  static const bool ok = __builtin_cpu_supports("avx512f") != 0;
  return ok;
}
#define BINDERY_SIMD_WIDE_BRANCH(call) \
  if (wide_supported() && wide_enabled().load(std::memory_order_relaxed)) return v16::call;
#else
inline namespace simd_portable {
/// Whether this translation unit has the 16-lane code: not here (4 lanes only).
inline bool wide_supported() {
  return false;
}
#define BINDERY_SIMD_WIDE_BRANCH(call)
#endif

/// Turns the 16-lane code on (where supported) or off; returns whether this translation unit's
/// array functions now take it.
inline bool set_wide(bool on) {
  wide_enabled().store(on);
  return on && wide_supported();
}

/// The largest of `start` and x[0..n) (NaN entries are skipped).
inline float max_of(const float* x, int64_t n, float start) {
  BINDERY_SIMD_WIDE_BRANCH(max_of(x, n, start))
  return v4::max_of(x, n, start);
}
/// x[i] = e^(x[i] - shift) in place, for x[i] - shift <= 88; results below the smallest normal
/// float (-inf included) are exactly 0. Returns the sum of the new x. <= 2 ulp.
inline float exp_shifted_sum(float* x, int64_t n, float shift) {
  BINDERY_SIMD_WIDE_BRANCH(exp_shifted_sum(x, n, shift))
  return v4::exp_shifted_sum(x, n, shift);
}
/// y = erf(x) over n floats (y may alias x); <= 1.32 ulp.
inline void erf(const float* x, float* y, int64_t n) {
  BINDERY_SIMD_WIDE_BRANCH(erf(x, y, n))
  v4::erf(x, y, n);
}
/// y = gelu(x) = x Φ(x).
inline void gelu(const float* x, float* y, int64_t n) {
  BINDERY_SIMD_WIDE_BRANCH(gelu(x, y, n))
  v4::gelu(x, y, n);
}
/// dL_dx = dL_dy (Φ(x) + x φ(x)).
inline void gelu_backward(const float* dL_dy, const float* x, float* dL_dx, int64_t n) {
  BINDERY_SIMD_WIDE_BRANCH(gelu_backward(dL_dy, x, dL_dx, n))
  v4::gelu_backward(dL_dy, x, dL_dx, n);
}
/// y = gelu(x + bias) elementwise (bias as long as x).
inline void bias_gelu(const float* x, const float* bias, float* y, int64_t n) {
  BINDERY_SIMD_WIDE_BRANCH(bias_gelu(x, bias, y, n))
  v4::bias_gelu(x, bias, y, n);
}
/// dL_dx = dL_dy gelu'(x + bias).
inline void bias_gelu_backward(const float* dL_dy, const float* x, const float* bias, float* dL_dx,
                               int64_t n) {
  BINDERY_SIMD_WIDE_BRANCH(bias_gelu_backward(dL_dy, x, bias, dL_dx, n))
  v4::bias_gelu_backward(dL_dy, x, bias, dL_dx, n);
}

#undef BINDERY_SIMD_WIDE_BRANCH

}  // namespace simd_x86 or simd_portable

}  // namespace bindery::ops::simd
