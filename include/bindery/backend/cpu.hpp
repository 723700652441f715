// bindery/backend/cpu.hpp — the Cpu backend policy: host memory, OpenMP loops, Eigen/BLAS GEMM.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <type_traits>

#include <Eigen/Core>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(BINDERY_WITH_BLAS)
// OpenBLAS's headers declare a global `typedef uint16_t bfloat16`, which would make bindery::bfloat16
// ambiguous in code that says `using namespace bindery`. Renamed while the header is read (the
// C functions' linkage does not depend on the parameter types' names).
#pragma push_macro("bfloat16")
#define bfloat16 openblas_bfloat16
#include <cblas.h>
#pragma pop_macro("bfloat16")
extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_parallel(void);
extern "C" int openblas_get_num_threads(void);
#endif

#include "bindery/backend/backend.hpp"
#include "bindery/backend/cpu_gemm_lowp.hpp"
#include "bindery/backend/cpu_gemm_nt.hpp"
#include "bindery/backend/gemm_mixed.hpp"
#include "bindery/core/error.hpp"

namespace bindery {

namespace detail {

/// Row-major GEMM through Eigen: C(M,N) = alpha * op(A) * op(B) + beta * C, where op(A) is (M,K).
/// lda/ldb/ldc are row strides in elements, as in CBLAS row-major.
template <class T>
void eigen_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ConstMap = Eigen::Map<const Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  using Map = Eigen::Map<Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  Map c_map(c, m, n, Eigen::OuterStride<>(ldc));
  if (beta == T(0)) {
    c_map.setZero();  // beta == 0 must ignore C, which may hold garbage or NaN
  } else if (beta != T(1)) {
    c_map *= beta;
  }
  if (k == 0 || m == 0 || n == 0) return;
  const ConstMap a_map(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  const ConstMap b_map(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) c_map.noalias() += alpha * (a_map * b_map);
  if (!trans_a && trans_b) c_map.noalias() += alpha * (a_map * b_map.transpose());
  if (trans_a && !trans_b) c_map.noalias() += alpha * (a_map.transpose() * b_map);
  if (trans_a && trans_b) c_map.noalias() += alpha * (a_map.transpose() * b_map.transpose());
}

/// Freed host blocks kept for reuse, keyed by capacity. A request takes the smallest cached block
/// that holds it, if that block is at most 1/8 larger; otherwise it is a fresh allocation. The cache
/// holds at most 1 GiB (or BINDERY_CPU_CACHE_MB; 0 turns caching off): a block
/// freed beyond that goes back to the OS.
class HostBlockCache {
 public:
  static constexpr size_t kMinBytes = size_t(256) << 10;

  /// Never destroyed: tensors in static storage may be freed after every destructor has run.
  static HostBlockCache& instance() {
    static HostBlockCache* cache = new HostBlockCache();
    return *cache;
  }
  /// A cached block of at least `bytes` (its capacity in *capacity), or nullptr.
  void* take(size_t bytes, size_t* capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = blocks_.lower_bound(bytes);
    if (it == blocks_.end() || it->first > bytes + bytes / 8) return nullptr;
    void* p = it->second;
    *capacity = it->first;
    cached_ -= it->first;
    blocks_.erase(it);
    return p;
  }
  /// Keeps a freed block; false when the cache is full (the caller frees it).
  bool give(void* p, size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_ + capacity > limit_) return false;
    blocks_.emplace(capacity, p);
    cached_ += capacity;
    return true;
  }
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [capacity, p] : blocks_) std::free(p);
    blocks_.clear();
    cached_ = 0;
  }
  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  HostBlockCache() {
    const char* env = std::getenv("BINDERY_CPU_CACHE_MB");
    if (env != nullptr && *env != '\0') limit_ = static_cast<size_t>(std::strtoull(env, nullptr, 10)) << 20;
  }
  std::mutex mutex_;
  std::multimap<size_t, void*> blocks_;
  size_t cached_ = 0;
  size_t limit_ = size_t(1) << 30;
};

