// bindery/core/philox.hpp — the Philox4x32-10 counter-based random generator.
//
// Counter-based means the n-th random number is a pure function of (seed, counter): any element of a
// random tensor can be computed independently, in any order, on any backend. That is what makes CPU
// and CUDA produce the same dropout masks and the same initial weights (Salmon et al., "Parallel
// random numbers: as easy as 1, 2, 3", SC 2011).
//
// Convention: element i of a draw that starts at generator offset o uses the Philox block of counter
// (o + i); the generator then advances by the element count. Float uniforms take 24 bits of word 0,
// double uniforms 53 bits of words 0 and 1, normals use Box-Muller on words 0..3.
#pragma once

#include <cmath>
#include <cstdint>

#include "bindery/config.hpp"

namespace bindery {

namespace detail {

struct PhiloxBlock {
  uint32_t word[4];
};

/// One Philox4x32-10 block for a 128-bit counter (c0..c3) and a 64-bit key.
BINDERY_HOST_DEVICE inline PhiloxBlock philox4x32_10(uint64_t counter, uint64_t key) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

/// Uniform in [0, 1) with the full mantissa of T.
template <class T>
BINDERY_HOST_DEVICE inline T philox_uniform01(const PhiloxBlock& b) {
  if constexpr (sizeof(T) >= 8) {
    const uint64_t bits = (static_cast<uint64_t>(b.word[0]) << 21) ^ (b.word[1] >> 11);
    return static_cast<T>(static_cast<double>(bits & ((1ull << 53) - 1)) * 0x1.0p-53);
  } else {
    return static_cast<T>(static_cast<float>(b.word[0] >> 8) * 0x1.0p-24f);
  }
}

/// Standard normal by Box-Muller, computed in double so CPU and GPU round identically.
BINDERY_HOST_DEVICE inline double philox_normal(const PhiloxBlock& b) {
  const double u1 = (static_cast<double>(b.word[0]) + 0.5) * 0x1.0p-32;  // (0, 1): log is finite
  const double u2 = static_cast<double>(b.word[2]) * 0x1.0p-32;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
}

/// Inverse error function on (-1, 1): Giles' single-precision approximation ("Approximating the
/// erfinv function", GPU Gems 2012) refined by two Newton steps on erf, accurate to double rounding.
BINDERY_HOST_DEVICE inline double erfinv(double x) {
  double w = -std::log((1.0 - x) * (1.0 + x));
  double p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  double y = p * x;
  for (int i = 0; i < 2; ++i) {  // Newton: d/dy erf(y) = 2/sqrt(pi) exp(-y^2)
    const double err = std::erf(y) - x;
    y -= err / (1.1283791670955126 * std::exp(-y * y));
  }
  return y;
}

}  // namespace detail

/// A seeded Philox stream: a key (the seed) and a position (the offset, in Philox blocks).
/// Copying a Philox copies its position: two copies replay the same numbers.
class Philox {
 public:
  explicit Philox(uint64_t seed = 0x853c49e6748fea9bull, uint64_t offset = 0)
      : seed_(seed), offset_(offset) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }

  /// Reserves `count` consecutive counters and returns the first one.
  uint64_t advance(uint64_t count) {
    const uint64_t first = offset_;
    offset_ += count;
    return first;
  }

  /// One uniform double in [0, 1) on the host (for samplers and shuffles).
  double next_uniform() { return detail::philox_uniform01<double>(detail::philox4x32_10(advance(1), seed_)); }
  /// One integer in [0, bound) on the host.
  uint64_t next_below(uint64_t bound) {
    return static_cast<uint64_t>(next_uniform() * static_cast<double>(bound)) % (bound ? bound : 1);
  }

  friend bool operator==(const Philox&, const Philox&) = default;

 private:
  uint64_t seed_;
  uint64_t offset_;
};

}  // namespace bindery
