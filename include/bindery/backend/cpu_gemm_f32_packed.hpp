// bindery/backend/cpu_gemm_f32_packed.hpp — x·Wᵀ with an fp32 weight packed once for inference.
//
// The fp32 twin of gemm_nt_bf16: the weight is converted once from PyTorch's (out, in) layout into
// groups of 16 output rows, and within a group, for each input p, the 16 rows' W[j][p] side by side
// (F32Weight). The kernel then reads one 64-byte vector per 16 output columns and input, broadcasts
// one A value per row, and accumulates whole output vectors: a 6 × 64 tile is 24 FMAs per 4 loads
// and 6 broadcasts, with no horizontal sums and whole-vector stores (for_each_packed_tile's blocking,
// as the bf16 and int8 kernels). gemm_nt_f32 (cpu_gemm_nt.hpp) reads the weight in place instead,
// as a dot-product kernel: it must, for training, where the same weight is read transposed by the
// backward pass and updated by the optimizer. On 16 transformer shapes at one thread the packed
// tile ran 1.03-1.16× gemm_nt_f32 (docs/kernels.md), so a model frozen for inference (nn::freeze)
// packs its weights and frees the (out, in) ones: no second copy is kept.
//
// Every output element is one fp32 FMA chain over K in input order from 0, then the epilogue
// fma(alpha, sum, fma(beta, C, bias)) (explicit FMAs: a multiply and an add would be contracted in
// the kernels and not in the loops), on every path: the AVX-512 tile (AVX512F), the AVX2 + FMA tile (6 rows ×
// 16 columns, two ymm per row) and the plain loops (std::fma). So all three give the same bits, on any thread
// count (threads split N in whole tiles). The error bound is the fp32 dot product's: |error| ≤ K·2⁻²⁴·Σ|a·w|
// (+ the epilogue's roundings).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bindery/backend/cpu_gemm_lowp.hpp"
#include "bindery/backend/cpu_gemm_nt.hpp"
#include "bindery/core/error.hpp"

namespace bindery {

/// A weight W (rows = out features, cols = in features) in fp32, packed for gemm_nt_f32_packed:
/// groups of 16 output rows, and within a group, for each input, the 16 rows' values (64 bytes).
/// Rows are padded to a multiple of 16 with zeros. Built once from (out, in) floats; keeps no other
/// copy.
class F32Weight {
 public:
  static constexpr int64_t kGroup = 16;  ///< output rows per group

  F32Weight() = default;
  /// Packs `w` (rows × cols, row stride ld ≥ cols), the values unchanged.
  F32Weight(const float* w, int64_t rows, int64_t cols, int64_t ld) {
    BINDERY_CHECK(rows >= 0 && cols >= 0 && ld >= cols, ShapeError, "F32Weight: bad shape (", rows, ", ",
                  cols, ") with row stride ", ld);
    rows_ = rows;
    cols_ = cols;
    groups_ = (rows + kGroup - 1) / kGroup;
    data_.assign(static_cast<size_t>(groups_ * cols_ * kGroup), 0.0f);
    for (int64_t j = 0; j < rows; ++j)
      for (int64_t p = 0; p < cols; ++p) data_[index(j, p)] = w[j * ld + p];
  }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  /// Groups of 16 rows: group g starts at packed() + g·cols()·16.
  int64_t groups() const { return groups_; }
  const float* packed() const { return data_.data(); }
  /// W[row][col].
  float at(int64_t row, int64_t col) const { return data_[index(row, col)]; }
  /// Bytes held (the padding included).
  size_t bytes() const { return data_.size() * sizeof(float); }

