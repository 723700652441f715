// bindery/core/float16.hpp — the 16-bit floating-point storage types `bfloat16` and `float16`.
//
// `float16` is IEEE binary16 ("half", torch.float16). It is not called `half` because CUDA's
// cuda_fp16.h declares a global `half` typedef, which would make the name ambiguous in CUDA code
// that says `using namespace bindery` (OpenBLAS's global `bfloat16` typedef is renamed away where
// backend/cpu.hpp includes it).
//
// Both are storage types: two bytes in memory, arithmetic in float. Each converts implicitly from
// and to float, so `T(0)`, `x * scale`, `a < b` and `std::sqrt(x)` work for T = bfloat16 or float16
// the way they do for float (the operation runs in float, the result rounds back on assignment).
// Code that sums many values must not accumulate in T: `accumulate_t<T>` is float for both.
//
// Conversions are written here once, as integer bit manipulation with BINDERY_HOST_DEVICE, and
// run unchanged on the host and in CUDA kernels: the same float gives the same 16 bits on Cpu and
// Cuda (bit-identical, which the tests rely on), with no dependence on F16C, AVX512-BF16 or CUDA's
// cuda_bf16.h.
//   float -> bfloat16: round to nearest, ties to even (as PyTorch's c10::BFloat16 and CUDA's
//                      __float2bfloat16_rn); NaN stays a (quiet) NaN with its sign.
//   float -> float16:  IEEE binary16, round to nearest even, gradual underflow (subnormals),
//                      overflow to ±inf (|x| ≥ 65520), NaN -> quiet NaN.
//   16 bits -> float:  exact (every bfloat16 and float16 value is a float).
// bfloat16 keeps float's 8-bit exponent (range 1e±38, 8 significant bits): the type for training
// without loss scaling. float16 has 11 significant bits and a range of 6e-8 .. 65504: more precise,
// but gradients underflow without loss scaling (optim::GradScaler).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <type_traits>

#include "bindery/config.hpp"

namespace bindery {

namespace detail {

BINDERY_HOST_DEVICE inline uint32_t float_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

BINDERY_HOST_DEVICE inline float bits_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

/// float -> bfloat16 bits, round to nearest even.
BINDERY_HOST_DEVICE inline uint16_t float_to_bfloat16_bits(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  // Adding 0x7fff plus the lowest kept bit rounds to nearest and breaks ties towards an even result;
  // a carry out of the mantissa correctly bumps the exponent (up to infinity).
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

BINDERY_HOST_DEVICE inline float bfloat16_bits_to_float(uint16_t b) {
  return bits_float(static_cast<uint32_t>(b) << 16);
}

/// float -> IEEE binary16 bits, round to nearest even.
BINDERY_HOST_DEVICE inline uint16_t float_to_half_bits(float f) {
  const uint32_t x = float_bits(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t magnitude = x & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // ≥ 65520: ±inf
  if (magnitude >= 0x38800000u) {                                              // ≥ 2^-14: a normal half
    const uint32_t rebiased = magnitude - 0x38000000u;                         // exponent 127 -> 15
    uint32_t h = rebiased >> 13;
    const uint32_t rest = rebiased & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: fine
    return static_cast<uint16_t>(sign | h);
  }
  // Subnormal half (or zero): the value in units of 2^-24 is mantissa · 2^(exponent - 126).
  const uint32_t exponent = magnitude >> 23;
  const uint32_t shift = 126u - exponent;  // ≥ 14 here
  if (shift > 24u) return sign;            // below 2^-25: rounds to ±0
  const uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
  uint32_t h = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
  if (rest > halfway || (rest == halfway && (h & 1u))) ++h;  // 0x400 is the smallest normal: fine
  return static_cast<uint16_t>(sign | h);
}

/// IEEE binary16 bits -> float (exact).
BINDERY_HOST_DEVICE inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
  if (exponent != 0) return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  // ±0 and subnormals: mantissa · 2^-24, exact in float.
  const float value = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  return sign ? -value : value;
}

}  // namespace detail

/// Brain floating point: float's sign and 8-bit exponent, 7 stored mantissa bits.
struct bfloat16 {
  uint16_t bits;

  bfloat16() = default;
  BINDERY_HOST_DEVICE bfloat16(float value) : bits(detail::float_to_bfloat16_bits(value)) {}  // NOLINT
  BINDERY_HOST_DEVICE bfloat16(double value) : bfloat16(static_cast<float>(value)) {}         // NOLINT
  template <class I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  BINDERY_HOST_DEVICE bfloat16(I value) : bfloat16(static_cast<float>(value)) {}               // NOLINT
  BINDERY_HOST_DEVICE operator float() const { return detail::bfloat16_bits_to_float(bits); }  // NOLINT

