// bindery/ops/conv.hpp — conv2d and conv3d (cross-correlation, as torch.nn.Conv2d / Conv3d).
//
// im2col + GEMM. Every output position p of sample n becomes one row of a (N·P, C·kt·kh·kw) matrix
// `cols` holding the input patch it sees (zeros where the patch reaches into the padding); then
//   y_n (O, P) = W (O, C·K) · cols_nᵀ                      (one GEMM per sample, written in place)
// so the output lands directly in (N, O, T', H', W') order with no transpose. Backward, with dY
// rearranged to (O, N·P):
//   dW (O, C·K)   = dY · cols                               (one GEMM over the whole batch)
//   dcols (N·P, C·K) = dYᵀ · W                              (one GEMM), then col2im
//   db (O)        = row sums of dY
// col2im adds every patch gradient back to the input element it came from. Overlapping windows
// (stride < kernel: the audio stem's 16×16 kernel with stride 10) make that a scatter-add; the Cpu
// kernel turns it into a gather — each thread owns whole input rows and sums the patches that
// cover them — so it is race-free and deterministic without atomics.
//
// conv2d is conv3d with a time extent of 1 (the memory layouts are identical), so one geometry and
// one pair of kernels serve both. Patch embedding is the stride == kernel case (the vision stem:
// Conv3d kernel = stride = (2, 14, 14) on (N, 3, 2, 224, 224) -> (N, 1280, 1, 16, 16)).
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/ops/matmul.hpp"
#include "bindery/ops/reduce.hpp"

namespace bindery::ops {

/// The sizes of one convolution, always in 3 spatial dimensions (time, height, width); conv2d has
/// in[0] = kernel[0] = stride[0] = out[0] = 1 and padding[0] = 0. Plain data: passes to a device.
struct ConvGeometry {
  int64_t batch = 0, channels = 0, out_channels = 0;
  int64_t in[3] = {1, 1, 1};
  int64_t kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t padding[3] = {0, 0, 0};
  int64_t out[3] = {1, 1, 1};

  BINDERY_HOST_DEVICE int64_t in_volume() const { return in[0] * in[1] * in[2]; }
  BINDERY_HOST_DEVICE int64_t out_volume() const { return out[0] * out[1] * out[2]; }
  BINDERY_HOST_DEVICE int64_t kernel_volume() const { return kernel[0] * kernel[1] * kernel[2]; }
  /// Columns of the im2col matrix: C·kt·kh·kw, ordered (c, kt, kh, kw) like a weight row.
  BINDERY_HOST_DEVICE int64_t col_width() const { return channels * kernel_volume(); }
};

namespace detail {

/// One element of the portable im2col: cols[e] for e = (n·P + p)·(C·K) + (c, kt, kh, kw).
template <class T>
struct Im2ColElement {
  const T* x;
  T* cols;
  ConvGeometry g;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t width = g.col_width(), positions = g.out_volume();
    const int64_t row = e / width, col = e - row * width;
    const int64_t n = row / positions, p = row - n * positions;
    const int64_t plane = g.out[1] * g.out[2];
    const int64_t ot = p / plane, oh = (p - ot * plane) / g.out[2], ow = p - ot * plane - oh * g.out[2];
    const int64_t kw = col % g.kernel[2], kh = (col / g.kernel[2]) % g.kernel[1];
    const int64_t kt = (col / (g.kernel[2] * g.kernel[1])) % g.kernel[0], c = col / g.kernel_volume();
    const int64_t t = ot * g.stride[0] - g.padding[0] + kt, h = oh * g.stride[1] - g.padding[1] + kh,
                  w = ow * g.stride[2] - g.padding[2] + kw;
    const bool inside = t >= 0 && t < g.in[0] && h >= 0 && h < g.in[1] && w >= 0 && w < g.in[2];
    cols[e] = inside ? x[(((n * g.channels + c) * g.in[0] + t) * g.in[1] + h) * g.in[2] + w] : T(0);
  }
};

/// One element of the portable col2im: dx[n, c, t, h, w] gathers every cols entry im2col read it into.
template <class T>
struct Col2ImElement {
  const T* cols;
  T* dx;
  ConvGeometry g;
  BINDERY_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t w = e % g.in[2], h = (e / g.in[2]) % g.in[1], t = (e / (g.in[2] * g.in[1])) % g.in[0];
    const int64_t nc = e / g.in_volume(), c = nc % g.channels, n = nc / g.channels;
    const int64_t width = g.col_width(), positions = g.out_volume();
    T sum = T(0);
    for (int64_t kt = 0; kt < g.kernel[0]; ++kt) {
      const int64_t num_t = t + g.padding[0] - kt;  // = ot·st when some output reads it
      if (num_t < 0 || num_t % g.stride[0] != 0 || num_t / g.stride[0] >= g.out[0]) continue;
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        const int64_t num_h = h + g.padding[1] - kh;
        if (num_h < 0 || num_h % g.stride[1] != 0 || num_h / g.stride[1] >= g.out[1]) continue;
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          const int64_t num_w = w + g.padding[2] - kw;
          if (num_w < 0 || num_w % g.stride[2] != 0 || num_w / g.stride[2] >= g.out[2]) continue;
          const int64_t p =
              ((num_t / g.stride[0]) * g.out[1] + num_h / g.stride[1]) * g.out[2] + num_w / g.stride[2];
          sum += cols[(n * positions + p) * width +
                      ((c * g.kernel[0] + kt) * g.kernel[1] + kh) * g.kernel[2] + kw];
        }
      }
    }
    dx[e] = sum;
  }
};

}  // namespace detail

