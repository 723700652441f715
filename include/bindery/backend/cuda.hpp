// bindery/backend/cuda.hpp — the Cuda backend policy: device memory, one stream, cuBLAS GEMM.
//
// Include it through the CUDA umbrella `#include <bindery/cuda.hpp>` (bindery.hpp + this file +
// the CUDA op kernels of kernels/all.cuh) from a translation unit that nvcc compiles (a .cu file),
// and link the CMake target bindery::cuda. A CPU-only translation unit never sees this file.
//
// Policy decisions, each chosen for predictability:
// - Memory: plain cudaMalloc behind a caching allocator (never managed memory). Freed blocks go to
//   a free list per size class (four classes per power of two, at least 512 bytes) and are reused
//   by the next allocation of that class; cudaFree only runs from Cuda::empty_cache() or when a
//   cudaMalloc fails (the cache is released, then the allocation retried once).
// - Stream: every kernel, copy and GEMM of bindery runs on ONE stream, Cuda::stream(), created on
//   first use for the current device. Work is therefore ordered, so a block freed on the host while
//   kernels still read it can be handed to the next allocation safely (it is only touched by work
//   queued after them). The stream is a blocking stream: it also orders with work that user code
//   puts on the legacy default stream (0). Code that uses other streams must synchronize itself
//   (Cuda::synchronize(), or events on Cuda::stream()).
// - Synchronization: copy_to_host (and so Tensor::to_vector, item, at) waits for the stream;
//   nothing else blocks the host.
// - GEMM: cuBLAS on Cuda::stream() (row-major through the transpose trick: C^T = op(B)^T op(A)^T in
//   column-major). float GEMMs use full fp32 unless Cuda::allow_tf32(true) (TF32 tensor cores:
//   faster, ~1e-3 relative error).
// - Device: the current device when bindery first touches CUDA (device 0 unless the program called
//   cudaSetDevice before). One device per process.
// - Errors: every CUDA and cuBLAS failure throws bindery::BackendError with the library's own
//   message. Kernels run asynchronously: a fault inside one surfaces at the next synchronizing call
//   (run with CUDA_LAUNCH_BLOCKING=1 to pin it to its launch).
// The process-wide state (stream, cuBLAS handle, cached blocks) is intentionally never destroyed:
// tensors may outlive main() in static objects, and the CUDA runtime may already be unloaded when
// static destructors run.
#pragma once

#include "bindery/config.hpp"

#if !BINDERY_COMPILING_CUDA
#error \
    "bindery/backend/cuda.hpp needs nvcc: compile this file as CUDA (a .cu source, or LANGUAGE CUDA in CMake), link bindery::cuda and include <bindery/cuda.hpp>. CPU-only code includes <bindery/bindery.hpp> and uses bindery::Cpu."
#else

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "bindery/backend/backend.hpp"
#include "bindery/backend/gemm_mixed.hpp"
#include "bindery/core/error.hpp"

namespace bindery {

namespace detail {

/// Throws BackendError naming the failed call and CUDA's own error name and message.
inline void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) [[unlikely]] {
    (void)cudaGetLastError();  // clear a non-sticky error so the next call does not report it again
    throw BackendError(
        concat("Cuda: ", what, " failed: ", cudaGetErrorName(status), ": ", cudaGetErrorString(status)));
  }
}

/// Throws BackendError naming the failed cuBLAS call and cuBLAS's own status name and message.
inline void cublas_check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) [[unlikely]] {
    throw BackendError(concat("Cuda: ", what, " failed: ", cublasGetStatusName(status), ": ",
                              cublasGetStatusString(status)));
  }
}

/// The size class of a request: at least 512 bytes, then four classes per power of two
/// (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k), so a cached block wastes at most 25 % of its size.
inline size_t cuda_size_class(size_t bytes) {
  constexpr size_t kMinimum = 512;
  if (bytes <= kMinimum) return kMinimum;
  size_t power = kMinimum;
  while (power < bytes / 2 + bytes % 2) power *= 2;  // power < bytes <= 2 power
  const size_t step = power / 4;
  return (bytes + step - 1) / step * step;
}