/// Host memory with a 64-byte header before the returned pointer that records the block's capacity
/// (deallocate has no size). Blocks of 4 MiB and more ask for transparent huge pages
/// (madvise; with THP in "madvise" mode, the Linux default, 1/512 of the page faults and TLB
/// entries).
inline constexpr size_t kHostHeader = 64;

inline void* host_allocate(size_t bytes) {
  bytes = (bytes + kHostHeader - 1) / kHostHeader * kHostHeader;
  size_t capacity = bytes;
  void* base = nullptr;
  if (bytes >= HostBlockCache::kMinBytes) base = HostBlockCache::instance().take(bytes, &capacity);
  if (base == nullptr) {
    base = std::aligned_alloc(kHostHeader, capacity + kHostHeader);
    if (base == nullptr) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (capacity >= (size_t(4) << 20)) {
      const auto first =
          (reinterpret_cast<uintptr_t>(base) + (size_t(2) << 20) - 1) & ~((uintptr_t(2) << 20) - 1);
      const auto last =
          (reinterpret_cast<uintptr_t>(base) + capacity + kHostHeader) & ~((uintptr_t(2) << 20) - 1);
      if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
    }
#endif
  }
  *static_cast<size_t*>(base) = capacity;
  return static_cast<char*>(base) + kHostHeader;
}

inline void host_deallocate(void* p) noexcept {
  if (p == nullptr) return;
  void* base = static_cast<char*>(p) - kHostHeader;
  const size_t capacity = *static_cast<size_t*>(base);
  if (capacity >= HostBlockCache::kMinBytes) {
    try {
      if (HostBlockCache::instance().give(base, capacity)) return;
    } catch (...) {  // the cache could not grow: free the block instead
    }
  }
  std::free(base);
}

/// True inside an active OpenMP parallel region (a for_each body running on a team).
inline bool in_parallel_region() {
#if defined(_OPENMP)
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

#if defined(BINDERY_WITH_BLAS)
/// The OpenBLAS build in use (openblas_get_parallel, read once): 0 sequential, 1 pthreads (Debian's
/// default: a thread pool of its own), 2 OpenMP (shares OpenMP's pool).
inline int blas_build_kind() {
  static const int kind = openblas_get_parallel();
  return kind;
}

/// Whether the OpenBLAS in use keeps a thread pool of its own (the pthreads build).
inline bool blas_has_own_threads() {
  return blas_build_kind() == 1;
}

/// Whether OpenBLAS may be called from inside an OpenMP team without starting threads there.
inline bool blas_nests_in_openmp() {
  return !blas_has_own_threads() || openblas_get_num_threads() == 1;
}

/// bindery runs the pthreads OpenBLAS on one thread and splits large products over its own OpenMP
/// team (blas_gemm_split). After each threaded call, that build's idle workers spin in sched_yield
/// for about 2^28 cycles (OPENBLAS_THREAD_TIMEOUT), on the very cores the OpenMP team needs next:
/// on 2 threads that took 15% of the samples of an IMU forward, which ran 1.25x faster without it
/// (docs/benchmarks.md). Returns whether OpenBLAS now runs on one thread: it sets that outside a
/// parallel region when someone else (the user, a benchmark's reference) raised OpenBLAS's count;
/// inside a team it cannot, and the caller uses Eigen instead. The OpenMP and sequential builds run
/// on one thread inside a team anyway (the OpenMP build's openblas_set_num_threads would also set
/// OpenMP's own count, so it is left alone).
inline bool blas_single_threaded() {
  if (blas_nests_in_openmp()) return true;
  if (in_parallel_region()) return false;
  openblas_set_num_threads(1);
  return true;
}

/// Row-major GEMM through CBLAS (OpenBLAS), same contract as eigen_gemm.
template <class T>
void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (sizeof(T) == 4) {
    cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c,
                int(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c,
                int(ldc));
  }
}

/// Products below this many flops run on one thread: an OpenMP region costs a few microseconds.
inline constexpr double kBlasSplitMinFlops = 4.0e6;

