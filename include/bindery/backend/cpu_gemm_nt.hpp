// bindery/backend/cpu_gemm_nt.hpp — fp32 C = alpha·A·Bᵀ + beta·C read in place, for x·Wᵀ.
//
// A: (M, K) row-major (activations), B: (N, K) row-major (a weight in PyTorch's (out, in) layout),
// C: (M, N). Both operands are contiguous along K, so the micro-kernel multiplies 16-float slices of
// MR rows of A with NR rows of B into MR·NR vector accumulators and reduces each one horizontally
// at the end: a dot-product kernel. Nothing is packed. A BLAS packs B (the whole weight) on every
// call; with the few rows of an inference batch (77 text tokens) that copy was a quarter of the
// time (docs/benchmarks.md). Keeping a packed copy of every weight beside the trainable one would
// double the weights in memory; a model frozen for inference (nn::freeze) packs its weights
// instead of keeping them, for cpu_gemm_f32_packed.hpp's kernel.
//
// Blocking: a block of NB rows of B (NB·K·4 bytes within half of L2) is reused by every MR-row
// tile of A before the next block; a tile of A (MR·K) is reused across the block's NR-row tiles.
// Threads split N (whole blocks), so no two threads write the same C element and no reduction
// across threads is needed. The sum over K runs in 16 lanes, then a tree: a different order from a
// BLAS's, with an error bound no larger.
//
// Two builds of the kernel, chosen at run time (`gemm_nt_isa`): AVX-512F/DQ (16-float lanes, 3 × 8
// tiles) and AVX2+FMA (8-float lanes, 3 × 4 tiles: 12 accumulators in 16 ymm registers) for CPUs
// without AVX-512; with neither, callers fall back to the BLAS / Eigen. BINDERY_CPU_ISA=avx2 (or
// set_cpu_isa_limit) caps the choice, so the AVX2 path is tested on AVX-512 machines too.
// The kernels carry their own target attribute, so the library needs no -march flag. Translation
// units compiled by nvcc (host side of .cu files; BINDERY_HOST_SIMD_X86 is 0 there, config.hpp) take
// the BLAS path: their gemm_nt_supported, gemm_nt_applies and gemm_nt_f32 are other functions, in
// inline namespace simd_portable, so a program linking both kinds of translation unit never mixes
// one kind's "supported" with the other's kernel.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <vector>

#include "bindery/config.hpp"
#include "bindery/core/error.hpp"

