// kernels/symmetric_cross_entropy.cuh — SymmetricCrossEntropyKernel<Cuda>: the fused InfoNCE
// loss of square logits (N, N) (ops/symmetric_cross_entropy.hpp has the math and the Cpu kernel).
//
// Forward, three launches, no transposed copy:
// - rows: one warp per row (launch_rows): max, then log Σ exp(x - max), lane-strided and coalesced.
// - columns, in two steps so that small N still fills the GPU: the rows are cut into `chunks`
//   chunks of chunk_rows; one thread per (chunk, column) streams down its chunk with an online
//   max / sum (neighbouring threads read neighbouring columns: every step is one coalesced load per
//   warp), then one thread per column merges its chunks' (max, sum) pairs and writes the column's
//   max, log-sum and the per-index loss term (the row pass has finished: same stream).
// Backward: one thread per logit, dx = g/(2N) (exp(x - lse_row_i) + exp(x - lse_col_j) - 2 δ_ij).
// Arithmetic in T, as the Cpu kernel; the online sum rescales where the max grows, so the column
// sums agree with the Cpu kernel's two-pass ones to rounding.
#pragma once

#include <cmath>

#include "bindery/ops/symmetric_cross_entropy.hpp"
#include "common.cuh"

namespace bindery::kernels {

/// How the column pass cuts the N rows: `chunks` chunks of `chunk_rows` rows (the last may be
/// shorter, none is empty): about kTargetThreads (chunk, column) threads, and chunks of at least
/// kMinRows rows (where N >= kMinRows) so the merge stays cheap.
struct SymmetricCrossEntropyChunks {
  static constexpr int64_t kTargetThreads = 65536, kMinRows = 16;
  int64_t chunks = 1, chunk_rows = 1;
};

inline SymmetricCrossEntropyChunks symmetric_cross_entropy_chunks(int64_t n) {
  using C = SymmetricCrossEntropyChunks;
  SymmetricCrossEntropyChunks c;
  if (n <= 0) return c;
  const int64_t most = max_of<int64_t>(n / C::kMinRows, 1);  // chunks of at least kMinRows rows
  c.chunks = min_of<int64_t>(max_of<int64_t>(C::kTargetThreads / n, 1), most);
  c.chunk_rows = (n + c.chunks - 1) / c.chunks;
  c.chunks = (n + c.chunk_rows - 1) / c.chunk_rows;  // drop chunks left empty by the rounding
  return c;
}

template <class T>
struct SymmetricCrossEntropyRows {  // one row of n logits per call (launch_rows)
  const T* logits;
  T* row_max;
  T* row_log_sum;
  int64_t n;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t i, Lanes lanes) const {
    const T* xr = logits + i * n;
    T max = -infinity_of<T>();
    for (int64_t j = lanes.index(); j < n; j += lanes.count()) max = max_of(max, xr[j]);
    max = lanes.max(max);
    T sum = T(0);
    for (int64_t j = lanes.index(); j < n; j += lanes.count()) sum += std::exp(xr[j] - max);
    sum = lanes.sum(sum);
    if (lanes.index() == 0) {
      row_max[i] = max;
      row_log_sum[i] = std::log(sum);
    }
  }
};

template <class T>
struct SymmetricCrossEntropyColumnPartials {  // item = chunk * n + column
  const T* logits;
  T* partial_max;  // (chunks, n)
  T* partial_sum;  // (chunks, n): Σ exp(x - partial_max) over the chunk's rows
  int64_t n, chunk_rows;
  BINDERY_HOST_DEVICE void operator()(int64_t item) const {
    const int64_t chunk = item / n, j = item - chunk * n;
    const int64_t begin = chunk * chunk_rows, end = min_of(begin + chunk_rows, n);
    T max = -infinity_of<T>(), sum = T(0);
    for (int64_t i = begin; i < end; ++i) {
      const T x = logits[i * n + j];
      if (x > max) {  // a new max: rescale what was summed (exp(-inf) = 0 the first time)
        sum = sum * std::exp(max - x) + T(1);
        max = x;
      } else if (x != -infinity_of<T>()) {  // -inf adds 0 (and -inf - -inf would be NaN); NaN passes
        sum += std::exp(x - max);
      }
    }
    partial_max[item] = max;
    partial_sum[item] = sum;
  }
};

template <class T>
struct SymmetricCrossEntropyColumnTotals {  // one column per call, after the row pass
  const T* logits;
  const T* partial_max;
  const T* partial_sum;
  const T* row_max;
  const T* row_log_sum;
  T* col_max;
  T* col_log_sum;
  T* terms;  // (n): (lse_row_k - l_kk) + (lse_col_k - l_kk)
  int64_t n, chunks;
  BINDERY_HOST_DEVICE void operator()(int64_t j) const {
    T max = -infinity_of<T>();
    for (int64_t k = 0; k < chunks; ++k) max = max_of(max, partial_max[k * n + j]);
    T sum = T(0);
    for (int64_t k = 0; k < chunks; ++k) {
      const T s = partial_sum[k * n + j];
      if (s != T(0)) sum += s * std::exp(partial_max[k * n + j] - max);  // skips chunks of only -inf
    }
    const T log_sum = std::log(sum), diagonal = logits[j * n + j];
    col_max[j] = max;
    col_log_sum[j] = log_sum;
    terms[j] = (row_log_sum[j] - (diagonal - row_max[j])) + (log_sum - (diagonal - max));
  }
};

template <class T>
struct SymmetricCrossEntropyBackward {  // one logit (i, j) per call
  const T* logits;
  const T* row_max;
  const T* row_log_sum;
  const T* col_max;
  const T* col_log_sum;
  const T* g;
  T g_scale;
  T* dx;
  int64_t n;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t i = e / n, j = e - i * n;
    const T scale = g[0] * g_scale, x = logits[e];
    T value =
        (std::exp((x - row_max[i]) - row_log_sum[i]) + std::exp((x - col_max[j]) - col_log_sum[j])) * scale;
    if (i == j) value -= T(2) * scale;
    dx[e] = value;
  }
};

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct SymmetricCrossEntropyKernel<Cuda> {
  template <class T>
  static void forward(const T* logits, T* row_max, T* row_log_sum, T* col_max, T* col_log_sum, T* terms,
                      int64_t n) {
    if (n <= 0) return;
    kernels::launch_rows(n, kernels::SymmetricCrossEntropyRows<T>{logits, row_max, row_log_sum, n});
    const kernels::SymmetricCrossEntropyChunks c = kernels::symmetric_cross_entropy_chunks(n);
    kernels::DeviceBuffer<T> partial(2 * c.chunks * n);
    T* partial_max = partial.get();
    T* partial_sum = partial.get() + c.chunks * n;
    Cuda::for_each(c.chunks * n, kernels::SymmetricCrossEntropyColumnPartials<T>{
                                     logits, partial_max, partial_sum, n, c.chunk_rows});
    Cuda::for_each(n, kernels::SymmetricCrossEntropyColumnTotals<T>{logits, partial_max, partial_sum, row_max,
                                                                    row_log_sum, col_max, col_log_sum, terms,
                                                                    n, c.chunks});
  }

  template <class T>
  static void backward(const T* logits, const T* row_max, const T* row_log_sum, const T* col_max,
                       const T* col_log_sum, const T* g, T g_scale, T* dx, int64_t n) {
    Cuda::for_each(n * n, kernels::SymmetricCrossEntropyBackward<T>{logits, row_max, row_log_sum, col_max,
                                                                    col_log_sum, g, g_scale, dx, n});
  }
};

}  // namespace bindery::ops
