// bindery/ops/arithmetic.hpp — add, sub, mul, div with broadcasting, and their scalar forms.
//
// Forward: ops::zip with a shared functor. Backward: the local derivative times dL/dy, then
// sum_to_shape to undo the broadcast (an input of shape (1, D) added to (B, D) receives the sum
// of dL/dy over B).
#pragma once

#include "bindery/ops/reduce.hpp"

namespace bindery::ops {

// ---- tensor level (used by backward formulas and by users who need no graph) ------------------
template <class T, class B>
Tensor<T, B> add_forward(const Tensor<T, B>& a, const Tensor<T, B>& b) {
  return zip(a, b, functors::Add{});
}
template <class T, class B>
Tensor<T, B> sub_forward(const Tensor<T, B>& a, const Tensor<T, B>& b) {
  return zip(a, b, functors::Sub{});
}
template <class T, class B>
Tensor<T, B> mul_forward(const Tensor<T, B>& a, const Tensor<T, B>& b) {
  return zip(a, b, functors::Mul{});
}
template <class T, class B>
Tensor<T, B> div_forward(const Tensor<T, B>& a, const Tensor<T, B>& b) {
  return zip(a, b, functors::Div{});
}
template <class T, class B>
Tensor<T, B> scale_forward(const Tensor<T, B>& a, T s) {
  return map(a, functors::MulScalar<T>{s});
}

// ---- differentiable ----------------------------------------------------------------------------

/// a + b, broadcast. dL/da = sum_to_shape(dL/dy), dL/db likewise.
template <class T, class B>
Var<T, B> add(const Var<T, B>& a, const Var<T, B>& b) {
  return make_result<T, B>(add_forward(a.value(), b.value()), "add", {a, b},
                           [sa = a.shape(), sb = b.shape()](const Tensor<T, B>& dL_dy) {
                             return std::vector{sum_to_shape(dL_dy, sa), sum_to_shape(dL_dy, sb)};
                           });
}

/// a - b, broadcast. dL/da = dL/dy, dL/db = -dL/dy (each summed to its shape).
template <class T, class B>
Var<T, B> sub(const Var<T, B>& a, const Var<T, B>& b) {
  return make_result<T, B>(
      sub_forward(a.value(), b.value()), "sub", {a, b},
      [sa = a.shape(), sb = b.shape()](const Tensor<T, B>& dL_dy) {
        return std::vector{sum_to_shape(dL_dy, sa), sum_to_shape(map(dL_dy, functors::Neg{}), sb)};
      });
}

/// a * b, broadcast. dL/da = dL/dy * b, dL/db = dL/dy * a.
template <class T, class B>
Var<T, B> mul(const Var<T, B>& a, const Var<T, B>& b) {
  const bool need_a = needs_grad(a), need_b = needs_grad(b);
  // Save an operand only when the OTHER one needs its gradient.
  Tensor<T, B> saved_a = need_b ? a.value() : Tensor<T, B>(), saved_b = need_a ? b.value() : Tensor<T, B>();
  return make_result<T, B>(mul_forward(a.value(), b.value()), "mul", {a, b},
                           [sa = a.shape(), sb = b.shape(), saved_a, saved_b](const Tensor<T, B>& dL_dy) {
                             Tensor<T, B> dL_da, dL_db;
                             if (saved_b.defined()) dL_da = sum_to_shape(mul_forward(dL_dy, saved_b), sa);
                             if (saved_a.defined()) dL_db = sum_to_shape(mul_forward(dL_dy, saved_a), sb);
                             return std::vector{dL_da, dL_db};
                           });
}

/// a / b, broadcast. dL/da = dL/dy / b, dL/db = -dL/dy * a / b².
template <class T, class B>
Var<T, B> div(const Var<T, B>& a, const Var<T, B>& b) {
  return make_result<T, B>(
      div_forward(a.value(), b.value()), "div", {a, b},
      [sa = a.shape(), sb = b.shape(), av = a.value(), bv = b.value()](const Tensor<T, B>& dL_dy) {
        Tensor<T, B> dL_da = sum_to_shape(div_forward(dL_dy, bv), sa);
        Tensor<T, B> dL_db = sum_to_shape(zip(mul_forward(dL_dy, av), bv, functors::DivGradB{}), sb);
        return std::vector{dL_da, dL_db};
      });
}

/// x + s.
template <class T, class B>
Var<T, B> add_scalar(const Var<T, B>& x, T s) {
  return make_result<T, B>(map(x.value(), functors::AddScalar<T>{s}), "add_scalar", {x},
                           [](const Tensor<T, B>& dL_dy) { return std::vector{dL_dy}; });
}
/// x * s.
template <class T, class B>
Var<T, B> mul_scalar(const Var<T, B>& x, T s) {
  return make_result<T, B>(map(x.value(), functors::MulScalar<T>{s}), "mul_scalar", {x},
                           [s](const Tensor<T, B>& dL_dy) { return std::vector{scale_forward(dL_dy, s)}; });
}
/// s - x.
template <class T, class B>
Var<T, B> rsub_scalar(const Var<T, B>& x, T s) {
  return make_result<T, B>(
      map(x.value(), functors::RsubScalar<T>{s}), "rsub_scalar", {x},
      [](const Tensor<T, B>& dL_dy) { return std::vector{map(dL_dy, functors::Neg{})}; });
}
/// s / x. dL/dx = -dL/dy * s / x².
template <class T, class B>
Var<T, B> rdiv_scalar(const Var<T, B>& x, T s) {
  return make_result<T, B>(map(x.value(), functors::RdivScalar<T>{s}), "rdiv_scalar", {x},
                           [s, xv = x.value()](const Tensor<T, B>& dL_dy) {
                             return std::vector{zip(scale_forward(dL_dy, s), xv, functors::DivGradB{})};
                           });
}

}  // namespace bindery::ops