#if BINDERY_HOST_SIMD_X86
#include <immintrin.h>
#endif

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace bindery::detail {

inline constexpr int kGemmNtMr = 3;             // rows of A per tile
inline constexpr int kGemmNtNr = 8;             // rows of B per tile: 24 accumulators + 3 A + 1 B registers
inline constexpr int64_t kGemmNtKBlock = 1024;  // longest K slice (A tile 16 KB: half of L1)
inline constexpr int64_t kGemmNtBBytes = 256 << 10;  // B block: a quarter of L2
inline constexpr int64_t kGemmNtMinK = 128;          // shorter K: the BLAS (see gemm_nt_applies)
inline constexpr int64_t kGemmNtABytes = 512 << 10;  // A rows of one M block

/// The switch behind Cpu::set_gemm_nt_kernel: whether the kernel may run (it does only where also
/// gemm_nt_supported()). On by default; the environment variable BINDERY_GEMM_NT=0 turns it off at
/// start-up (to compare with the BLAS path). One switch for the whole program: it is the same in
/// every translation unit, whichever variant below that unit compiles.
inline std::atomic<bool>& gemm_nt_requested() {
  static std::atomic<bool> requested{[] {
    const char* env = std::getenv("BINDERY_GEMM_NT");
    return !(env != nullptr && env[0] == '0');
  }()};
  return requested;
}

/// Instruction-set levels of the CPU GEMM kernels (this file and cpu_gemm_lowp.hpp), lowest first.
enum class CpuIsa : int {
  kPortable = 0,  ///< plain C++ loops (the low-precision kernels) or the BLAS (fp32)
  kAvx2 = 1,      ///< AVX2 + FMA
  kAvx512 = 2,    ///< AVX-512F/DQ, and BW/BF16/VNNI where the CPU has them
};

/// Parses BINDERY_CPU_ISA's value: "avx512" (the default: no cap), "avx2", "portable".
inline CpuIsa parse_cpu_isa(const char* text) {
  const std::string value = text;
  if (value == "avx512") return CpuIsa::kAvx512;
  if (value == "avx2") return CpuIsa::kAvx2;
  if (value == "portable") return CpuIsa::kPortable;
  throw ValueError("BINDERY_CPU_ISA=\"" + value + "\": expected avx512, avx2 or portable");
}

/// The highest level the GEMM kernels may use, whatever the CPU has (the CPU's own limit applies on
/// top). From BINDERY_CPU_ISA at start-up; set_cpu_isa_limit changes it (tests force the AVX2 and
/// portable paths with it). One switch for the whole program, like gemm_nt_requested.
inline std::atomic<int>& cpu_isa_limit_storage() {
  static std::atomic<int> limit{[] {
    const char* env = std::getenv("BINDERY_CPU_ISA");
    return static_cast<int>(env != nullptr && env[0] != '\0' ? parse_cpu_isa(env) : CpuIsa::kAvx512);
  }()};
  return limit;
}

inline CpuIsa cpu_isa_limit() {
  return static_cast<CpuIsa>(cpu_isa_limit_storage().load(std::memory_order_relaxed));
}

/// Caps the GEMM kernels' instruction set; returns the previous cap.
inline CpuIsa set_cpu_isa_limit(CpuIsa limit) {
  return static_cast<CpuIsa>(cpu_isa_limit_storage().exchange(static_cast<int>(limit)));
}

/// body(begin, end) over `parts` contiguous ranges of [0, extent) made of whole `unit`s (the last
/// one ends at extent), one per thread of an OpenMP team when parts > 1. The GEMM splits share it.
template <class Body>
inline void for_each_range(int64_t extent, int64_t unit, int64_t parts, const Body& body) {
  if (parts <= 1) {
    body(int64_t(0), extent);
    return;
  }
  const int64_t units = (extent + unit - 1) / unit;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(static_cast <int>(parts))
#endif
  for (int64_t part = 0; part < parts; ++part) {
    const int64_t begin = std::min(extent, units * part / parts * unit);
    const int64_t end = std::min(extent, units * (part + 1) / parts * unit);
    if (begin < end) body(begin, end);
  }
}

/// How many threads share work on an m × n × k product split into `units` pieces: one below
/// `min_flops` or inside a parallel region, else min(threads, units) (at least 1).
inline int64_t gemm_nt_parts(int64_t m, int64_t n, int64_t k, int64_t units, int threads, double min_flops) {
  if (2.0 * double(m) * double(n) * double(k) < min_flops) return 1;
#if defined(_OPENMP)
  if (omp_in_parallel()) return 1;
#endif
  return std::max<int64_t>(1, std::min<int64_t>(threads, units));
}

/// The N ranges the x·Wᵀ kernels give each of `threads` threads: whole tiles of `nr` columns, one
/// thread when the product is below `min_flops` or inside a parallel region. Calls body(begin, end).
template <class Body>
inline void gemm_nt_split_n(int64_t m, int64_t n, int64_t k, int64_t nr, int threads, double min_flops,
                            const Body& body) {
  for_each_range(n, nr, gemm_nt_parts(m, n, k, (n + nr - 1) / nr, threads, min_flops), body);
}

/// The x·Wᵀ contract as a plain loop (fp32 sums in K order): the kernels' fallback where no SIMD
/// level runs; Cpu::gemm takes the BLAS there instead (gemm_nt_applies is false).
inline void gemm_nt_f32_loop(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                             const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                             const float* bias = nullptr) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float sum = 0.0f;
      for (int64_t p = 0; p < k; ++p) sum += a[i * lda + p] * b[j * ldb + p];
      float s = alpha * sum;
      if (bias != nullptr) s += bias[j];
      float& out = c[i * ldc + j];
      out = beta == 0.0f ? s : s + beta * out;  // beta == 0 ignores C (it may hold NaN)
    }
}

