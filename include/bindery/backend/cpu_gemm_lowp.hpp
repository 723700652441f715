// bindery/backend/cpu_gemm_lowp.hpp — x·Wᵀ with bf16 or int8 weights: C = alpha·A·Wᵀ + beta·C + bias.
//
// The low-precision twins of cpu_gemm_nt.hpp, for inference. A weight in PyTorch's (out, in) layout
// is converted once (Bf16Weight, Int8Weight: no fp32 copy is kept) and the activations A stay fp32
// in memory; each call rounds or quantizes A once (not once per thread) into a scratch buffer.
//
// bf16: W rounded to bfloat16 (nearest even) and kept in vdpbf16ps's pair layout (Bf16Weight: 16
//   output rows × 2 inputs per 64 bytes), A rounded the same way, products summed in fp32 by
//   AVX512_BF16 `vdpbf16ps` (two exact products per lane per instruction: 2× the fp32 FMA's work),
//   6 rows × 64 columns per tile, whole output vectors with no horizontal sums (the tile that
//   gemm_bf16_nn uses too).
//   The product of two bf16 values is exact in fp32, so the result differs from the exact sum of
//   the rounded operands' products only by fp32 summation: |error| ≤ 2(K+2)·2⁻²⁴·Σ|a·w|, the fp32
//   kernel's bound. Like every BF16 instruction, vdpbf16ps treats bf16 subnormals (|x| < 2⁻¹²⁶) as
//   zero; the fallback does not, so the two paths differ beyond that bound only where an operand is
//   that small.
// int8: W quantized symmetrically per output row (scale s_w = max|w|/127, q in [-127, 127]); each
//   row of A quantized the same way on the fly (s_a = max|a|/127). AVX512-VNNI `vpdpbusd` multiplies
//   unsigned × signed bytes, so A is stored as u = q + 128 ∈ [1, 255] and the 128·Σq_w of each
//   weight row (kept with the weight) is subtracted from the int32 sum: the integer dot product is
//   exact (K ≤ kGemmI8MaxK keeps it within int32). W is kept in vpdpbusd's layout (16 output rows ×
//   4 inputs per 64 bytes, Int8Weight), so the kernel accumulates whole output vectors (6 rows × 64
//   columns per tile) without horizontal sums. Then C = fma(float(dot), (alpha·s_a)·s_w,
//   beta·C + bias), the same operations in the kernel and the fallback, so the two agree bit for bit.
//   No outlier handling: per-row activation scales and per-channel weight scales bound the error by
//   Σ(|a|·s_w/2 + |w|·s_a/2 + s_a·s_w/4) (tested); whether a model needs more is measured where the
//   encoders use it.
//
// bf16 A·B (gemm_bf16_nn, for attention's Q·Kᵀ and P·V, activations by activations): B packed per
//   call in vdpbf16ps's pair layout (Bf16Pairs: each 32-bit word holds rows 2q and 2q+1 of one
//   column), A rounded as above; each step broadcasts one pair of an A row against 16 columns, so a
//   6 × 64 tile accumulates whole output vectors with no horizontal sums. Same bound as gemm_nt_bf16.
//
// Dispatch at run time, capped by cpu_isa_limit() (BINDERY_CPU_ISA): the AVX-512 kernels where the
// CPU has AVX512F/DQ/BW plus BF16 (resp. VNNI), else plain loops with the same arithmetic. Threads
// split N in whole tiles, so results do not depend on the thread count. Translation units compiled
// by nvcc get only the loops (inline namespace simd_portable, as in cpu_gemm_nt.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "bindery/backend/cpu_gemm_nt.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/float16.hpp"
#include "bindery/ops/simd_math.hpp"

namespace bindery {

/// A weight W (rows = out features, cols = in features) stored as bfloat16: half the bytes of fp32,
/// for gemm_nt_bf16. Built once from fp32 (rounded to nearest even) or from bf16 values; keeps no
/// fp32 copy.
///
/// Stored in vdpbf16ps's pair layout, not (out, in): groups of 16 output rows, and within a group,
/// for each pair of consecutive inputs, 16 32-bit words (word = row's input 2q in the low half, 2q+1
/// in the high half). One 64-byte load then feeds 16 output columns × 2 products, so the kernel
/// accumulates whole output vectors (no horizontal sums: with the (out, in) layout these cost
/// 3-20% of the product at K = 768-5120) and its epilogue stores whole vectors. Rows are padded to a
/// multiple of 16 and inputs to an even count with zeros.
class Bf16Weight {
 public:
  static constexpr int64_t kGroup = 16;  ///< output rows per group

  Bf16Weight() = default;
  /// Rounds `w` (rows × cols, row stride ld ≥ cols) to bfloat16, nearest even.
  Bf16Weight(const float* w, int64_t rows, int64_t cols, int64_t ld) {
    BINDERY_CHECK(rows >= 0 && cols >= 0 && ld >= cols, ShapeError, "Bf16Weight: bad shape (", rows, ", ",
                  cols, ") with row stride ", ld);
    allocate(rows, cols);
    for (int64_t j = 0; j < rows; ++j)
      for (int64_t p = 0; p < cols; ++p) set(j, p, detail::float_to_bfloat16_bits(w[j * ld + p]));
  }
  /// Takes bfloat16 values as they are (rows × cols, row-major): a bf16 checkpoint's weight, no fp32
  /// on the way.
  static Bf16Weight from_bf16(const bfloat16* w, int64_t rows, int64_t cols) {
    BINDERY_CHECK(rows >= 0 && cols >= 0, ShapeError, "Bf16Weight: bad shape (", rows, ", ", cols, ")");
    Bf16Weight out;
    out.allocate(rows, cols);
    for (int64_t j = 0; j < rows; ++j)
      for (int64_t p = 0; p < cols; ++p) out.set(j, p, w[j * cols + p].bits);
    return out;
  }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  /// Groups of 16 rows, and input pairs per row (cols rounded up to even, halved).
  int64_t groups() const { return groups_; }
  int64_t pairs() const { return pairs_; }
  /// The packed words (see the class comment): group g starts at packed() + g·pairs()·16.
  const uint32_t* packed() const { return data_.data(); }
  /// W[row][col] as bfloat16.
  bfloat16 at(int64_t row, int64_t col) const {
    const uint32_t word = data_[index(row, col / 2)];
    return bfloat16::from_bits(static_cast<uint16_t>(col % 2 == 0 ? word & 0xFFFFu : word >> 16));
  }
  /// Bytes held (the padding included).
  size_t bytes() const { return data_.size() * sizeof(uint32_t); }

