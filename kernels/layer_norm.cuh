// kernels/layer_norm.cuh — LayerNormKernel<Cuda>: layer norm over the last axis, forward and backward.
//
// Forward: one warp per row (two passes over the row: mean, then the biased variance), rstd in
// double as the Cpu kernel, then y = (x - μ) rstd ∘ w + b.
// Backward:
// - dx: one warp per row, dx = rstd (g - mean(g) - x̂ mean(g ∘ x̂)) with g = dy ∘ w.
// - dw, db: the Cpu kernel's deterministic scheme on the device: one thread per (row chunk, column)
//   accumulates its chunk in double, then one thread per column adds the chunks in order. The chunk
//   split is the Cpu kernel's (at most kMaxChunks chunks), so both backends sum in the same order.
#pragma once

#include <cmath>

#include "bindery/ops/layer_norm.hpp"
#include "common.cuh"

namespace bindery::kernels {

template <class T>
struct LayerNormForwardRows {
  const T* x;
  const T* weight;  // or null
  const T* bias;    // or null
  T* y;
  T* mean;
  T* rstd;
  int64_t d;
  double eps;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t row, Lanes lanes) const {
    const T* xr = x + row * d;
    T* yr = y + row * d;
    T sum = T(0);
    for (int64_t j = lanes.index(); j < d; j += lanes.count()) sum += xr[j];
    const T mu = d > 0 ? lanes.sum(sum) / static_cast<T>(d) : T(0);
    T squares = T(0);
    for (int64_t j = lanes.index(); j < d; j += lanes.count()) squares += (xr[j] - mu) * (xr[j] - mu);
    const T var = d > 0 ? lanes.sum(squares) / static_cast<T>(d) : T(0);
    const T inv = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
    if (lanes.index() == 0) {
      mean[row] = mu;
      rstd[row] = inv;
    }
    for (int64_t j = lanes.index(); j < d; j += lanes.count()) {
      T v = (xr[j] - mu) * inv;
      if (weight != nullptr) v *= weight[j];
      if (bias != nullptr) v += bias[j];
      yr[j] = v;
    }
  }
};

template <class T>
struct LayerNormBackwardRows {  // dx of one row
  const T* dy;
  const T* x;
  const T* mean;
  const T* rstd;
  const T* weight;  // or null
  T* dx;
  int64_t d;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t row, Lanes lanes) const {
    const T* xr = x + row * d;
    const T* gr = dy + row * d;
    const T mu = mean[row], inv = rstd[row];
    T sum_g = T(0), sum_gx = T(0);
    for (int64_t j = lanes.index(); j < d; j += lanes.count()) {
      const T g = weight != nullptr ? gr[j] * weight[j] : gr[j];
      sum_g += g;
      sum_gx += g * ((xr[j] - mu) * inv);
    }
    const T inv_d = T(1) / static_cast<T>(d);
    const T mean_g = lanes.sum(sum_g) * inv_d, mean_gx = lanes.sum(sum_gx) * inv_d;
    for (int64_t j = lanes.index(); j < d; j += lanes.count()) {
      const T g = weight != nullptr ? gr[j] * weight[j] : gr[j];
      const T xhat = (xr[j] - mu) * inv;
      dx[row * d + j] = (g - mean_g - xhat * mean_gx) * inv;
    }
  }
};

template <class T>
struct LayerNormColumnPartials {  // partial[chunk][0 = dw, 1 = db][j] over the chunk's rows, in double
  const T* dy;
  const T* x;
  const T* mean;
  const T* rstd;
  double* partial;
  int64_t rows, d, chunk_rows;
  BINDERY_HOST_DEVICE void operator()(int64_t item) const {
    const int64_t chunk = item / d, j = item - chunk * d;
    const int64_t first = chunk * chunk_rows;
    const int64_t end = min_of(rows, first + chunk_rows);
    double sum_w = 0.0, sum_b = 0.0;
    for (int64_t r = first; r < end; ++r) {
      const T g = dy[r * d + j];
      const T xhat = (x[r * d + j] - mean[r]) * rstd[r];
      sum_w += static_cast<double>(g) * static_cast<double>(xhat);
      sum_b += static_cast<double>(g);
    }
    partial[chunk * 2 * d + j] = sum_w;
    partial[chunk * 2 * d + d + j] = sum_b;
  }
};

template <class T>
struct LayerNormColumnTotals {  // dweight[j], dbias[j] = the chunks' partial sums, added in order
  const double* partial;
  T* dweight;  // or null
  T* dbias;    // or null
  int64_t chunks, d;
  BINDERY_HOST_DEVICE void operator()(int64_t j) const {
    double w = 0.0, b = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      w += partial[chunk * 2 * d + j];
      b += partial[chunk * 2 * d + d + j];
    }
    if (dweight != nullptr) dweight[j] = static_cast<T>(w);
    if (dbias != nullptr) dbias[j] = static_cast<T>(b);
  }
};

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct LayerNormKernel<Cuda> {
  static constexpr int64_t kMaxChunks = LayerNormKernel<Cpu>::kMaxChunks;

  template <class T>
  static void forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd, int64_t rows,
                      int64_t d, double eps) {
    kernels::launch_rows(rows, kernels::LayerNormForwardRows<T>{x, weight, bias, y, mean, rstd, d, eps});
  }

  template <class T>
  static void backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* weight, T* dx,
                       T* dweight, T* dbias, int64_t rows, int64_t d) {
    if (dx != nullptr && d > 0) {
      kernels::launch_rows(rows, kernels::LayerNormBackwardRows<T>{dy, x, mean, rstd, weight, dx, d});
    }
    if ((dweight == nullptr && dbias == nullptr) || d == 0) return;
    const int64_t chunks = std::min<int64_t>(rows, kMaxChunks);
    if (chunks == 0) {  // no rows: the column sums are zero
      Cuda::for_each(d, kernels::LayerNormColumnTotals<T>{nullptr, dweight, dbias, 0, d});
      return;
    }
    const int64_t chunk_rows = (rows + chunks - 1) / chunks;
    kernels::DeviceBuffer<double> partial(chunks * 2 * d);
    Cuda::for_each(chunks * d, kernels::LayerNormColumnPartials<T>{dy, x, mean, rstd, partial.get(), rows, d,
                                                                   chunk_rows});
    Cuda::for_each(d, kernels::LayerNormColumnTotals<T>{partial.get(), dweight, dbias, chunks, d});
  }
};

}  // namespace bindery::ops
