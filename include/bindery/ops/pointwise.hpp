// bindery/ops/pointwise.hpp — unary math: neg, exp, log, sqrt, pow, tanh, sigmoid, clamp (and
// gelu, which has its own header with a vectorized Cpu kernel: ops/gelu.hpp, included here).
// Each forward is ops::map with a functor; each backward is ops::zip of dL/dy with the saved
// input x or output y and the derivative functor from ops/functors.hpp.
#pragma once

#include "bindery/ops/arithmetic.hpp"
#include "bindery/ops/gelu.hpp"

namespace bindery::ops {

namespace detail {

/// Unary op whose derivative needs the input x: dL/dx = Grad(dL/dy, x).
template <class Fwd, class Grad, class T, class B>
Var<T, B> unary_with_input(const Var<T, B>& x, const char* name, Fwd fwd, Grad grad) {
  return make_result<T, B>(map(x.value(), fwd), name, {x}, [xv = x.value(), grad](const Tensor<T, B>& dL_dy) {
    return std::vector{zip(dL_dy, xv, grad)};
  });
}

/// Unary op whose derivative is cheaper from the output y: dL/dx = Grad(dL/dy, y).
template <class Fwd, class Grad, class T, class B>
Var<T, B> unary_with_output(const Var<T, B>& x, const char* name, Fwd fwd, Grad grad) {
  Tensor<T, B> y = map(x.value(), fwd);
  return make_result<T, B>(y, name, {x},
                           [y, grad](const Tensor<T, B>& dL_dy) { return std::vector{zip(dL_dy, y, grad)}; });
}

}  // namespace detail

/// -x.
template <class T, class B>
Var<T, B> neg(const Var<T, B>& x) {
  return mul_scalar(x, T(-1));
}

/// e^x. dL/dx = dL/dy * y.
template <class T, class B>
Var<T, B> exp(const Var<T, B>& x) {
  return detail::unary_with_output(x, "exp", functors::Exp{}, functors::Mul{});
}

/// ln x. dL/dx = dL/dy / x.
template <class T, class B>
Var<T, B> log(const Var<T, B>& x) {
  return detail::unary_with_input(x, "log", functors::Log{}, functors::LogGrad{});
}

/// √x. dL/dx = dL/dy / (2y).
template <class T, class B>
Var<T, B> sqrt(const Var<T, B>& x) {
  return detail::unary_with_output(x, "sqrt", functors::Sqrt{}, functors::SqrtGrad{});
}

/// x^p for a scalar exponent. dL/dx = dL/dy * p x^(p-1).
template <class T, class B>
Var<T, B> pow(const Var<T, B>& x, T p) {
  return detail::unary_with_input(x, "pow", functors::PowScalar<T>{p}, functors::PowScalarGrad<T>{p});
}

/// tanh x. dL/dx = dL/dy (1 - y²).
template <class T, class B>
Var<T, B> tanh(const Var<T, B>& x) {
  return detail::unary_with_output(x, "tanh", functors::Tanh{}, functors::TanhGrad{});
}

/// 1 / (1 + e^-x). dL/dx = dL/dy y (1 - y).
template <class T, class B>
Var<T, B> sigmoid(const Var<T, B>& x) {
  return detail::unary_with_output(x, "sigmoid", functors::Sigmoid{}, functors::SigmoidGrad{});
}

/// min(max(x, low), high). The gradient passes where low <= x <= high.
template <class T, class B>
Var<T, B> clamp(const Var<T, B>& x, T low, T high) {
  BINDERY_CHECK(!(high < low), ValueError, "clamp: low ", low, " > high ", high);
  return detail::unary_with_input(x, "clamp", functors::Clamp<T>{low, high},
                                  functors::ClampGrad<T>{low, high});
}

}  // namespace bindery::ops
