// bindery/ops/normalize.hpp — L2 normalization along one axis (torch.nn.functional.normalize).
//
// Forward: y = x / max(‖x‖₂, eps), with the norm n saved per slice.
// Backward: where n > eps, dx = (dy - y Σ dy∘y) / n (the projection that removes the radial part);
// where n <= eps the denominator is the constant eps and dx = dy / eps.
#pragma once

#include "bindery/ops/softmax.hpp"

namespace bindery::ops {

/// L2-normalization kernels on (outer, len, inner) contiguous data; specialized per backend.
template <class B>
struct NormalizeKernel;

template <>
struct NormalizeKernel<Cpu> {
  static constexpr int64_t kColumnSlab = 64;

  /// y = x / max(n, eps) with n = ‖x‖ along len; norm: (outer, inner).
  template <class T>
  static void forward(const T* x, T* y, T* norm, int64_t outer, int64_t len, int64_t inner, double eps) {
    using namespace detail::cpu;
    if (inner == 1) {
      Cpu::for_each(
          outer,
          [=](int64_t r) {
            const ConstRowMap<T> xr(x + r * len, len);
            RowMap<T> yr(y + r * len, len);
            const T n = std::sqrt(xr.square().sum());
            norm[r] = n;
            yr = xr * (T(1) / std::max(n, static_cast<T>(eps)));
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
          Eigen::Map<RowVector<T>> n(norm + o * inner + c0, width);
          n = xs.square().colwise().sum().sqrt();
          const RowVector<T> inverse = n.max(static_cast<T>(eps)).inverse();
          ys = xs.rowwise() * inverse;
        },
        row_grain(len * kColumnSlab));
  }

  template <class T>
  static void backward(const T* y, const T* norm, const T* dy, T* dx, int64_t outer, int64_t len,
                       int64_t inner, double eps) {
    using namespace detail::cpu;
    if (inner == 1) {
      Cpu::for_each(
          outer,
          [=](int64_t r) {
            const ConstRowMap<T> yr(y + r * len, len), gr(dy + r * len, len);
            RowMap<T> dxr(dx + r * len, len);
            const T n = norm[r];
            if (n > static_cast<T>(eps)) {
              dxr = (gr - yr * (gr * yr).sum()) * (T(1) / n);
            } else {
              dxr = gr * static_cast<T>(1.0 / eps);
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
          const Eigen::Map<const RowVector<T>> n(norm + o * inner + c0, width);
          const T e = static_cast<T>(eps);
          // Where n <= eps the radial term vanishes: zero its coefficient, divide by eps.
          const RowVector<T> radial = (n > e).select((gs * ys).colwise().sum(), RowVector<T>::Zero(width));
          const RowVector<T> inverse = n.max(e).inverse();
          dxs = (gs - ys.rowwise() * radial).rowwise() * inverse;
        },
        row_grain(len * kColumnSlab));
  }
};

// ---- tensor level ------------------------------------------------------------------------------

namespace detail {

template <class T, class B>
std::pair<Tensor<T, B>, Tensor<T, B>> l2_normalize_with_norm(const Tensor<T, B>& x, int64_t axis,
                                                             double eps) {
  BINDERY_CHECK(eps >= 0, ValueError, "l2_normalize: eps must be >= 0, got ", eps, " for x of shape ",
                x.shape());
  const AxisGeometry g = axis_geometry(x.shape(), axis);
  const Tensor<T, B> xc = x.contiguous();
  Tensor<T, B> y = Tensor<T, B>::empty(x.shape());
  Tensor<T, B> norm = Tensor<T, B>::empty(Shape{g.outer, g.inner});
  NormalizeKernel<B>::forward(xc.data(), y.data(), norm.data(), g.outer, g.len, g.inner, eps);
  return {y, norm};
}

}  // namespace detail

/// x: any shape (rank >= 1) -> same shape: x / max(‖x‖₂ along axis, eps).
template <class T, class B>
Tensor<T, B> l2_normalize_forward(const Tensor<T, B>& x, int64_t axis = -1, double eps = 1e-12) {
  return detail::l2_normalize_with_norm(x, axis, eps).first;
}

// ---- differentiable ----------------------------------------------------------------------------

/// x: any shape (rank >= 1) -> same shape: x / max(‖x‖₂ along axis, eps), as F.normalize(x, 2, axis).
template <class T, class B>
Var<T, B> l2_normalize(const Var<T, B>& x, int64_t axis = -1, double eps = 1e-12) {
  const auto result = detail::l2_normalize_with_norm(x.value(), axis, eps);
  const Tensor<T, B>& y = result.first;
  const Tensor<T, B>& norm = result.second;
  return make_result<T, B>(y, "l2_normalize", {x}, [y, norm, axis, eps](const Tensor<T, B>& dL_dy) {
    const detail::AxisGeometry g = detail::axis_geometry(y.shape(), axis);
    const Tensor<T, B> gc = dL_dy.contiguous();
    Tensor<T, B> dL_dx = Tensor<T, B>::empty(y.shape());
    NormalizeKernel<B>::backward(y.data(), norm.data(), gc.data(), dL_dx.data(), g.outer, g.len, g.inner,
                                 eps);
    return std::vector{dL_dx};
  });
}

}  // namespace bindery::ops
