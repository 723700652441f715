// kernels/softmax.cuh — SoftmaxKernel<Cuda>: softmax / log_softmax along one axis.
//
// Data seen as (outer, len, inner) around the axis, as the Cpu kernel (ops/softmax.hpp).
// - inner == 1 (the last axis): one warp per row; max, then Σ exp(x - max), by lane-strided loops
//   and warp reductions; reads are coalesced along the row.
// - inner > 1: one thread per column (o, i); neighbouring threads read neighbouring columns, so
//   each step of the loop over len is one coalesced load for the warp.
// Same arithmetic as the Cpu kernel, in T: y = exp(x - max) / Σ, log y = (x - max) - log Σ.
#pragma once

#include <cmath>

#include "bindery/ops/softmax.hpp"
#include "common.cuh"

namespace bindery::kernels {

template <class T>
struct SoftmaxRows {  // one row of len contiguous elements per call
  const T* x;
  T* y;
  int64_t len;
  bool log;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t row, Lanes lanes) const {
    const T* xr = x + row * len;
    T* yr = y + row * len;
    T max = -infinity_of<T>();
    for (int64_t j = lanes.index(); j < len; j += lanes.count()) max = max_of(max, xr[j]);
    max = lanes.max(max);
    T sum = T(0);
    for (int64_t j = lanes.index(); j < len; j += lanes.count()) sum += std::exp(xr[j] - max);
    sum = lanes.sum(sum);
    if (log) {
      const T log_sum = std::log(sum);
      for (int64_t j = lanes.index(); j < len; j += lanes.count()) yr[j] = (xr[j] - max) - log_sum;
    } else {
      const T inverse = T(1) / sum;
      for (int64_t j = lanes.index(); j < len; j += lanes.count()) yr[j] = std::exp(xr[j] - max) * inverse;
    }
  }
};

template <class T>
struct SoftmaxColumns {  // one column (o, i) of len elements `inner` apart per call
  const T* x;
  T* y;
  int64_t len, inner;
  bool log;
  BINDERY_HOST_DEVICE void operator()(int64_t column) const {
    const int64_t o = column / inner, i = column - o * inner;
    const T* xc = x + o * len * inner + i;
    T* yc = y + o * len * inner + i;
    T max = -infinity_of<T>();
    for (int64_t j = 0; j < len; ++j) max = max_of(max, xc[j * inner]);
    T sum = T(0);
    for (int64_t j = 0; j < len; ++j) sum += std::exp(xc[j * inner] - max);
    if (log) {
      const T log_sum = std::log(sum);
      for (int64_t j = 0; j < len; ++j) yc[j * inner] = (xc[j * inner] - max) - log_sum;
    } else {
      const T inverse = T(1) / sum;
      for (int64_t j = 0; j < len; ++j) yc[j * inner] = std::exp(xc[j * inner] - max) * inverse;
    }
  }
};

template <class T>
struct SoftmaxBackwardRows {  // dx = y (dy - Σ dy y), or for log: dx = dy - exp(y) Σ dy
  const T* y;
  const T* dy;
  T* dx;
  int64_t len;
  bool log;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t row, Lanes lanes) const {
    const T* yr = y + row * len;
    const T* gr = dy + row * len;
    T* dxr = dx + row * len;
    T total = T(0);
    for (int64_t j = lanes.index(); j < len; j += lanes.count()) total += log ? gr[j] : gr[j] * yr[j];
    total = lanes.sum(total);
    for (int64_t j = lanes.index(); j < len; j += lanes.count()) {
      dxr[j] = log ? gr[j] - std::exp(yr[j]) * total : yr[j] * (gr[j] - total);
    }
  }
};

template <class T>
struct SoftmaxBackwardColumns {
  const T* y;
  const T* dy;
  T* dx;
  int64_t len, inner;
  bool log;
  BINDERY_HOST_DEVICE void operator()(int64_t column) const {
    const int64_t o = column / inner, i = column - o * inner;
    const int64_t base = o * len * inner + i;
    T total = T(0);
    for (int64_t j = 0; j < len; ++j) {
      const int64_t e = base + j * inner;
      total += log ? dy[e] : dy[e] * y[e];
    }
    for (int64_t j = 0; j < len; ++j) {
      const int64_t e = base + j * inner;
      dx[e] = log ? dy[e] - std::exp(y[e]) * total : y[e] * (dy[e] - total);
    }
  }
};

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct SoftmaxKernel<Cuda> {
  template <class T>
  static void forward(const T* x, T* y, int64_t outer, int64_t len, int64_t inner, bool log) {
    if (len == 0) return;
    if (inner == 1) {
      kernels::launch_rows(outer, kernels::SoftmaxRows<T>{x, y, len, log});
    } else {
      Cuda::for_each(outer * inner, kernels::SoftmaxColumns<T>{x, y, len, inner, log});
    }
  }

  template <class T>
  static void backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t len, int64_t inner, bool log) {
    if (len == 0) return;
    if (inner == 1) {
      kernels::launch_rows(outer, kernels::SoftmaxBackwardRows<T>{y, dy, dx, len, log});
    } else {
      Cuda::for_each(outer * inner, kernels::SoftmaxBackwardColumns<T>{y, dy, dx, len, inner, log});
    }
  }
};

}  // namespace bindery::ops