 private:
  void allocate(int64_t rows, int64_t cols) {
    rows_ = rows;
    cols_ = cols;
    groups_ = (rows + kGroup - 1) / kGroup;
    pairs_ = (cols + 1) / 2;
    data_.assign(static_cast<size_t>(groups_ * pairs_ * kGroup), 0u);
  }
  void set(int64_t row, int64_t col, uint16_t bits) {
    data_[index(row, col / 2)] |= uint32_t(bits) << (16 * (col % 2));
  }
  size_t index(int64_t row, int64_t pair) const {
    return static_cast<size_t>(((row / kGroup) * pairs_ + pair) * kGroup + row % kGroup);
  }
  int64_t rows_ = 0, cols_ = 0, groups_ = 0, pairs_ = 0;
  std::vector<uint32_t> data_;
};

namespace detail {

/// Longest K for int8 products: K·255·127 stays below 2³¹ (the unsigned × signed int32 sums).
inline constexpr int64_t kGemmI8MaxK = 65536;

/// max|x| over x[begin, end) folded into max_abs, and whether every value there is finite.
inline void fold_max_abs(const float* x, int64_t begin, int64_t end, float& max_abs, bool& finite) {
  for (int64_t p = begin; p < end; ++p) {
    const float v = std::fabs(x[p]);
    finite &= v <= std::numeric_limits<float>::max();
    max_abs = std::max(max_abs, v);
  }
}

/// One activation's q: round(x·inv) to nearest even, clamped to [-127, 127].
inline float quantize_value(float x, float inv) {
  return std::min(127.0f, std::max(-127.0f, std::nearbyint(x * inv)));
}

/// Quantizes x[0, k) symmetrically: out[p] = q + 128 with q = round(x·127/max|x|) in [-127, 127]
/// (nearest even), and returns the scale max|x|/127 (x ≈ scale·q). An all-zero row gives scale 0;
/// a row with a NaN or infinity gives scale NaN (its outputs become NaN, as in fp32).
inline float quantize_row_u8(const float* x, int64_t k, uint8_t* out) {
  float max_abs = 0.0f;
  bool finite = true;
  fold_max_abs(x, 0, k, max_abs, finite);
  if (!finite || max_abs == 0.0f) {
    std::fill_n(out, k, uint8_t(128));
    return finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
  }
  const float inv = 127.0f / max_abs;
  for (int64_t p = 0; p < k; ++p)
    out[p] = static_cast<uint8_t>(static_cast<int>(quantize_value(x[p], inv)) + 128);
  return max_abs / 127.0f;
}

#if BINDERY_HOST_SIMD_X86
/// quantize_row_u8 in AVX-512, the same bits (x·inv rounded to nearest even by vrndscaleps, as
/// nearbyint does in the default rounding mode; clamp; +128): the activations of every int8 GEMM go
/// through it, and the scalar loop took a fifth of an int8 encoder's time.
__attribute__((target("avx512f"))) inline float quantize_row_u8_avx512(const float* x, int64_t k,
                                                                       uint8_t* out) {
  // The maskz_ forms with a full mask: GCC 12's plain ones pass _mm512_undefined_ps() and warn
  // (-Wmaybe-uninitialized) under -Werror.
  constexpr __mmask16 kAll = 0xFFFF;
  const __m512 limit = _mm512_set1_ps(std::numeric_limits<float>::max());
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
  __m512 max_v = _mm512_setzero_ps();
  __mmask16 bad = 0;
  for (int64_t p = 0; p < k; p += 16) {
    const __mmask16 mask = k - p >= 16 ? kAll : static_cast<__mmask16>((1u << (k - p)) - 1u);
    const __m512 v = _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(mask, x + p)), magnitude));
    bad |= static_cast<__mmask16>(mask & ~_mm512_cmp_ps_mask(v, limit, _CMP_LE_OQ));
    max_v = _mm512_maskz_max_ps(kAll, max_v, v);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, max_v);
  float max_abs = 0.0f;
  for (const float lane : lanes) max_abs = std::max(max_abs, lane);
  if (bad != 0 || max_abs == 0.0f) {
    std::fill_n(out, k, uint8_t(128));
    return bad == 0 ? 0.0f : std::numeric_limits<float>::quiet_NaN();
  }
  const __m512 inv = _mm512_set1_ps(127.0f / max_abs);
  const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
  const __m512i offset = _mm512_set1_epi32(128);
  for (int64_t p = 0; p < k; p += 16) {
    const __mmask16 mask = k - p >= 16 ? kAll : static_cast<__mmask16>((1u << (k - p)) - 1u);
    const __m512 q = _mm512_maskz_roundscale_ps(kAll, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + p), inv),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 clamped = _mm512_maskz_min_ps(kAll, hi, _mm512_maskz_max_ps(kAll, lo, q));
    const __m512i u = _mm512_add_epi32(_mm512_maskz_cvtps_epi32(kAll, clamped), offset);
    _mm512_mask_cvtepi32_storeu_epi8(out + p, mask, u);
  }
  return max_abs / 127.0f;
}

/// float_to_bfloat16_bits on 16 lanes, the same bits: x + 0x7FFF + (bit 16 of x), shifted down
/// (round to nearest even, a carry bumping the exponent up to infinity), and for NaN the top half
/// with the quiet bit set. Writes k values; the bf16 GEMM rounds every activation through it (the
/// scalar loop took 3-4% of a bf16 encoder's time).
__attribute__((target("avx512f"))) inline void bf16_row_avx512(const float* x, int64_t k, uint16_t* out) {
  constexpr __mmask16 kAll = 0xFFFF;
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF), infinity = _mm512_set1_epi32(0x7F800000);
  const __m512i half = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
  for (int64_t p = 0; p < k; p += 16) {
    const __mmask16 mask = k - p >= 16 ? kAll : static_cast<__mmask16>((1u << (k - p)) - 1u);
    const __m512i v = _mm512_maskz_loadu_epi32(mask, x + p);
    const __m512i top = _mm512_maskz_srli_epi32(kAll, v, 16);
    const __m512i rounded = _mm512_maskz_srli_epi32(
        kAll, _mm512_add_epi32(_mm512_add_epi32(v, half), _mm512_and_si512(top, one)), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(v, magnitude), infinity);
    _mm512_mask_cvtepi32_storeu_epi16(out + p, mask, _mm512_mask_or_epi32(rounded, nan, top, quiet));
  }
}

/// float_to_bfloat16_bits on 8 lanes (AVX2), each result kept as the float it encodes: the AVX2
/// bf16 kernel's activations. The same bits as the scalar rounding (a tail of k % 8 goes through it).
__attribute__((target("avx2"))) inline void bf16_row_f32_avx2(const float* x, int64_t k, float* out) {
  const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF), infinity = _mm256_set1_epi32(0x7F800000);
  const __m256i half = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + p));
    const __m256i top = _mm256_srli_epi32(v, 16);
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(v, half), _mm256_and_si256(top, one)), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(v, magnitude), infinity);  // both below 2³¹
    const __m256i bits = _mm256_blendv_epi8(rounded, _mm256_or_si256(top, quiet), nan);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p), _mm256_slli_epi32(bits, 16));
  }
  for (; p < k; ++p) out[p] = bfloat16_bits_to_float(float_to_bfloat16_bits(x[p]));
}

/// quantize_row_u8 on 8 lanes (AVX2), storing q itself as int16 (the AVX2 int8 kernel's operand):
/// the same scale and the same q as the scalar quantizer (x·inv rounded to nearest even by
/// vroundps, as nearbyint in the default rounding mode; the k % 8 tail through the scalar formula).
__attribute__((target("avx2"))) inline float quantize_row_s16_avx2(const float* x, int64_t k, int16_t* out) {
  const __m256 limit = _mm256_set1_ps(std::numeric_limits<float>::max());
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 max_v = _mm256_setzero_ps();
  int bad = 0;
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    const __m256 v = _mm256_and_ps(_mm256_loadu_ps(x + p), magnitude);
    bad |= _mm256_movemask_ps(_mm256_cmp_ps(v, limit, _CMP_NLE_UQ));  // NaN or infinity
    max_v = _mm256_max_ps(max_v, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, max_v);
  float max_abs = 0.0f;
  for (const float lane : lanes) max_abs = std::max(max_abs, lane);
  bool finite = bad == 0;
  fold_max_abs(x, p, k, max_abs, finite);
  if (!finite || max_abs == 0.0f) {
    std::fill_n(out, k, int16_t(0));
    return finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
  }
  const float inv_s = 127.0f / max_abs;
  const __m256 inv = _mm256_set1_ps(inv_s), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  for (p = 0; p + 8 <= k; p += 8) {
    const __m256 q = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + p), inv),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i n = _mm256_cvtps_epi32(_mm256_min_ps(hi, _mm256_max_ps(lo, q)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + p),
                     _mm_packs_epi32(_mm256_castsi256_si128(n), _mm256_extracti128_si256(n, 1)));
  }
  for (; p < k; ++p) out[p] = static_cast<int16_t>(quantize_value(x[p], inv_s));
  return max_abs / 127.0f;
}
#endif

}  // namespace detail

/// A weight W (rows = out features, cols = in features) quantized to int8 per output row
/// (symmetric, W[j] ≈ scale[j]·q[j]), for gemm_nt_i8: a quarter of fp32's bytes plus two numbers
/// per row. Built once from fp32; keeps no fp32 copy.
///
/// Stored in vpdpbusd's layout, not (out, in): groups of 16 output rows, and within a group, for
/// each 4 consecutive inputs, 16 × 4 bytes (row-major within the 64). One 64-byte load then feeds
/// 16 output columns × 4 products, so the kernel accumulates whole output vectors and needs no
/// horizontal sums (with the (out, in) layout those cost a quarter of the time at K = 1024).
/// Rows are padded to a multiple of 16 and inputs to a multiple of 4 with zeros.
class Int8Weight {
 public:
  static constexpr int64_t kGroup = 16;  ///< output rows per group
  static constexpr int64_t kQuad = 4;    ///< inputs per 32-bit lane

