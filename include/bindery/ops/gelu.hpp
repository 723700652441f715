// bindery/ops/gelu.hpp — exact (erf) GELU, PyTorch's nn.GELU(), and the fused gelu(x + bias).
//
// Forward: y = x Φ(x), Φ the standard normal CDF. Backward: dL/dx = dL/dy (Φ(x) + x φ(x)),
// φ the standard normal pdf, from the saved input x.
// bias_gelu(x, b) = gelu(x + b) with b broadcast over the last axis, for a bias that no GEMM has
// added yet: one pass instead of two, and backward recomputes x + b instead of saving it.
// dL/db = Σ_rows dL/d(x + b). (nn::Mlp keeps Linear + gelu: ops::linear already adds its bias
// inside the GEMM, through C's initial value, so fusing it here would save no pass.)
//
// Kernels: GeluKernel<Cpu> runs float through the vectorized Φ of ops/simd_math.hpp (2.4x the
// scalar std::erf path forward and 3.1x backward on one core, docs/benchmarks.md; within a few ulp
// where the erf form loses the negative tail) and double through functors::Gelu / GeluGrad
// (std::erf, correct to double rounding, as the fp64 gradchecks need). Backends without a
// specialization (Cuda today) take the functor path: ops::map / ops::zip with functors::Gelu /
// GeluGrad.
#pragma once

#include <type_traits>

#include "bindery/backend/cpu.hpp"
#include "bindery/ops/arithmetic.hpp"
#include "bindery/ops/simd_math.hpp"

namespace bindery::ops {

/// GELU kernels over contiguous data; specialized per backend. kAvailable = false (the primary
/// template): the ops use the functors through ops::map / ops::zip instead.
template <class B>
struct GeluKernel {
  static constexpr bool kAvailable = false;
};

template <>
struct GeluKernel<Cpu> {
  static constexpr bool kAvailable = true;
  /// Elements per parallel task: a multiple of simd::kMaxLanes, so tasks split no vector.
  static constexpr int64_t kChunk = Cpu::kDefaultGrain;

  /// y = gelu(x) over n elements.
  template <class T>
  static void forward(const T* x, T* y, int64_t n) {
    for_chunks(n, [=](int64_t begin, int64_t count) {
      if constexpr (std::is_same_v<T, float>) {
        simd::gelu(x + begin, y + begin, count);
      } else {
        for (int64_t i = begin; i < begin + count; ++i) y[i] = functors::Gelu{}(x[i]);
      }
    });
  }

  /// dL_dx = dL_dy gelu'(x) over n elements.
  template <class T>
  static void backward(const T* dL_dy, const T* x, T* dL_dx, int64_t n) {
    for_chunks(n, [=](int64_t begin, int64_t count) {
      if constexpr (std::is_same_v<T, float>) {
        simd::gelu_backward(dL_dy + begin, x + begin, dL_dx + begin, count);
      } else {
        for (int64_t i = begin; i < begin + count; ++i) dL_dx[i] = functors::GeluGrad{}(dL_dy[i], x[i]);
      }
    });
  }

  /// y = gelu(x + bias) on (rows, d) rows, bias (d).
  template <class T>
  static void bias_forward(const T* x, const T* bias, T* y, int64_t rows, int64_t d) {
    Cpu::for_each(
        rows,
        [=](int64_t r) {
          const T* xr = x + r * d;
          T* yr = y + r * d;
          if constexpr (std::is_same_v<T, float>) {
            simd::bias_gelu(xr, bias, yr, d);
          } else {
            for (int64_t j = 0; j < d; ++j) yr[j] = functors::Gelu{}(xr[j] + bias[j]);
          }
        },
        row_grain(d));
  }

  /// dL_dz = dL_dy gelu'(x + bias) on (rows, d) rows, bias (d). The bias gradient is the column sum
  /// of dL_dz, taken by the caller.
  template <class T>
  static void bias_backward(const T* dL_dy, const T* x, const T* bias, T* dL_dz, int64_t rows, int64_t d) {
    Cpu::for_each(
        rows,
        [=](int64_t r) {
          const int64_t o = r * d;
          if constexpr (std::is_same_v<T, float>) {
            simd::bias_gelu_backward(dL_dy + o, x + o, bias, dL_dz + o, d);
          } else {
            for (int64_t j = 0; j < d; ++j)
              dL_dz[o + j] = functors::GeluGrad{}(dL_dy[o + j], x[o + j] + bias[j]);
          }
        },
        row_grain(d));
  }