/// im2col / col2im for one geometry. x: (N, C, T, H, W) contiguous; cols: (N·P, C·K) contiguous
/// with row n·P + p for output position p = (t', h', w') of sample n. Specialized per backend; the
/// primary template is the portable kernel: one B::for_each item per element written.
template <class B>
struct Im2ColKernel {
  template <class T>
  static void im2col(const T* x, const ConvGeometry& g, T* cols) {
    B::for_each(g.batch * g.out_volume() * g.col_width(), detail::Im2ColElement<T>{x, cols, g});
  }
  template <class T>
  static void col2im(const T* cols, const ConvGeometry& g, T* dx) {
    B::for_each(g.batch * g.channels * g.in_volume(), detail::Col2ImElement<T>{cols, dx, g});
  }
};

template <>
struct Im2ColKernel<Cpu> {
  /// cols[n·P + p, (c, kt, kh, kw)] = x[n, c, t'·st - pt + kt, h'·sh - ph + kh, w'·sw - pw + kw]
  /// (0 outside the input). Parallel over rows; the index arithmetic is per row, not per element.
  template <class T>
  static void im2col(const T* x, const ConvGeometry& g, T* cols) {
    const int64_t positions = g.out_volume(), width = g.col_width();
    const int64_t plane = g.out[1] * g.out[2];
    const int64_t in_t = g.in[0], in_h = g.in[1], in_w = g.in[2];
    const int64_t kt_n = g.kernel[0], kh_n = g.kernel[1], kw_n = g.kernel[2];
    Cpu::for_each(
        g.batch * positions,
        [=](int64_t row) {
          const int64_t n = row / positions, p = row - n * positions;
          const int64_t ot = p / plane, oh = (p - ot * plane) / g.out[2], ow = p - ot * plane - oh * g.out[2];
          const int64_t t0 = ot * g.stride[0] - g.padding[0];
          const int64_t h0 = oh * g.stride[1] - g.padding[1];
          const int64_t w0 = ow * g.stride[2] - g.padding[2];
          // kw in [kw_lo, kw_hi) reads inside the input; the rest of a kernel row is padding.
          const int64_t kw_lo = std::clamp<int64_t>(-w0, 0, kw_n);
          const int64_t kw_hi = std::clamp<int64_t>(in_w - w0, kw_lo, kw_n);
          T* dst = cols + row * width;
          for (int64_t c = 0; c < g.channels; ++c) {
            const T* x_c = x + (n * g.channels + c) * in_t * in_h * in_w;
            for (int64_t kt = 0; kt < kt_n; ++kt) {
              const int64_t t = t0 + kt;
              for (int64_t kh = 0; kh < kh_n; ++kh, dst += kw_n) {
                const int64_t h = h0 + kh;
                if (t < 0 || t >= in_t || h < 0 || h >= in_h) {
                  for (int64_t kw = 0; kw < kw_n; ++kw) dst[kw] = T(0);
                  continue;
                }
                const T* src = x_c + (t * in_h + h) * in_w + w0;
                for (int64_t kw = 0; kw < kw_lo; ++kw) dst[kw] = T(0);
                for (int64_t kw = kw_lo; kw < kw_hi; ++kw) dst[kw] = src[kw];
                for (int64_t kw = kw_hi; kw < kw_n; ++kw) dst[kw] = T(0);
              }
            }
          }
        },
        std::max<int64_t>(1, Cpu::kDefaultGrain / std::max<int64_t>(1, width)));
  }

