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
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

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

}  // namespace bindery::kernels
