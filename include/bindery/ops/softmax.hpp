// bindery/ops/softmax.hpp — softmax and log_softmax along one axis.
//
// Forward (numerically stable): y = exp(x - max) / Σ exp(x - max), and
// log_softmax = (x - max) - log Σ exp(x - max); a -inf logit gets exactly zero weight.
// Backward from the saved output y: softmax dx = y ∘ (dy - Σ dy∘y);
// log_softmax dx = dy - exp(y) Σ dy.
// The kernel sees x as (outer, len, inner) around the axis: the last axis (inner == 1) is a set of
// contiguous rows, any other axis is walked in column slabs — no transpose copy either way.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "bindery/backend/cpu.hpp"
#include "bindery/config.hpp"
#include "bindery/ops/detail/cpu_rows.hpp"
#include "bindery/ops/reduce.hpp"

namespace bindery::ops {

namespace detail {

/// A tensor seen as (outer, len, inner) around one axis.
struct AxisGeometry {
  int64_t outer = 1, len = 1, inner = 1;
};

inline AxisGeometry axis_geometry(const Shape& shape, int64_t axis) {
  axis = shape.normalize_axis(axis);
  AxisGeometry g;
  for (int64_t d = 0; d < axis; ++d) g.outer *= shape[d];
  g.len = shape[axis];
  for (int64_t d = axis + 1; d < shape.rank(); ++d) g.inner *= shape[d];
  return g;
}

/// One (outer, inner) line of softmax / log_softmax, walked serially along the axis (stride inner):
/// the work item of the portable kernel.
template <class T>
struct SoftmaxLineForward {
  const T* x;
  T* y;
  int64_t len, inner;
  bool log;
  BINDERY_HOST_DEVICE void operator()(int64_t line) const {
    const int64_t o = line / inner, base = o * len * inner + (line - o * inner);
    T max = x[base];
    for (int64_t j = 1; j < len; ++j) max = x[base + j * inner] > max ? x[base + j * inner] : max;
    T sum = T(0);
    for (int64_t j = 0; j < len; ++j) sum += std::exp(x[base + j * inner] - max);
    if (log) {
      const T log_sum = std::log(sum);
      for (int64_t j = 0; j < len; ++j) y[base + j * inner] = (x[base + j * inner] - max) - log_sum;
    } else {
      const T inverse = T(1) / sum;
      for (int64_t j = 0; j < len; ++j) y[base + j * inner] = std::exp(x[base + j * inner] - max) * inverse;
    }
  }
};

template <class T>
struct SoftmaxLineBackward {
  const T* y;
  const T* dy;
  T* dx;
  int64_t len, inner;
  bool log;
  BINDERY_HOST_DEVICE void operator()(int64_t line) const {
    const int64_t o = line / inner, base = o * len * inner + (line - o * inner);
    T sum = T(0);  // log: Σ dy; softmax: Σ dy∘y
    for (int64_t j = 0; j < len; ++j)
      sum += log ? dy[base + j * inner] : dy[base + j * inner] * y[base + j * inner];
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = base + j * inner;
      dx[i] = log ? dy[i] - std::exp(y[i]) * sum : y[i] * (dy[i] - sum);
    }
  }
};

}  // namespace detail

/// Softmax / log_softmax kernels on (outer, len, inner) contiguous data; specialized per backend
/// (SoftmaxKernel<Cpu> below, kernels/softmax.cuh). The primary template is the portable kernel a
/// new backend starts with: one B::for_each item per (outer, inner) line, serial along the axis.
template <class B>
struct SoftmaxKernel {
  template <class T>
  static void forward(const T* x, T* y, int64_t outer, int64_t len, int64_t inner, bool log) {
    if (len == 0) return;
    B::for_each(outer * inner, detail::SoftmaxLineForward<T>{x, y, len, inner, log},
                std::max<int64_t>(1, B::kDefaultGrain / len));
  }
  template <class T>
  static void backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t len, int64_t inner, bool log) {
    if (len == 0) return;
    B::for_each(outer * inner, detail::SoftmaxLineBackward<T>{y, dy, dx, len, inner, log},
                std::max<int64_t>(1, B::kDefaultGrain / len));
  }
};

template <>
struct SoftmaxKernel<Cpu> {
  static constexpr int64_t kColumnSlab = detail::cpu::kColumnSlab;  // columns per task off the last axis

  template <class T>
  static void forward(const T* x, T* y, int64_t outer, int64_t len, int64_t inner, bool log) {
    using namespace detail::cpu;
    if (len == 0) return;
    for_each_row_or_slab(
        outer, len, inner,
        [=](int64_t r) {
          const ConstRowMap<T> xr(x + r * len, len);
          RowMap<T> yr(y + r * len, len);
          const T max = xr.maxCoeff();
          if (log) {
            const T log_sum = std::log((xr - max).exp().sum());
            yr = (xr - max) - log_sum;
          } else {
            yr = (xr - max).exp();
            flush_tiny(yr.data(), len);
            yr *= T(1) / yr.sum();
          }
        },
        [=](const Slab& s) {
          const ConstBlockMap<T> xs(x + s.base, len, s.width, Eigen::OuterStride<>(inner));
          BlockMap<T> ys(y + s.base, len, s.width, Eigen::OuterStride<>(inner));
          const RowVector<T> max = xs.colwise().maxCoeff();
          ys = xs.rowwise() - max;
          if (log) {
            const RowVector<T> log_sum = ys.exp().colwise().sum().log();
            ys.rowwise() -= log_sum;
          } else {
            ys = ys.exp();
            for (int64_t j = 0; j < len; ++j) flush_tiny(y + s.base + j * inner, s.width);
            const RowVector<T> inverse = ys.colwise().sum().inverse();
            ys.rowwise() *= inverse;
          }
        });
  }