/// Byte counts of the caching allocator.
struct CudaMemoryStats {
  size_t in_use = 0;  // bytes of live blocks (size classes, not requested bytes)
  size_t cached = 0;  // bytes of free blocks kept for reuse
  size_t peak = 0;    // highest in_use so far
};

/// cudaMalloc with per-size-class free lists; see the file comment. Thread-safe.
class CudaCachingAllocator {
 public:
  void* allocate(size_t bytes) {
    const size_t size = cuda_size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    void* block = nullptr;
    if (it != free_.end() && !it->second.empty()) {
      block = it->second.back();
      it->second.pop_back();
      cached_ -= size;
    } else {
      cudaError_t status = cudaMalloc(&block, size);
      if (status == cudaErrorMemoryAllocation) {  // give the cached blocks back and retry once
        (void)cudaGetLastError();
        release_locked();
        status = cudaMalloc(&block, size);
      }
      if (status != cudaSuccess) {
        (void)cudaGetLastError();
        size_t free_bytes = 0, total_bytes = 0;
        (void)cudaMemGetInfo(&free_bytes, &total_bytes);
        (void)cudaGetLastError();
        throw BackendError(concat("Cuda::allocate: cudaMalloc of ", size, " bytes (", bytes,
                                  " requested) failed: ", cudaGetErrorName(status), ": ",
                                  cudaGetErrorString(status), " (bindery holds ", in_use_,
                                  " bytes in use and ", cached_, " cached; the device has ", free_bytes,
                                  " of ", total_bytes, " bytes free)"));
      }
    }
    live_[block] = size;
    in_use_ += size;
    peak_ = std::max(peak_, in_use_);
    return block;
  }

  /// Returns a block to its free list (a pointer this allocator did not hand out is ignored).
  void deallocate(void* block) noexcept {
    if (block == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = live_.find(block);
    if (it == live_.end()) return;
    const size_t size = it->second;
    live_.erase(it);
    in_use_ -= size;
    try {
      free_[size].push_back(block);
      cached_ += size;
    } catch (...) {  // no host memory for the list entry: give the block back to CUDA instead
      (void)cudaFree(block);
    }
  }

  /// cudaFree of every cached block (cudaFree waits for the device, so queued work is safe).
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_locked();
  }

  CudaMemoryStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return CudaMemoryStats{in_use_, cached_, peak_};
  }

 private:
  void release_locked() {
    for (auto& [size, blocks] : free_) {
      for (void* block : blocks) (void)cudaFree(block);
      cached_ -= size * blocks.size();
      blocks.clear();
    }
    free_.clear();
  }

  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*> > free_;  // size class -> free blocks
  std::unordered_map<void*, size_t> live_;                // block -> size class
  size_t in_use_ = 0, cached_ = 0, peak_ = 0;
};

/// The process-wide CUDA state: created on first use, never destroyed (see the file comment).
struct CudaContext {
  int device = 0;
  int multiprocessors = 1;
  cudaStream_t stream = nullptr;
  CudaCachingAllocator allocator;
};

inline CudaContext* make_cuda_context() {
  auto context = std::make_unique<CudaContext>();  // released on success: never destroyed
  cuda_check(cudaGetDevice(&context->device), "cudaGetDevice (is a CUDA device present?)");
  cuda_check(
      cudaDeviceGetAttribute(&context->multiprocessors, cudaDevAttrMultiProcessorCount, context->device),
      "cudaDeviceGetAttribute(MultiProcessorCount)");
  cuda_check(cudaStreamCreate(&context->stream), "cudaStreamCreate");
  return context.release();
}

inline CudaContext& cuda_context() {
  static CudaContext* const context = make_cuda_context();  // a failed creation is retried next call
  return *context;
}

inline cublasHandle_t make_cublas_handle() {
  cublasHandle_t handle = nullptr;
  cublas_check(cublasCreate(&handle), "cublasCreate");
  cublas_check(cublasSetStream(handle, cuda_context().stream), "cublasSetStream");
  return handle;
}

/// f(i) for i in [0, n): a grid-stride loop, so any n fits any grid.
template <class F>
__global__ void cuda_for_each_kernel(int64_t n, F f) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) f(i);
}