  Int8Weight() = default;
  /// Quantizes `w` (rows × cols, row stride ld ≥ cols). Throws ValueError on a NaN or infinity (a
  /// weight has no meaningful int8 scale then) and for cols > detail::kGemmI8MaxK.
  Int8Weight(const float* w, int64_t rows, int64_t cols, int64_t ld) {
    BINDERY_CHECK(ld >= cols, ShapeError, "Int8Weight: row stride ", ld, " is shorter than a row (", cols,
                  ")");
    allocate(rows, cols);
    std::vector<uint8_t> shifted(static_cast<size_t>(cols));
    std::vector<int8_t> q(static_cast<size_t>(cols));
    for (int64_t j = 0; j < rows; ++j) {
      const float scale = detail::quantize_row_u8(w + j * ld, cols, shifted.data());
      BINDERY_CHECK(!std::isnan(scale), ValueError, "Int8Weight: row ", j,
                    " holds a NaN or infinity; int8 quantization needs finite weights");
      for (int64_t p = 0; p < cols; ++p) q[p] = static_cast<int8_t>(int(shifted[p]) - 128);
      set_row(j, q.data(), scale);
    }
  }
  /// Takes values already quantized (an int8 checkpoint's weight): q (rows × cols, row-major) in
  /// [-127, 127] and one scale per row, finite and ≥ 0, W[j] ≈ scales[j]·q[j]. Throws ValueError
  /// naming the row for -128 or a bad scale.
  static Int8Weight from_quantized(const int8_t* q, const float* scales, int64_t rows, int64_t cols) {
    Int8Weight out;
    out.allocate(rows, cols);
    for (int64_t j = 0; j < rows; ++j) {
      BINDERY_CHECK(std::isfinite(scales[j]) && scales[j] >= 0.0f, ValueError, "Int8Weight: row ", j,
                    " has scale ", scales[j], "; a scale must be finite and >= 0");
      for (int64_t p = 0; p < cols; ++p)
        BINDERY_CHECK(q[j * cols + p] != -128, ValueError, "Int8Weight: row ", j, " column ", p,
                      " is -128; symmetric int8 weights lie in [-127, 127]");
      out.set_row(j, q + j * cols, scales[j]);
    }
    return out;
  }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  /// Groups of 16 rows, and 4-input steps per row (cols rounded up).
  int64_t groups() const { return groups_; }
  int64_t quads() const { return quads_; }
  /// The packed values (see the class comment): group g starts at packed() + g·quads()·64.
  const int8_t* packed() const { return data_.data(); }
  /// The quantized value q[row][col] in [-127, 127].
  int8_t at(int64_t row, int64_t col) const { return data_[index(row, col)]; }
  /// Per-row scales, W[j][p] ≈ scales()[j] · at(j, p); zero past rows() up to groups()·16.
  const float* scales() const { return scales_.data(); }
  /// 128 · Σ_p q[j][p] per row: what the unsigned (q_a + 128) activations add to each int32 sum.
  const int32_t* shift_sums() const { return shift_sums_.data(); }
  size_t bytes() const {
    return data_.size() + scales_.size() * sizeof(float) + shift_sums_.size() * sizeof(int32_t);
  }

 private:
  void allocate(int64_t rows, int64_t cols) {
    BINDERY_CHECK(rows >= 0 && cols >= 0, ShapeError, "Int8Weight: bad shape (", rows, ", ", cols, ")");
    BINDERY_CHECK(cols <= detail::kGemmI8MaxK, ValueError, "Int8Weight: ", cols,
                  " input features exceed the int8 kernel's limit of ", detail::kGemmI8MaxK,
                  " (int32 sums could overflow); keep this weight in bf16 or fp32");
    rows_ = rows;
    cols_ = cols;
    groups_ = (rows + kGroup - 1) / kGroup;
    quads_ = (cols + kQuad - 1) / kQuad;
    data_.assign(static_cast<size_t>(groups_ * quads_ * kGroup * kQuad), int8_t(0));
    scales_.assign(static_cast<size_t>(groups_ * kGroup), 0.0f);
    shift_sums_.assign(static_cast<size_t>(groups_ * kGroup), 0);
  }
  void set_row(int64_t j, const int8_t* q, float scale) {
    int32_t sum = 0;
    for (int64_t p = 0; p < cols_; ++p) {
      data_[index(j, p)] = q[p];
      sum += q[p];
    }
    scales_[j] = scale;
    shift_sums_[j] = 128 * sum;
  }
  size_t index(int64_t row, int64_t col) const {
    return static_cast<size_t>((((row / kGroup) * quads_ + col / kQuad) * kGroup + row % kGroup) * kQuad +
                               col % kQuad);
  }
  int64_t rows_ = 0, cols_ = 0, groups_ = 0, quads_ = 0;
  std::vector<int8_t> data_;
  std::vector<float> scales_;
  std::vector<int32_t> shift_sums_;
};

namespace detail {

inline constexpr int64_t kGemmLowpBBytes = 256 << 10;  // block of W rows: a quarter of L2
inline constexpr int64_t kGemmLowpABytes = 512 << 10;  // A rows of one M block
inline constexpr int kGemmLowpMr = 6;                  // rows of A per tile (bf16 and int8)
inline constexpr int kGemmLowpNv = 4;            // 16-column groups per tile: 24 accumulators + 4 W + 1 A
inline constexpr int64_t kGemmLowpLoopCols = 8;  // columns per thread unit of the loops

/// What the inference x·Wᵀ kernels apply to each output after the bias: nothing, or GELU (x·Φ(x):
/// ops::simd::gelu, the function ops::gelu runs, so the bits are those of the separate op). GELU
/// runs on each tile right after the tile is stored, while it is in L1: a Linear followed by GELU
/// (the transformer's fc1) then needs no second parallel region and no second pass over its output.
enum class GemmActivation { kNone, kGelu };

/// `act` on rows × cols of C (row stride ldc), in place.
inline void apply_activation(GemmActivation act, float* c, int64_t ldc, int64_t rows, int64_t cols) {
  if (act != GemmActivation::kGelu) return;
  for (int64_t r = 0; r < rows; ++r) ops::simd::gelu(c + r * ldc, c + r * ldc, cols);
}

/// A's rows prepared once per call: bf16 bits or shifted int8, padded to `ld` elements (a multiple
/// of 64 bytes, not of 4 KiB: rows 4 KiB apart would share one L1 set).
struct LowpA {
  int64_t ld = 0;
  std::vector<uint16_t> bf16;
  std::vector<uint8_t> u8;
  std::vector<float> row_scale;  // int8: alpha · s_a per row
  std::vector<float> f32;        // AVX2 bf16 kernel: the bf16-rounded values as floats
  std::vector<int16_t> s16;      // AVX2 int8 kernel: q in [-127, 127] (no +128 shift)
};

inline int64_t lowp_row_stride(int64_t k, int64_t elem_bytes) {
  const int64_t per_line = 64 / elem_bytes;
  int64_t ld = (std::max<int64_t>(k, 1) + per_line - 1) / per_line * per_line;
  if ((ld * elem_bytes) % 4096 == 0) ld += per_line;
  return ld;
}

/// Rounds A (m × k) to bf16 bits into prep.bf16, row stride prep.ld (padding zero); `vector`: with
/// bf16_row_avx512 (the same bits). `parts` > 1 splits the rows over that many OpenMP threads (rows
/// are independent: the same bits).
inline void prepare_a_bf16(int64_t m, int64_t k, const float* a, int64_t lda, LowpA& prep,
                           bool vector = false, int64_t parts = 1) {
  prep.ld = lowp_row_stride(k, 2);
  prep.bf16.resize(static_cast<size_t>(m * prep.ld));
  for_each_range(m, 1, parts, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      uint16_t* row = prep.bf16.data() + i * prep.ld;
      std::fill(row + k, row + prep.ld, uint16_t(0));
#if BINDERY_HOST_SIMD_X86
      if (vector) {
        bf16_row_avx512(a + i * lda, k, row);
        continue;
      }
#endif
      for (int64_t p = 0; p < k; ++p) row[p] = float_to_bfloat16_bits(a[i * lda + p]);
    }
  });
  (void)vector;
}

