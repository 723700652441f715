// kernels/conv.cuh — Im2ColKernel<Cuda>: im2col and col2im for conv2d / conv3d (ops/conv.hpp).
//
// im2col: one thread per element of cols (N·P, C·K); the element decodes its output position and
// kernel offset and reads x, or writes 0 in the padding.
// col2im: one thread per input element, which GATHERS the patch gradients that read it (the Cpu
// kernel's scheme: no two threads write one element, so overlapping windows need no atomics and
// the sum is deterministic). The terms are added in the Cpu kernel's order (kt, kh, then output
// column ascending), so both backends round alike.
#pragma once

#include "bindery/ops/conv.hpp"
#include "common.cuh"

namespace bindery::kernels {

template <class T>
struct Im2Col {  // cols[n·P + p, (c, kt, kh, kw)] = x[n, c, t, h, w] or 0
  const T* x;
  T* cols;
  ops::ConvGeometry g;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t width = g.col_width(), positions = g.out_volume();
    const int64_t row = e / width, col = e - row * width;
    const int64_t n = row / positions, p = row - n * positions;
    const int64_t plane = g.out[1] * g.out[2];
    const int64_t ot = p / plane, oh = (p - ot * plane) / g.out[2], ow = p - ot * plane - oh * g.out[2];
    const int64_t kw = col % g.kernel[2], kh = (col / g.kernel[2]) % g.kernel[1];
    const int64_t kt = (col / (g.kernel[2] * g.kernel[1])) % g.kernel[0];
    const int64_t c = col / g.kernel_volume();
    const int64_t t = ot * g.stride[0] - g.padding[0] + kt;
    const int64_t h = oh * g.stride[1] - g.padding[1] + kh;
    const int64_t w = ow * g.stride[2] - g.padding[2] + kw;
    const bool inside = t >= 0 && t < g.in[0] && h >= 0 && h < g.in[1] && w >= 0 && w < g.in[2];
    cols[e] = inside ? x[(((n * g.channels + c) * g.in[0] + t) * g.in[1] + h) * g.in[2] + w] : T(0);
  }
};

template <class T>
struct Col2Im {  // dx[n, c, t, h, w] = Σ cols[n·P + p, (c, kt, kh, kw)] over the patches reading it
  const T* cols;
  T* dx;
  ops::ConvGeometry g;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t in_t = g.in[0], in_h = g.in[1], in_w = g.in[2];
    const int64_t kt_n = g.kernel[0], kh_n = g.kernel[1], kw_n = g.kernel[2];
    const int64_t width = g.col_width(), positions = g.out_volume();
    const int64_t w = e % in_w, h = (e / in_w) % in_h, t = (e / (in_w * in_h)) % in_t;
    const int64_t nc = e / (in_w * in_h * in_t);
    const int64_t c = nc % g.channels, n = nc / g.channels;
    T sum = T(0);
    for (int64_t kt = 0; kt < kt_n; ++kt) {
      const int64_t num_t = t + g.padding[0] - kt;  // = ot·st when some output reads it
      if (num_t < 0 || num_t % g.stride[0] != 0 || num_t / g.stride[0] >= g.out[0]) continue;
      const int64_t ot = num_t / g.stride[0];
      for (int64_t kh = 0; kh < kh_n; ++kh) {
        const int64_t num_h = h + g.padding[1] - kh;
        if (num_h < 0 || num_h % g.stride[1] != 0 || num_h / g.stride[1] >= g.out[1]) continue;
        const int64_t oh = num_h / g.stride[1];
        const T* base = cols + (n * positions + (ot * g.out[1] + oh) * g.out[2]) * width +
                        ((c * kt_n + kt) * kh_n + kh) * kw_n;
        // Output columns ascending means kernel columns descending.
        for (int64_t kw = kw_n - 1; kw >= 0; --kw) {
          const int64_t num_w = w + g.padding[2] - kw;
          if (num_w < 0 || num_w % g.stride[2] != 0 || num_w / g.stride[2] >= g.out[2]) continue;
          sum += base[(num_w / g.stride[2]) * width + kw];
        }
      }
    }
    dx[e] = sum;
  }
};

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct Im2ColKernel<Cuda> {
  template <class T>
  static void im2col(const T* x, const ConvGeometry& g, T* cols) {
    Cuda::for_each(g.batch * g.out_volume() * g.col_width(), kernels::Im2Col<T>{x, cols, g});
  }
  template <class T>
  static void col2im(const T* cols, const ConvGeometry& g, T* dx) {
    Cuda::for_each(g.batch * g.channels * g.in_volume(), kernels::Col2Im<T>{cols, dx, g});
  }
};

}  // namespace bindery::ops