/// C(M,N) = beta C for one matrix of a batch (the k == 0 GEMM, which cuBLAS need not handle).
template <class T>
struct CudaScaleMatrix {
  T* c;
  int64_t n, ldc, stride_c, per_batch;
  T beta;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t b = i / per_batch, r = (i - b * per_batch) / n, j = i - b * per_batch - r * n;
    T* value = c + b * stride_c + r * ldc + j;
    *value = beta == T(0) ? T(0) : T(*value * beta);  // beta == 0 ignores C (may hold NaN)
  }
};

}  // namespace detail

/// The CUDA backend policy (see the file comment for the stream, memory and GEMM policies).
struct Cuda {
  static constexpr const char* kName = "cuda";
  static constexpr bool kHostAccessible = false;
  /// Accepted for the Backend interface and ignored: one launch covers all items.
  static constexpr int64_t kDefaultGrain = 16384;
  static constexpr int kThreadsPerBlock = 256;
  /// cuBLAS takes int extents; its strided-batched call is split into chunks of this many GEMMs.
  static constexpr int64_t kMaxGemmBatch = 65535;

  /// True when a CUDA device can be used (driver loaded, at least one device). Never throws.
  static bool is_available() noexcept {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return count > 0;
  }

  /// The stream every bindery kernel, copy and GEMM is queued on.
  static cudaStream_t stream() { return detail::cuda_context().stream; }
  /// The cuBLAS handle bound to stream() (created on first use).
  static cublasHandle_t cublas_handle() {
    static const cublasHandle_t handle = detail::make_cublas_handle();
    return handle;
  }
  /// The device bindery uses (the current device at first use).
  static int device() { return detail::cuda_context().device; }
  /// The device's name, e.g. "NVIDIA H100 80GB HBM3".
  static std::string device_name() {
    cudaDeviceProp properties{};
    detail::cuda_check(cudaGetDeviceProperties(&properties, device()), "cudaGetDeviceProperties");
    return properties.name;
  }

  /// Allows TF32 tensor cores in float GEMMs (off by default: full fp32, as CPU results).
  static void allow_tf32(bool allow) { tf32_.store(allow); }
  static bool tf32_allowed() { return tf32_.load(); }

  // ---- memory ---------------------------------------------------------------------------------

