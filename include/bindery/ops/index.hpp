// bindery/ops/index.hpp — integer indexing: index_select (rows of an axis by a 1-D index) and
// gather_rows (one row per sample: EOS-token pooling in the text encoder).
//
// Forward: gathers whole rows (contiguous runs of `inner` elements). Backward of index_select is a
// scatter-add: an index that repeats sends the sum of its gradients to one row. The Cpu kernel
// buckets the positions by target row (a counting sort) and lets each thread own whole target rows,
// so the sum is race-free and deterministic with no atomics.
//
// Indices are validated on the host before any kernel runs (one small copy for a device backend):
// an index outside [0, extent) throws IndexError naming the index value and the shape.
#pragma once

#include <algorithm>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/config.hpp"
#include "bindery/ops/shape.hpp"

namespace bindery::ops {

namespace detail {

/// out[o, j, k] = x[o, index[j], k], one element per item.
template <class T>
struct IndexGather {
  const T* x;
  const int64_t* index;
  T* out;
  int64_t m, n, inner;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t k = e % inner, row = e / inner, o = row / m, j = row - o * m;
    out[e] = x[(o * n + index[j]) * inner + k];
  }
};

/// dst[o, index[j], k] += src[o, j, k] for j in order: one item per (o, k) column, so no two items
/// write the same element (race-free and deterministic without atomics).
template <class T>
struct IndexScatterAddColumn {
  const int64_t* index;
  const T* src;
  T* dst;
  int64_t m, n, inner;
  BINDERY_HOST_DEVICE void operator()(int64_t item) const {
    const int64_t o = item / inner, k = item - o * inner;
    for (int64_t j = 0; j < m; ++j) dst[(o * n + index[j]) * inner + k] += src[(o * m + j) * inner + k];
  }
};

/// gather_rows: to[i, k] = from[i, index[i], k] (forward) or the reverse assignment (backward).
template <class T>
struct GatherRow {
  const T* from;
  const int64_t* index;
  T* to;
  int64_t length, dim;
  bool scatter;  // backward: to[i, index[i], k] = from[i, k]
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t i = e / dim, k = e - i * dim, row = (i * length + index[i]) * dim + k;
    if (scatter) {
      to[row] = from[e];
    } else {
      to[e] = from[row];
    }
  }
};

}  // namespace detail

/// index_select kernels: views of x as (outer, n, inner), of the result as (outer, m, inner).
/// Specialized per backend; the primary template is the portable kernel on B::for_each.
template <class B>
struct IndexSelectKernel {
  template <class T>
  static void gather(const T* x, const int64_t* index, int64_t m, T* out, int64_t outer, int64_t n,
                     int64_t inner) {
    B::for_each(outer * m * inner, detail::IndexGather<T>{x, index, out, m, n, inner});
  }
  template <class T>
  static void scatter_add(const int64_t* index, int64_t m, const T* src, T* dst, int64_t outer, int64_t n,
                          int64_t inner) {
    B::for_each(outer * inner, detail::IndexScatterAddColumn<T>{index, src, dst, m, n, inner},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(m, 1)));
  }
};

template <>
struct IndexSelectKernel<Cpu> {
  /// out[o, j, :] = x[o, index[j], :].
  template <class T>
  static void gather(const T* x, const int64_t* index, int64_t m, T* out, int64_t outer, int64_t n,
                     int64_t inner) {
    Cpu::for_each(
        outer * m,
        [=](int64_t row) {
          const int64_t o = row / m, j = row - o * m;
          const T* src = x + (o * n + index[j]) * inner;
          T* dst = out + row * inner;
          for (int64_t k = 0; k < inner; ++k) dst[k] = src[k];
        },
        std::max<int64_t>(1, Cpu::kDefaultGrain / std::max<int64_t>(inner, 1)));
  }