#if BINDERY_HOST_SIMD_X86
inline namespace simd_x86 {

/// The highest kernel level this CPU has (checked once), before the cap of cpu_isa_limit.
inline CpuIsa gemm_nt_cpu_isa() {
  static const CpuIsa isa =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") ? CpuIsa::kAvx512
      : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")       ? CpuIsa::kAvx2
                                                                              : CpuIsa::kPortable;
  return isa;
}

/// The fp32 kernel gemm_nt_f32 runs now: the CPU's level capped by cpu_isa_limit().
inline CpuIsa gemm_nt_isa() {
  return std::min(gemm_nt_cpu_isa(), cpu_isa_limit());
}

/// Whether gemm_nt_f32 has a kernel here (AVX-512 or AVX2) under the current cap.
inline bool gemm_nt_supported() {
  return gemm_nt_isa() != CpuIsa::kPortable;
}

// (The intrinsics below are the zero-masked forms with full masks: g++ 12 reports the unmasked
// forms' undefined pass-through operand as uninitialized under -Werror once inlined here.)

/// The sum of one vector's 16 lanes (the edge tiles' path).
__attribute__((target("avx512f"))) inline float reduce1(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float sum = 0.0f;
  for (float x : lanes) sum += x;
  return sum;
}

/// 64-bit interleave of two pair sums: each 128-bit lane then holds one partial sum of 4 vectors.
__attribute__((target("avx512f"))) inline __m512 reduce_quad(__m512 x, __m512 y) {
  const __m512d xd = _mm512_castps_pd(x), yd = _mm512_castps_pd(y);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, xd, yd)),
                       _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, xd, yd)));
}

/// The 16-lane sums of 8 vectors, as one vector of 8 (a transposing tree: 24 operations where 8
/// separate horizontal sums take about 64).
__attribute__((target("avx512f,avx512dq"))) inline __m256 reduce8(const __m512* v) {
  // pairs: 32-bit interleave; each 128-bit lane then holds partial sums of v[2i] (even slots) and
  // v[2i+1] (odd slots)
  __m512 p[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)
    p[i] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(0xFFFF, v[2 * i], v[2 * i + 1]),
                         _mm512_maskz_unpackhi_ps(0xFFFF, v[2 * i], v[2 * i + 1]));
  // quads: 64-bit interleave; each 128-bit lane holds one partial sum of each of 4 vectors
  const __m512 q0 = reduce_quad(p[0], p[1]),
               q1 = reduce_quad(p[2], p[3]);  // vectors 0-3 and 4-7, 4 lanes each
  // lanes: [q0.l0 + q0.l1, q0.l2 + q0.l3, q1.l0 + q1.l1, q1.l2 + q1.l3]
  const __m512 h = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(0xFFFF, q0, q1, 0x88),
                                 _mm512_maskz_shuffle_f32x4(0xFFFF, q0, q1, 0xDD));
  // [q0 half 1, q1 half 1, q0 half 2, q1 half 2] -> add the two 256-bit halves
  const __m512 r = _mm512_maskz_shuffle_f32x4(0xFFFF, h, h, 0xD8);
  return _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, r, 0), _mm512_maskz_extractf32x8_ps(0xFF, r, 1));
}

