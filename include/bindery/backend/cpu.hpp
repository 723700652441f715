// bindery/backend/cpu.hpp — the Cpu backend policy: host memory, OpenMP loops, Eigen/BLAS GEMM.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include <Eigen/Core>

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(BINDERY_WITH_BLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_parallel(void);
#endif

#include "bindery/backend/backend.hpp"
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

/// True inside an active OpenMP parallel region (a for_each body running on a team).
inline bool in_parallel_region() {
#if defined(_OPENMP)
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

#if defined(BINDERY_WITH_BLAS)
/// Whether OpenBLAS may be called from inside an OpenMP team: its OpenMP and sequential builds
/// then run single-threaded; its pthreads build (Debian's default) would start its own threads.
inline bool blas_nests_in_openmp() {
  static const bool nests = openblas_get_parallel() != 1;  // 0 sequential, 1 pthreads, 2 OpenMP
  return nests;
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
  template <class T>
  static T* allocate(int64_t n) {
    BINDERY_CHECK(n >= 0, ValueError, "Cpu::allocate: negative element count ", n);
    size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T);
    bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, bytes);
    BINDERY_CHECK(p != nullptr, BackendError, "Cpu::allocate: out of memory allocating ", bytes, " bytes");
    return static_cast<T*>(p);
  }
  template <class T>
  static void deallocate(T* p) noexcept {
    std::free(p);
  }

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
  /// OpenBLAS when bindery is built with BINDERY_BLAS (the default), Eigen otherwise. Called from
  /// inside an OpenMP team (a for_each body) with the pthreads OpenBLAS, it runs single-threaded
  /// Eigen instead: that OpenBLAS would start its own threads on cores the team already uses.
  template <class T>
  static void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                   int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
#if defined(BINDERY_WITH_BLAS)
    if (!detail::in_parallel_region() || detail::blas_nests_in_openmp()) {
      detail::blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
#endif
    detail::eigen_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }

  /// `batch` independent GEMMs; operand i starts at a + i*stride_a (a stride of 0 broadcasts).
  /// With Eigen, many small products run one per thread (single-threaded inside the team) and large
  /// ones one after another with Eigen's threads. With OpenBLAS every product runs in turn with
  /// OpenBLAS's threads (it keeps small ones on one core): per-thread Eigen measured slower on every
  /// attention shape, and OpenMP teams of tiny tasks stall on a loaded machine (docs/benchmarks.md).
  template <class T>
  static void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                           int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta,
                           T* c, int64_t ldc, int64_t stride_c, int64_t batch) {
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

  /// Threads used by for_each, GEMM and BLAS. Defaults to OpenMP's (OMP_NUM_THREADS or all cores).
  static void set_num_threads(int threads) {
    BINDERY_CHECK(threads >= 1, ValueError, "set_num_threads: need at least 1 thread, got ", threads);
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    Eigen::setNbThreads(threads);
#if defined(BINDERY_WITH_BLAS)
    openblas_set_num_threads(threads);
#endif
  }
  static int num_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
  }
};

static_assert(Backend<Cpu>);

}  // namespace bindery
