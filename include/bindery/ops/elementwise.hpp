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
struct MapStrided {
  T* out;
  const T* in;
  Indexer in_index;
  F f;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = f(in[in_index(i)]); }
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
struct ZipStrided {
  T* out;
  const T* a;
  const T* b;
  Indexer a_index, b_index;
  F f;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = f(a[a_index(i)], b[b_index(i)]); }
};

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
    B::for_each(x.numel(), detail::MapStrided<T, F>{out.data(), x.data(), index[0], f});
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
  B::for_each(out.numel(), detail::ZipStrided<T, F>{out.data(), a.data(), b.data(), index[0], index[1], f});
  return out;
}

}  // namespace bindery::ops