/// Quantizes A's rows (q + 128, padding 128 = zero) and keeps alpha · s_a per row; `parts` as in
/// prepare_a_bf16.
inline void prepare_a_u8(int64_t m, int64_t k, float alpha, const float* a, int64_t lda, LowpA& prep,
                         bool vector = false, int64_t parts = 1) {
  prep.ld = lowp_row_stride(k, 1);
  prep.u8.resize(static_cast<size_t>(m * prep.ld));
  prep.row_scale.resize(static_cast<size_t>(m));
  for_each_range(m, 1, parts, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      uint8_t* row = prep.u8.data() + i * prep.ld;
      std::fill(row + k, row + prep.ld, uint8_t(128));
#if BINDERY_HOST_SIMD_X86
      if (vector) {
        prep.row_scale[i] = alpha * quantize_row_u8_avx512(a + i * lda, k, row);
        continue;
      }
#endif
      prep.row_scale[i] = alpha * quantize_row_u8(a + i * lda, k, row);
    }
  });
  (void)vector;
}

/// Threads for preparing A's rows before a product of m × n × k: the column split's criterion
/// (4 MFLOP, not inside a parallel region), at least 16 rows per thread.
inline int64_t lowp_prepare_parts(int64_t m, int64_t n, int64_t k, int threads) {
  return gemm_nt_parts(m, n, k, m / 16, threads, 4e6);
}

/// The int8 epilogue, one element: fma(float(dot), row_scale·w_scale, beta·c + bias). The kernels
/// run exactly these operations in vector form, so every path gives the same bits.
inline float i8_epilogue(int32_t dot, float row_scale, float w_scale, float beta, float c,
                         const float* bias) {
  float t = bias != nullptr ? *bias : 0.0f;
  if (beta != 0.0f) t = std::fma(beta, c, t);  // beta == 0 ignores C (it may hold NaN)
  return std::fma(static_cast<float>(dot), row_scale * w_scale, t);
}

/// Columns [n_begin, n_end) of the bf16 product as plain loops: fp32 sums of exact products in K order.
inline void gemm_bf16_columns_loop(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, float alpha,
                                   const LowpA& prep, const Bf16Weight& w, float beta, float* c, int64_t ldc,
                                   const float* bias, GemmActivation act) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = n_begin; j < n_end; ++j) {
      const uint16_t* ar = prep.bf16.data() + i * prep.ld;
      float sum = 0.0f;
      for (int64_t p = 0; p < k; ++p)
        sum += bfloat16_bits_to_float(ar[p]) * bfloat16_bits_to_float(w.at(j, p).bits);
      float& out = c[i * ldc + j];
      float v = alpha * sum;
      if (beta != 0.0f) v += beta * out;
      if (bias != nullptr) v += bias[j];
      out = v;
    }
    apply_activation(act, c + i * ldc + n_begin, ldc, 1, n_end - n_begin);
  }
}

/// Columns [n_begin, n_end) of the int8 product as plain loops (exact int32 dot products).
inline void gemm_i8_columns_loop(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, const LowpA& prep,
                                 const Int8Weight& w, float beta, float* c, int64_t ldc, const float* bias,
                                 GemmActivation act) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = n_begin; j < n_end; ++j) {
      const uint8_t* ar = prep.u8.data() + i * prep.ld;
      int32_t dot = 0;
      for (int64_t p = 0; p < k; ++p) dot += (int32_t(ar[p]) - 128) * int32_t(w.at(j, p));
      float& out = c[i * ldc + j];
      out =
          i8_epilogue(dot, prep.row_scale[i], w.scales()[j], beta, out, bias != nullptr ? bias + j : nullptr);
    }
    apply_activation(act, c + i * ldc + n_begin, ldc, 1, n_end - n_begin);
  }
}

/// B (K × N) in vdpbf16ps's pair layout, for gemm_bf16_nn: word (q, j) holds the bf16 bits of
/// B(2q, j) (low half) and B(2q+1, j) (high half); an odd K gets a zero last half. Rows of `ld`
/// words (N rounded up to 16, the padding zero). Attention packs its K (as Kᵀ) and V this way once
/// per batch item, so this is a scratch buffer, not a weight.
struct Bf16Pairs {
  int64_t k = 0, n = 0, ld = 0;
  std::vector<uint32_t> words;  // ((k + 1) / 2) × ld
  int64_t pairs() const { return (k + 1) / 2; }
  const uint32_t* row(int64_t q) const { return words.data() + q * ld; }
  /// Sizes the buffer for B (k × n), all words zero.
  void reset(int64_t rows, int64_t cols) {
    BINDERY_CHECK(rows >= 0 && cols >= 0, ShapeError, "Bf16Pairs: bad shape (", rows, ", ", cols, ")");
    k = rows;
    n = cols;
    ld = std::max<int64_t>(16, (cols + 15) / 16 * 16);
    words.assign(static_cast<size_t>(pairs() * ld), 0u);
  }
};

/// Packs B(p, j) = src[p·sk + j·sn] (p < k, j < n; fp32) rounded to bf16, nearest even. Kᵀ from K's
/// rows is (sk, sn) = (1, row stride); V as it is, (row stride, 1).
inline void pack_bf16_pairs(const float* src, int64_t k, int64_t n, int64_t sk, int64_t sn, Bf16Pairs& out) {
  out.reset(k, n);
  const int64_t pairs = out.pairs();
  for (int64_t q = 0; q < pairs; ++q) {
    const float* lo = src + 2 * q * sk;
    const bool has_hi = 2 * q + 1 < k;
    uint32_t* row = out.words.data() + q * out.ld;
    for (int64_t j = 0; j < n; ++j) {
      const uint32_t hi = has_hi ? float_to_bfloat16_bits(lo[sk + j * sn]) : 0u;
      row[j] = uint32_t(float_to_bfloat16_bits(lo[j * sn])) | (hi << 16);
    }
  }
}

/// x[0, k) rounded to bf16 bits (nearest even) into out: bf16_row_avx512 where `vector`, else the
/// scalar rounding (the same bits).
inline void bf16_row(const float* x, int64_t k, uint16_t* out, bool vector) {
#if BINDERY_HOST_SIMD_X86
  if (vector) return bf16_row_avx512(x, k, out);
#endif
  (void)vector;
  for (int64_t p = 0; p < k; ++p) out[p] = float_to_bfloat16_bits(x[p]);
}

/// pack_bf16_pairs's layout for attention's Kᵀ, from key rows: B(p, j) = row(j)[p] (p < k features,
/// j < n keys), `row(j)` pointing at key j's k floats. Each key is rounded once, a whole row at a
/// time (bf16_row), and its consecutive bf16 pairs are column j's words: reading the keys where they
/// lie (a view into the q | k | v projection) costs no gather. The bits of pack_bf16_pairs.
template <class Row>
inline void pack_bf16_pairs_kt(int64_t k, int64_t n, Row&& row, bool vector, Bf16Pairs& out) {
  out.reset(k, n);
  const int64_t pairs = out.pairs();
  std::vector<uint16_t> key(static_cast<size_t>(2 * pairs), 0);
  for (int64_t j = 0; j < n; ++j) {
    bf16_row(row(j), k, key.data(), vector);
    for (int64_t q = 0; q < pairs; ++q)
      out.words[static_cast<size_t>(q * out.ld + j)] =
          uint32_t(key[static_cast<size_t>(2 * q)]) | (uint32_t(key[static_cast<size_t>(2 * q + 1)]) << 16);
  }
}

/// pack_bf16_pairs's layout for attention's V, from value rows: B(p, j) = row(p)[j] (p < k keys,
/// j < n features). Each row is rounded once (bf16_row) and two rows interleave into one row of
/// words. The bits of pack_bf16_pairs.
template <class Row>
inline void pack_bf16_pairs_v(int64_t k, int64_t n, Row&& row, bool vector, Bf16Pairs& out) {
  out.reset(k, n);
  const int64_t pairs = out.pairs();
  std::vector<uint16_t> lo(static_cast<size_t>(n)), hi(static_cast<size_t>(n));
  for (int64_t q = 0; q < pairs; ++q) {
    bf16_row(row(2 * q), n, lo.data(), vector);
    if (2 * q + 1 < k) {
      bf16_row(row(2 * q + 1), n, hi.data(), vector);
    } else {
      std::fill(hi.begin(), hi.end(), uint16_t(0));
    }
    uint32_t* words = out.words.data() + q * out.ld;
    for (int64_t j = 0; j < n; ++j)
      words[j] = uint32_t(lo[static_cast<size_t>(j)]) | (uint32_t(hi[static_cast<size_t>(j)]) << 16);
  }
}

