// kernels/common.cuh — launch helpers shared by the CUDA op kernels.
//
// Two launch shapes cover every kernel in this folder:
// - Cuda::for_each(n, f): one thread per item (an element, a column, a query row).
// - launch_rows(rows, f): one warp per row; f(row, lanes) sees the 32 lanes of its warp through
//   a Lanes policy: lanes.count() lanes, this thread's lanes.index(), and warp-wide
//   lanes.sum(v) / lanes.max(v) (butterfly shuffles: every lane gets the result).
// A row functor is written once against that policy. SerialLanes (one lane, reductions are the
// identity) runs the same functor on the host, which is how tests/cuda/test_kernels_host.cu checks
// the kernels' arithmetic on a machine without a GPU.
//
// A third shape, for kernels that share data between the threads of a block (tiles staged in shared
// memory): launch_blocks(tiles, shared_bytes, f) runs f(block, tile) for every tile, one block of
// F::kThreads threads per tile. f is written against a Block policy as a sequence of PHASES:
// block.each(g) runs g(thread, registers) for every thread of the block, and block.sync() is the
// barrier that ends a phase. Everything a thread keeps across phases lives in its
// F::Registers (a plain struct); code outside each() is block-uniform (it sees no thread index), so
// every barrier is reached by every thread. DeviceBlock runs a phase as the thread itself; HostBlock
// (run_blocks_on_host) runs each phase for every thread of the block in turn, on host memory, and
// reports a phase that was not closed by a barrier. HostLaunch and CudaLaunch offer the three launch
// shapes behind one interface, so a kernel's whole schedule (which launches, with what scratch)
// runs on the host in tests exactly as on the device.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "bindery/backend/cuda.hpp"