  // Compound assignment computes in float and rounds once.
  BINDERY_HOST_DEVICE bfloat16& operator+=(float x) {
    return *this = bfloat16(static_cast<float>(*this) + x);
  }
  BINDERY_HOST_DEVICE bfloat16& operator-=(float x) {
    return *this = bfloat16(static_cast<float>(*this) - x);
  }
  BINDERY_HOST_DEVICE bfloat16& operator*=(float x) {
    return *this = bfloat16(static_cast<float>(*this) * x);
  }
  BINDERY_HOST_DEVICE bfloat16& operator/=(float x) {
    return *this = bfloat16(static_cast<float>(*this) / x);
  }

  BINDERY_HOST_DEVICE static bfloat16 from_bits(uint16_t raw) {
    bfloat16 value;
    value.bits = raw;
    return value;
  }
};

/// IEEE 754 binary16: 5-bit exponent, 10 stored mantissa bits.
struct float16 {
  uint16_t bits;

  float16() = default;
  BINDERY_HOST_DEVICE float16(float value) : bits(detail::float_to_half_bits(value)) {}  // NOLINT
  BINDERY_HOST_DEVICE float16(double value) : float16(static_cast<float>(value)) {}      // NOLINT
  template <class I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  BINDERY_HOST_DEVICE float16(I value) : float16(static_cast<float>(value)) {}             // NOLINT
  BINDERY_HOST_DEVICE operator float() const { return detail::half_bits_to_float(bits); }  // NOLINT

  // Compound assignment computes in float and rounds once.
  BINDERY_HOST_DEVICE float16& operator+=(float x) { return *this = float16(static_cast<float>(*this) + x); }
  BINDERY_HOST_DEVICE float16& operator-=(float x) { return *this = float16(static_cast<float>(*this) - x); }
  BINDERY_HOST_DEVICE float16& operator*=(float x) { return *this = float16(static_cast<float>(*this) * x); }
  BINDERY_HOST_DEVICE float16& operator/=(float x) { return *this = float16(static_cast<float>(*this) / x); }

  BINDERY_HOST_DEVICE static float16 from_bits(uint16_t raw) {
    float16 value;
    value.bits = raw;
    return value;
  }
};

static_assert(sizeof(bfloat16) == 2 && std::is_trivially_copyable_v<bfloat16>);
static_assert(sizeof(float16) == 2 && std::is_trivially_copyable_v<float16>);

/// True for bindery's 16-bit storage types.
template <class T>
inline constexpr bool is_16bit_float_v = std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>;

/// The type sums and dot products of T accumulate in: float for the 16-bit types, T otherwise.
template <class T>
using accumulate_t = std::conditional_t<is_16bit_float_v<T>, float, T>;

inline std::ostream& operator<<(std::ostream& os, bfloat16 value) {
  return os << static_cast<float>(value);
}
inline std::ostream& operator<<(std::ostream& os, float16 value) {
  return os << static_cast<float>(value);
}

}  // namespace bindery

/// numeric_limits for the storage types, so generic code can ask for infinity(), lowest(), max()...
template <>
struct std::numeric_limits<bindery::bfloat16> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr bool is_exact = false;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static constexpr int digits = 8;
  static constexpr int radix = 2;
  static bindery::bfloat16 min() noexcept { return bindery::bfloat16::from_bits(0x0080); }  // 2^-126
  static bindery::bfloat16 max() noexcept { return bindery::bfloat16::from_bits(0x7f7f); }
  static bindery::bfloat16 lowest() noexcept { return bindery::bfloat16::from_bits(0xff7f); }
  static bindery::bfloat16 epsilon() noexcept { return bindery::bfloat16::from_bits(0x3c00); }  // 2^-7
  static bindery::bfloat16 infinity() noexcept { return bindery::bfloat16::from_bits(0x7f80); }
  static bindery::bfloat16 quiet_NaN() noexcept { return bindery::bfloat16::from_bits(0x7fc0); }
  static bindery::bfloat16 denorm_min() noexcept { return bindery::bfloat16::from_bits(0x0001); }
};

template <>
struct std::numeric_limits<bindery::float16> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr bool is_exact = false;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static constexpr int digits = 11;
  static constexpr int radix = 2;
  static bindery::float16 min() noexcept { return bindery::float16::from_bits(0x0400); }  // 2^-14
  static bindery::float16 max() noexcept { return bindery::float16::from_bits(0x7bff); }  // 65504
  static bindery::float16 lowest() noexcept { return bindery::float16::from_bits(0xfbff); }
  static bindery::float16 epsilon() noexcept { return bindery::float16::from_bits(0x1400); }  // 2^-10
  static bindery::float16 infinity() noexcept { return bindery::float16::from_bits(0x7c00); }
  static bindery::float16 quiet_NaN() noexcept { return bindery::float16::from_bits(0x7e00); }
  static bindery::float16 denorm_min() noexcept { return bindery::float16::from_bits(0x0001); }
};