/// gemm_bf16_nn as plain loops: fp32 sums of exact products, in K order.
inline void gemm_bf16_nn_loop(int64_t m, int64_t n, int64_t pairs, float alpha, const uint16_t* a,
                              int64_t lda, const uint32_t* b, int64_t ldb, float beta, float* c,
                              int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const uint16_t* ar = a + i * lda;
      float sum = 0.0f;
      for (int64_t q = 0; q < pairs; ++q) {
        const uint32_t w = b[q * ldb + j];
        sum += bfloat16_bits_to_float(ar[2 * q]) * bfloat16_bits_to_float(static_cast<uint16_t>(w & 0xFFFFu));
        sum += bfloat16_bits_to_float(ar[2 * q + 1]) * bfloat16_bits_to_float(static_cast<uint16_t>(w >> 16));
      }
      float& out = c[i * ldc + j];
      float v = alpha * sum;
      if (beta != 0.0f) v += beta * out;
      out = v;
    }
}

#if BINDERY_HOST_SIMD_X86
inline namespace simd_x86 {

/// Whether the AVX512_BF16 kernel runs now (CPU support, checked once, and cpu_isa_limit()).
inline bool gemm_bf16_kernel_supported() {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
  return cpu && cpu_isa_limit() >= CpuIsa::kAvx512;
}

/// Whether the AVX512-VNNI kernel runs now.
inline bool gemm_i8_kernel_supported() {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  return cpu && cpu_isa_limit() >= CpuIsa::kAvx512;
}

/// One MR × (NV·16) tile of a bf16 product whose B is in vdpbf16ps's pair layout: per pair of K,
/// one 32-bit broadcast of each A row's two bf16 values and one 64-byte load per 16 columns of B, so
/// whole output vectors accumulate with no horizontal sums. Column group v of pair q is read at
/// b + q·ldb + v·vstride words: (ldb, vstride) = (row stride, 16) for Bf16Pairs (gemm_bf16_nn), and
/// (16, pairs·16) for a Bf16Weight's groups (gemm_nt_bf16). The loads are masked to the tile's `cols`
/// columns (attention's key blocks start anywhere). Epilogue: alpha·sum, + beta·C, + bias[j].
template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512bf16,fma"))) inline void gemm_bf16_pair_tile(
    int64_t pairs, const uint16_t* a, int64_t lda, const uint32_t* b, int64_t ldb, int64_t vstride, float* c,
    int64_t ldc, int cols, float alpha, float beta, const float* bias) {
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int left = cols - 16 * v;
    mask[v] = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
  }
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t q = 0; q < pairs; ++q) {
    __m512i bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_epi32(mask[v], b + q * ldb + v * vstride);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t two;
      std::memcpy(&two, a + i * lda + 2 * q, sizeof(two));
      const __m512i av = _mm512_set1_epi32(two);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], (__m512bh)av, (__m512bh)bv[v]);
    }
  }
  const __m512 alpha_v = _mm512_set1_ps(alpha), beta_v = _mm512_set1_ps(beta);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const __m512 bias_v =
        bias != nullptr ? _mm512_maskz_loadu_ps(mask[v], bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 16 * v;
      __m512 r = _mm512_mul_ps(alpha_v, acc[i][v]);
      if (beta != 0.0f) r = _mm512_add_ps(r, _mm512_mul_ps(beta_v, _mm512_maskz_loadu_ps(mask[v], out)));
      if (bias != nullptr) r = _mm512_add_ps(r, bias_v);
      _mm512_mask_storeu_ps(out, mask[v], r);
    }
  }
}

/// acc += the four u8 × s8 products of each 32-bit lane (vpdpbusd), in place. Written as asm because
/// g++ 12 compiles _mm512_dpbusd_epi32 in a tile loop with a register copy before and after each
/// instruction and a store of every accumulator per step: the int8 tile ran at half the instruction
/// rate (208 against 469 GOPS peak; the bf16 tile's vdpbf16ps, same loop, had no copies).
__attribute__((target("avx512f,avx512vnni"))) inline void dpbusd_in_place(__m512i& acc, __m512i a_u8,
                                                                          __m512i b_s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a_u8), "v"(b_s8));
}

/// One MR × (NV·16) tile of the int8 product over the full K (packed W, see Int8Weight): per 4
/// inputs, one broadcast of each A row's 4 bytes and one 64-byte load per 16 columns. `cols` ≤
/// NV·16 columns are stored (the weight's padding rows are zero).
template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni,fma"))) inline void gemm_i8_tile(
    int64_t quads, const uint8_t* a, int64_t lda, const int8_t* b, int64_t group_bytes, float* c, int64_t ldc,
    int cols, const float* row_scale, const float* w_scale, const int32_t* shift_sums, float beta,
    const float* bias) {
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  for (int64_t q = 0; q < quads; ++q) {
    __m512i bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + v * group_bytes + q * 64);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t four;
      std::memcpy(&four, a + i * lda + q * 4, sizeof(four));
      const __m512i av = _mm512_set1_epi32(four);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) dpbusd_in_place(acc[i][v], av, bv[v]);
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int left = cols - 16 * v;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
    const __m512i shift = _mm512_loadu_si512(shift_sums + 16 * v);  // padded to whole groups
    const __m512 ws = _mm512_loadu_ps(w_scale + 16 * v);
    const __m512 bias_v = bias != nullptr ? _mm512_maskz_loadu_ps(mask, bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 16 * v;
      const __m512 dot = _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_sub_epi32(acc[i][v], shift));
      const __m512 t = beta != 0.0f
                           ? _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, out), bias_v)
                           : bias_v;
      _mm512_mask_storeu_ps(out, mask,
                            _mm512_fmadd_ps(dot, _mm512_mul_ps(_mm512_set1_ps(row_scale[i]), ws), t));
    }
  }
}

/// An edge tile of `rows` ≤ MR and `cols` ≤ NR for either kernel (Tile<MR, NR>::run).
template <template <int, int> class Tile, int MR, int NR, class... Args>
inline void gemm_lowp_any_tile(int rows, int cols, Args... args) {
  if constexpr (MR > 1) {
    if (rows < MR) return gemm_lowp_any_tile<Tile, MR - 1, NR>(rows, cols, args...);
  }
  if constexpr (NR > 1) {
    if (cols < NR) return gemm_lowp_any_tile<Tile, MR, NR - 1>(rows, cols, args...);
  }
  Tile<MR, NR>::run(args...);
}

template <int MR, int NV>
struct Bf16PairTile {
  template <class... Args>
  static void run(Args... args) {
    gemm_bf16_pair_tile<MR, NV>(args...);
  }
};

template <int MR, int NR>
struct I8Tile {
  template <class... Args>
  static void run(Args... args) {
    gemm_i8_tile<MR, NR>(args...);
  }
};

/// The tiles of columns [n_begin, n_end) of a product with a packed weight (groups of 16 columns,
/// `column_bytes` per column): M blocks of A (`row_bytes` per prepared row) stay in L2 while blocks
/// of W columns (a quarter of L2) pass, and every A tile of the M block runs over each W block.
/// Calls tile(i, rows, j, cols) with rows ≤ kGemmLowpMr and cols ≤ kGemmLowpNv·16.
template <class TileFn>
inline void for_each_packed_tile(int64_t m, int64_t n_begin, int64_t n_end, int64_t column_bytes,
                                 int64_t row_bytes, TileFn&& tile) {
  constexpr int64_t mr = kGemmLowpMr, tile_cols = kGemmLowpNv * 16;
  const int64_t block_cols = std::max<int64_t>(
      tile_cols, kGemmLowpBBytes / std::max<int64_t>(column_bytes, 1) / tile_cols * tile_cols);
  const int64_t m_block = std::max<int64_t>(mr, kGemmLowpABytes / std::max<int64_t>(row_bytes, 1) / mr * mr);
  for (int64_t mb = 0; mb < m; mb += m_block) {
    const int64_t mb_end = std::min(m, mb + m_block);
    for (int64_t nb = n_begin; nb < n_end; nb += block_cols) {
      const int64_t nb_end = std::min(n_end, nb + block_cols);
      for (int64_t i = mb; i < mb_end; i += mr)
        for (int64_t j = nb; j < nb_end; j += tile_cols)
          tile(i, static_cast<int>(std::min(mr, mb_end - i)), j,
               static_cast<int>(std::min(tile_cols, nb_end - j)));
    }
  }
}