  /// dst[o, index[j], :] += src[o, j, :] for every j; repeated indices accumulate (in order of j).
  template <class T>
  static void scatter_add(const int64_t* index, int64_t m, const T* src, T* dst, int64_t outer, int64_t n,
                          int64_t inner) {
    // Counting sort of the positions j by target row: bucket t holds order[first[t] .. first[t+1]).
    std::vector<int64_t> first(static_cast<size_t>(n) + 1, 0);
    for (int64_t j = 0; j < m; ++j) ++first[static_cast<size_t>(index[j]) + 1];
    std::vector<int64_t> targets;  // the distinct target rows
    for (int64_t t = 0; t < n; ++t) {
      if (first[static_cast<size_t>(t) + 1] > 0) targets.push_back(t);
      first[static_cast<size_t>(t) + 1] += first[static_cast<size_t>(t)];
    }
    std::vector<int64_t> order(static_cast<size_t>(m));
    std::vector<int64_t> cursor(first.begin(), first.end() - 1);
    for (int64_t j = 0; j < m; ++j) order[static_cast<size_t>(cursor[static_cast<size_t>(index[j])]++)] = j;

    const int64_t distinct = static_cast<int64_t>(targets.size());
    if (distinct == 0) return;
    const int64_t* target_ptr = targets.data();
    const int64_t* first_ptr = first.data();
    const int64_t* order_ptr = order.data();
    const int64_t work_per_item = std::max<int64_t>(1, inner * (m / distinct));
    Cpu::for_each(
        outer * distinct,
        [=](int64_t item) {
          const int64_t o = item / distinct;
          const int64_t t = target_ptr[item - o * distinct];
          T* out = dst + (o * n + t) * inner;
          for (int64_t q = first_ptr[t]; q < first_ptr[t + 1]; ++q) {
            const T* in = src + (o * m + order_ptr[q]) * inner;
            for (int64_t k = 0; k < inner; ++k) out[k] += in[k];
          }
        },
        std::max<int64_t>(1, Cpu::kDefaultGrain / work_per_item));
  }
};

/// gather_rows kernels: x (N, L, D), index (N), result (N, D). Specialized per backend; the
/// primary template is the portable kernel on B::for_each.
template <class B>
struct GatherRowsKernel {
  template <class T>
  static void forward(const T* x, const int64_t* index, T* out, int64_t batch, int64_t length, int64_t dim) {
    if (dim > 0) B::for_each(batch * dim, detail::GatherRow<T>{x, index, out, length, dim, false});
  }
  template <class T>
  static void backward(const T* g, const int64_t* index, T* dx, int64_t batch, int64_t length, int64_t dim) {
    if (dim > 0) B::for_each(batch * dim, detail::GatherRow<T>{g, index, dx, length, dim, true});
  }
};

template <>
struct GatherRowsKernel<Cpu> {
  /// out[i, :] = x[i, index[i], :].
  template <class T>
  static void forward(const T* x, const int64_t* index, T* out, int64_t batch, int64_t length, int64_t dim) {
    Cpu::for_each(
        batch,
        [=](int64_t i) {
          const T* src = x + (i * length + index[i]) * dim;
          for (int64_t k = 0; k < dim; ++k) out[i * dim + k] = src[k];
        },
        std::max<int64_t>(1, Cpu::kDefaultGrain / std::max<int64_t>(dim, 1)));
  }
  /// dx[i, index[i], :] = g[i, :] on a zeroed dx (each sample owns its own row: no collisions).
  template <class T>
  static void backward(const T* g, const int64_t* index, T* dx, int64_t batch, int64_t length, int64_t dim) {
    Cpu::for_each(
        batch,
        [=](int64_t i) {
          T* dst = dx + (i * length + index[i]) * dim;
          for (int64_t k = 0; k < dim; ++k) dst[k] = g[i * dim + k];
        },
        std::max<int64_t>(1, Cpu::kDefaultGrain / std::max<int64_t>(dim, 1)));
  }
};