  /// n elements of device memory (at least one element, so the pointer is never null).
  template <class T>
  static T* allocate(int64_t n) {
    BINDERY_CHECK(n >= 0, ValueError, "Cuda::allocate: negative element count ", n);
    // n * sizeof(T) (plus alignment) must fit size_t: a wrapped product would allocate a small block.
    BINDERY_CHECK(static_cast<uint64_t>(n) <= (SIZE_MAX / 2) / sizeof(T), BackendError, "Cuda::allocate: ", n,
                  " elements of ", sizeof(T), " bytes exceed the address space");
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T);
    return static_cast<T*>(detail::cuda_context().allocator.allocate(bytes));
  }
  template <class T>
  static void deallocate(T* p) noexcept {
    detail::cuda_context().allocator.deallocate(static_cast<void*>(const_cast<std::remove_cv_t<T>*>(p)));
  }
  /// Frees every cached (unused) block back to CUDA.
  static void empty_cache() { detail::cuda_context().allocator.release(); }
  static detail::CudaMemoryStats memory_stats() { return detail::cuda_context().allocator.stats(); }

  /// host <- device, n elements; waits for the stream (the values are ready on return).
  template <class T>
  static void copy_to_host(T* host, const T* src, int64_t n) {
    if (n <= 0) return;
    detail::cuda_check(
        cudaMemcpyAsync(host, src, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost, stream()),
        "cudaMemcpyAsync (device to host)");
    detail::cuda_check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize after a device-to-host copy");
  }
  /// device <- host, n elements, queued on the stream. The host buffer may be released on return
  /// (CUDA stages pageable memory before returning).
  template <class T>
  static void copy_from_host(T* dst, const T* host, int64_t n) {
    if (n <= 0) return;
    detail::cuda_check(
        cudaMemcpyAsync(dst, host, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice, stream()),
        "cudaMemcpyAsync (host to device)");
  }
  /// device <- device, n elements, queued on the stream. Overlapping ranges are allowed (memmove
  /// semantics, as Cpu::copy): they go through a temporary block.
  template <class T>
  static void copy(T* dst, const T* src, int64_t n) {
    if (n <= 0 || dst == src) return;
    const size_t bytes = static_cast<size_t>(n) * sizeof(T);
    const bool overlap = dst < src + n && src < dst + n;
    if (!overlap) {
      detail::cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()),
                         "cudaMemcpyAsync (device to device)");
      return;
    }
    T* staging = allocate<T>(n);
    detail::cuda_check(cudaMemcpyAsync(staging, src, bytes, cudaMemcpyDeviceToDevice, stream()),
                       "cudaMemcpyAsync (device to device)");
    detail::cuda_check(cudaMemcpyAsync(dst, staging, bytes, cudaMemcpyDeviceToDevice, stream()),
                       "cudaMemcpyAsync (device to device)");
    deallocate(staging);  // reused only by work queued after these copies
  }
  /// Waits for everything queued on the stream; reports a fault of any kernel that ran.
  static void synchronize() { detail::cuda_check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize"); }

  // ---- loops ----------------------------------------------------------------------------------

  /// Calls f(i) for every i in [0, n) on the device: f is a BINDERY_HOST_DEVICE functor, copied by
  /// value into a grid-stride kernel. `grain` is ignored (it tunes CPU threading).
  template <class F>
  static void for_each(int64_t n, const F& f, int64_t grain = kDefaultGrain) {
    (void)grain;
    if (n <= 0) return;
    const int64_t blocks = std::min<int64_t>((n + kThreadsPerBlock - 1) / kThreadsPerBlock, max_blocks());
    const auto grid = static_cast<unsigned>(blocks);
    // A .hpp is formatted as C++, which would split the launch brackets.
    // clang-format off
    detail::cuda_for_each_kernel<<<grid, kThreadsPerBlock, 0, stream()>>>(n, f);
    // clang-format on
    detail::cuda_check(cudaGetLastError(), "for_each kernel launch");
  }
  /// Most blocks a grid-stride launch uses: enough to fill every multiprocessor many times over.
  static int64_t max_blocks() { return static_cast<int64_t>(detail::cuda_context().multiprocessors) * 32; }

  // ---- GEMM -----------------------------------------------------------------------------------

  /// Row-major C(M,N) = alpha op(A) op(B) + beta C with op(A): (M,K), op(B): (K,N) (cuBLAS).
  template <class T>
  static void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                   int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
    gemm_batched(trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
  }

  /// `batch` independent GEMMs; operand i starts at a + i*stride_a (a stride of 0 broadcasts).
  /// One cublasGemmStridedBatchedEx call (per kMaxGemmBatch GEMMs). T = bfloat16 or float16: 16-bit
  /// A, B and C on the tensor cores with float accumulation (alpha and beta applied in float).
  template <class T>
  static void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                           int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta,
                           T* c, int64_t ldc, int64_t stride_c, int64_t batch) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || is_16bit_float_v<T>,
                  "Cuda::gemm supports float, double, bfloat16 and float16");
    if (m <= 0 || n <= 0 || batch <= 0) return;
    if (k <= 0) {  // C = beta C
      for_each(batch * m * n, detail::CudaScaleMatrix<T>{c, n, ldc, stride_c, m * n, beta});
      return;
    }
    if constexpr (std::is_same_v<T, double>) {
      const double alpha_d = alpha, beta_d = beta;
      cublas_gemm(trans_a, trans_b, m, n, k, &alpha_d, a, CUDA_R_64F, lda, stride_a, b, CUDA_R_64F, ldb,
                  stride_b, &beta_d, c, CUDA_R_64F, ldc, stride_c, batch, CUBLAS_COMPUTE_64F);
    } else {
      const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
      const cudaDataType_t type = data_type<T>();
      const cublasComputeType_t compute =
          std::is_same_v<T, float> && tf32_allowed() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      cublas_gemm(trans_a, trans_b, m, n, k, &alpha_f, a, type, lda, stride_a, b, type, ldb, stride_b,
                  &beta_f, c, type, ldc, stride_c, batch, compute);
    }
  }

  /// Autocast's GEMM (see Cpu::gemm_batched_rounded): float A, B, C; A and B are rounded to `Low`
  /// (bfloat16 or float16) into scratch blocks, multiplied on the tensor cores with float accumulation
  /// into the float C.
  template <class Low>
  static void gemm_batched_rounded(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                   const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                                   int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
                                   int64_t batch) {
    static_assert(is_16bit_float_v<Low>, "gemm_batched_rounded rounds to bfloat16 or float16");
    if (m <= 0 || n <= 0 || batch <= 0) return;
    if (k <= 0) {
      for_each(batch * m * n, detail::CudaScaleMatrix<float>{c, n, ldc, stride_c, m * n, beta});
      return;
    }
    const int64_t span_a = detail::gemm_operand_span(trans_a, m, k, lda, stride_a, batch);
    const int64_t span_b = detail::gemm_operand_span(trans_b, k, n, ldb, stride_b, batch);
    Low* la = allocate<Low>(span_a);
    Low* lb = allocate<Low>(span_b);
    for_each(span_a, detail::ConvertThroughFloat<Low, float>{la, a});
    for_each(span_b, detail::ConvertThroughFloat<Low, float>{lb, b});
    cublas_gemm(trans_a, trans_b, m, n, k, &alpha, la, data_type<Low>(), lda, stride_a, lb, data_type<Low>(),
                ldb, stride_b, &beta, c, CUDA_R_32F, ldc, stride_c, batch, CUBLAS_COMPUTE_32F);
    deallocate(la);  // reused only by work queued after the GEMM
    deallocate(lb);
  }

 private:
  template <class T>
  static constexpr cudaDataType_t data_type() {
    if constexpr (std::is_same_v<T, float>) return CUDA_R_32F;
    if constexpr (std::is_same_v<T, double>) return CUDA_R_64F;
    if constexpr (std::is_same_v<T, bfloat16>) return CUDA_R_16BF;
    return CUDA_R_16F;
  }

  /// Row-major batched GEMM through cuBLAS's column-major API: C^T = op(B)^T op(A)^T, so the
  /// operands swap and keep their flags. alpha/beta point to the compute type's scalars.
  static void cublas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* alpha,
                          const void* a, cudaDataType_t type_a, int64_t lda, int64_t stride_a, const void* b,
                          cudaDataType_t type_b, int64_t ldb, int64_t stride_b, const void* beta, void* c,
                          cudaDataType_t type_c, int64_t ldc, int64_t stride_c, int64_t batch,
                          cublasComputeType_t compute) {
    for (int64_t value : {m, n, k, lda, ldb, ldc}) {
      BINDERY_CHECK(value <= INT_MAX, BackendError, "Cuda::gemm: extent or leading dimension ", value,
                    " exceeds cuBLAS's int range (m ", m, ", n ", n, ", k ", k, ")");
    }
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const size_t size_a = element_size(type_a), size_b = element_size(type_b), size_c = element_size(type_c);
    cublasHandle_t handle = cublas_handle();
    if (batch == 1) {
      detail::cublas_check(
          cublasGemmEx(handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
                       alpha, b, type_b, static_cast<int>(ldb), a, type_a, static_cast<int>(lda), beta, c,
                       type_c, static_cast<int>(ldc), compute, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
      return;
    }
    for (int64_t first = 0; first < batch; first += kMaxGemmBatch) {
      const int64_t count = std::min(kMaxGemmBatch, batch - first);
      detail::cublas_check(
          cublasGemmStridedBatchedEx(
              handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), alpha,
              static_cast<const char*>(b) + first * stride_b * static_cast<int64_t>(size_b), type_b,
              static_cast<int>(ldb), stride_b,
              static_cast<const char*>(a) + first * stride_a * static_cast<int64_t>(size_a), type_a,
              static_cast<int>(lda), stride_a, beta,
              static_cast<char*>(c) + first * stride_c * static_cast<int64_t>(size_c), type_c,
              static_cast<int>(ldc), stride_c, static_cast<int>(count), compute, CUBLAS_GEMM_DEFAULT),
          "cublasGemmStridedBatchedEx");
    }
  }

  static size_t element_size(cudaDataType_t type) {
    return type == CUDA_R_64F ? 8 : (type == CUDA_R_32F ? 4 : 2);
  }

  static inline std::atomic<bool> tf32_{false};
};

static_assert(Backend<Cuda>);

}  // namespace bindery

#endif  // BINDERY_COMPILING_CUDA
