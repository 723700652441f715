// bindery/ops/shape.hpp — differentiable views: reshape, permute, transpose, slice, select, expand,
// unsqueeze, squeeze, flatten, contiguous.
//
// Forward: the Tensor view (no copy). Backward: the adjoint view — reshape back, inverse permute,
// scatter into zeros for slice/select, sum_to_shape for expand.
#pragma once

#include <numeric>

#include "bindery/ops/reduce.hpp"

namespace bindery::ops {

/// x: any shape -> `dims` (one extent may be -1). dL/dx = dL/dy reshaped back.
template <class T, class B>
Var<T, B> reshape(const Var<T, B>& x, std::vector<int64_t> dims) {
  return make_result<T, B>(
      x.value().reshape(std::move(dims)), "reshape", {x},
      [shape = x.shape()](const Tensor<T, B>& dL_dy) { return std::vector{dL_dy.reshape(shape)}; });
}

/// Merges axes [start, end] into one.
template <class T, class B>
Var<T, B> flatten(const Var<T, B>& x, int64_t start = 0, int64_t end = -1) {
  return reshape(x, x.value().flatten(start, end).shape());
}

/// Reorders axes. dL/dx = dL/dy permuted by the inverse order.
template <class T, class B>
Var<T, B> permute(const Var<T, B>& x, const std::vector<int64_t>& order) {
  Tensor<T, B> y = x.value().permute(order);
  std::vector<int64_t> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    inverse[static_cast<size_t>(x.shape().normalize_axis(order[i]))] = static_cast<int64_t>(i);
  }
  return make_result<T, B>(y, "permute", {x}, [inverse](const Tensor<T, B>& dL_dy) {
    return std::vector{dL_dy.permute(inverse)};
  });
}

/// Swaps two axes (its own inverse).
template <class T, class B>
Var<T, B> transpose(const Var<T, B>& x, int64_t axis_a, int64_t axis_b) {
  return make_result<T, B>(
      x.value().transpose(axis_a, axis_b), "transpose", {x},
      [axis_a, axis_b](const Tensor<T, B>& dL_dy) { return std::vector{dL_dy.transpose(axis_a, axis_b)}; });
}

/// Elements [start, end) with `step` along `axis`. dL/dx = zeros with dL/dy written into the slice.
template <class T, class B>
Var<T, B> slice(const Var<T, B>& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1) {
  return make_result<T, B>(x.value().slice(axis, start, end, step), "slice", {x},
                           [shape = x.shape(), axis, start, end, step](const Tensor<T, B>& dL_dy) {
                             Tensor<T, B> dL_dx = Tensor<T, B>::zeros(shape);
                             dL_dx.slice(axis, start, end, step).copy_(dL_dy);
                             return std::vector{dL_dx};
                           });
}

/// x[..., index, ...] along `axis` (the axis disappears). dL/dx = zeros with dL/dy at that index.
template <class T, class B>
Var<T, B> select(const Var<T, B>& x, int64_t axis, int64_t index) {
  return make_result<T, B>(x.value().select(axis, index), "select", {x},
                           [shape = x.shape(), axis, index](const Tensor<T, B>& dL_dy) {
                             Tensor<T, B> dL_dx = Tensor<T, B>::zeros(shape);
                             dL_dx.select(axis, index).copy_(dL_dy);
                             return std::vector{dL_dx};
                           });
}

/// Broadcast view to `shape`. dL/dx = dL/dy summed over the broadcast axes.
template <class T, class B>
Var<T, B> expand(const Var<T, B>& x, const Shape& shape) {
  return make_result<T, B>(
      x.value().expand(shape), "expand", {x},
      [x_shape = x.shape()](const Tensor<T, B>& dL_dy) { return std::vector{sum_to_shape(dL_dy, x_shape)}; });
}

/// Inserts an axis of extent 1.
template <class T, class B>
Var<T, B> unsqueeze(const Var<T, B>& x, int64_t axis) {
  return reshape(x, x.value().unsqueeze(axis).shape());
}

/// Removes an axis of extent 1.
template <class T, class B>
Var<T, B> squeeze(const Var<T, B>& x, int64_t axis) {
  return reshape(x, x.value().squeeze(axis).shape());
}

/// A contiguous copy when x is a strided view (identity for the gradient).
template <class T, class B>
Var<T, B> contiguous(const Var<T, B>& x) {
  if (x.value().is_contiguous()) return x;
  return make_result<T, B>(x.value().contiguous(), "contiguous", {x},
                           [](const Tensor<T, B>& dL_dy) { return std::vector{dL_dy}; });
}

}  // namespace bindery::ops