namespace bindery {

// Operators on Var: the natural way to write formulas (y = a * x + b).
template <class T, class B>
Var<T, B> operator+(const Var<T, B>& a, const Var<T, B>& b) {
  return ops::add(a, b);
}
template <class T, class B>
Var<T, B> operator-(const Var<T, B>& a, const Var<T, B>& b) {
  return ops::sub(a, b);
}
template <class T, class B>
Var<T, B> operator*(const Var<T, B>& a, const Var<T, B>& b) {
  return ops::mul(a, b);
}
template <class T, class B>
Var<T, B> operator/(const Var<T, B>& a, const Var<T, B>& b) {
  return ops::div(a, b);
}
template <class T, class B>
Var<T, B> operator+(const Var<T, B>& a, T s) {
  return ops::add_scalar(a, s);
}
template <class T, class B>
Var<T, B> operator+(T s, const Var<T, B>& a) {
  return ops::add_scalar(a, s);
}
template <class T, class B>
Var<T, B> operator-(const Var<T, B>& a, T s) {
  return ops::add_scalar(a, -s);
}
template <class T, class B>
Var<T, B> operator-(T s, const Var<T, B>& a) {
  return ops::rsub_scalar(a, s);
}
template <class T, class B>
Var<T, B> operator*(const Var<T, B>& a, T s) {
  return ops::mul_scalar(a, s);
}
template <class T, class B>
Var<T, B> operator*(T s, const Var<T, B>& a) {
  return ops::mul_scalar(a, s);
}
template <class T, class B>
Var<T, B> operator/(const Var<T, B>& a, T s) {
  return ops::mul_scalar(a, T(1) / s);
}
template <class T, class B>
Var<T, B> operator/(T s, const Var<T, B>& a) {
  return ops::rdiv_scalar(a, s);
}
template <class T, class B>
Var<T, B> operator-(const Var<T, B>& a) {
  return ops::mul_scalar(a, T(-1));
}

}  // namespace bindery