 private:
  size_t index(int64_t row, int64_t col) const {
    return static_cast<size_t>(((row / kGroup) * cols_ + col) * kGroup + row % kGroup);
  }
  int64_t rows_ = 0, cols_ = 0, groups_ = 0;
  std::vector<float> data_;
};

namespace detail {

/// Columns [n_begin, n_end) of the packed fp32 product as plain loops: one std::fma chain per
/// element in K order, then the tiles' epilogue fma(alpha, sum, fma(beta, c, bias)) (the same bits as
/// the kernels).
inline void gemm_f32_packed_columns_loop(int64_t m, int64_t n_begin, int64_t n_end, float alpha,
                                         const float* a, int64_t lda, const F32Weight& w, float beta,
                                         float* c, int64_t ldc, const float* bias, GemmActivation act) {
  const int64_t k = w.cols();
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = n_begin; j < n_end; ++j) {
      const float* column =
          w.packed() + (j / F32Weight::kGroup) * k * F32Weight::kGroup + j % F32Weight::kGroup;
      float sum = 0.0f;
      for (int64_t p = 0; p < k; ++p) sum = std::fma(a[i * lda + p], column[p * F32Weight::kGroup], sum);
      float t = bias != nullptr ? bias[j] : 0.0f;
      if (beta != 0.0f) t = std::fma(beta, c[i * ldc + j], t);
      c[i * ldc + j] = std::fma(alpha, sum, t);
    }
    apply_activation(act, c + i * ldc + n_begin, ldc, 1, n_end - n_begin);
  }
}

#if BINDERY_HOST_SIMD_X86
inline namespace simd_x86 {

/// Whether the AVX-512 packed fp32 tile runs now (AVX512F, and cpu_isa_limit()).
inline bool gemm_f32_packed_kernel_supported() {
  static const bool cpu = __builtin_cpu_supports("avx512f");
  return cpu && cpu_isa_limit() >= CpuIsa::kAvx512;
}

/// One MR × (NV·16) tile of the packed fp32 product over all of K: per input, one 64-byte load per
/// 16 columns (group v at b + v·group_floats) and one broadcast per row of A, MR·NV FMA chains.
/// `cols` ≤ NV·16 columns are stored (the weight's padding rows are zero, so loads need no mask).
template <int MR, int NV>
__attribute__((target("avx512f,fma"))) inline void gemm_f32_packed_tile(int64_t k, const float* a,
                                                                        int64_t lda, const float* b,
                                                                        int64_t group_floats, float* c,
                                                                        int64_t ldc, int cols, float alpha,
                                                                        float beta, const float* bias) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + v * group_floats + p * 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * lda + p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
  const __m512 alpha_v = _mm512_set1_ps(alpha), beta_v = _mm512_set1_ps(beta);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int left = cols - 16 * v;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
    const __m512 bias_v = bias != nullptr ? _mm512_maskz_loadu_ps(mask, bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 16 * v;
      const __m512 t =
          beta != 0.0f ? _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(mask, out), bias_v) : bias_v;
      _mm512_mask_storeu_ps(out, mask, _mm512_fmadd_ps(alpha_v, acc[i][v], t));
    }
  }
}

/// One MR × 16 tile of the packed fp32 product on AVX2 + FMA (one group) over inputs [k0, k1): per
/// input, two 8-float loads and one broadcast per row, 2·MR FMA chains. The chains start from zero
/// (`first`) or from `partial` (MR rows of 16 floats), and go back there unless `last`, where the
/// AVX-512 tile's epilogue stores C: a chain continued from its stored value has the bits of one
/// unbroken chain.
template <int MR>
__attribute__((target("avx2,fma"))) inline void gemm_f32_packed_tile_avx2(
    int64_t k0, int64_t k1, const float* a, int64_t lda, const float* b, float* partial, bool first,
    bool last, float* c, int64_t ldc, int cols, float alpha, float beta, const float* bias) {
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(partial + 16 * i);
    acc[i][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(partial + 16 * i + 8);
  }
  for (int64_t p = k0; p < k1; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * 16), b1 = _mm256_loadu_ps(b + p * 16 + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * lda + p);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  if (!last) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_ps(partial + 16 * i, acc[i][0]);
      _mm256_storeu_ps(partial + 16 * i + 8, acc[i][1]);
    }
    return;
  }
  const __m256 alpha_v = _mm256_set1_ps(alpha), beta_v = _mm256_set1_ps(beta);
#pragma GCC unroll 2
  for (int v = 0; v < 2; ++v) {
    const __m256i mask = avx2_lane_mask(cols - 8 * v);
    const __m256 bias_v = bias != nullptr ? _mm256_maskload_ps(bias + 8 * v, mask) : _mm256_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 8 * v;
      const __m256 t = beta != 0.0f ? _mm256_fmadd_ps(beta_v, _mm256_maskload_ps(out, mask), bias_v) : bias_v;
      _mm256_maskstore_ps(out, mask, _mm256_fmadd_ps(alpha_v, acc[i][v], t));
    }
  }
}

