// bindery/ops/unfold.hpp — sliding windows along one axis, as torch.Tensor.unfold.
//
// Forward: a strided VIEW, no copy. Along `axis` of extent n, window w starts at w * step; the axis
// becomes the window index (extent (n - size) / step + 1, stride multiplied by step) and a new last
// axis of extent `size` walks inside a window (stride of the original axis). The IMU stem uses it
// to cut (B, 6, 2000) into (B, 6, 250, 8) patches.
// Backward: windows that overlap (step < size) send several gradients to one element. The kernel is
// a gather over dL/dx rows: each output row sums the windows that cover it, so threads never write
// the same element (race-free, deterministic) and no atomics are needed.
#pragma once

#include <algorithm>

#include "bindery/ops/shape.hpp"

namespace bindery::ops {

namespace detail {

/// dx viewed as (outer, n, inner), g (contiguous) as (outer, windows, inner, size):
/// dx[o, p, k] = sum over windows w covering p of g[o, w, k, p - w * step]. One call per (o, p) row.
template <class T>
struct UnfoldBackwardRows {
  T* dx;
  const T* g;
  int64_t n, inner, windows, size, step;
  BINDERY_HOST_DEVICE void operator()(int64_t row) const {
    const int64_t o = row / n, p = row - o * n;
    T* out = dx + row * inner;
    for (int64_t k = 0; k < inner; ++k) out[k] = T(0);
    // Windows w with w * step <= p < w * step + size.
    const int64_t w_first = p >= size ? (p - size) / step + 1 : 0;
    const int64_t w_last = p / step < windows - 1 ? p / step : windows - 1;
    for (int64_t w = w_first; w <= w_last; ++w) {
      const T* in = g + ((o * windows + w) * inner) * size + (p - w * step);
      for (int64_t k = 0; k < inner; ++k) out[k] += in[k * size];
    }
  }
};

struct UnfoldPlan {
  int64_t axis, windows, outer, n, inner;
};

inline UnfoldPlan plan_unfold(const Shape& x_shape, int64_t axis, int64_t size, int64_t step) {
  BINDERY_CHECK(size >= 1 && step >= 1, ValueError, "unfold: size and step must be >= 1, got size ", size,
                " and step ", step, " for x of shape ", x_shape);
  BINDERY_CHECK(x_shape.rank() >= 1, ShapeError, "unfold: x of shape ", x_shape, " has no axis to unfold");
  UnfoldPlan plan;
  plan.axis = x_shape.normalize_axis(axis);
  plan.n = x_shape[plan.axis];
  BINDERY_CHECK(size <= plan.n, ShapeError, "unfold: window size ", size, " is larger than extent ", plan.n,
                " of axis ", plan.axis, " of x of shape ", x_shape);
  plan.windows = (plan.n - size) / step + 1;
  plan.outer = 1;
  plan.inner = 1;
  for (int64_t d = 0; d < plan.axis; ++d) plan.outer *= x_shape[d];
  for (int64_t d = plan.axis + 1; d < x_shape.rank(); ++d) plan.inner *= x_shape[d];
  return plan;
}

}  // namespace detail

/// Sliding windows as a view: x: (d0, .., n, .., dk) -> (d0, .., (n - size)/step + 1, .., dk, size),
/// y[.., w, .., s] = x[.., w * step + s, ..]. Needs 1 <= size <= n and step >= 1.
template <class T, class B>
Tensor<T, B> unfold_forward(const Tensor<T, B>& x, int64_t axis, int64_t size, int64_t step) {
  const detail::UnfoldPlan plan = detail::plan_unfold(x.shape(), axis, size, step);
  const int64_t axis_stride = x.strides()[static_cast<size_t>(plan.axis)];
  Shape shape = x.shape();
  shape[plan.axis] = plan.windows;
  shape.push_back(size);
  Strides strides = x.strides();
  strides[static_cast<size_t>(plan.axis)] = axis_stride * step;
  strides.push_back(axis_stride);
  return x.as_strided(shape, strides, x.offset());
}

/// The adjoint of unfold: dL/dy (.., windows, .., size) -> dL/dx of `x_shape`, overlapping
/// windows accumulated.
template <class T, class B>
Tensor<T, B> unfold_backward(const Tensor<T, B>& dL_dy, const Shape& x_shape, int64_t axis, int64_t size,
                             int64_t step) {
  const detail::UnfoldPlan plan = detail::plan_unfold(x_shape, axis, size, step);
  Tensor<T, B> dL_dx = Tensor<T, B>::empty(x_shape);
  const Tensor<T, B> g = dL_dy.contiguous();
  B::for_each(
      plan.outer * plan.n,
      detail::UnfoldBackwardRows<T>{dL_dx.data(), g.data(), plan.n, plan.inner, plan.windows, size, step},
      std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(1, plan.inner)));
  return dL_dx;
}

/// Sliding windows (a strided view, like torch.Tensor.unfold):
/// x: (d0, .., n, .., dk) -> (d0, .., (n - size)/step + 1, .., dk, size).
/// dL/dx: every window's gradient added back at its position (overlaps accumulate).
template <class T, class B>
Var<T, B> unfold(const Var<T, B>& x, int64_t axis, int64_t size, int64_t step) {
  return make_result<T, B>(unfold_forward(x.value(), axis, size, step), "unfold", {x},
                           [shape = x.shape(), axis, size, step](const Tensor<T, B>& dL_dy) {
                             return std::vector{unfold_backward(dL_dy, shape, axis, size, step)};
                           });
}

}  // namespace bindery::ops