/// Columns [n_begin, n_end) of the bf16 product (n_begin a multiple of 16): fp32 sums over all of K
/// in the tile's registers, then alpha, beta and the bias in its epilogue, then `act` on the tile.
inline void gemm_bf16_columns(int64_t m, int64_t n_begin, int64_t n_end, float alpha, const LowpA& prep,
                              const Bf16Weight& w, float beta, float* c, int64_t ldc, const float* bias,
                              GemmActivation act) {
  const int64_t group_words = w.pairs() * Bf16Weight::kGroup;
  for_each_packed_tile(
      m, n_begin, n_end, w.pairs() * 4, prep.ld * 2, [&](int64_t i, int rows, int64_t j, int cols) {
        gemm_lowp_any_tile<Bf16PairTile, kGemmLowpMr, kGemmLowpNv>(
            rows, (cols + 15) / 16, w.pairs(), prep.bf16.data() + i * prep.ld, prep.ld,
            w.packed() + (j / Bf16Weight::kGroup) * group_words, int64_t(Bf16Weight::kGroup), group_words,
            c + i * ldc + j, ldc, cols, alpha, beta, bias != nullptr ? bias + j : nullptr);
        apply_activation(act, c + i * ldc + j, ldc, rows, cols);
      });
}

/// Columns [n_begin, n_end) of the int8 product (n_begin a multiple of 16; the int32 sums run over
/// all of K).
inline void gemm_i8_columns(int64_t m, int64_t n_begin, int64_t n_end, const LowpA& prep, const Int8Weight& w,
                            float beta, float* c, int64_t ldc, const float* bias, GemmActivation act) {
  const int64_t group_bytes = w.quads() * Int8Weight::kQuad * Int8Weight::kGroup;
  for_each_packed_tile(m, n_begin, n_end, w.quads() * Int8Weight::kQuad, prep.ld,
                       [&](int64_t i, int rows, int64_t j, int cols) {
                         gemm_lowp_any_tile<I8Tile, kGemmLowpMr, kGemmLowpNv>(
                             rows, (cols + 15) / 16, w.quads(), prep.u8.data() + i * prep.ld, prep.ld,
                             w.packed() + (j / Int8Weight::kGroup) * group_bytes, group_bytes,
                             c + i * ldc + j, ldc, cols, prep.row_scale.data() + i, w.scales() + j,
                             w.shift_sums() + j, beta, bias != nullptr ? bias + j : nullptr);
                         apply_activation(act, c + i * ldc + j, ldc, rows, cols);
                       });
}

/// gemm_bf16_nn with the AVX512_BF16 tiles: column blocks of 64 outer (their B panel stays in L1
/// while the A rows pass), rows in tiles of kGemmLowpMr.
inline void gemm_bf16_nn_kernel(int64_t m, int64_t n, int64_t pairs, float alpha, const uint16_t* a,
                                int64_t lda, const uint32_t* b, int64_t ldb, float beta, float* c,
                                int64_t ldc) {
  constexpr int64_t mr = kGemmLowpMr, tile_cols = kGemmLowpNv * 16;
  for (int64_t j = 0; j < n; j += tile_cols) {
    const int cols = static_cast<int>(std::min(tile_cols, n - j));
    const int groups = (cols + 15) / 16;
    for (int64_t i = 0; i < m; i += mr) {
      const int rows = static_cast<int>(std::min(mr, m - i));
      gemm_lowp_any_tile<Bf16PairTile, kGemmLowpMr, kGemmLowpNv>(
          rows, groups, pairs, a + i * lda, lda, b + j, ldb, int64_t(16), c + i * ldc + j, ldc, cols, alpha,
          beta, static_cast<const float*>(nullptr));
    }
  }
}

// ---- AVX2 + FMA: the same weights, for CPUs without AVX512_BF16 / AVX512-VNNI ----

/// Whether the AVX2 low-precision kernels run now (AVX2 + FMA, and cpu_isa_limit() >= kAvx2). The
/// AVX-512 kernels come first where they run.
inline bool gemm_lowp_avx2_supported() {
  static const bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return cpu && cpu_isa_limit() >= CpuIsa::kAvx2;
}

inline constexpr int kGemmBf16Avx2Mr = 2;  // rows of A per AVX2 bf16 tile (one 16-column group)
inline constexpr int kGemmI8Avx2Mr = 3;    // rows of A per AVX2 int8 tile

/// Masks of the AVX2 maskload / maskstore for the first `cols` (of 8) lanes.
__attribute__((target("avx2"))) inline __m256i avx2_lane_mask(int cols) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lanes);
}

/// One MR × 16 tile of the bf16 product on AVX2 + FMA, the weight in its pair layout (one group):
/// each 32-bit word splits into its two bf16 values as floats (shift, mask), and each A value (a
/// float already rounded to bf16) multiplies its column with an FMA. The even and odd inputs of
/// each pair accumulate apart and are added at the end: 4·MR independent FMA chains, enough to
/// cover the FMA latency (one chain per column vector would leave the FMA pipes a quarter idle).
/// fp32 products of bf16 values are exact, so only the order of the fp32 additions differs from the
/// AVX-512 tile and the loops (gemm_nt_bf16's bound covers any order).
template <int MR>
__attribute__((target("avx2,fma"))) inline void gemm_bf16_tile_avx2(int64_t pairs, const float* a,
                                                                    int64_t lda, const uint32_t* b, float* c,
                                                                    int64_t ldc, int cols, float alpha,
                                                                    float beta, const float* bias) {
  const __m256i high_half = _mm256_set1_epi32(int32_t(0xFFFF0000u));
  __m256 even[MR][2], odd[MR][2];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) even[i][0] = even[i][1] = odd[i][0] = odd[i][1] = _mm256_setzero_ps();
  for (int64_t q = 0; q < pairs; ++q) {
#pragma GCC unroll 2
    for (int v = 0; v < 2; ++v) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + q * 16 + 8 * v));
      const __m256 lo = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
      const __m256 hi = _mm256_castsi256_ps(_mm256_and_si256(w, high_half));
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) {
        even[i][v] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + i * lda + 2 * q), lo, even[i][v]);
        odd[i][v] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + i * lda + 2 * q + 1), hi, odd[i][v]);
      }
    }
  }
  const __m256 alpha_v = _mm256_set1_ps(alpha), beta_v = _mm256_set1_ps(beta);
#pragma GCC unroll 2
  for (int v = 0; v < 2; ++v) {
    const __m256i mask = avx2_lane_mask(cols - 8 * v);
    const __m256 bias_v = bias != nullptr ? _mm256_maskload_ps(bias + 8 * v, mask) : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 8 * v;
      __m256 r = _mm256_mul_ps(alpha_v, _mm256_add_ps(even[i][v], odd[i][v]));
      if (beta != 0.0f) r = _mm256_add_ps(r, _mm256_mul_ps(beta_v, _mm256_maskload_ps(out, mask)));
      if (bias != nullptr) r = _mm256_add_ps(r, bias_v);
      _mm256_maskstore_ps(out, mask, r);
    }
  }
}

/// One MR × 16 tile of the int8 product on AVX2 (the packed Int8Weight, one group): per 4 inputs,
/// 4 columns' 16 weights sign-extended to int16 and multiplied by the row's 4 activations (int16,
/// broadcast) with vpmaddwd, whose 16-bit products and pair sums are exact. So the int32 sums, and
/// with i8_epilogue's operations the results, are the AVX-512 kernel's and the loops' bit for bit.
template <int MR>
__attribute__((target("avx2,fma"))) inline void gemm_i8_tile_avx2(
    int64_t quads, const int16_t* a, int64_t lda, const int8_t* b, float* c, int64_t ldc, int cols,
    const float* row_scale, const float* w_scale, float beta, const float* bias) {
  __m256i acc[MR][4];  // [row][4-column part]: lanes (c, c, c+1, c+1 | c+2, c+2, c+3, c+3)
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int part = 0; part < 4; ++part) acc[i][part] = _mm256_setzero_si256();
  for (int64_t q = 0; q < quads; ++q) {
#pragma GCC unroll 4
    for (int part = 0; part < 4; ++part) {
      const __m256i w =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + q * 64 + part * 16)));
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) {
        int64_t four;
        std::memcpy(&four, a + i * lda + 4 * q, sizeof(four));
        acc[i][part] = _mm256_add_epi32(acc[i][part], _mm256_madd_epi16(_mm256_set1_epi64x(four), w));
      }
    }
  }