/// One MR × NR tile of C over the full K.
template <int MR, int NR>
__attribute__((target("avx512f,avx512dq,fma"))) inline void gemm_nt_tile(int64_t k, const float* a,
                                                                         int64_t lda, const float* b,
                                                                         int64_t ldb, float* c, int64_t ldc,
                                                                         float alpha, float beta,
                                                                         const float* bias) {
  __m512 acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) {
    __m512 av[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) av[i] = _mm512_loadu_ps(a + i * lda + p);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      __m512 bv = _mm512_loadu_ps(b + j * ldb + p);
      asm("" : "+v"(bv));  // one load per B row: keeps g++ from folding it into each of the MR FMAs
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  if (p < k) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (k - p)) - 1u);
    __m512 av[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) av[i] = _mm512_maskz_loadu_ps(mask, a + i * lda + p);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const __m512 bv = _mm512_maskz_loadu_ps(mask, b + j * ldb + p);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  if constexpr (NR == 8) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      __m256 sums = _mm256_mul_ps(_mm256_set1_ps(alpha), reduce8(acc[i]));
      if (bias != nullptr) sums = _mm256_add_ps(sums, _mm256_loadu_ps(bias));
      float* out = c + i * ldc;
      _mm256_storeu_ps(
          out, beta == 0.0f ? sums : _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(out), sums));
    }
  } else {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) {
        float s = alpha * reduce1(acc[i][j]);
        if (bias != nullptr) s += bias[j];
        float& out = c[i * ldc + j];
        out = beta == 0.0f ? s : s + beta * out;  // beta == 0 ignores C (it may hold NaN)
      }
    }
  }
}

/// An edge tile of `rows` ≤ MR and `cols` ≤ NR: the instantiation of exactly that size, found by
/// counting down from the full tile at compile time.
template <int MR = kGemmNtMr, int NR = kGemmNtNr>
inline void gemm_nt_any_tile(int rows, int cols, int64_t k, const float* a, int64_t lda, const float* b,
                             int64_t ldb, float* c, int64_t ldc, float alpha, float beta, const float* bias) {
  if constexpr (MR > 1) {
    if (rows < MR)
      return gemm_nt_any_tile<MR - 1, NR>(rows, cols, k, a, lda, b, ldb, c, ldc, alpha, beta, bias);
  }
  if constexpr (NR > 1) {
    if (cols < NR)
      return gemm_nt_any_tile<MR, NR - 1>(rows, cols, k, a, lda, b, ldb, c, ldc, alpha, beta, bias);
  }
  gemm_nt_tile<MR, NR>(k, a, lda, b, ldb, c, ldc, alpha, beta, bias);
}

/// Columns [n_begin, n_end) of C, every row. K runs in slices of `k_block`: the first slice applies
/// beta and the bias (when not null), the later ones add to C.
inline void gemm_nt_columns(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, float alpha, const float* a,
                            int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                            int64_t block_rows, int64_t k_block, int64_t m_block, const float* bias) {
  constexpr int64_t mr = kGemmNtMr, nr = kGemmNtNr;
  for (int64_t p = 0; p < std::max<int64_t>(k, 1); p += k_block) {
    const int64_t kc = std::min(k_block, k - p);
    const float beta_p = p == 0 ? beta : 1.0f;
    const float* bias_p = p == 0 ? bias : nullptr;
    for (int64_t mb = 0; mb < m; mb += m_block) {
      const int64_t mb_end = std::min(m, mb + m_block);
      // The M block's slice of A, copied with a row stride that is not a multiple of 4 KiB: with
      // K = 1024, 2048 or 5120 the rows of A would all fall in one L1 set.
      const int64_t ld_pack = (kc + 15) / 16 * 16 + ((kc * 4) % 4096 == 0 ? 16 : 0);
      thread_local std::vector<float> packed;
      if (packed.size() < static_cast<size_t>((mb_end - mb) * ld_pack))
        packed.resize((mb_end - mb) * ld_pack);
      for (int64_t i = mb; i < mb_end; ++i)
        std::copy_n(a + i * lda + p, kc, packed.data() + (i - mb) * ld_pack);
      for (int64_t nb = n_begin; nb < n_end; nb += block_rows) {
        const int64_t nb_end = std::min(n_end, nb + block_rows);
        for (int64_t i = mb; i < mb_end; i += mr) {
          const int rows = static_cast<int>(std::min(mr, mb_end - i));
          for (int64_t j = nb; j < nb_end; j += nr) {
            const int cols = static_cast<int>(std::min(nr, nb_end - j));
            const float* a_tile = packed.data() + (i - mb) * ld_pack;
            const float* b_tile = b + j * ldb + p;
            float* c_tile = c + i * ldc + j;
            gemm_nt_any_tile(rows, cols, kc, a_tile, ld_pack, b_tile, ldb, c_tile, ldc, alpha, beta_p,
                             bias_p != nullptr ? bias_p + j : nullptr);
          }
        }
      }
    }
  }
}