  /// dx[n, c, t, h, w] = sum of cols[n·P + p, (c, kt, kh, kw)] over the (p, kt, kh, kw) that read
  /// that element in im2col. Each task owns one input row (n, c, t, h) and gathers into it, so
  /// overlapping windows never make two threads write one element.
  template <class T>
  static void col2im(const T* cols, const ConvGeometry& g, T* dx) {
    const int64_t positions = g.out_volume(), width = g.col_width();
    const int64_t in_t = g.in[0], in_h = g.in[1], in_w = g.in[2];
    const int64_t kt_n = g.kernel[0], kh_n = g.kernel[1], kw_n = g.kernel[2];
    const int64_t rows = g.batch * g.channels * in_t * in_h;
    const int64_t work_per_row = std::max<int64_t>(1, in_w * kt_n * kh_n);
    Cpu::for_each(
        rows,
        [=](int64_t row) {
          const int64_t h = row % in_h, t = (row / in_h) % in_t, nc = row / (in_h * in_t);
          const int64_t c = nc % g.channels, n = nc / g.channels;
          T* out = dx + row * in_w;
          for (int64_t w = 0; w < in_w; ++w) out[w] = T(0);
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
              for (int64_t ow = 0; ow < g.out[2]; ++ow) {
                const int64_t w0 = ow * g.stride[2] - g.padding[2];
                const int64_t kw_lo = std::clamp<int64_t>(-w0, 0, kw_n);
                const int64_t kw_hi = std::clamp<int64_t>(in_w - w0, kw_lo, kw_n);
                const T* src = base + ow * width;
                for (int64_t kw = kw_lo; kw < kw_hi; ++kw) out[w0 + kw] += src[kw];
              }
            }
          }
        },
        std::max<int64_t>(1, Cpu::kDefaultGrain / work_per_row));
  }
};