#pragma GCC unroll 2
  for (int v = 0; v < 2; ++v) {
    const __m256i mask = avx2_lane_mask(cols - 8 * v);
    const __m256 ws = _mm256_loadu_ps(w_scale + 8 * v);  // padded to whole groups
    const __m256 bias_v = bias != nullptr ? _mm256_maskload_ps(bias + 8 * v, mask) : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      // (c0 c1 c4 c5 | c2 c3 c6 c7) -> columns in order
      const __m256i sums =
          _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[i][2 * v], acc[i][2 * v + 1]), 0xD8);
      float* out = c + i * ldc + 8 * v;
      const __m256 t = beta != 0.0f
                           ? _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(out, mask), bias_v)
                           : bias_v;
      _mm256_maskstore_ps(
          out, mask,
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(_mm256_set1_ps(row_scale[i]), ws), t));
    }
  }
}

template <int MR, int>
struct Bf16TileAvx2 {
  template <class... Args>
  static void run(Args... args) {
    gemm_bf16_tile_avx2<MR>(args...);
  }
};

template <int MR, int>
struct I8TileAvx2 {
  template <class... Args>
  static void run(Args... args) {
    gemm_i8_tile_avx2<MR>(args...);
  }
};

/// The AVX2 tiles of one for_each_packed_tile block (rows ≤ kGemmLowpMr, cols ≤ kGemmLowpNv·16):
/// MR rows × one 16-column group at a time; tile(ii, rows, g, cols) per sub-tile.
template <int MR, class TileFn>
inline void for_each_avx2_subtile(int rows, int cols, TileFn&& tile) {
  for (int ii = 0; ii < rows; ii += MR)
    for (int g = 0; 16 * g < cols; ++g) tile(ii, std::min(MR, rows - ii), g, std::min(16, cols - 16 * g));
}

/// prepare_a_bf16 for the AVX2 kernel: the same rounding (bf16_row_f32_avx2), each value kept as
/// the float it equals (prep.f32, row stride prep.ld, padding zero), which the kernel broadcasts.
inline void prepare_a_bf16_f32(int64_t m, int64_t k, const float* a, int64_t lda, LowpA& prep,
                               int64_t parts) {
  prep.ld = lowp_row_stride(k, 4);
  prep.f32.resize(static_cast<size_t>(m * prep.ld));
  for_each_range(m, 1, parts, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* row = prep.f32.data() + i * prep.ld;
      std::fill(row + k, row + prep.ld, 0.0f);
      bf16_row_f32_avx2(a + i * lda, k, row);
    }
  });
}

/// prepare_a_u8 for the AVX2 kernel: the same quantization (quantize_row_s16_avx2), stored as int16
/// q = u8 − 128 (prep.s16, row stride prep.ld, padding 0), so that vpmaddwd's exact 16-bit products
/// give the same sums.
inline void prepare_a_s16(int64_t m, int64_t k, float alpha, const float* a, int64_t lda, LowpA& prep,
                          int64_t parts) {
  prep.ld = lowp_row_stride(k, 2);
  prep.s16.resize(static_cast<size_t>(m * prep.ld));
  prep.row_scale.resize(static_cast<size_t>(m));
  for_each_range(m, 1, parts, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int16_t* row = prep.s16.data() + i * prep.ld;
      prep.row_scale[i] = alpha * quantize_row_s16_avx2(a + i * lda, k, row);
      std::fill(row + k, row + prep.ld, int16_t(0));
    }
  });
}

/// gemm_bf16_columns on AVX2 + FMA (A prepared by prepare_a_bf16_f32).
inline void gemm_bf16_columns_avx2(int64_t m, int64_t n_begin, int64_t n_end, float alpha, const LowpA& prep,
                                   const Bf16Weight& w, float beta, float* c, int64_t ldc, const float* bias,
                                   GemmActivation act) {
  const int64_t group_words = w.pairs() * Bf16Weight::kGroup;
  for_each_packed_tile(
      m, n_begin, n_end, w.pairs() * 4, prep.ld * 4, [&](int64_t i, int rows, int64_t j, int cols) {
        for_each_avx2_subtile<kGemmBf16Avx2Mr>(rows, cols, [&](int ii, int sub_rows, int g, int sub_cols) {
          const int64_t row = i + ii, col = j + 16 * g;
          gemm_lowp_any_tile<Bf16TileAvx2, kGemmBf16Avx2Mr, 1>(
              sub_rows, 1, w.pairs(), prep.f32.data() + row * prep.ld, prep.ld,
              w.packed() + (col / Bf16Weight::kGroup) * group_words, c + row * ldc + col, ldc, sub_cols,
              alpha, beta, bias != nullptr ? bias + col : nullptr);
        });
        apply_activation(act, c + i * ldc + j, ldc, rows, cols);
      });
}

/// gemm_i8_columns on AVX2 (A prepared by prepare_a_s16).
inline void gemm_i8_columns_avx2(int64_t m, int64_t n_begin, int64_t n_end, const LowpA& prep,
                                 const Int8Weight& w, float beta, float* c, int64_t ldc, const float* bias,
                                 GemmActivation act) {
  const int64_t group_bytes = w.quads() * Int8Weight::kQuad * Int8Weight::kGroup;
  for_each_packed_tile(
      m, n_begin, n_end, w.quads() * Int8Weight::kQuad, prep.ld * 2,
      [&](int64_t i, int rows, int64_t j, int cols) {
        for_each_avx2_subtile<kGemmI8Avx2Mr>(rows, cols, [&](int ii, int sub_rows, int g, int sub_cols) {
          const int64_t row = i + ii, col = j + 16 * g;
          gemm_lowp_any_tile<I8TileAvx2, kGemmI8Avx2Mr, 1>(
              sub_rows, 1, w.quads(), prep.s16.data() + row * prep.ld, prep.ld,
              w.packed() + (col / Int8Weight::kGroup) * group_bytes, c + row * ldc + col, ldc, sub_cols,
              prep.row_scale.data() + row, w.scales() + col, beta, bias != nullptr ? bias + col : nullptr);
        });
        apply_activation(act, c + i * ldc + j, ldc, rows, cols);
      });
}