namespace bindery::kernels {

/// Plain math helpers for host and device code (std::max is not a device function).
template <class T>
BINDERY_HOST_DEVICE inline T max_of(T a, T b) {
  return a > b ? a : b;
}
template <class T>
BINDERY_HOST_DEVICE inline T min_of(T a, T b) {
  return a < b ? a : b;
}
template <class T>
BINDERY_HOST_DEVICE inline T infinity_of() {
  return std::numeric_limits<T>::infinity();
}

/// The lanes of one warp, for launch_rows functors on the device.
struct WarpLanes {
  static constexpr int kCount = 32;
  BINDERY_HOST_DEVICE static constexpr int count() { return kCount; }
  __device__ int index() const { return static_cast<int>(threadIdx.x) & (kCount - 1); }
  template <class T>
  __device__ T sum(T v) const {
    for (int offset = kCount / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
  }
  template <class T>
  __device__ T max(T v) const {
    for (int offset = kCount / 2; offset > 0; offset /= 2)
      v = max_of(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
  }
};

/// One lane: the serial twin of WarpLanes, to run a row functor on the host.
struct SerialLanes {
  BINDERY_HOST_DEVICE static constexpr int count() { return 1; }
  BINDERY_HOST_DEVICE int index() const { return 0; }
  template <class T>
  BINDERY_HOST_DEVICE T sum(T v) const {
    return v;
  }
  template <class T>
  BINDERY_HOST_DEVICE T max(T v) const {
    return v;
  }
};

namespace detail {

template <class F>
__global__ void rows_kernel(int64_t rows, F f) {
  constexpr int kLanes = WarpLanes::kCount;
  const int64_t warps = static_cast<int64_t>(blockDim.x) * gridDim.x / kLanes;
  // Every lane of a warp sees the same row sequence, so the shuffles inside f are warp-uniform.
  for (int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kLanes; row < rows;
       row += warps) {
    f(row, WarpLanes{});
  }
}

}  // namespace detail

/// f(row, WarpLanes{}) for every row in [0, rows), one warp per row (grid-stride over rows).
template <class F>
void launch_rows(int64_t rows, const F& f) {
  if (rows <= 0) return;
  constexpr int kWarpsPerBlock = Cuda::kThreadsPerBlock / WarpLanes::kCount;
  const int64_t blocks = std::min<int64_t>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, Cuda::max_blocks());
  detail::rows_kernel<<<static_cast<unsigned>(blocks), Cuda::kThreadsPerBlock, 0, Cuda::stream()>>>(rows, f);
  bindery::detail::cuda_check(cudaGetLastError(), "row kernel launch");
}

/// f(row, SerialLanes{}) for every row, on the host: the serial reference of launch_rows.
template <class F>
void run_rows_on_host(int64_t rows, const F& f) {
  for (int64_t row = 0; row < rows; ++row) f(row, SerialLanes{});
}

/// f(i) for every i in [0, n), on the host: the serial reference of Cuda::for_each.
template <class F>
void run_items_on_host(int64_t n, const F& f) {
  for (int64_t i = 0; i < n; ++i) f(i);
}

/// A block of device scratch memory released at scope exit (stream order makes the release safe
/// while queued kernels still use it: see backend/cuda.hpp).
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t n) : data_(Cuda::allocate<T>(n)) {}
  ~DeviceBuffer() { Cuda::deallocate(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return data_; }

 private:
  T* data_;
};

// ---- block-level kernels ------------------------------------------------------------------------

/// One thread of a block on the device: each(g) is this thread's share of a phase.
template <class Registers>
struct DeviceBlock {
  void* shared_memory;
  Registers registers;
  BINDERY_HOST_DEVICE void* shared() const { return shared_memory; }
  template <class G>
  __device__ void each(const G& g) {
    g(static_cast<int>(threadIdx.x), registers);
  }
  __device__ void sync() { __syncthreads(); }
};

/// A whole block on the host: each(g) runs g for every thread in turn (in reverse order when
/// `reverse`, to expose a thread that reads shared memory another thread writes in the same phase).
template <class Registers>
struct HostBlock {
  void* shared_memory;
  Registers* registers;  // one per thread
  int threads;
  bool reverse;
  bool synced = true;  // the previous phase ended with a barrier
  bool missing_sync = false;
  int64_t phases = 0;
  BINDERY_HOST_DEVICE void* shared() const { return shared_memory; }
  template <class G>
  BINDERY_HOST_DEVICE void each(const G& g) {
    if (!synced) missing_sync = true;
    synced = false;
    ++phases;
    for (int n = 0; n < threads; ++n) {
      const int thread = reverse ? threads - 1 - n : n;
      g(thread, registers[thread]);
    }
  }
  BINDERY_HOST_DEVICE void sync() { synced = true; }
};

namespace detail {

template <class F>
__global__ void __launch_bounds__(F::kThreads, F::kMinBlocks) blocks_kernel(int64_t tiles, F f) {
  extern __shared__ __align__(16) unsigned char shared[];
  DeviceBlock<typename F::Registers> block{shared, {}};
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) f(block, tile);  // uniform per block
}

}  // namespace detail

/// Most dynamic shared memory one block may use on bindery's device (the opt-in limit).
inline size_t max_shared_bytes() {
  static const size_t bytes = [] {
    int value = 0;
    bindery::detail::cuda_check(
        cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, Cuda::device()),
        "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
    return static_cast<size_t>(value);
  }();
  return bytes;
}