namespace detail {

/// y[row, :] += bias[row % O] for the rows of y viewed as (N·O, P).
template <class T>
struct ConvAddBias {
  T* y;
  const T* bias;
  int64_t positions, out_channels;
  BINDERY_HOST_DEVICE void operator()(int64_t row) const {
    const T b = bias[row % out_channels];
    T* dst = y + row * positions;
    for (int64_t p = 0; p < positions; ++p) dst[p] += b;
  }
};

/// out (B1, A, P) <- in (A, B1, P): swaps the two leading axes, one contiguous row of P at a time
/// (a strided copy would pay Indexer divisions on every element).
template <class T>
struct ConvSwapLeadingAxes {
  T* out;
  const T* in;
  int64_t a, b, row;
  BINDERY_HOST_DEVICE void operator()(int64_t r) const {  // r indexes rows of in: (i, j)
    const int64_t i = r / b, j = r - i * b;
    const T* src = in + r * row;
    T* dst = out + (j * a + i) * row;
    for (int64_t k = 0; k < row; ++k) dst[k] = src[k];
  }
};

template <size_t S>
std::string conv_tuple(const std::array<int64_t, S>& values) {
  return Shape(std::vector<int64_t>(values.begin(), values.end())).to_string();
}

/// Validates shapes and hyper-parameters of a convolution with S spatial axes (2 or 3) and returns
/// its geometry. `bias` is null when there is none.
template <size_t S>
ConvGeometry make_conv_geometry(const char* op, const Shape& x, const Shape& w, const Shape* bias,
                                const std::array<int64_t, S>& stride, const std::array<int64_t, S>& padding) {
  static_assert(S == 2 || S == 3, "convolutions have 2 or 3 spatial axes");
  const char* layout_x = S == 2 ? "(N, C, H, W)" : "(N, C, T, H, W)";
  const char* layout_w = S == 2 ? "(O, C, kh, kw)" : "(O, C, kt, kh, kw)";
  BINDERY_CHECK(x.rank() == S + 2 && w.rank() == S + 2, ShapeError, op, ": x of shape ", x, " must be ",
                layout_x, " and weight of shape ", w, " must be ", layout_w);
  BINDERY_CHECK(w[1] == x[1], ShapeError, op, ": x of shape ", x, " has ", x[1],
                " channels but weight of shape ", w, " expects ", w[1]);
  if (bias) {
    BINDERY_CHECK(bias->rank() == 1 && (*bias)[0] == w[0], ShapeError, op, ": bias of shape ", *bias,
                  " must be (", w[0], ",) for weight of shape ", w);
  }
  ConvGeometry g;
  g.batch = x[0];
  g.channels = x[1];
  g.out_channels = w[0];
  std::array<int64_t, S> kernel{}, padded{};
  for (size_t i = 0; i < S; ++i) {
    BINDERY_CHECK(stride[i] >= 1 && padding[i] >= 0, ValueError, op, ": stride ", conv_tuple(stride),
                  " must be >= 1 and padding ", conv_tuple(padding), " >= 0 (x of shape ", x, ")");
    kernel[i] = w[static_cast<int64_t>(i) + 2];
    padded[i] = x[static_cast<int64_t>(i) + 2] + 2 * padding[i];
  }
  for (size_t i = 0; i < S; ++i) {
    BINDERY_CHECK(kernel[i] <= padded[i] && kernel[i] >= 1, ShapeError, op, ": kernel ", conv_tuple(kernel),
                  " of weight of shape ", w, " does not fit the padded input ", conv_tuple(padded),
                  " of x of shape ", x, " (padding ", conv_tuple(padding), ")");
    const size_t d = i + (3 - S);  // conv2d fills the last two of the three spatial slots
    g.in[d] = x[static_cast<int64_t>(i) + 2];
    g.kernel[d] = kernel[i];
    g.stride[d] = stride[i];
    g.padding[d] = padding[i];
    g.out[d] = (padded[i] - kernel[i]) / stride[i] + 1;
  }
  return g;
}

template <size_t S>
Shape conv_output_shape(const ConvGeometry& g) {
  std::vector<int64_t> dims{g.batch, g.out_channels};
  for (size_t i = 3 - S; i < 3; ++i) dims.push_back(g.out[i]);
  return Shape(dims);
}

/// im2col of x (any strides) for geometry g: (N·P, C·K).
template <class T, class B>
Tensor<T, B> im2col(const Tensor<T, B>& x, const ConvGeometry& g) {
  const Tensor<T, B> xc = x.contiguous();
  Tensor<T, B> cols = Tensor<T, B>::empty(Shape{g.batch * g.out_volume(), g.col_width()});
  Im2ColKernel<B>::im2col(xc.data(), g, cols.data());
  return cols;
}

/// y = conv(x, w) + b for a validated geometry; b may be undefined.
template <class T, class B>
Tensor<T, B> conv_forward(const Tensor<T, B>& x, const Tensor<T, B>& w, const Tensor<T, B>& b,
                          const ConvGeometry& g, const Shape& out_shape) {
  const int64_t positions = g.out_volume(), width = g.col_width(), out_channels = g.out_channels;
  Tensor<T, B> y = Tensor<T, B>::empty(out_shape);
  if (y.numel() == 0) return y;
  const Tensor<T, B> cols = im2col(x, g);  // (N·P, C·K)
  const Tensor<T, B> wc = w.contiguous();  // (O, C·K)
  // y_n (O, P) = W (O, C·K) · cols_nᵀ, for each sample n (W shared: stride 0).
  gemm_call<T, B>(false, true, out_channels, positions, width, T(1), wc.data(), width, 0, cols.data(), width,
                  positions * width, T(0), y.data(), positions, out_channels * positions, g.batch);
  if (b.defined()) {
    const Tensor<T, B> bc = b.contiguous();
    B::for_each(g.batch * out_channels, ConvAddBias<T>{y.data(), bc.data(), positions, out_channels},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(1, positions)));
  }
  return y;
}