 private:
  /// f(begin, count) over [0, n) in chunks of kChunk, one OpenMP task per chunk.
  template <class F>
  static void for_chunks(int64_t n, const F& f) {
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    Cpu::for_each(
        chunks, [&](int64_t c) { f(c * kChunk, std::min(kChunk, n - c * kChunk)); }, 1);
  }
  /// Rows per parallel task so one task touches about kChunk elements.
  static int64_t row_grain(int64_t d) { return std::max<int64_t>(1, kChunk / std::max<int64_t>(d, 1)); }
};

namespace detail {

template <class T, class B>
void check_bias_gelu(const Tensor<T, B>& x, const Tensor<T, B>& bias) {
  BINDERY_CHECK(x.defined() && bias.defined(), ValueError, "bias_gelu: x or bias is undefined");
  BINDERY_CHECK(x.rank() >= 1 && bias.rank() == 1 && bias.size(0) == x.size(-1), ShapeError,
                "bias_gelu: x of shape ", x.shape(), " and bias of shape ", bias.shape(),
                ": need x (..., D) and bias (D)");
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// y = gelu(x). x: any shape -> same shape (contiguous).
template <class T, class B>
Tensor<T, B> gelu_forward(const Tensor<T, B>& x) {
  if constexpr (GeluKernel<B>::kAvailable) {
    const Tensor<T, B> xc = x.contiguous();
    Tensor<T, B> y = Tensor<T, B>::empty(x.shape());
    GeluKernel<B>::forward(xc.data(), y.data(), y.numel());
    return y;
  } else {
    return map(x, functors::Gelu{});
  }
}

/// dL/dx = dL/dy (Φ(x) + x φ(x)). dL_dy, x: the same shape -> that shape.
template <class T, class B>
Tensor<T, B> gelu_backward(const Tensor<T, B>& dL_dy, const Tensor<T, B>& x) {
  BINDERY_CHECK(dL_dy.shape() == x.shape(), ShapeError, "gelu_backward: dL_dy of shape ", dL_dy.shape(),
                " and x of shape ", x.shape(), " differ");
  if constexpr (GeluKernel<B>::kAvailable) {
    const Tensor<T, B> gc = dL_dy.contiguous(), xc = x.contiguous();
    Tensor<T, B> dL_dx = Tensor<T, B>::empty(x.shape());
    GeluKernel<B>::backward(gc.data(), xc.data(), dL_dx.data(), dL_dx.numel());
    return dL_dx;
  } else {
    return zip(dL_dy, x, functors::GeluGrad{});
  }
}

/// y = gelu(x + bias). x: (..., D), bias: (D) -> (..., D) (contiguous).
template <class T, class B>
Tensor<T, B> bias_gelu_forward(const Tensor<T, B>& x, const Tensor<T, B>& bias) {
  detail::check_bias_gelu(x, bias);
  if constexpr (GeluKernel<B>::kAvailable) {
    const Tensor<T, B> xc = x.contiguous(), bc = bias.contiguous();
    Tensor<T, B> y = Tensor<T, B>::empty(x.shape());
    const int64_t d = x.size(-1);
    GeluKernel<B>::bias_forward(xc.data(), bc.data(), y.data(), d > 0 ? y.numel() / d : 0, d);
    return y;
  } else {
    return map(zip(x, bias, functors::Add{}), functors::Gelu{});
  }
}

/// dL/d(x + bias) = dL/dy gelu'(x + bias). dL_dy, x: (..., D), bias: (D) -> (..., D).
template <class T, class B>
Tensor<T, B> bias_gelu_backward(const Tensor<T, B>& dL_dy, const Tensor<T, B>& x, const Tensor<T, B>& bias) {
  detail::check_bias_gelu(x, bias);
  BINDERY_CHECK(dL_dy.shape() == x.shape(), ShapeError, "bias_gelu_backward: dL_dy of shape ", dL_dy.shape(),
                " and x of shape ", x.shape(), " differ");
  if constexpr (GeluKernel<B>::kAvailable) {
    const Tensor<T, B> gc = dL_dy.contiguous(), xc = x.contiguous(), bc = bias.contiguous();
    Tensor<T, B> dL_dz = Tensor<T, B>::empty(x.shape());
    const int64_t d = x.size(-1);
    GeluKernel<B>::bias_backward(gc.data(), xc.data(), bc.data(), dL_dz.data(), d > 0 ? x.numel() / d : 0, d);
    return dL_dz;
  } else {
    return zip(dL_dy, zip(x, bias, functors::Add{}), functors::GeluGrad{});
  }
}

// ---- differentiable ----------------------------------------------------------------------------

/// Exact (erf) GELU, as PyTorch's nn.GELU(). x: any shape -> same shape.
/// dL/dx = dL/dy (Φ(x) + x φ(x)).
template <class T, class B>
Var<T, B> gelu(const Var<T, B>& x) {
  const Tensor<T, B> saved_x = needs_grad(x) ? x.value() : Tensor<T, B>();
  return make_result<T, B>(gelu_forward(x.value()), "gelu", {x}, [saved_x](const Tensor<T, B>& dL_dy) {
    return std::vector{gelu_backward(dL_dy, saved_x)};
  });
}

/// gelu(x + bias), bias broadcast over the last axis. x: (..., D), bias: (D) -> (..., D).
/// dL/dx = dL/dz, dL/dbias = Σ_rows dL/dz with dL/dz = dL/dy gelu'(x + bias).
template <class T, class B>
Var<T, B> bias_gelu(const Var<T, B>& x, const Var<T, B>& bias) {
  const bool need_x = needs_grad(x), need_bias = needs_grad(bias);
  const Tensor<T, B> saved_x = need_x || need_bias ? x.value() : Tensor<T, B>();
  const Tensor<T, B> saved_bias = need_x || need_bias ? bias.value() : Tensor<T, B>();
  return make_result<T, B>(bias_gelu_forward(x.value(), bias.value()), "bias_gelu", {x, bias},
                           [saved_x, saved_bias, need_x, need_bias](const Tensor<T, B>& dL_dy) {
                             const Tensor<T, B> dL_dz = bias_gelu_backward(dL_dy, saved_x, saved_bias);
                             return std::vector{
                                 need_x ? dL_dz : Tensor<T, B>(),
                                 need_bias ? sum_to_shape(dL_dz, saved_bias.shape()) : Tensor<T, B>()};
                           });
}

}  // namespace bindery::ops
