// bindery/ops/elementwise.hpp — apply a functor over tensors: map (unary) and zip (binary with
// broadcasting). The loops themselves belong to the backend (B::for_each); this file only decides
// between the flat path (everything contiguous, same shape) and the strided one (Indexers).
#pragma once

#include "bindery/core/tensor.hpp"
#include "bindery/ops/functors.hpp"

namespace bindery::ops {

namespace detail {

template <class T, class F>
struct MapFlat {
  T* out;
  const T* in;
  F f;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = f(in[i]); }
};
template <class T, class F>
struct MapStrided {  // one row per call: the index divisions are paid once per row
  T* out;
  const T* in;
  RowIndexer in_rows;
  F f;
  BINDERY_HOST_DEVICE void operator()(int64_t row) const {
    T* o = out + row * in_rows.inner;
    const T* x = in + in_rows.outer(row);
    for (int64_t j = 0; j < in_rows.inner; ++j) o[j] = f(x[j * in_rows.inner_stride]);
  }
};
template <class T, class F>
struct ZipFlat {
  T* out;
  const T* a;
  const T* b;
  F f;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = f(a[i], b[i]); }
};
template <class T, class F>
struct ZipStrided {  // one row per call; a broadcast operand has inner stride 0
  T* out;
  const T* a;
  const T* b;
  RowIndexer a_rows, b_rows;
  F f;
  BINDERY_HOST_DEVICE void operator()(int64_t row) const {
    T* o = out + row * a_rows.inner;
    const T* x = a + a_rows.outer(row);
    const T* y = b + b_rows.outer(row);
    const int64_t sa = a_rows.inner_stride, sb = b_rows.inner_stride;
    if (sa == 1 && sb == 1) {
      for (int64_t j = 0; j < a_rows.inner; ++j) o[j] = f(x[j], y[j]);
    } else if (sa == 1 && sb == 0) {
      const T y0 = y[0];
      for (int64_t j = 0; j < a_rows.inner; ++j) o[j] = f(x[j], y0);
    } else {
      for (int64_t j = 0; j < a_rows.inner; ++j) o[j] = f(x[j * sa], y[j * sb]);
    }
  }
};

template <class T, class F>
struct MapStrided1D {  // a view whose axes merge into one: x[i * stride]
  T* out;
  const T* in;
  int64_t stride;
  F f;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = f(in[i * stride]); }
};

template <class T, class F>
struct ZipStrided1D {  // operands whose axes merge into one (e.g. a scalar broadcast: stride 0)
  T* out;
  const T* a;
  const T* b;
  int64_t stride_a, stride_b;
  F f;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = f(a[i * stride_a], b[i * stride_b]); }
};

/// Row-count and grain for a row-wise kernel over `numel` elements in rows of `inner`.
inline void row_launch(int64_t numel, int64_t inner, int64_t& rows, int64_t& grain, int64_t default_grain) {
  inner = inner > 0 ? inner : 1;
  rows = numel / inner;
  grain = default_grain / inner > 1 ? default_grain / inner : 1;
}

}  // namespace detail

/// y[i] = f(x[i]): a new contiguous tensor of x's shape.
template <class T, class B, class F>
Tensor<T, B> map(const Tensor<T, B>& x, F f) {
  Tensor<T, B> out = Tensor<T, B>::empty(x.shape());
  if (x.is_contiguous()) {
    B::for_each(x.numel(), detail::MapFlat<T, F>{out.data(), x.data(), f});
  } else {
    const Strides* strides[1] = {&x.strides()};
    Indexer index[1];
    make_indexers(x.shape(), strides, index);
    if (index[0].rank <= 1) {  // one merged axis: element-parallel, no index arithmetic
      const int64_t stride = index[0].rank == 1 ? index[0].strides[0] : 0;
      B::for_each(x.numel(), detail::MapStrided1D<T, F>{out.data(), x.data(), stride, f});
      return out;
    }
    const RowIndexer rows_index = split_rows(index[0]);
    int64_t rows = 0, grain = 1;
    detail::row_launch(x.numel(), rows_index.inner, rows, grain, B::kDefaultGrain);
    B::for_each(rows, detail::MapStrided<T, F>{out.data(), x.data(), rows_index, f}, grain);
  }
  return out;
}

/// out[i] = f(a[i], b[i]) with NumPy broadcasting: a new contiguous tensor of the broadcast shape.
template <class T, class B, class F>
Tensor<T, B> zip(const Tensor<T, B>& a, const Tensor<T, B>& b, F f) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape());
  Tensor<T, B> out = Tensor<T, B>::empty(shape);
  if (a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()) {
    B::for_each(out.numel(), detail::ZipFlat<T, F>{out.data(), a.data(), b.data(), f});
    return out;
  }
  const Tensor<T, B> a_view = a.expand(shape), b_view = b.expand(shape);
  const Strides* strides[2] = {&a_view.strides(), &b_view.strides()};
  Indexer index[2];
  make_indexers(shape, strides, index);
  if (index[0].rank <= 1) {  // one merged axis: element-parallel, no index arithmetic
    const int64_t sa = index[0].rank == 1 ? index[0].strides[0] : 0;
    const int64_t sb = index[1].rank == 1 ? index[1].strides[0] : 0;
    B::for_each(out.numel(), detail::ZipStrided1D<T, F>{out.data(), a.data(), b.data(), sa, sb, f});
    return out;
  }
  const RowIndexer a_rows = split_rows(index[0]), b_rows = split_rows(index[1]);
  int64_t rows = 0, grain = 1;
  detail::row_launch(out.numel(), a_rows.inner, rows, grain, B::kDefaultGrain);
  B::for_each(rows, detail::ZipStrided<T, F>{out.data(), a.data(), b.data(), a_rows, b_rows, f}, grain);
  return out;
}

}  // namespace bindery::ops