#else
inline namespace simd_portable {

/// No kernel in this translation unit (no x86 SIMD, or nvcc): the loops run.
inline bool gemm_bf16_kernel_supported() {
  return false;
}
inline bool gemm_i8_kernel_supported() {
  return false;
}
inline bool gemm_lowp_avx2_supported() {
  return false;
}

#endif

/// The first column of each of `count` weights side by side in one output (offsets[count]: all
/// columns), after checking that they share K = ws[0]->cols() and that A and C fit (`name` in the
/// error).
template <class W>
inline std::vector<int64_t> gemm_block_offsets(const char* name, int count, const W* const* ws, int64_t m,
                                               int64_t lda, int64_t ldc) {
  BINDERY_CHECK(count >= 1, ShapeError, name, ": no weight");
  const int64_t k = ws[0]->cols();
  std::vector<int64_t> offsets(static_cast<size_t>(count) + 1, 0);
  for (int b = 0; b < count; ++b) {
    BINDERY_CHECK(ws[b]->cols() == k, ShapeError, name, ": weight ", b, " has ", ws[b]->cols(),
                  " inputs, weight 0 has ", k);
    offsets[static_cast<size_t>(b) + 1] = offsets[static_cast<size_t>(b)] + ws[b]->rows();
  }
  const int64_t n = offsets.back();
  BINDERY_CHECK(m >= 0 && lda >= k && ldc >= n, ShapeError, name, ": A (", m, ", ", k, ") with row stride ",
                lda, " and C (", m, ", ", n, ") with row stride ", ldc, " do not fit the weight");
  return offsets;
}

/// Whether every block boundary is a multiple of nr: then one split of all the columns in whole
/// tiles gives each block whole tiles from its own column 0, as a product of its own would.
inline bool gemm_blocks_aligned(const std::vector<int64_t>& offsets, int64_t nr) {
  for (size_t b = 1; b + 1 < offsets.size(); ++b)
    if (offsets[b] % nr != 0) return false;
  return true;
}

/// gemm_nt_split_n over the columns of all the blocks (offsets: gemm_block_offsets, aligned to nr),
/// calling columns(b, begin, end) for each piece of block b a thread gets, in b's own columns.
template <class Columns>
inline void gemm_nt_split_blocks(const std::vector<int64_t>& offsets, int64_t m, int64_t k, int64_t nr,
                                 int threads, Columns&& columns) {
  gemm_nt_split_n(m, offsets.back(), k, nr, threads, 4e6, [&](int64_t n_begin, int64_t n_end) {
    for (size_t b = 0; b + 1 < offsets.size(); ++b) {
      const int64_t lo = std::max(n_begin, offsets[b]), hi = std::min(n_end, offsets[b + 1]);
      if (lo < hi) columns(static_cast<int>(b), lo - offsets[b], hi - offsets[b]);
    }
  });
}

/// gemm_nt_bf16 with `count` weights of the same K side by side: weight b fills columns
/// [offset_b, offset_b + ws[b]->rows()) of C with its bias biases[b] (may be null). A is rounded
/// once and one parallel region covers all the columns (MultiheadAttention's q, k and v). The bits of
/// one gemm_nt_bf16 per weight. Blocks whose boundaries are not whole tiles run one by one.
inline void gemm_nt_bf16_blocks(int count, const Bf16Weight* const* ws, const float* const* biases, int64_t m,
                                float alpha, const float* a, int64_t lda, float beta, float* c, int64_t ldc,
                                int threads, GemmActivation act = GemmActivation::kNone) {
  const std::vector<int64_t> offsets = gemm_block_offsets("gemm_nt_bf16", count, ws, m, lda, ldc);
  const int64_t n = offsets.back(), k = ws[0]->cols();
  if (m == 0 || n == 0) return;
  const bool kernel = gemm_bf16_kernel_supported();
  const bool avx2 = !kernel && gemm_lowp_avx2_supported();
  // whole tiles per thread
  const int64_t nr = kernel ? kGemmLowpNv * Bf16Weight::kGroup
                     : avx2 ? Bf16Weight::kGroup
                            : kGemmLowpLoopCols;
  if (!gemm_blocks_aligned(offsets, nr)) {
    for (int b = 0; b < count; ++b)
      gemm_nt_bf16_blocks(1, ws + b, biases + b, m, alpha, a, lda, beta, c + offsets[static_cast<size_t>(b)],
                          ldc, threads, act);
    return;
  }
  thread_local LowpA scratch;  // the caller's: the lambda below runs on other threads too
  LowpA& prep = scratch;
  const int64_t parts = lowp_prepare_parts(m, n, k, threads);
#if BINDERY_HOST_SIMD_X86
  if (avx2) prepare_a_bf16_f32(m, k, a, lda, prep, parts);
#endif
  if (!avx2) prepare_a_bf16(m, k, a, lda, prep, kernel, parts);
  gemm_nt_split_blocks(offsets, m, k, nr, threads, [&](int b, int64_t lo, int64_t hi) {
    const Bf16Weight& w = *ws[b];
    float* cb = c + offsets[static_cast<size_t>(b)];
    const float* bias = biases[b];
#if BINDERY_HOST_SIMD_X86
    if (kernel) return gemm_bf16_columns(m, lo, hi, alpha, prep, w, beta, cb, ldc, bias, act);
    if (avx2) return gemm_bf16_columns_avx2(m, lo, hi, alpha, prep, w, beta, cb, ldc, bias, act);
#endif
    gemm_bf16_columns_loop(m, lo, hi, k, alpha, prep, w, beta, cb, ldc, bias, act);
  });
}

/// C(M, N) = alpha·A·Wᵀ + beta·C + bias with W in bf16 (N = w.rows(), K = w.cols()): A (M × K,
/// row stride lda) rounded to bf16, fp32 sums. beta = 0 ignores C; bias (N floats) may be null;
/// `act` after it (GemmActivation). Runs on `threads` threads (1 inside a parallel region); the
/// result does not depend on them.
inline void gemm_nt_bf16(int64_t m, float alpha, const float* a, int64_t lda, const Bf16Weight& w, float beta,
                         float* c, int64_t ldc, const float* bias, int threads,
                         GemmActivation act = GemmActivation::kNone) {
  const Bf16Weight* ws[1] = {&w};
  const float* biases[1] = {bias};
  gemm_nt_bf16_blocks(1, ws, biases, m, alpha, a, lda, beta, c, ldc, threads, act);
}

/// gemm_nt_i8 with `count` weights of the same K side by side (gemm_nt_bf16_blocks's contract): A
/// quantized once, one parallel region; the bits of one gemm_nt_i8 per weight.
inline void gemm_nt_i8_blocks(int count, const Int8Weight* const* ws, const float* const* biases, int64_t m,
                              float alpha, const float* a, int64_t lda, float beta, float* c, int64_t ldc,
                              int threads, GemmActivation act = GemmActivation::kNone) {
  const std::vector<int64_t> offsets = gemm_block_offsets("gemm_nt_i8", count, ws, m, lda, ldc);
  const int64_t n = offsets.back(), k = ws[0]->cols();
  if (m == 0 || n == 0) return;
  const bool kernel = gemm_i8_kernel_supported();
  const bool avx2 = !kernel && gemm_lowp_avx2_supported();
  // whole tiles per thread
  const int64_t nr = kernel ? kGemmLowpNv * Int8Weight::kGroup
                     : avx2 ? Int8Weight::kGroup
                            : kGemmLowpLoopCols;
  if (!gemm_blocks_aligned(offsets, nr)) {
    for (int b = 0; b < count; ++b)
      gemm_nt_i8_blocks(1, ws + b, biases + b, m, alpha, a, lda, beta, c + offsets[static_cast<size_t>(b)],
                        ldc, threads, act);
    return;
  }
  thread_local LowpA scratch;  // the caller's: the lambda below runs on other threads too
  LowpA& prep = scratch;
  const int64_t parts = lowp_prepare_parts(m, n, k, threads);
#if BINDERY_HOST_SIMD_X86
  if (avx2) prepare_a_s16(m, k, alpha, a, lda, prep, parts);
#endif
  if (!avx2) prepare_a_u8(m, k, alpha, a, lda, prep, kernel, parts);
  gemm_nt_split_blocks(offsets, m, k, nr, threads, [&](int b, int64_t lo, int64_t hi) {
    const Int8Weight& w = *ws[b];
    float* cb = c + offsets[static_cast<size_t>(b)];
    const float* bias = biases[b];
#if BINDERY_HOST_SIMD_X86
    if (kernel) return gemm_i8_columns(m, lo, hi, prep, w, beta, cb, ldc, bias, act);
    if (avx2) return gemm_i8_columns_avx2(m, lo, hi, prep, w, beta, cb, ldc, bias, act);
#endif
    gemm_i8_columns_loop(m, lo, hi, k, prep, w, beta, cb, ldc, bias, act);
  });
}

/// C(M, N) = alpha·A·Wᵀ + beta·C + bias with W in int8 (N = w.rows(), K = w.cols()): each row of A
/// (M × K, row stride lda) quantized to int8 on the fly, exact int32 dot products, fp32 rescale.
/// beta = 0 ignores C; bias (N floats) may be null; `act` after it. Same bits on every path and
/// thread count.
inline void gemm_nt_i8(int64_t m, float alpha, const float* a, int64_t lda, const Int8Weight& w, float beta,
                       float* c, int64_t ldc, const float* bias, int threads,
                       GemmActivation act = GemmActivation::kNone) {
  const Int8Weight* ws[1] = {&w};
  const float* biases[1] = {bias};
  gemm_nt_i8_blocks(1, ws, biases, m, alpha, a, lda, beta, c, ldc, threads, act);
}

/// C(M, N) = alpha·A·B + beta·C on bf16 operands with fp32 sums, single-threaded (attention calls it
/// from its own parallel tasks): A (M × 2·pairs bf16 bits, row stride lda ≥ 2·pairs, as
/// prepare_a_bf16 leaves it: zero past K), B `pairs` rows of the pair layout (Bf16Pairs) from its
/// column 0, row stride ldb words. beta = 0 ignores C. `kernel`: the AVX512_BF16 tiles (where
/// gemm_bf16_kernel_supported()), else the loops; the two differ only by fp32 summation order and by
/// the kernel's bf16 subnormals read as zero (gemm_nt_bf16's bound).
inline void gemm_bf16_nn(bool kernel, int64_t m, int64_t n, int64_t pairs, float alpha, const uint16_t* a,
                         int64_t lda, const uint32_t* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
#if BINDERY_HOST_SIMD_X86
  if (kernel) return gemm_bf16_nn_kernel(m, n, pairs, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  (void)kernel;
  gemm_bf16_nn_loop(m, n, pairs, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace simd_x86 or simd_portable

}  // namespace detail

}  // namespace bindery