namespace detail {

/// Throws IndexError unless every index lies in [0, extent). `what` names the op and the operand.
template <class B>
void check_index_range(const Tensor<int64_t, B>& index, int64_t extent, const char* what, const Shape& shape,
                       int64_t axis) {
  const std::vector<int64_t> host = index.to_vector();
  for (size_t j = 0; j < host.size(); ++j) {
    BINDERY_CHECK(host[j] >= 0 && host[j] < extent, IndexError, what, ": index ", host[j], " at position ", j,
                  " is out of range [0, ", extent, ") for axis ", axis, " of shape ", shape);
  }
}

/// Splits `shape` around `axis` into (outer, extent, inner).
inline void split_index_axis(const Shape& shape, int64_t axis, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= shape[d];
  for (int64_t d = axis + 1; d < shape.rank(); ++d) inner *= shape[d];
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// Rows of `axis` picked by a 1-D index (repeats allowed):
/// x: (d0, .., n, .., dk), index: (m) -> (d0, .., m, .., dk) with y[.., j, ..] = x[.., index[j], ..].
template <class T, class B>
Tensor<T, B> index_select_forward(const Tensor<T, B>& x, int64_t axis, const Tensor<int64_t, B>& index) {
  const int64_t a = x.shape().normalize_axis(axis);
  BINDERY_CHECK(index.rank() == 1, ShapeError, "index_select: index of shape ", index.shape(),
                " must be 1-D (x of shape ", x.shape(), ")");
  detail::check_index_range(index, x.shape()[a], "index_select", x.shape(), a);
  Shape out_shape = x.shape();
  out_shape[a] = index.numel();
  Tensor<T, B> out = Tensor<T, B>::empty(out_shape);
  int64_t outer, inner;
  detail::split_index_axis(x.shape(), a, outer, inner);
  const Tensor<T, B> xc = x.contiguous();
  const Tensor<int64_t, B> ic = index.contiguous();
  IndexSelectKernel<B>::gather(xc.data(), ic.data(), index.numel(), out.data(), outer, x.shape()[a], inner);
  return out;
}

/// The adjoint of index_select: a zero tensor of `shape` with g's rows added at the indexed rows.
/// g: (d0, .., m, .., dk), index: (m) -> `shape` = (d0, .., n, .., dk). Indices are not re-checked.
template <class T, class B>
Tensor<T, B> index_add_forward(const Tensor<T, B>& g, int64_t axis, const Tensor<int64_t, B>& index,
                               const Shape& shape) {
  const int64_t a = shape.normalize_axis(axis);
  Tensor<T, B> out = Tensor<T, B>::zeros(shape);
  int64_t outer, inner;
  detail::split_index_axis(shape, a, outer, inner);
  const Tensor<T, B> gc = g.contiguous();
  const Tensor<int64_t, B> ic = index.contiguous();
  IndexSelectKernel<B>::scatter_add(ic.data(), index.numel(), gc.data(), out.data(), outer, shape[a], inner);
  return out;
}

/// One row per sample: x (N, L, D), index (N) -> (N, D) with y[n] = x[n, index[n]].
template <class T, class B>
Tensor<T, B> gather_rows_forward(const Tensor<T, B>& x, const Tensor<int64_t, B>& index) {
  BINDERY_CHECK(x.rank() == 3 && index.rank() == 1 && index.shape()[0] == x.shape()[0], ShapeError,
                "gather_rows: x of shape ", x.shape(), " must be (N, L, D) and index of shape ",
                index.shape(), " must be (N)");
  detail::check_index_range(index, x.shape()[1], "gather_rows", x.shape(), 1);
  Tensor<T, B> out = Tensor<T, B>::empty(Shape{x.shape()[0], x.shape()[2]});
  const Tensor<T, B> xc = x.contiguous();
  const Tensor<int64_t, B> ic = index.contiguous();
  GatherRowsKernel<B>::forward(xc.data(), ic.data(), out.data(), x.shape()[0], x.shape()[1], x.shape()[2]);
  return out;
}

// ---- differentiable ----------------------------------------------------------------------------

/// x: (d0, .., n, .., dk), index: (m) int64 -> (d0, .., m, .., dk); y[.., j, ..] = x[.., index[j], ..].
/// dL/dx = zeros with dL/dy's rows added at index (repeated indices accumulate).
template <class T, class B>
Var<T, B> index_select(const Var<T, B>& x, int64_t axis, const Tensor<int64_t, B>& index) {
  const int64_t a = x.shape().normalize_axis(axis);
  return make_result<T, B>(index_select_forward(x.value(), a, index), "index_select", {x},
                           [a, index, shape = x.shape()](const Tensor<T, B>& dL_dy) {
                             return std::vector{index_add_forward(dL_dy, a, index, shape)};
                           });
}

/// x: (N, L, D), index: (N) int64 -> (N, D); y[n] = x[n, index[n]] (the EOS token of each text).
/// dL/dx = zeros with dL/dy[n] written at (n, index[n]).
template <class T, class B>
Var<T, B> gather_rows(const Var<T, B>& x, const Tensor<int64_t, B>& index) {
  return make_result<T, B>(gather_rows_forward(x.value(), index), "gather_rows", {x},
                           [index = index.contiguous(), shape = x.shape()](const Tensor<T, B>& dL_dy) {
                             Tensor<T, B> dL_dx = Tensor<T, B>::zeros(shape);
                             const Tensor<T, B> g = dL_dy.contiguous();
                             GatherRowsKernel<B>::backward(g.data(), index.data(), dL_dx.data(), shape[0],
                                                           shape[1], shape[2]);
                             return std::vector{dL_dx};
                           });
}

}  // namespace bindery::ops