template <int MR, int NV>
struct F32PackedTile {
  template <class... Args>
  static void run(Args... args) {
    gemm_f32_packed_tile<MR, NV>(args...);
  }
};

template <int MR, int>
struct F32PackedTileAvx2 {
  template <class... Args>
  static void run(Args... args) {
    gemm_f32_packed_tile_avx2<MR>(args...);
  }
};

inline constexpr int kGemmF32PackedAvx2Mr = 6;        // rows of A per AVX2 tile: 12 accumulators + 2 W + 1 A
inline constexpr int64_t kGemmF32PackedAvx2Kc = 512;  // inputs per K slice: a tile's A rows in 12 KB of L1

/// Columns [n_begin, n_end) of the packed fp32 product (n_begin a multiple of 16), A read in place.
inline void gemm_f32_packed_columns(int64_t m, int64_t n_begin, int64_t n_end, float alpha, const float* a,
                                    int64_t lda, const F32Weight& w, float beta, float* c, int64_t ldc,
                                    const float* bias, GemmActivation act) {
  const int64_t k = w.cols(), group_floats = k * F32Weight::kGroup;
  for_each_packed_tile(m, n_begin, n_end, k * 4, lda * 4, [&](int64_t i, int rows, int64_t j, int cols) {
    gemm_lowp_any_tile<F32PackedTile, kGemmLowpMr, kGemmLowpNv>(
        rows, (cols + 15) / 16, k, a + i * lda, lda, w.packed() + (j / F32Weight::kGroup) * group_floats,
        group_floats, c + i * ldc + j, ldc, cols, alpha, beta, bias != nullptr ? bias + j : nullptr);
    apply_activation(act, c + i * ldc + j, ldc, rows, cols);
  });
}

/// gemm_f32_packed_columns on AVX2 + FMA, in K slices: the AVX2 tile does a quarter of the AVX-512
/// tile's work per input for as many A loads, so with all of K in one pass (A rows of 16-20 KB at
/// K = 4096-5120) it ran 0.67-0.91× the (out, in) AVX2 kernel on the fc2 shapes. Per slice of
/// kGemmF32PackedAvx2Kc inputs, each 6-row tile of A stays in L1 across the block's column groups,
/// and the sums wait in `partial` between slices (the same bits: see the tile).
inline void gemm_f32_packed_columns_avx2(int64_t m, int64_t n_begin, int64_t n_end, float alpha,
                                         const float* a, int64_t lda, const F32Weight& w, float beta,
                                         float* c, int64_t ldc, const float* bias, GemmActivation act) {
  constexpr int64_t mr = kGemmF32PackedAvx2Mr, group = F32Weight::kGroup;
  const int64_t k = w.cols(), group_floats = k * group, kc = std::clamp<int64_t>(k, 1, kGemmF32PackedAvx2Kc);
  const int64_t block_cols = std::max<int64_t>(group, kGemmLowpBBytes / (kc * 4) / group * group);
  const int64_t m_block = std::max<int64_t>(mr, kGemmLowpABytes / 2 / (kc * 4) / mr * mr);
  thread_local std::vector<float> partial;  // sums between K slices: per (row tile, group), mr × 16
  for (int64_t mb = 0; mb < m; mb += m_block) {
    const int64_t mb_end = std::min(m, mb + m_block), row_tiles = (mb_end - mb + mr - 1) / mr;
    for (int64_t nb = n_begin; nb < n_end; nb += block_cols) {
      const int64_t nb_end = std::min(n_end, nb + block_cols), groups = (nb_end - nb + group - 1) / group;
      if (kc < k) partial.resize(static_cast<size_t>(row_tiles * groups * mr * group));
      for (int64_t k0 = 0; k0 == 0 || k0 < k; k0 += kc) {  // K = 0: one pass, the epilogue alone
        const int64_t k1 = std::min(k, k0 + kc);
        for (int64_t t = 0; t < row_tiles; ++t) {
          const int64_t row = mb + t * mr;
          for (int64_t g = 0; g < groups; ++g) {
            const int64_t col = nb + g * group;
            const int rows = static_cast<int>(std::min(mr, mb_end - row));
            const int cols = static_cast<int>(std::min(group, nb_end - col));
            gemm_lowp_any_tile<F32PackedTileAvx2, mr, 1>(
                rows, 1, k0, k1, a + row * lda, lda, w.packed() + (col / group) * group_floats,
                partial.data() + (t * groups + g) * mr * group, k0 == 0, k1 == k, c + row * ldc + col, ldc,
                cols, alpha, beta, bias != nullptr ? bias + col : nullptr);
            if (k1 == k) apply_activation(act, c + row * ldc + col, ldc, rows, cols);
          }
        }
      }
    }
  }
}

