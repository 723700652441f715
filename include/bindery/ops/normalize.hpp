// bindery/ops/normalize.hpp — L2 normalization along one axis (torch.nn.functional.normalize).
//
// Forward: y = x / max(‖x‖₂, eps), with the norm n saved per slice.
// Backward: where n > eps, dx = (dy - y Σ dy∘y) / n (the projection that removes the radial part);
// where n <= eps the denominator is the constant eps and dx = dy / eps.
#pragma once

#include "bindery/ops/softmax.hpp"

namespace bindery::ops {

namespace detail {

/// One (outer, inner) line of L2 normalization, serial along the axis: the portable kernel's item.
template <class T>
struct NormalizeLineForward {
  const T* x;
  T* y;
  T* norm;
  int64_t len, inner;
  T eps;
  BINDERY_HOST_DEVICE void operator()(int64_t line) const {
    const int64_t o = line / inner, base = o * len * inner + (line - o * inner);
    T sum = T(0);
    for (int64_t j = 0; j < len; ++j) sum += x[base + j * inner] * x[base + j * inner];
    const T n = std::sqrt(sum);
    norm[line] = n;
    const T inverse = T(1) / (n > eps ? n : eps);
    for (int64_t j = 0; j < len; ++j) y[base + j * inner] = x[base + j * inner] * inverse;
  }
};

template <class T>
struct NormalizeLineBackward {
  const T* y;
  const T* norm;
  const T* dy;
  T* dx;
  int64_t len, inner;
  T eps;
  BINDERY_HOST_DEVICE void operator()(int64_t line) const {
    const int64_t o = line / inner, base = o * len * inner + (line - o * inner);
    const T n = norm[line];
    T radial = T(0);  // Σ dy∘y where n > eps; the radial part vanishes where n <= eps
    if (n > eps) {
      for (int64_t j = 0; j < len; ++j) radial += dy[base + j * inner] * y[base + j * inner];
    }
    const T inverse = T(1) / (n > eps ? n : eps);
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = base + j * inner;
      dx[i] = (dy[i] - y[i] * radial) * inverse;
    }
  }
};

}  // namespace detail

/// L2-normalization kernels on (outer, len, inner) contiguous data; specialized per backend
/// (NormalizeKernel<Cpu> below, kernels/normalize.cuh). The primary template is the portable
/// kernel: one B::for_each item per (outer, inner) line.
template <class B>
struct NormalizeKernel {
  /// y = x / max(n, eps) with n = ‖x‖ along len; norm: (outer, inner).
  template <class T>
  static void forward(const T* x, T* y, T* norm, int64_t outer, int64_t len, int64_t inner, double eps) {
    B::for_each(outer * inner, detail::NormalizeLineForward<T>{x, y, norm, len, inner, static_cast<T>(eps)},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(len, 1)));
  }
  template <class T>
  static void backward(const T* y, const T* norm, const T* dy, T* dx, int64_t outer, int64_t len,
                       int64_t inner, double eps) {
    B::for_each(outer * inner,
                detail::NormalizeLineBackward<T>{y, norm, dy, dx, len, inner, static_cast<T>(eps)},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(len, 1)));
  }
};

template <>
struct NormalizeKernel<Cpu> {
  static constexpr int64_t kColumnSlab = detail::cpu::kColumnSlab;

  /// y = x / max(n, eps) with n = ‖x‖ along len; norm: (outer, inner).
  template <class T>
  static void forward(const T* x, T* y, T* norm, int64_t outer, int64_t len, int64_t inner, double eps) {
    using namespace detail::cpu;
    for_each_row_or_slab(
        outer, len, inner,
        [=](int64_t r) {
          const ConstRowMap<T> xr(x + r * len, len);
          RowMap<T> yr(y + r * len, len);
          const T n = std::sqrt(xr.square().sum());
          norm[r] = n;
          yr = xr * (T(1) / std::max(n, static_cast<T>(eps)));
        },
        [=](const Slab& s) {
          const ConstBlockMap<T> xs(x + s.base, len, s.width, Eigen::OuterStride<>(inner));
          BlockMap<T> ys(y + s.base, len, s.width, Eigen::OuterStride<>(inner));
          Eigen::Map<RowVector<T>> n(norm + s.outer * inner + s.column, s.width);
          n = xs.square().colwise().sum().sqrt();
          const RowVector<T> inverse = n.max(static_cast<T>(eps)).inverse();
          ys = xs.rowwise() * inverse;
        });
  }

  template <class T>
  static void backward(const T* y, const T* norm, const T* dy, T* dx, int64_t outer, int64_t len,
                       int64_t inner, double eps) {
    using namespace detail::cpu;
    for_each_row_or_slab(
        outer, len, inner,
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
        [=](const Slab& s) {
          const ConstBlockMap<T> ys(y + s.base, len, s.width, Eigen::OuterStride<>(inner));
          const ConstBlockMap<T> gs(dy + s.base, len, s.width, Eigen::OuterStride<>(inner));
          BlockMap<T> dxs(dx + s.base, len, s.width, Eigen::OuterStride<>(inner));
          const Eigen::Map<const RowVector<T>> n(norm + s.outer * inner + s.column, s.width);
          const T e = static_cast<T>(eps);
          // Where n <= eps the radial term vanishes: zero its coefficient, divide by eps.
          const RowVector<T> radial = (n > e).select((gs * ys).colwise().sum(), RowVector<T>::Zero(s.width));
          const RowVector<T> inverse = n.max(e).inverse();
          dxs = (gs - ys.rowwise() * radial).rowwise() * inverse;
        });
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