template <class T, class B>
struct ConvGrads {
  Tensor<T, B> dL_dx, dL_dw, dL_db;
};

/// Gradients of a convolution. `x` is needed for dL/dw (im2col is recomputed rather than kept
/// alive between forward and backward), `w` for dL/dx; pass undefined tensors for what is unneeded.
template <class T, class B>
ConvGrads<T, B> conv_backward(const Tensor<T, B>& dL_dy, const Tensor<T, B>& x, const Tensor<T, B>& w,
                              const ConvGeometry& g, const Shape& x_shape, const Shape& w_shape, bool want_x,
                              bool want_w, bool want_b) {
  ConvGrads<T, B> grads;
  const int64_t positions = g.out_volume(), width = g.col_width(), out_channels = g.out_channels;
  const int64_t rows = g.batch * positions;
  if (rows == 0 || out_channels == 0) {  // empty output: every gradient is zero
    if (want_x) grads.dL_dx = Tensor<T, B>::zeros(x_shape);
    if (want_w) grads.dL_dw = Tensor<T, B>::zeros(w_shape);
    if (want_b) grads.dL_db = Tensor<T, B>::zeros(Shape{out_channels});
    return grads;
  }
  // dY as (O, N·P): a copy unless N == 1.
  const Tensor<T, B> dy_nop = dL_dy.contiguous();  // (N, O, P)
  Tensor<T, B> dy = dy_nop;
  if (g.batch > 1) {
    dy = Tensor<T, B>::empty(Shape{out_channels, rows});
    B::for_each(g.batch * out_channels,
                ConvSwapLeadingAxes<T>{dy.data(), dy_nop.data(), g.batch, out_channels, positions},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(1, positions)));
  }
  if (want_b) grads.dL_db = sum_forward(dy.reshape({out_channels, rows}), {1});
  if (want_w) {
    grads.dL_dw = Tensor<T, B>::empty(w_shape);
    const Tensor<T, B> cols = im2col(x, g);
    gemm_call<T, B>(false, false, out_channels, width, rows, T(1), dy.data(), rows, 0, cols.data(), width, 0,
                    T(0), grads.dL_dw.data(), width, 0, 1);
  }
  if (want_x) {
    const Tensor<T, B> wc = w.contiguous();
    Tensor<T, B> dcols = Tensor<T, B>::empty(Shape{rows, width});
    gemm_call<T, B>(true, false, rows, width, out_channels, T(1), dy.data(), rows, 0, wc.data(), width, 0,
                    T(0), dcols.data(), width, 0, 1);
    grads.dL_dx = Tensor<T, B>::empty(x_shape);
    Im2ColKernel<B>::col2im(dcols.data(), g, grads.dL_dx.data());
  }
  return grads;
}