#else
inline namespace simd_portable {

/// No kernel in this translation unit (no x86 SIMD, or nvcc): the loops run.
inline bool gemm_f32_packed_kernel_supported() {
  return false;
}

#endif

/// gemm_nt_f32_packed with `count` weights of the same K side by side (gemm_nt_bf16_blocks's
/// contract): one parallel region over all their columns; the bits of one gemm_nt_f32_packed per
/// weight.
inline void gemm_nt_f32_packed_blocks(int count, const F32Weight* const* ws, const float* const* biases,
                                      int64_t m, float alpha, const float* a, int64_t lda, float beta,
                                      float* c, int64_t ldc, int threads,
                                      GemmActivation act = GemmActivation::kNone) {
  const std::vector<int64_t> offsets = gemm_block_offsets("gemm_nt_f32_packed", count, ws, m, lda, ldc);
  const int64_t n = offsets.back(), k = ws[0]->cols();
  if (m == 0 || n == 0) return;
  const bool kernel = gemm_f32_packed_kernel_supported();
  const bool avx2 = !kernel && gemm_lowp_avx2_supported();
  const int64_t nr = kernel ? kGemmLowpNv * F32Weight::kGroup : avx2 ? F32Weight::kGroup : kGemmLowpLoopCols;
  if (!gemm_blocks_aligned(offsets, nr)) {
    for (int b = 0; b < count; ++b)
      gemm_nt_f32_packed_blocks(1, ws + b, biases + b, m, alpha, a, lda, beta,
                                c + offsets[static_cast<size_t>(b)], ldc, threads, act);
    return;
  }
  gemm_nt_split_blocks(offsets, m, k, nr, threads, [&](int b, int64_t lo, int64_t hi) {
    const F32Weight& w = *ws[b];
    float* cb = c + offsets[static_cast<size_t>(b)];
    const float* bias = biases[b];
#if BINDERY_HOST_SIMD_X86
    if (kernel) return gemm_f32_packed_columns(m, lo, hi, alpha, a, lda, w, beta, cb, ldc, bias, act);
    if (avx2) return gemm_f32_packed_columns_avx2(m, lo, hi, alpha, a, lda, w, beta, cb, ldc, bias, act);
#endif
    gemm_f32_packed_columns_loop(m, lo, hi, alpha, a, lda, w, beta, cb, ldc, bias, act);
  });
  (void)kernel;
  (void)avx2;
}

/// C(M, N) = alpha·A·Wᵀ + beta·C + bias with W packed (N = w.rows(), K = w.cols()): A (M × K, row
/// stride lda) read in place, fp32 FMA chains in K order. beta = 0 ignores C; bias (N floats) may be
/// null; `act` after it (GemmActivation). Runs on `threads` threads (1 inside a parallel region);
/// the bits depend neither on them nor on the path (AVX-512, AVX2, loops).
inline void gemm_nt_f32_packed(int64_t m, float alpha, const float* a, int64_t lda, const F32Weight& w,
                               float beta, float* c, int64_t ldc, const float* bias, int threads,
                               GemmActivation act = GemmActivation::kNone) {
  const F32Weight* ws[1] = {&w};
  const float* biases[1] = {bias};
  gemm_nt_f32_packed_blocks(1, ws, biases, m, alpha, a, lda, beta, c, ldc, threads, act);
}

}  // namespace simd_x86 or simd_portable

}  // namespace detail

}  // namespace bindery
