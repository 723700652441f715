// bindery/ops/linear.hpp — y = x·Wᵀ + b, PyTorch's F.linear.
//
// Forward: the output is first filled with the bias rows, then ONE GEMM accumulates x·Wᵀ into it
// (beta = 1). On the Cpu backend in fp32, bindery's x·Wᵀ kernel adds the bias in its epilogue
// instead (Cpu::gemm_nt_bias: the same bits, no fill pass). W is read in place in PyTorch's (out, in)
// layout through the GEMM's trans flag; x's leading axes are flattened into rows.
// Backward: dL/dx = dL/dy·W, dL/dW = dL/dyᵀ·x over the flattened rows (one GEMM each), and
// dL/db = the column sums of dL/dy (a GEMV with a ones vector).
#pragma once

#include "bindery/ops/matmul.hpp"

namespace bindery::ops {

namespace detail {

template <class T>
struct FillRowsFunctor {  // out[r, :] = row[:] for one row r
  T* out;
  const T* row;
  int64_t cols;
  BINDERY_HOST_DEVICE void operator()(int64_t r) const {
    T* dst = out + r * cols;
    for (int64_t j = 0; j < cols; ++j) dst[j] = row[j];
  }
};

template <class T, class B>
void check_linear(const Tensor<T, B>& x, const Tensor<T, B>& weight, const Tensor<T, B>& bias) {
  BINDERY_CHECK(x.defined() && weight.defined(), ValueError, "linear: x or weight is undefined");
  BINDERY_CHECK(weight.rank() == 2 && x.rank() >= 1 && x.size(-1) == weight.size(1), ShapeError,
                "linear: x of shape ", x.shape(), " and weight of shape ", weight.shape(),
                ": need x (..., in) and weight (out, in)");
  BINDERY_CHECK(!bias.defined() || bias.shape() == Shape{weight.size(0)}, ShapeError,
                "linear: bias of shape ", bias.shape(), " for weight of shape ", weight.shape(),
                ": need bias (", weight.size(0), ")");
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// x: (..., in), weight: (out, in), bias: (out) or undefined -> (..., out).
template <class T, class B>
Tensor<T, B> linear_forward(const Tensor<T, B>& x, const Tensor<T, B>& weight,
                            const Tensor<T, B>& bias = Tensor<T, B>()) {
  detail::check_linear(x, weight, bias);
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const int64_t rows = detail::leading_shape(x.shape(), 1).numel();
  // x as (rows, in): a view when x's leading axes merge, a copy otherwise (2-D x is used as is,
  // so a transposed 2-D view still reaches the GEMM without a copy).
  const Tensor<T, B> x_rows = x.rank() == 2 ? x : x.reshape({rows, in});
  std::vector<int64_t> out_dims(x.shape().begin(), x.shape().end() - 1);
  out_dims.push_back(out_features);
  Tensor<T, B> y = Tensor<T, B>::empty(Shape{rows, out_features});  // (rows, out)
  if (rows == 0 || out_features == 0) return y.reshape(out_dims);
  const detail::GemmOperand<T, B> op_x = detail::gemm_operand(x_rows, false);
  const detail::GemmOperand<T, B> op_w = detail::gemm_operand(weight, true);
  const Tensor<T, B> b = bias.defined() ? bias.contiguous() : Tensor<T, B>();
  // A backend whose x·Wᵀ kernel adds the bias in its epilogue (Cpu::gemm_nt_bias) saves the fill;
  // inside an Autocast scope the product goes through gemm_call's 16-bit operands instead.
  if constexpr (requires(const T* p, T* q, int64_t i) { B::gemm_nt_bias(i, i, i, p, i, p, i, p, q, i); }) {
    if (b.defined() && !op_x.trans && op_w.trans && autocast_precision() == Precision::kFloat32 &&
        B::gemm_nt_bias(rows, out_features, in, op_x.tensor.data(), op_x.ld, op_w.tensor.data(), op_w.ld,
                        b.data(), y.data(), out_features)) {
      return y.reshape(out_dims);
    }
  }
  if (b.defined()) {
    B::for_each(rows, detail::FillRowsFunctor<T>{y.data(), b.data(), out_features},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(out_features, 1)));
  }
  detail::gemm_call<T, B>(op_x.trans, op_w.trans, rows, out_features, in, T(1), op_x.tensor.data(), op_x.ld,
                          0, op_w.tensor.data(), op_w.ld, 0, b.defined() ? T(1) : T(0), y.data(),
                          out_features, 0, 1);
  return y.reshape(out_dims);
}

// ---- differentiable ----------------------------------------------------------------------------

/// y = x·Wᵀ + b. x: (..., in), weight: (out, in) (PyTorch layout), bias: (out) or an undefined
/// Var for none -> (..., out).
/// Backward: dL/dx = dL/dy·W, dL/dW = dL/dyᵀ·x, dL/db = Σ_rows dL/dy.
template <class T, class B>
Var<T, B> linear(const Var<T, B>& x, const Var<T, B>& weight, const Var<T, B>& bias = Var<T, B>()) {
  const Tensor<T, B> bias_value = bias.defined() ? bias.value() : Tensor<T, B>();
  Tensor<T, B> y = linear_forward(x.value(), weight.value(), bias_value);
  const bool need_x = needs_grad(x), need_w = needs_grad(weight), need_b = needs_grad(bias);
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const int64_t rows = detail::leading_shape(x.shape(), 1).numel();
  // Save x only for dL/dW and W only for dL/dx.
  const Tensor<T, B> saved_x = need_w ? x.value() : Tensor<T, B>();
  const Tensor<T, B> saved_w = need_x ? weight.value() : Tensor<T, B>();
  return make_result<T, B>(
      y, "linear", {x, weight, bias},
      [saved_x, saved_w, x_shape = x.shape(), rows, in, out_features, need_x, need_w,
       need_b](const Tensor<T, B>& dL_dy) {
        const Tensor<T, B> g = dL_dy.reshape({rows, out_features});  // (rows, out)
        Tensor<T, B> dL_dx, dL_dw, dL_db;
        if (need_x) dL_dx = matmul_forward(g, saved_w).reshape(x_shape.dims());  // (rows, in)
        if (need_w) {
          const Tensor<T, B> x_rows = saved_x.rank() == 2 ? saved_x : saved_x.reshape({rows, in});
          dL_dw = matmul_forward(g, x_rows, true, false);  // (out, in)
        }
        if (need_b) dL_db = matmul_forward(Tensor<T, B>::ones(Shape{rows}), g);  // (out)
        return std::vector{dL_dx, dL_dw, dL_db};
      });
}

}  // namespace bindery::ops