/// C(M,N) = alpha·A·Bᵀ + beta·C (+ bias) on `threads` threads (1 inside a parallel region): AVX-512.
inline void gemm_nt_f32_avx512(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                               const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads,
                               const float* bias = nullptr) {
  if (m <= 0 || n <= 0) return;
  constexpr int64_t nr = kGemmNtNr;
  // K slices: an A tile (MR·KC floats) stays in L1 across a block's B tiles. A block of B (NB·KC
  // floats) stays in L2 while the A tiles of an M block (MB·KC) pass.
  const int64_t k_block = k <= kGemmNtKBlock ? std::max<int64_t>(k, 1)
                                             : (k + (k + kGemmNtKBlock - 1) / kGemmNtKBlock - 1) /
                                                   ((k + kGemmNtKBlock - 1) / kGemmNtKBlock);
  const int64_t block_rows =
      std::max<int64_t>(nr, kGemmNtBBytes / (k_block * int64_t(sizeof(float))) / nr * nr);
  const int64_t m_block = std::max<int64_t>(
      kGemmNtMr, kGemmNtABytes / (k_block * int64_t(sizeof(float))) / kGemmNtMr * kGemmNtMr);
  // Split N in whole NR multiples; too little work for a second thread runs on one.
  gemm_nt_split_n(m, n, k, nr, threads, 4e6, [&](int64_t begin, int64_t end) {
    gemm_nt_columns(m, begin, end, k, alpha, a, lda, b, ldb, beta, c, ldc, block_rows, k_block, m_block,
                    bias);
  });
}

// ---- AVX2 + FMA: the same dot-product kernel with 8-float lanes ----

inline constexpr int kGemmNtAvx2Mr = 3;  // rows of A per tile
inline constexpr int kGemmNtAvx2Nr = 4;  // rows of B per tile: 12 accumulators + 3 A + 1 B = 16 ymm

/// The sum of one vector's 8 lanes (the edge tiles' path).
__attribute__((target("avx2"))) inline float reduce1_avx2(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float sum = 0.0f;
  for (float x : lanes) sum += x;
  return sum;
}

