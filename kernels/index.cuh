// kernels/index.cuh — IndexSelectKernel<Cuda> and GatherRowsKernel<Cuda> (ops/index.hpp).
//
// Gathers: one thread per output element. The scatter-add (backward of index_select and
// embedding) is deterministic, as on the Cpu: the positions are bucketed by target row with a
// counting sort on the host (the index is copied there once: m integers), the buckets are uploaded,
// and one thread per (outer, target row, column) adds its bucket's rows in order, so every output
// element has exactly one writer and no atomics decide the summation order.
#pragma once

#include <vector>

#include "bindery/ops/index.hpp"
#include "common.cuh"

namespace bindery::kernels {

template <class T>
struct IndexGather {  // out[o, j, k] = x[o, index[j], k]; one element per call
  const T* x;
  const int64_t* index;
  T* out;
  int64_t m, n, inner;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t row = e / inner, k = e - row * inner;
    const int64_t o = row / m, j = row - o * m;
    out[e] = x[(o * n + index[j]) * inner + k];
  }
};

template <class T>
struct IndexScatterAddSorted {  // dst[o, t, k] += src[o, j, k] over the bucket of t, in order of j
  const int64_t* targets;       // (distinct) target rows
  const int64_t* first;         // (n + 1) bucket starts in `order`
  const int64_t* order;         // (m) positions j, grouped by target row
  const T* src;
  T* dst;
  int64_t m, n, inner, distinct;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t item = e / inner, k = e - item * inner;
    const int64_t o = item / distinct, t = targets[item - o * distinct];
    T* out = dst + (o * n + t) * inner + k;
    T sum = *out;
    for (int64_t q = first[t]; q < first[t + 1]; ++q) sum += src[(o * m + order[q]) * inner + k];
    *out = sum;
  }
};

template <class T>
struct GatherRowsForward {  // out[i, k] = x[i, index[i], k]
  const T* x;
  const int64_t* index;
  T* out;
  int64_t length, dim;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t i = e / dim, k = e - i * dim;
    out[e] = x[(i * length + index[i]) * dim + k];
  }
};

template <class T>
struct GatherRowsBackward {  // dx[i, index[i], k] = g[i, k] on a zeroed dx
  const T* g;
  const int64_t* index;
  T* dx;
  int64_t length, dim;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t i = e / dim, k = e - i * dim;
    dx[(i * length + index[i]) * dim + k] = g[e];
  }
};

/// The counting sort of the scatter-add: bucket t holds order[first[t] .. first[t+1]).
struct ScatterBuckets {
  std::vector<int64_t> first, targets, order;
};

/// Buckets the positions j of `index` (host values in [0, n)) by target row. An index outside
/// [0, n) throws IndexError (the ops check indices before; this keeps the host loop in bounds).
inline ScatterBuckets bucket_by_target(const std::vector<int64_t>& index, int64_t n) {
  ScatterBuckets b;
  const int64_t m = static_cast<int64_t>(index.size());
  for (int64_t j = 0; j < m; ++j) {
    const int64_t t = index[static_cast<size_t>(j)];
    BINDERY_CHECK(t >= 0 && t < n, IndexError, "scatter_add: index ", t, " at position ", j,
                  " is out of range [0, ", n, ")");
  }
  b.first.assign(static_cast<size_t>(n) + 1, 0);
  for (int64_t j = 0; j < m; ++j) ++b.first[static_cast<size_t>(index[static_cast<size_t>(j)]) + 1];
  for (int64_t t = 0; t < n; ++t) {
    if (b.first[static_cast<size_t>(t) + 1] > 0) b.targets.push_back(t);
    b.first[static_cast<size_t>(t) + 1] += b.first[static_cast<size_t>(t)];
  }
  b.order.assign(static_cast<size_t>(m), 0);
  std::vector<int64_t> cursor(b.first.begin(), b.first.end() - 1);
  for (int64_t j = 0; j < m; ++j) {
    b.order[static_cast<size_t>(cursor[static_cast<size_t>(index[static_cast<size_t>(j)])]++)] = j;
  }
  return b;
}

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct IndexSelectKernel<Cuda> {
  template <class T>
  static void gather(const T* x, const int64_t* index, int64_t m, T* out, int64_t outer, int64_t n,
                     int64_t inner) {
    Cuda::for_each(outer * m * inner, kernels::IndexGather<T>{x, index, out, m, n, inner});
  }

  template <class T>
  static void scatter_add(const int64_t* index, int64_t m, const T* src, T* dst, int64_t outer, int64_t n,
                          int64_t inner) {
    if (m == 0 || outer == 0 || inner == 0) return;
    std::vector<int64_t> host(static_cast<size_t>(m));
    Cuda::copy_to_host(host.data(), index, m);
    const kernels::ScatterBuckets buckets = kernels::bucket_by_target(host, n);
    const int64_t distinct = static_cast<int64_t>(buckets.targets.size());
    kernels::DeviceBuffer<int64_t> first(n + 1), targets(distinct), order(m);
    Cuda::copy_from_host(first.get(), buckets.first.data(), n + 1);
    Cuda::copy_from_host(targets.get(), buckets.targets.data(), distinct);
    Cuda::copy_from_host(order.get(), buckets.order.data(), m);
    Cuda::for_each(outer * distinct * inner,
                   kernels::IndexScatterAddSorted<T>{targets.get(), first.get(), order.get(), src, dst, m, n,
                                                     inner, distinct});
  }
};

template <>
struct GatherRowsKernel<Cuda> {
  template <class T>
  static void forward(const T* x, const int64_t* index, T* out, int64_t batch, int64_t length, int64_t dim) {
    Cuda::for_each(batch * dim, kernels::GatherRowsForward<T>{x, index, out, length, dim});
  }
  template <class T>
  static void backward(const T* g, const int64_t* index, T* dx, int64_t batch, int64_t length, int64_t dim) {
    Cuda::for_each(batch * dim, kernels::GatherRowsBackward<T>{g, index, dx, length, dim});
  }
};

}  // namespace bindery::ops
