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

/// Host-side helpers of the Cpu kernels: Eigen maps give vectorized exp, max and sums over rows.
namespace cpu {
template <class T>
using Column = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T>
using RowVector = Eigen::Array<T, 1, Eigen::Dynamic>;
template <class T>
using ConstRowMap = Eigen::Map<const Column<T>>;
template <class T>
using RowMap = Eigen::Map<Column<T>>;
/// (rows, cols) row-major block whose rows are `stride` elements apart.
template <class T>
using ConstBlockMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                                 Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using BlockMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                            Eigen::Unaligned, Eigen::OuterStride<>>;

/// Sets the entries below the smallest normal number to exactly 0. Eigen's vectorized exp returns
/// a tiny denormal rather than 0 for exp(-inf): weights of masked (-inf) logits must be exactly 0,
/// and denormals would slow down the GEMMs that read them. One cheap vectorized pass.
template <class T>
inline void flush_tiny(T* y, int64_t n) {
  const T tiny = std::numeric_limits<T>::min();
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] < tiny ? T(0) : y[i];
}

/// Rows per parallel task so one task touches about `work` elements.
inline int64_t row_grain(int64_t row_length, int64_t work = 16384) {
  return std::max<int64_t>(1, work / std::max<int64_t>(row_length, 1));
}
}  // namespace cpu

}  // namespace detail

/// Softmax / log_softmax kernels on (outer, len, inner) contiguous data; specialized per backend.
template <class B>
struct SoftmaxKernel;

template <>
struct SoftmaxKernel<Cpu> {
  static constexpr int64_t kColumnSlab = 64;  // columns per task when the axis is not the last one

  template <class T>
  static void forward(const T* x, T* y, int64_t outer, int64_t len, int64_t inner, bool log) {
    using namespace detail::cpu;
    if (len == 0) return;
    if (inner == 1) {
      Cpu::for_each(
          outer,
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
          row_grain(len));
      return;
    }
    const int64_t slabs = (inner + kColumnSlab - 1) / kColumnSlab;
    Cpu::for_each(
        outer * slabs,
        [=](int64_t task) {
          const int64_t o = task / slabs, c0 = (task % slabs) * kColumnSlab;
          const int64_t width = std::min(kColumnSlab, inner - c0);
          const int64_t base = o * len * inner + c0;
          const ConstBlockMap<T> xs(x + base, len, width, Eigen::OuterStride<>(inner));
          BlockMap<T> ys(y + base, len, width, Eigen::OuterStride<>(inner));
          const RowVector<T> max = xs.colwise().maxCoeff();
          ys = xs.rowwise() - max;
          if (log) {
            const RowVector<T> log_sum = ys.exp().colwise().sum().log();
            ys.rowwise() -= log_sum;
          } else {
            ys = ys.exp();
            for (int64_t j = 0; j < len; ++j) flush_tiny(y + base + j * inner, width);
            const RowVector<T> inverse = ys.colwise().sum().inverse();
            ys.rowwise() *= inverse;
          }
        },
        row_grain(len * kColumnSlab));
  }

  template <class T>
  static void backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t len, int64_t inner, bool log) {
    using namespace detail::cpu;
    if (len == 0) return;
    if (inner == 1) {
      Cpu::for_each(
          outer,
          [=](int64_t r) {
            const ConstRowMap<T> yr(y + r * len, len), gr(dy + r * len, len);
            RowMap<T> dxr(dx + r * len, len);
            if (log) {
              dxr = gr - yr.exp() * gr.sum();
            } else {
              dxr = yr * (gr - (gr * yr).sum());
            }
          },
          row_grain(len));
      return;
    }
    const int64_t slabs = (inner + kColumnSlab - 1) / kColumnSlab;
    Cpu::for_each(
        outer * slabs,
        [=](int64_t task) {
          const int64_t o = task / slabs, c0 = (task % slabs) * kColumnSlab;
          const int64_t width = std::min(kColumnSlab, inner - c0);
          const int64_t base = o * len * inner + c0;
          const ConstBlockMap<T> ys(y + base, len, width, Eigen::OuterStride<>(inner));
          const ConstBlockMap<T> gs(dy + base, len, width, Eigen::OuterStride<>(inner));
          BlockMap<T> dxs(dx + base, len, width, Eigen::OuterStride<>(inner));
          if (log) {
            const RowVector<T> sum = gs.colwise().sum();
            dxs = gs - ys.exp().rowwise() * sum;
          } else {
            const RowVector<T> dot = (gs * ys).colwise().sum();
            dxs = ys * (gs.rowwise() - dot);
          }
        },
        row_grain(len * kColumnSlab));
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
