// kernels/cross_entropy.cuh — CrossEntropyKernel<Cuda>: fused log_softmax + NLL with label smoothing.
//
// Forward: the targets are range-checked on the host first (one copy of N integers, as the op's
// contract asks for the first bad row), then one warp per row computes max, log Σ exp(x - max) and
// the loss, with the Cpu kernel's arithmetic (ops/cross_entropy.hpp).
// Backward: one thread per logit, dx = g_i (exp(x - max - log_sum) - q).
#pragma once

#include <cmath>
#include <vector>

#include "bindery/ops/cross_entropy.hpp"
#include "common.cuh"

namespace bindery::kernels {

template <class T>
struct CrossEntropyRows {
  const T* logits;
  const int64_t* targets;
  T* loss;
  T* row_max;
  T* log_sum;
  int64_t c;
  T keep, spread;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t i, Lanes lanes) const {
    const T* xr = logits + i * c;
    T max = -infinity_of<T>();
    for (int64_t j = lanes.index(); j < c; j += lanes.count()) max = max_of(max, xr[j]);
    max = lanes.max(max);
    T sum = T(0), shifted = T(0);
    for (int64_t j = lanes.index(); j < c; j += lanes.count()) {
      sum += std::exp(xr[j] - max);
      shifted += xr[j] - max;
    }
    const T ls = std::log(lanes.sum(sum));
    shifted = lanes.sum(shifted);
    if (lanes.index() == 0) {
      row_max[i] = max;
      log_sum[i] = ls;
      // lse - keep x_t - spread Σx, with every logit shifted by max (keep + spread C = 1)
      T value = ls - keep * (xr[targets[i]] - max);
      if (spread != T(0)) value -= spread * shifted;
      loss[i] = value;
    }
  }
};

template <class T>
struct CrossEntropyBackward {  // one logit (i, j) per call
  const T* logits;
  const int64_t* targets;
  const T* row_max;
  const T* log_sum;
  const T* g;
  int64_t g_stride;
  T g_scale;
  T* dx;
  int64_t c;
  T keep, spread;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t i = e / c, j = e - i * c;
    const T gi = g[i * g_stride] * g_scale;
    T value = std::exp((logits[e] - row_max[i]) - log_sum[i]) * gi - spread * gi;
    if (j == targets[i]) value -= keep * gi;
    dx[e] = value;
  }
};

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct CrossEntropyKernel<Cuda> {
  template <class T>
  static int64_t forward(const T* logits, const int64_t* targets, T* loss, T* row_max, T* log_sum, int64_t n,
                         int64_t c, double smoothing) {
    std::vector<int64_t> host(static_cast<size_t>(n));
    Cuda::copy_to_host(host.data(), targets, n);
    for (int64_t i = 0; i < n; ++i) {
      if (host[static_cast<size_t>(i)] < 0 || host[static_cast<size_t>(i)] >= c) return i;
    }
    const T keep = static_cast<T>(1.0 - smoothing),
            spread = static_cast<T>(smoothing / static_cast<double>(c));
    kernels::launch_rows(
        n, kernels::CrossEntropyRows<T>{logits, targets, loss, row_max, log_sum, c, keep, spread});
    return -1;
  }

  template <class T>
  static void backward(const T* logits, const int64_t* targets, const T* row_max, const T* log_sum,
                       const T* g, int64_t g_stride, T g_scale, T* dx, int64_t n, int64_t c,
                       double smoothing) {
    const T keep = static_cast<T>(1.0 - smoothing),
            spread = static_cast<T>(smoothing / static_cast<double>(c));
    Cuda::for_each(n * c, kernels::CrossEntropyBackward<T>{logits, targets, row_max, log_sum, g, g_stride,
                                                           g_scale, dx, c, keep, spread});
  }
};

}  // namespace bindery::ops
