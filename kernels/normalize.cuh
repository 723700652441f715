// kernels/normalize.cuh — NormalizeKernel<Cuda>: L2 normalization along one axis.
//
// (outer, len, inner) as the Cpu kernel (ops/normalize.hpp): one warp per row when the axis is the
// last one (inner == 1), else one thread per column (coalesced across neighbouring columns).
// y = x / max(n, eps); backward dx = (dy - y Σ dy∘y) / n where n > eps, dy / eps elsewhere.
#pragma once

#include <cmath>

#include "bindery/ops/normalize.hpp"
#include "common.cuh"

namespace bindery::kernels {

template <class T>
struct NormalizeRows {
  const T* x;
  T* y;
  T* norm;
  int64_t len;
  double eps;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t row, Lanes lanes) const {
    const T* xr = x + row * len;
    T squares = T(0);
    for (int64_t j = lanes.index(); j < len; j += lanes.count()) squares += xr[j] * xr[j];
    const T n = std::sqrt(lanes.sum(squares));
    if (lanes.index() == 0) norm[row] = n;
    const T inverse = T(1) / max_of(n, static_cast<T>(eps));
    for (int64_t j = lanes.index(); j < len; j += lanes.count()) y[row * len + j] = xr[j] * inverse;
  }
};

template <class T>
struct NormalizeColumns {
  const T* x;
  T* y;
  T* norm;  // (outer, inner)
  int64_t len, inner;
  double eps;
  BINDERY_HOST_DEVICE void operator()(int64_t column) const {
    const int64_t o = column / inner, i = column - o * inner;
    const int64_t base = o * len * inner + i;
    T squares = T(0);
    for (int64_t j = 0; j < len; ++j) squares += x[base + j * inner] * x[base + j * inner];
    const T n = std::sqrt(squares);
    norm[column] = n;
    const T inverse = T(1) / max_of(n, static_cast<T>(eps));
    for (int64_t j = 0; j < len; ++j) y[base + j * inner] = x[base + j * inner] * inverse;
  }
};

template <class T>
struct NormalizeBackwardRows {
  const T* y;
  const T* norm;
  const T* dy;
  T* dx;
  int64_t len;
  double eps;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t row, Lanes lanes) const {
    const T* yr = y + row * len;
    const T* gr = dy + row * len;
    const T n = norm[row];
    if (n > static_cast<T>(eps)) {
      T dot = T(0);
      for (int64_t j = lanes.index(); j < len; j += lanes.count()) dot += gr[j] * yr[j];
      dot = lanes.sum(dot);
      const T inverse = T(1) / n;
      for (int64_t j = lanes.index(); j < len; j += lanes.count()) {
        dx[row * len + j] = (gr[j] - yr[j] * dot) * inverse;
      }
    } else {
      const T inverse = static_cast<T>(1.0 / eps);
      for (int64_t j = lanes.index(); j < len; j += lanes.count()) dx[row * len + j] = gr[j] * inverse;
    }
  }
};

template <class T>
struct NormalizeBackwardColumns {
  const T* y;
  const T* norm;
  const T* dy;
  T* dx;
  int64_t len, inner;
  double eps;
  BINDERY_HOST_DEVICE void operator()(int64_t column) const {
    const int64_t o = column / inner, i = column - o * inner;
    const int64_t base = o * len * inner + i;
    const T n = norm[column], e = static_cast<T>(eps);
    // Where n <= eps the radial term vanishes and the denominator is eps (the Cpu kernel's rule).
    T radial = T(0);
    if (n > e) {
      for (int64_t j = 0; j < len; ++j) radial += dy[base + j * inner] * y[base + j * inner];
    }
    const T inverse = T(1) / max_of(n, e);
    for (int64_t j = 0; j < len; ++j) {
      const int64_t k = base + j * inner;
      dx[k] = (dy[k] - y[k] * radial) * inverse;
    }
  }
};

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct NormalizeKernel<Cuda> {
  template <class T>
  static void forward(const T* x, T* y, T* norm, int64_t outer, int64_t len, int64_t inner, double eps) {
    if (inner == 1) {
      kernels::launch_rows(outer, kernels::NormalizeRows<T>{x, y, norm, len, eps});
    } else {
      Cuda::for_each(outer * inner, kernels::NormalizeColumns<T>{x, y, norm, len, inner, eps});
    }
  }

  template <class T>
  static void backward(const T* y, const T* norm, const T* dy, T* dx, int64_t outer, int64_t len,
                       int64_t inner, double eps) {
    if (inner == 1) {
      kernels::launch_rows(outer, kernels::NormalizeBackwardRows<T>{y, norm, dy, dx, len, eps});
    } else {
      Cuda::for_each(outer * inner, kernels::NormalizeBackwardColumns<T>{y, norm, dy, dx, len, inner, eps});
    }
  }
};

}  // namespace bindery::ops