template <size_t S, class T, class B>
Var<T, B> conv_nd(const char* op, const Var<T, B>& x, const Var<T, B>& weight, const Var<T, B>& bias,
                  const std::array<int64_t, S>& stride, const std::array<int64_t, S>& padding) {
  const Shape bias_shape = bias.defined() ? bias.shape() : Shape{};
  const ConvGeometry g = make_conv_geometry<S>(op, x.shape(), weight.shape(),
                                               bias.defined() ? &bias_shape : nullptr, stride, padding);
  Tensor<T, B> y = conv_forward(x.value(), weight.value(), bias.defined() ? bias.value() : Tensor<T, B>(), g,
                                conv_output_shape<S>(g));
  const bool want_x = needs_grad(x), want_w = needs_grad(weight), want_b = bias.defined() && needs_grad(bias);
  auto grads = [g, want_x, want_w, want_b, x_shape = x.shape(), w_shape = weight.shape(),
                saved_x = want_w ? x.value() : Tensor<T, B>(),
                saved_w = want_x ? weight.value() : Tensor<T, B>()](const Tensor<T, B>& dL_dy) {
    return conv_backward(dL_dy, saved_x, saved_w, g, x_shape, w_shape, want_x, want_w, want_b);
  };
  if (bias.defined()) {
    return make_result<T, B>(y, op, {x, weight, bias}, [grads](const Tensor<T, B>& dL_dy) {
      ConvGrads<T, B> r = grads(dL_dy);
      return std::vector{r.dL_dx, r.dL_dw, r.dL_db};
    });
  }
  return make_result<T, B>(y, op, {x, weight}, [grads](const Tensor<T, B>& dL_dy) {
    ConvGrads<T, B> r = grads(dL_dy);
    return std::vector{r.dL_dx, r.dL_dw};
  });
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// 2-D convolution: x (N, C, H, W), weight (O, C, kh, kw), bias (O) or undefined
/// -> (N, O, (H + 2ph - kh)/sh + 1, (W + 2pw - kw)/sw + 1).
template <class T, class B>
Tensor<T, B> conv2d_forward(const Tensor<T, B>& x, const Tensor<T, B>& weight, const Tensor<T, B>& bias,
                            std::array<int64_t, 2> stride, std::array<int64_t, 2> padding = {0, 0}) {
  const ConvGeometry g = detail::make_conv_geometry<2>(
      "conv2d", x.shape(), weight.shape(), bias.defined() ? &bias.shape() : nullptr, stride, padding);
  return detail::conv_forward(x, weight, bias, g, detail::conv_output_shape<2>(g));
}

/// 3-D convolution: x (N, C, T, H, W), weight (O, C, kt, kh, kw), bias (O) or undefined
/// -> (N, O, T', H', W') with each extent (in + 2·pad - kernel)/stride + 1.
template <class T, class B>
Tensor<T, B> conv3d_forward(const Tensor<T, B>& x, const Tensor<T, B>& weight, const Tensor<T, B>& bias,
                            std::array<int64_t, 3> stride, std::array<int64_t, 3> padding = {0, 0, 0}) {
  const ConvGeometry g = detail::make_conv_geometry<3>(
      "conv3d", x.shape(), weight.shape(), bias.defined() ? &bias.shape() : nullptr, stride, padding);
  return detail::conv_forward(x, weight, bias, g, detail::conv_output_shape<3>(g));
}

// ---- differentiable ----------------------------------------------------------------------------

/// 2-D convolution (torch.nn.functional.conv2d with groups = dilation = 1):
/// x (N, C, H, W), weight (O, C, kh, kw), bias (O) or an undefined Var -> (N, O, H', W').
/// Any stride (overlapping windows included) and zero padding.
template <class T, class B>
Var<T, B> conv2d(const Var<T, B>& x, const Var<T, B>& weight, const Var<T, B>& bias,
                 std::array<int64_t, 2> stride, std::array<int64_t, 2> padding = {0, 0}) {
  return detail::conv_nd<2>("conv2d", x, weight, bias, stride, padding);
}

/// 3-D convolution (torch.nn.functional.conv3d with groups = dilation = 1):
/// x (N, C, T, H, W), weight (O, C, kt, kh, kw), bias (O) or an undefined Var -> (N, O, T', H', W').
template <class T, class B>
Var<T, B> conv3d(const Var<T, B>& x, const Var<T, B>& weight, const Var<T, B>& bias,
                 std::array<int64_t, 3> stride, std::array<int64_t, 3> padding = {0, 0, 0}) {
  return detail::conv_nd<3>("conv3d", x, weight, bias, stride, padding);
}

}  // namespace bindery::ops