  template <class T>
  static void backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t len, int64_t inner, bool log) {
    using namespace detail::cpu;
    if (len == 0) return;
    for_each_row_or_slab(
        outer, len, inner,
        [=](int64_t r) {
          const ConstRowMap<T> yr(y + r * len, len), gr(dy + r * len, len);
          RowMap<T> dxr(dx + r * len, len);
          if (log) {
            dxr = gr - yr.exp() * gr.sum();
          } else {
            dxr = yr * (gr - (gr * yr).sum());
          }
        },
        [=](const Slab& s) {
          const ConstBlockMap<T> ys(y + s.base, len, s.width, Eigen::OuterStride<>(inner));
          const ConstBlockMap<T> gs(dy + s.base, len, s.width, Eigen::OuterStride<>(inner));
          BlockMap<T> dxs(dx + s.base, len, s.width, Eigen::OuterStride<>(inner));
          if (log) {
            const RowVector<T> sum = gs.colwise().sum();
            dxs = gs - ys.exp().rowwise() * sum;
          } else {
            const RowVector<T> dot = (gs * ys).colwise().sum();
            dxs = ys * (gs.rowwise() - dot);
          }
        });
  }
};

// ---- tensor level ------------------------------------------------------------------------------

namespace detail {

/// 16-bit T (bfloat16, float16): both directions run the float kernel on float copies and round the
/// result once (the max, the sum of exponentials and the dot product need float accumulation).
template <class T, class B>
Tensor<T, B> softmax_forward_impl(const Tensor<T, B>& x, int64_t axis, bool log) {
  if constexpr (is_16bit_float_v<T>) {
    return softmax_forward_impl(x.template cast<float>(), axis, log).template cast<T>();
  } else {
    const AxisGeometry g = axis_geometry(x.shape(), axis);
    const Tensor<T, B> xc = x.contiguous();
    Tensor<T, B> y = Tensor<T, B>::empty(x.shape());
    SoftmaxKernel<B>::forward(xc.data(), y.data(), g.outer, g.len, g.inner, log);
    return y;
  }
}

template <class T, class B>
Tensor<T, B> softmax_backward_impl(const Tensor<T, B>& y, const Tensor<T, B>& dL_dy, int64_t axis, bool log) {
  BINDERY_CHECK(y.shape() == dL_dy.shape(), ShapeError, (log ? "log_softmax" : "softmax"),
                "_backward: y of shape ", y.shape(), " and dL_dy of shape ", dL_dy.shape(), " differ");
  if constexpr (is_16bit_float_v<T>) {
    return softmax_backward_impl(y.template cast<float>(), dL_dy.template cast<float>(), axis, log)
        .template cast<T>();
  } else {
    const AxisGeometry g = axis_geometry(y.shape(), axis);
    const Tensor<T, B> yc = y.contiguous(), gc = dL_dy.contiguous();
    Tensor<T, B> dL_dx = Tensor<T, B>::empty(y.shape());
    SoftmaxKernel<B>::backward(yc.data(), gc.data(), dL_dx.data(), g.outer, g.len, g.inner, log);
    return dL_dx;
  }
}

}  // namespace detail

/// x: any shape (rank >= 1) -> same shape; each slice along `axis` sums to 1.
template <class T, class B>
Tensor<T, B> softmax_forward(const Tensor<T, B>& x, int64_t axis = -1) {
  return detail::softmax_forward_impl(x, axis, false);
}
/// x: any shape (rank >= 1) -> same shape; log of softmax, computed without exp overflow.
template <class T, class B>
Tensor<T, B> log_softmax_forward(const Tensor<T, B>& x, int64_t axis = -1) {
  return detail::softmax_forward_impl(x, axis, true);
}
/// dL/dx of softmax from its output y: y ∘ (dL/dy - Σ dL/dy ∘ y).
template <class T, class B>
Tensor<T, B> softmax_backward(const Tensor<T, B>& y, const Tensor<T, B>& dL_dy, int64_t axis = -1) {
  return detail::softmax_backward_impl(y, dL_dy, axis, false);
}
/// dL/dx of log_softmax from its output y: dL/dy - exp(y) Σ dL/dy.
template <class T, class B>
Tensor<T, B> log_softmax_backward(const Tensor<T, B>& y, const Tensor<T, B>& dL_dy, int64_t axis = -1) {
  return detail::softmax_backward_impl(y, dL_dy, axis, true);
}

// ---- differentiable ----------------------------------------------------------------------------

/// x: any shape (rank >= 1) -> same shape, softmax along `axis`. Backward from the saved output.
template <class T, class B>
Var<T, B> softmax(const Var<T, B>& x, int64_t axis = -1) {
  Tensor<T, B> y = softmax_forward(x.value(), axis);
  return make_result<T, B>(y, "softmax", {x}, [y, axis](const Tensor<T, B>& dL_dy) {
    return std::vector{softmax_backward(y, dL_dy, axis)};
  });
}

/// x: any shape (rank >= 1) -> same shape, log_softmax along `axis`. Backward from the saved output.
template <class T, class B>
Var<T, B> log_softmax(const Var<T, B>& x, int64_t axis = -1) {
  Tensor<T, B> y = log_softmax_forward(x.value(), axis);
  return make_result<T, B>(y, "log_softmax", {x}, [y, axis](const Tensor<T, B>& dL_dy) {
    return std::vector{log_softmax_backward(y, dL_dy, axis)};
  });
}

}  // namespace bindery::ops