/// f(block, tile) for every tile in [0, tiles): blocks of F::kThreads threads with shared_bytes of
/// dynamic shared memory each (grid-stride over tiles).
template <class F>
void launch_blocks(int64_t tiles, size_t shared_bytes, const F& f) {
  if (tiles <= 0) return;
  static std::atomic<size_t> configured{48 * 1024};  // above 48 KiB a kernel must opt in
  if (shared_bytes > configured.load()) {
    bindery::detail::cuda_check(
        cudaFuncSetAttribute(detail::blocks_kernel<F>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(shared_bytes)),
        "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
    configured.store(shared_bytes);
  }
  const int64_t blocks = std::min<int64_t>(tiles, Cuda::max_blocks());
  detail::blocks_kernel<<<static_cast<unsigned>(blocks), F::kThreads, shared_bytes, Cuda::stream()>>>(tiles,
                                                                                                      f);
  bindery::detail::cuda_check(cudaGetLastError(), "block kernel launch");
}

/// What run_blocks_on_host saw.
struct HostBlockReport {
  int64_t blocks = 0, phases = 0;
};

/// f(block, tile) for every tile, on the host: the serial reference of launch_blocks. Before each
/// tile, shared memory (and a guard zone past its end) and every thread's registers are filled with
/// 0xFF bytes (NaN for float and double), so a read of anything not written in this tile shows up
/// as NaN in the results. Throws std::logic_error when a phase is not closed by block.sync() or a
/// write lands past the end of shared memory.
template <class F>
HostBlockReport run_blocks_on_host(int64_t tiles, size_t shared_bytes, const F& f, bool reverse = false) {
  using Registers = typename F::Registers;
  static_assert(std::is_trivially_copyable_v<Registers>, "a block's registers must be plain data");
  constexpr size_t kGuard = 1024;
  std::vector<unsigned char> shared(shared_bytes + kGuard);
  std::vector<Registers> registers(static_cast<size_t>(F::kThreads));
  HostBlockReport report;
  for (int64_t tile = 0; tile < tiles; ++tile) {
    std::memset(shared.data(), 0xFF, shared.size());
    std::memset(static_cast<void*>(registers.data()), 0xFF, registers.size() * sizeof(Registers));
    HostBlock<Registers> block{shared.data(), registers.data(), F::kThreads, reverse};
    f(block, tile);
    if (block.missing_sync || !block.synced) {
      throw std::logic_error("run_blocks_on_host: a phase of the block was not closed by block.sync()");
    }
    for (size_t i = shared_bytes; i < shared.size(); ++i) {
      if (shared[i] != 0xFF)
        throw std::logic_error("run_blocks_on_host: a write past the end of shared memory");
    }
    ++report.blocks;
    report.phases += block.phases;
  }
  return report;
}

/// The launch shapes on the device, for schedules written against a Launch policy.
struct CudaLaunch {
  template <class T>
  using Scratch = DeviceBuffer<T>;
  template <class F>
  void items(int64_t n, const F& f) {
    Cuda::for_each(n, f);
  }
  template <class F>
  void rows(int64_t n, const F& f) {
    launch_rows(n, f);
  }
  template <class F>
  void blocks(int64_t tiles, size_t shared_bytes, const F& f) {
    launch_blocks(tiles, shared_bytes, f);
  }
  size_t shared_limit() const { return max_shared_bytes(); }
};

/// Host scratch memory, filled with NaN so that a read before a write shows.
template <class T>
class HostBuffer {
 public:
  explicit HostBuffer(int64_t n)
      : data_(static_cast<size_t>(std::max<int64_t>(n, 1)), std::numeric_limits<T>::quiet_NaN()) {}
  T* get() { return data_.data(); }

 private:
  std::vector<T> data_;
};

/// The same launch shapes run serially on the host (run_items_on_host, run_rows_on_host,
/// run_blocks_on_host), counting what was launched; `shared_bytes` plays the device's limit.
struct HostLaunch {
  template <class T>
  using Scratch = HostBuffer<T>;
  size_t shared_bytes = 227 * 1024;  // an H100's opt-in limit
  bool reverse_threads = false;
  int64_t item_launches = 0, row_launches = 0, block_launches = 0;
  HostBlockReport blocks_run;
  template <class F>
  void items(int64_t n, const F& f) {
    ++item_launches;
    run_items_on_host(n, f);
  }
  template <class F>
  void rows(int64_t n, const F& f) {
    ++row_launches;
    run_rows_on_host(n, f);
  }
  template <class F>
  void blocks(int64_t tiles, size_t bytes, const F& f) {
    if (bytes > shared_bytes)
      throw std::logic_error("HostLaunch: a block asks for more shared memory than the limit");
    ++block_launches;
    const HostBlockReport report = run_blocks_on_host(tiles, bytes, f, reverse_threads);
    blocks_run.blocks += report.blocks;
    blocks_run.phases += report.phases;
  }
  size_t shared_limit() const { return shared_bytes; }
};

}  // namespace bindery::kernels