/// The 8-lane sums of 4 vectors, as one vector of 4 (three horizontal adds and one add).
__attribute__((target("avx2"))) inline __m128 reduce4_avx2(const __m256* v) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/// One MR × NR tile of C over the full K, 8 floats per step; a masked load for the K tail.
template <int MR, int NR>
__attribute__((target("avx2,fma"))) inline void gemm_nt_tile_avx2(int64_t k, const float* a, int64_t lda,
                                                                  const float* b, int64_t ldb, float* c,
                                                                  int64_t ldc, float alpha, float beta,
                                                                  const float* bias) {
  __m256 acc[MR][NR];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 av[MR];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) av[i] = _mm256_loadu_ps(a + i * lda + p);
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      __m256 bv = _mm256_loadu_ps(b + j * ldb + p);
      asm("" : "+x"(bv));  // one load per B row, as in the AVX-512 tile
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  if (p < k) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k - p)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 av[MR];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) av[i] = _mm256_maskload_ps(a + i * lda + p, mask);
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      const __m256 bv = _mm256_maskload_ps(b + j * ldb + p, mask);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  if constexpr (NR == 4) {
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      __m128 sums = _mm_mul_ps(_mm_set1_ps(alpha), reduce4_avx2(acc[i]));
      if (bias != nullptr) sums = _mm_add_ps(sums, _mm_loadu_ps(bias));
      float* out = c + i * ldc;
      _mm_storeu_ps(out, beta == 0.0f ? sums : _mm_fmadd_ps(_mm_set1_ps(beta), _mm_loadu_ps(out), sums));
    }
  } else {
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) {
        float s = alpha * reduce1_avx2(acc[i][j]);
        if (bias != nullptr) s += bias[j];
        float& out = c[i * ldc + j];
        out = beta == 0.0f ? s : s + beta * out;  // beta == 0 ignores C (it may hold NaN)
      }
    }
  }
}

/// An edge tile of `rows` ≤ MR and `cols` ≤ NR (the instantiation of exactly that size).
template <int MR = kGemmNtAvx2Mr, int NR = kGemmNtAvx2Nr>
inline void gemm_nt_any_tile_avx2(int rows, int cols, int64_t k, const float* a, int64_t lda, const float* b,
                                  int64_t ldb, float* c, int64_t ldc, float alpha, float beta,
                                  const float* bias) {
  if constexpr (MR > 1) {
    if (rows < MR)
      return gemm_nt_any_tile_avx2<MR - 1, NR>(rows, cols, k, a, lda, b, ldb, c, ldc, alpha, beta, bias);
  }
  if constexpr (NR > 1) {
    if (cols < NR)
      return gemm_nt_any_tile_avx2<MR, NR - 1>(rows, cols, k, a, lda, b, ldb, c, ldc, alpha, beta, bias);
  }
  gemm_nt_tile_avx2<MR, NR>(k, a, lda, b, ldb, c, ldc, alpha, beta, bias);
}

/// Columns [n_begin, n_end) of C, every row: the blocking of gemm_nt_columns with AVX2 tiles.
inline void gemm_nt_columns_avx2(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, float alpha,
                                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                                 float* c, int64_t ldc, int64_t block_rows, int64_t k_block, int64_t m_block,
                                 const float* bias) {
  constexpr int64_t mr = kGemmNtAvx2Mr, nr = kGemmNtAvx2Nr;
  for (int64_t p = 0; p < std::max<int64_t>(k, 1); p += k_block) {
    const int64_t kc = std::min(k_block, k - p);
    const float beta_p = p == 0 ? beta : 1.0f;
    const float* bias_p = p == 0 ? bias : nullptr;
    for (int64_t mb = 0; mb < m; mb += m_block) {
      const int64_t mb_end = std::min(m, mb + m_block);
      const int64_t ld_pack = (kc + 7) / 8 * 8 + ((kc * 4) % 4096 == 0 ? 8 : 0);  // off 4 KiB (see above)
      thread_local std::vector<float> packed;
      if (packed.size() < static_cast<size_t>((mb_end - mb) * ld_pack))
        packed.resize((mb_end - mb) * ld_pack);
      for (int64_t i = mb; i < mb_end; ++i)
        std::copy_n(a + i * lda + p, kc, packed.data() + (i - mb) * ld_pack);
      for (int64_t nb = n_begin; nb < n_end; nb += block_rows) {
        const int64_t nb_end = std::min(n_end, nb + block_rows);
        for (int64_t i = mb; i < mb_end; i += mr) {
          const int rows = static_cast<int>(std::min(mr, mb_end - i));
          for (int64_t j = nb; j < nb_end; j += nr) {
            const int cols = static_cast<int>(std::min(nr, nb_end - j));
            gemm_nt_any_tile_avx2(rows, cols, kc, packed.data() + (i - mb) * ld_pack, ld_pack,
                                  b + j * ldb + p, ldb, c + i * ldc + j, ldc, alpha, beta_p,
                                  bias_p != nullptr ? bias_p + j : nullptr);
          }
        }
      }
    }
  }
}

