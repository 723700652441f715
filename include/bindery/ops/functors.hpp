// bindery/ops/functors.hpp — scalar math written once, for every backend.
//
// Each functor is a plain struct with a BINDERY_HOST_DEVICE call operator: Cpu::for_each calls it in
// an OpenMP loop, the CUDA elementwise launcher calls the very same code in a kernel. Forward and
// derivative sit next to each other; derivatives take the forward input x (and the output y where
// that is cheaper) and return dy/dx.
#pragma once

#include <cmath>

#include "bindery/config.hpp"

namespace bindery::functors {

// ---- binary --------------------------------------------------------------------------------------
struct Add {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T a, T b) const {
    return a + b;
  }
};
struct Sub {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T a, T b) const {
    return a - b;
  }
};
struct Mul {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T a, T b) const {
    return a * b;
  }
};
struct Div {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T a, T b) const {
    return a / b;
  }
};
/// d(a/b)/db = -a/b^2, used as dL_db = -dL_dy * a / b^2 = -dL_dy * y / b.
struct DivGradB {  // (dL_dy * a, b) -> -dL_dy * a / b^2
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T g_times_a, T b) const {
    return -g_times_a / (b * b);
  }
};
struct Maximum {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T a, T b) const {
    return a > b ? a : b;
  }
};

// ---- unary, each with its derivative ------------------------------------------------------------
struct Neg {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T x) const {
    return -x;
  }
};
struct Exp {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T x) const {
    return std::exp(x);
  }
};
struct Log {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T x) const {
    return std::log(x);
  }
};
struct LogGrad {  // (dL_dy, x) -> dL_dy / x
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T g, T x) const {
    return g / x;
  }
};
struct Sqrt {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T x) const {
    return std::sqrt(x);
  }
};
struct SqrtGrad {  // (dL_dy, y) -> dL_dy / (2 y)
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T g, T y) const {
    return g / (T(2) * y);
  }
};
struct Tanh {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T x) const {
    return std::tanh(x);
  }
};
struct TanhGrad {  // (dL_dy, y) -> dL_dy (1 - y^2)
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T g, T y) const {
    return g * (T(1) - y * y);
  }
};
struct Sigmoid {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T x) const {
    // Two branches keep exp() from overflowing for large |x|.
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
  }
};
struct SigmoidGrad {  // (dL_dy, y) -> dL_dy y (1 - y)
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T g, T y) const {
    return g * y * (T(1) - y);
  }
};
/// Exact GELU: x Φ(x) = x/2 (1 + erf(x/√2)), as nn.GELU() (approximate='none').
struct Gelu {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T x) const {
    return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
  }
};
struct GeluGrad {  // (dL_dy, x) -> dL_dy (Φ(x) + x φ(x))
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T g, T x) const {
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
    const T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
    return g * (cdf + x * pdf);
  }
};

// ---- with a scalar parameter -------------------------------------------------------------------
template <class T>
struct AddScalar {
  T s;
  BINDERY_HOST_DEVICE T operator()(T x) const { return x + s; }
};
template <class T>
struct MulScalar {
  T s;
  BINDERY_HOST_DEVICE T operator()(T x) const { return x * s; }
};
template <class T>
struct RsubScalar {  // s - x
  T s;
  BINDERY_HOST_DEVICE T operator()(T x) const { return s - x; }
};
template <class T>
struct RdivScalar {  // s / x
  T s;
  BINDERY_HOST_DEVICE T operator()(T x) const { return s / x; }
};
template <class T>
struct PowScalar {  // x^p
  T p;
  BINDERY_HOST_DEVICE T operator()(T x) const { return std::pow(x, p); }
};
template <class T>
struct PowScalarGrad {  // (dL_dy, x) -> dL_dy p x^(p-1)
  T p;
  BINDERY_HOST_DEVICE T operator()(T g, T x) const {
    return p == T(0) ? T(0) : g * p * std::pow(x, p - T(1));
  }
};
template <class T>
struct Clamp {
  T low, high;
  BINDERY_HOST_DEVICE T operator()(T x) const { return x < low ? low : (x > high ? high : x); }
};
template <class T>
struct ClampGrad {  // gradient passes where low <= x <= high (PyTorch convention at the bounds)
  T low, high;
  BINDERY_HOST_DEVICE T operator()(T g, T x) const { return (x >= low && x <= high) ? g : T(0); }
};

}  // namespace bindery::functors