/// blas_gemm on `threads` threads of bindery's OpenMP team, each calling the single-threaded BLAS
/// on a block of C: the columns (in multiples of 16) when N >= M, else the rows. Every element is
/// still summed by one call in the BLAS's K order. Outside a parallel region only.
template <class T>
void blas_gemm_split(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                     int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, int threads) {
  const bool split_n = n >= m;
  const int64_t extent = split_n ? n : m, unit = split_n ? 16 : 1;
  const int64_t units = (extent + unit - 1) / unit;
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const int64_t parts =
      flops < kBlasSplitMinFlops || in_parallel_region() ? 1 : std::min<int64_t>(threads, units);
  for_each_range(extent, unit, parts, [&](int64_t begin, int64_t end) {
    if (split_n) {
      blas_gemm(trans_a, trans_b, m, end - begin, k, alpha, a, lda, trans_b ? b + begin * ldb : b + begin,
                ldb, beta, c + begin, ldc);
    } else {
      blas_gemm(trans_a, trans_b, end - begin, n, k, alpha, trans_a ? a + begin : a + begin * lda, lda, b,
                ldb, beta, c + begin * ldc, ldc);
    }
  });
}
#endif

}  // namespace detail

/// The CPU backend policy. All functions are static: host memory needs no handle or stream.
struct Cpu {
  static constexpr const char* kName = "cpu";
  static constexpr bool kHostAccessible = true;
  /// Loops shorter than this run on one thread: spawning threads costs more than the work.
  static constexpr int64_t kDefaultGrain = 16384;
  static constexpr size_t kAlignment = 64;  // one cache line, the widest AVX-512 load

  /// n elements of 64-byte aligned host memory (at least one element, so the pointer is never null).
  /// Blocks of 256 KiB and more come from, and return to, a cache of freed blocks (HostBlockCache):
  /// a steady-state forward or training step then takes no fresh pages from the OS.
  template <class T>
  static T* allocate(int64_t n) {
    BINDERY_CHECK(n >= 0, ValueError, "Cpu::allocate: negative element count ", n);
    // n * sizeof(T) (plus alignment) must fit size_t: a wrapped product would allocate a small block.
    BINDERY_CHECK(static_cast<uint64_t>(n) <= (SIZE_MAX / 2) / sizeof(T), BackendError, "Cpu::allocate: ", n,
                  " elements of ", sizeof(T), " bytes exceed the address space");
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T);
    void* p = detail::host_allocate(bytes);
    BINDERY_CHECK(p != nullptr, BackendError, "Cpu::allocate: out of memory allocating ", bytes, " bytes");
    return static_cast<T*>(p);
  }
  template <class T>
  static void deallocate(T* p) noexcept {
    detail::host_deallocate(p);
  }
  /// Frees the cached blocks (memory no tensor uses any more) back to the OS.
  static void empty_cache() { detail::HostBlockCache::instance().release_all(); }

  template <class T>
  static void copy_to_host(T* host, const T* src, int64_t n) {
    if (n > 0) std::memcpy(host, src, static_cast<size_t>(n) * sizeof(T));
  }
  template <class T>
  static void copy_from_host(T* dst, const T* host, int64_t n) {
    if (n > 0) std::memcpy(dst, host, static_cast<size_t>(n) * sizeof(T));
  }
  template <class T>
  static void copy(T* dst, const T* src, int64_t n) {
    if (n > 0) std::memmove(dst, src, static_cast<size_t>(n) * sizeof(T));
  }
  static void synchronize() {}

  /// Calls f(i) for every i in [0, n), split over the OpenMP threads when n >= grain.
  /// Kernels whose items are heavy (a row, a matrix) pass grain = 1.
  template <class F>
  static void for_each(int64_t n, const F& f, int64_t grain = kDefaultGrain) {
#if defined(_OPENMP)
    if (n >= grain && n > 1 && num_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) f(i);
      return;
    }
