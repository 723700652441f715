// examples/04_write_your_op/softplus.hpp — two new ops, written the way bindery's own ops are.
//
//   softplus(x)                          = log(1 + e^x)                     a pointwise op: two functors
//   scale_shift_softplus(x, scale, shift) = softplus(x * scale + shift)     a fused op: one pass each way
//
// Nothing here is specific to the CPU: the functors have BINDERY_HOST_DEVICE call operators and the
// ops only call ops::map / ops::zip / B::for_each, so a .cu file that includes this header (and
// <bindery/cuda.hpp> first) gets the CUDA versions unchanged (docs/write_an_op.md).
#pragma once

#include <bindery/autograd/var.hpp>
#include <bindery/ops/elementwise.hpp>
#include <bindery/ops/reduce.hpp>

#include <cmath>
#include <vector>

namespace my_ops {

using bindery::Tensor;
using bindery::Var;

// TUTORIAL: a pointwise op is a pair of functors: the forward y = f(x) and the derivative, written
// as (dL/dy, x) -> dL/dx so that the backward is a single ops::zip. A plain struct with a templated
// BINDERY_HOST_DEVICE call operator runs in Cpu::for_each's OpenMP loop and, compiled by nvcc, in
// the CUDA elementwise kernel: the math is written once.
struct Softplus {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T x) const {
    // max(x, 0) + log(1 + e^-|x|): e^x never overflows, and log1p keeps the digits of the tail
    // (softplus(-40) = 4.2e-18, where log(1 + e^-40) would round to 0).
    const T positive = x > T(0) ? x : T(0);
    const T magnitude = x < T(0) ? -x : x;
    return positive + std::log1p(std::exp(-magnitude));
  }
};
/// d softplus(x) / dx = sigmoid(x): (dL_dy, x) -> dL_dy sigmoid(x).
struct SoftplusGrad {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T dL_dy, T x) const {
    return dL_dy * bindery::functors::Sigmoid{}(x);
  }
};

/// log(1 + e^x), PyTorch's F.softplus (beta 1, no threshold). x: any shape -> the same shape.
/// dL/dx = dL/dy sigmoid(x), from the saved input x.
template <class T, class B>
Var<T, B> softplus(const Var<T, B>& x) {
  // TUTORIAL: save only what the backward needs, and only when someone will ask for a gradient.
  const Tensor<T, B> saved_x = bindery::needs_grad(x) ? x.value() : Tensor<T, B>();
  // TUTORIAL: make_result records the node: its value, a name (Var::op_name), its inputs, and a
  // closure from dL/d(output) to one gradient per input. Under NoGrad, or when x needs no gradient,
  // the closure is dropped at once and the result is a plain leaf.
  return bindery::make_result<T, B>(bindery::ops::map(x.value(), Softplus{}), "softplus", {x},
                                    [saved_x](const Tensor<T, B>& dL_dy) {
                                      return std::vector{bindery::ops::zip(dL_dy, saved_x, SoftplusGrad{})};
                                    });
}

namespace detail {

// TUTORIAL: a fused op is more than one functor's worth of math, so it brings its own per-element
// kernels: still BINDERY_HOST_DEVICE structs of raw pointers, launched by B::for_each(n, kernel).
// Element i of a (rows, d) tensor uses feature j = i % d of scale and shift.
template <class T>
struct ScaleShiftSoftplusForward {  // y[i] = softplus(x[i] scale[j] + shift[j])
  T* y;
  const T* x;
  const T* scale;
  const T* shift;
  int64_t d;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t j = i % d;
    y[i] = Softplus{}(x[i] * scale[j] + shift[j]);
  }
};
template <class T>
struct ScaleShiftSoftplusBackward {  // dL_dz[i] = dL_dy[i] sigmoid(z[i]), z = x scale + shift recomputed
  T* dL_dz;
  const T* dL_dy;
  const T* x;
  const T* scale;
  const T* shift;
  int64_t d;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t j = i % d;
    dL_dz[i] = SoftplusGrad{}(dL_dy[i], x[i] * scale[j] + shift[j]);
  }
};

}  // namespace detail

/// softplus(x * scale + shift), scale and shift per feature (broadcast over the last axis).
/// x: (..., D), scale: (D), shift: (D) -> (..., D). One pass forward, one backward; the backward
/// recomputes z = x scale + shift instead of saving it. With dL/dz = dL/dy sigmoid(z):
/// dL/dx = dL/dz scale, dL/dscale = Σ_rows dL/dz x, dL/dshift = Σ_rows dL/dz.
template <class T, class B>
Var<T, B> scale_shift_softplus(const Var<T, B>& x, const Var<T, B>& scale, const Var<T, B>& shift) {
  const int64_t d = x.rank() >= 1 ? x.size(-1) : 0;
  // TUTORIAL: state the shape contract and check it with a typed error that names the shapes.
  BINDERY_CHECK(
      x.rank() >= 1 && scale.rank() == 1 && shift.rank() == 1 && scale.size(0) == d && shift.size(0) == d,
      ShapeError, "scale_shift_softplus: x of shape ", x.shape(), ", scale of shape ", scale.shape(),
      " and shift of shape ", shift.shape(), ": need x (..., D), scale (D), shift (D)");
  // The kernels index raw memory, so they need contiguous operands (a copy only when x is a view).
  const Tensor<T, B> xc = x.value().contiguous(), sc = scale.value().contiguous(),
                     hc = shift.value().contiguous();
  Tensor<T, B> y = Tensor<T, B>::empty(x.shape());
  B::for_each(y.numel(), detail::ScaleShiftSoftplusForward<T>{y.data(), xc.data(), sc.data(), hc.data(), d});

  const bool need_x = bindery::needs_grad(x), need_scale = bindery::needs_grad(scale),
             need_shift = bindery::needs_grad(shift);
  return bindery::make_result<T, B>(
      y, "scale_shift_softplus", {x, scale, shift},
      [xc, sc, hc, d, need_x, need_scale, need_shift](const Tensor<T, B>& dL_dy) {
        const Tensor<T, B> g = dL_dy.contiguous();
        Tensor<T, B> dL_dz = Tensor<T, B>::empty(g.shape());
        B::for_each(g.numel(), detail::ScaleShiftSoftplusBackward<T>{dL_dz.data(), g.data(), xc.data(),
                                                                     sc.data(), hc.data(), d});
        namespace ops = bindery::ops;
        // TUTORIAL: a broadcast input receives the sum of its gradient over the broadcast axes:
        // sum_to_shape is the adjoint of expand. An input nobody asked about gets an undefined
        // tensor, which the engine skips.
        return std::vector{need_x ? ops::zip(dL_dz, sc, bindery::functors::Mul{}) : Tensor<T, B>(),
                           need_scale
                               ? ops::sum_to_shape(ops::zip(dL_dz, xc, bindery::functors::Mul{}), sc.shape())
                               : Tensor<T, B>(),
                           need_shift ? ops::sum_to_shape(dL_dz, hc.shape()) : Tensor<T, B>()};
      });
}

}  // namespace my_ops