/// C(M,N) = alpha·A·Bᵀ + beta·C (+ bias) on `threads` threads: AVX2 + FMA, the same blocking as
/// AVX-512.
inline void gemm_nt_f32_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                             const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads,
                             const float* bias = nullptr) {
  if (m <= 0 || n <= 0) return;
  const int64_t slices = (k + kGemmNtKBlock - 1) / kGemmNtKBlock;
  const int64_t k_block = k <= kGemmNtKBlock ? std::max<int64_t>(k, 1) : (k + slices - 1) / slices;
  const int64_t block_rows = std::max<int64_t>(
      kGemmNtAvx2Nr, kGemmNtBBytes / (k_block * int64_t(sizeof(float))) / kGemmNtAvx2Nr * kGemmNtAvx2Nr);
  const int64_t m_block = std::max<int64_t>(
      kGemmNtAvx2Mr, kGemmNtABytes / (k_block * int64_t(sizeof(float))) / kGemmNtAvx2Mr * kGemmNtAvx2Mr);
  gemm_nt_split_n(m, n, k, kGemmNtAvx2Nr, threads, 4e6, [&](int64_t begin, int64_t end) {
    gemm_nt_columns_avx2(m, begin, end, k, alpha, a, lda, b, ldb, beta, c, ldc, block_rows, k_block, m_block,
                         bias);
  });
}

/// C(M,N) = alpha·A·Bᵀ + beta·C with the kernel of gemm_nt_isa() (AVX-512 or AVX2); a plain loop
/// where neither runs (Cpu::gemm then takes the BLAS instead: gemm_nt_applies is false).
/// `bias` (N floats, or null): C(i, j) = alpha·(A·Bᵀ)(i, j) + bias(j) (+ beta·C), added in the tile's
/// epilogue, so a Linear needs no pass that fills C with the bias first. With beta = 0 the bits are
/// those of that fill followed by the product with beta = 1.
inline void gemm_nt_f32(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                        const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads,
                        const float* bias = nullptr) {
  switch (gemm_nt_isa()) {
    case CpuIsa::kAvx512:
      return gemm_nt_f32_avx512(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, bias);
    case CpuIsa::kAvx2:
      return gemm_nt_f32_avx2(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, bias);
    case CpuIsa::kPortable:
      break;
  }
  gemm_nt_f32_loop(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
}

#else
inline namespace simd_portable {

/// No kernel in this translation unit (no x86 SIMD, or nvcc).
inline CpuIsa gemm_nt_isa() {
  return CpuIsa::kPortable;
}

/// No kernel in this translation unit (no x86 SIMD, or nvcc): Cpu::gemm never takes this path.
inline bool gemm_nt_supported() {
  return false;
}

/// The same contract as the x86 kernel, as a plain loop: unreachable through gemm_nt_applies, and
/// correct (not a no-op) if called directly.
inline void gemm_nt_f32(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                        const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int /*threads*/,
                        const float* bias = nullptr) {
  gemm_nt_f32_loop(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
}

#endif

/// Whether Cpu::gemm takes this kernel for (M, N, K) with op(A) = A and op(B) = Bᵀ. Short K
/// (attention's head dimension) leaves too few FMAs per horizontal sum; those stay with the BLAS.
inline bool gemm_nt_applies(int64_t m, int64_t n, int64_t k) {
  return k >= kGemmNtMinK && m > 0 && n > 0 && gemm_nt_supported() &&
         gemm_nt_requested().load(std::memory_order_relaxed);
}

}  // namespace simd_x86 or simd_portable

}  // namespace bindery::detail