#endif
    for (int64_t i = 0; i < n; ++i) f(i);
  }

  /// Row-major C(M,N) = alpha op(A) op(B) + beta C with op(A): (M,K), op(B): (K,N).
  /// OpenBLAS when bindery is built with BINDERY_BLAS (the default), Eigen otherwise. Debian's pthreads
  /// OpenBLAS runs on one thread: products of 4 MFLOP and more are split over bindery's OpenMP team,
  /// one single-threaded call per block of C (detail::blas_gemm_split), and inside a team (a for_each
  /// body) each call stays on its thread. Should OpenBLAS's own count have been raised meanwhile
  /// (by the user), calls inside a team take single-threaded Eigen instead.
  /// fp32 A·Bᵀ with K >= 128 (every Linear: x·Wᵀ) takes bindery's own AVX-512 or AVX2 kernel where
  /// the CPU has one (backend/cpu_gemm_nt.hpp: no packing of the weight; set_gemm_nt_kernel(false) or
  /// BINDERY_GEMM_NT=0 turns it off, BINDERY_CPU_ISA=avx2 caps it at AVX2).
  /// For T = bfloat16 or float16 (16-bit storage) the operands are widened to float, multiplied with
  /// float accumulation, and C is rounded back: gemm_batched's 16-bit path.
  template <class T>
  static void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                   int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
    if constexpr (is_16bit_float_v<T>) {
      gemm_batched(trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
    } else {
      if constexpr (std::is_same_v<T, float>) {
        if (!trans_a && trans_b && detail::gemm_nt_applies(m, n, k)) {
          detail::gemm_nt_f32(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, num_threads());
          return;
        }
      }
#if defined(BINDERY_WITH_BLAS)
      if (detail::blas_single_threaded()) {
        if (detail::blas_build_kind() != 2) {  // pthreads or sequential: split over the team
          detail::blas_gemm_split(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                                  num_threads());
        } else {  // the OpenMP build threads itself on OpenMP's pool
          detail::blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
        return;
      }
#endif
      detail::eigen_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
  }

  /// `batch` independent GEMMs; operand i starts at a + i*stride_a (a stride of 0 broadcasts).
  /// With Eigen, many small products run one per thread (single-threaded inside the team) and large
  /// ones one after another with Eigen's threads. With OpenBLAS every product runs in turn through
  /// gemm (split over the team from 4 MFLOP): per-thread Eigen measured slower on every attention
  /// shape, and OpenMP teams of tiny tasks stall on a loaded machine (docs/benchmarks.md).
  template <class T>
  static void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                           int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta,
                           T* c, int64_t ldc, int64_t stride_c, int64_t batch) {
    if constexpr (is_16bit_float_v<T>) {
      gemm_batched_float16(trans_a, trans_b, m, n, k, static_cast<float>(alpha), a, lda, stride_a, b, ldb,
                           stride_b, static_cast<float>(beta), c, ldc, stride_c, batch);
    } else {
#if defined(BINDERY_WITH_BLAS)
      const bool per_thread = false;
#else
      const bool per_thread = batch >= num_threads() && m * n * k < (int64_t(1) << 24);
#endif
      auto one = [&](int64_t i) {
        gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
             c + i * stride_c, ldc);
      };
      if (per_thread) {
        for_each(batch, one, 1);
      } else {
        for (int64_t i = 0; i < batch; ++i) one(i);
      }
    }
  }

  /// Autocast's GEMM: float A, B and C, with A's and B's values rounded to `Low` (bfloat16 or float16)
  /// before the product, accumulation in float — the arithmetic of a tensor-core GEMM on 16-bit
  /// copies of the operands. The CPU rounds copies of the operands and runs its float GEMM.
  template <class Low>
  static void gemm_batched_rounded(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                   const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                                   int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
                                   int64_t batch) {
    static_assert(is_16bit_float_v<Low>, "gemm_batched_rounded rounds to bfloat16 or float16");
    if (m <= 0 || n <= 0 || batch <= 0) return;
    const int64_t span_a = detail::gemm_operand_span(trans_a, m, k, lda, stride_a, batch);
    const int64_t span_b = detail::gemm_operand_span(trans_b, k, n, ldb, stride_b, batch);
    float* ra = allocate<float>(span_a);
    float* rb = allocate<float>(span_b);
    for_each(span_a, detail::RoundThroughFunctor<Low>{ra, a});
    for_each(span_b, detail::RoundThroughFunctor<Low>{rb, b});
    gemm_batched(trans_a, trans_b, m, n, k, alpha, ra, lda, stride_a, rb, ldb, stride_b, beta, c, ldc,
                 stride_c, batch);
    deallocate(ra);
    deallocate(rb);
  }

  /// Row-major C(M,N) = A·Bᵀ + bias (A: M×K, B: N×K, bias: N floats), the bias added in the
  /// epilogue of bindery's x·Wᵀ kernel: a Linear's forward with no pass that fills C with the bias
  /// first, and the same bits as that fill followed by gemm with beta = 1. Returns false, and does
  /// nothing, where that kernel does not take (M, N, K) (detail::gemm_nt_applies): the caller then
  /// fills C and calls gemm. ops::linear_forward finds it through `requires` (backends without it
  /// take the fill).
  static bool gemm_nt_bias(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                           int64_t ldb, const float* bias, float* c, int64_t ldc) {
    if (!detail::gemm_nt_applies(m, n, k)) return false;
    detail::gemm_nt_f32(m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, num_threads(), bias);
    return true;
  }

  /// Turns bindery's own fp32 x·Wᵀ kernel on or off (on by default on CPUs with AVX-512F/DQ or AVX2);
  /// returns whether it is now on. Off, every GEMM goes to the BLAS (or Eigen).
  static bool set_gemm_nt_kernel(bool on) {
    detail::gemm_nt_requested().store(on);
    return on && detail::gemm_nt_supported();
  }

  /// Threads used by for_each, GEMM and BLAS. Defaults to OpenMP's (OMP_NUM_THREADS or all cores).
  static void set_num_threads(int threads) {
    BINDERY_CHECK(threads >= 1, ValueError, "set_num_threads: need at least 1 thread, got ", threads);
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    Eigen::setNbThreads(threads);
#if defined(BINDERY_WITH_BLAS)
    // The pthreads build stays on one thread (detail::blas_single_threaded); the OpenMP build follows
    // OpenMP (its setter also sets OpenMP's count); the sequential build ignores it.
    if (!detail::blas_has_own_threads()) openblas_set_num_threads(threads);
    detail::blas_single_threaded();
#endif
  }
  static int num_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
  }

 private:
  /// 16-bit storage GEMM: widen A and B to float, C to a contiguous float (batch·m, n) buffer, run
  /// the float GEMM, round C back (only its m·n elements per matrix are written).
  template <class T>
  static void gemm_batched_float16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                   const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
                                   int64_t stride_b, float beta, T* c, int64_t ldc, int64_t stride_c,
                                   int64_t batch) {
    if (m <= 0 || n <= 0 || batch <= 0) return;
    const int64_t span_a = detail::gemm_operand_span(trans_a, m, k, lda, stride_a, batch);
    const int64_t span_b = detail::gemm_operand_span(trans_b, k, n, ldb, stride_b, batch);
    float* fa = allocate<float>(span_a);
    float* fb = allocate<float>(span_b);
    float* fc = allocate<float>(batch * m * n);
    for_each(span_a, detail::ConvertThroughFloat<float, T>{fa, a});
    for_each(span_b, detail::ConvertThroughFloat<float, T>{fb, b});
    const int64_t row_grain = std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(n, 1));
    if (beta != 0.0f) {
      for_each(batch * m, detail::GemmRowsCopy<float, T>{fc, c, m, n, n, m * n, ldc, stride_c}, row_grain);
    }
    gemm_batched(trans_a, trans_b, m, n, k, alpha, fa, lda, stride_a, fb, ldb, stride_b, beta, fc, n, m * n,
                 batch);
    for_each(batch * m, detail::GemmRowsCopy<T, float>{c, fc, m, n, ldc, stride_c, n, m * n}, row_grain);
    deallocate(fa);
    deallocate(fb);
    deallocate(fc);
  }
};

static_assert(Backend<Cpu>);

}  // namespace bindery
