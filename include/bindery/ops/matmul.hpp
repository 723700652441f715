// bindery/ops/matmul.hpp — matrix products: 1-D, 2-D and batched with broadcast batch axes.
//
// Forward: one call to B::gemm or B::gemm_batched per group of batch axes that share a stride
// (usually one call in all). Operands are read in place when their last two axes are row- or
// column-major (a transposed view becomes a GEMM trans flag); only other layouts are copied.
// A batched `a` against a 2-D `b` (the Linear / projection case) is one GEMM with the batch folded
// into M.
// Backward: dA = dC·Bᵀ, dB = Aᵀ·dC (with the trans flags folded in), summed over broadcast batch
// axes; for a 2-D b against a batched a, dB is one GEMM over the flattened batch.
#pragma once

#include <algorithm>
#include <vector>

#include "bindery/core/autocast.hpp"
#include "bindery/ops/shape.hpp"

namespace bindery::ops {

namespace detail {

/// An operand as a GEMM reads it: the tensor (the input itself, or a contiguous copy when its last
/// two axes fit no GEMM layout), the leading dimension of the row-major matrix in memory, and whether
/// that memory matrix is the transpose of the operand the caller asked for.
template <class T, class B>
struct GemmOperand {
  Tensor<T, B> tensor;
  int64_t ld = 1;
  bool trans = false;
};

/// Maps x's last two axes (R, C), wanted as op(x) = trans ? xᵀ : x, to a GEMM operand.
template <class T, class B>
GemmOperand<T, B> gemm_operand(const Tensor<T, B>& x, bool trans) {
  const int64_t r = x.size(-2), c = x.size(-1);
  const int64_t sr = x.stride(-2), sc = x.stride(-1);
  const int64_t c1 = std::max<int64_t>(c, 1), r1 = std::max<int64_t>(r, 1);
  if ((c <= 1 || sc == 1) && (r <= 1 || sr >= c1)) return {x, r <= 1 ? c1 : sr, trans};   // row-major
  if ((r <= 1 || sr == 1) && (c <= 1 || sc >= r1)) return {x, c <= 1 ? r1 : sc, !trans};  // column-major
  return {x.contiguous(), c1, trans};
}

/// Whether backend B has the 16-bit-operand GEMM that autocast uses (Cpu and Cuda do).
template <class B>
concept HasRoundedGemm = requires(const float* x, float* y) {
  B::template gemm_batched_rounded<bfloat16>(false, false, 1, 1, 1, 1.0f, x, 1, 0, x, 1, 0, 0.0f, y, 1, 0, 1);
};

/// Every GEMM of the ops goes through here: B::gemm_batched (B::gemm for one matrix), or, for a
/// float GEMM inside an Autocast scope (core/autocast.hpp), the backend's GEMM on operands
/// rounded to bfloat16 or float16 with float accumulation.
template <class T, class B>
void gemm_call(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta, T* c, int64_t ldc,
               int64_t stride_c, int64_t batch) {
  if constexpr (std::is_same_v<T, float> && HasRoundedGemm<B>) {
    const Precision precision = autocast_precision();
    if (precision == Precision::kBFloat16) {
      B::template gemm_batched_rounded<bfloat16>(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                                 stride_b, beta, c, ldc, stride_c, batch);
      return;
    }
    if (precision == Precision::kFloat16) {
      B::template gemm_batched_rounded<float16>(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                                stride_b, beta, c, ldc, stride_c, batch);
      return;
    }
  }
  if (batch == 1) {
    B::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    B::gemm_batched(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                    stride_c, batch);
  }
}

/// Strides of x's batch axes (all but the last two) aligned to `batch` (rank >= x's batch rank);
/// broadcast axes get stride 0.
template <class T, class B>
Strides batch_strides(const Tensor<T, B>& x, const Shape& batch) {
  Strides strides(static_cast<size_t>(batch.rank()), 0);
  const int64_t x_batch = x.rank() - 2, lead = batch.rank() - x_batch;
  for (int64_t d = 0; d < x_batch; ++d) {
    if (x.shape()[d] != 1) strides[static_cast<size_t>(d + lead)] = x.strides()[static_cast<size_t>(d)];
  }
  return strides;
}

/// The extents before the last two axes.
inline Shape leading_shape(const Shape& shape, int64_t trailing = 2) {
  return Shape(std::vector<int64_t>(shape.begin(), shape.end() - trailing));
}

/// A run of batch axes that both operands walk with one stride each.
struct BatchGroup {
  int64_t count, stride_a, stride_b;
};

/// C = alpha op(a) op(b) + beta C for every batch item. a: (..., M, K) or (..., K, M) with trans_a;
/// b: (..., K, N) or (..., N, K) with trans_b; c: contiguous (batch..., M, N) with `batch` the
/// broadcast of a's and b's batch shapes. Shapes are checked by the caller.
template <class T, class B>
void gemm_broadcast(const Tensor<T, B>& a, const Tensor<T, B>& b, bool trans_a, bool trans_b, int64_t m,
                    int64_t n, int64_t k, const Shape& batch, T* c, T alpha, T beta) {
  if (batch.numel() == 0 || m == 0 || n == 0) return;
  const GemmOperand<T, B> op_a = gemm_operand(a, trans_a), op_b = gemm_operand(b, trans_b);
  const Strides sa = batch_strides(op_a.tensor, batch), sb = batch_strides(op_b.tensor, batch);
  // Merge batch axes from the innermost out while both operands keep one stride over the run.
  std::vector<BatchGroup> groups;  // innermost first
  for (int64_t d = batch.rank() - 1; d >= 0; --d) {
    const size_t i = static_cast<size_t>(d);
    if (batch[d] == 1) continue;
    if (!groups.empty() && sa[i] == groups.back().stride_a * groups.back().count &&
        sb[i] == groups.back().stride_b * groups.back().count) {
      groups.back().count *= batch[d];
    } else {
      groups.push_back({batch[d], sa[i], sb[i]});
    }
  }
  const T* pa = op_a.tensor.data();
  const T* pb = op_b.tensor.data();
  if (groups.empty()) {
    gemm_call<T, B>(op_a.trans, op_b.trans, m, n, k, alpha, pa, op_a.ld, 0, pb, op_b.ld, 0, beta, c, n, 0, 1);
    return;
  }
  // A batch of row-major `a` matrices stacked at M-row pitch against one shared `b`: one tall GEMM.
  if (groups.size() == 1 && groups[0].stride_b == 0 && !op_a.trans && groups[0].stride_a == m * op_a.ld) {
    gemm_call<T, B>(false, op_b.trans, groups[0].count * m, n, k, alpha, pa, op_a.ld, 0, pb, op_b.ld, 0, beta,
                    c, n, 0, 1);
    return;
  }
  const BatchGroup inner = groups[0];
  int64_t outer_count = 1;
  for (size_t g = 1; g < groups.size(); ++g) outer_count *= groups[g].count;
  for (int64_t outer = 0; outer < outer_count; ++outer) {
    int64_t rest = outer, offset_a = 0, offset_b = 0;
    for (size_t g = 1; g < groups.size(); ++g) {
      const int64_t index = rest % groups[g].count;
      rest /= groups[g].count;
      offset_a += index * groups[g].stride_a;
      offset_b += index * groups[g].stride_b;
    }
    gemm_call<T, B>(op_a.trans, op_b.trans, m, n, k, alpha, pa + offset_a, op_a.ld, inner.stride_a,
                    pb + offset_b, op_b.ld, inner.stride_b, beta, c + outer * inner.count * m * n, n, m * n,
                    inner.count);
  }
}

/// Everything matmul needs to know about its operands' shapes (after promoting 1-D operands).
template <class T, class B>
struct MatmulPlan {
  Tensor<T, B> a, b;  // rank >= 2 views: a 1-D a becomes (1, K), a 1-D b becomes (K, 1)
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  Shape batch;         // broadcast batch shape
  Shape full_shape;    // batch + (M, N)
  Shape result_shape;  // full_shape without the axes of promoted 1-D operands
};

template <class T, class B>
MatmulPlan<T, B> plan_matmul(const Tensor<T, B>& a, const Tensor<T, B>& b, bool trans_a, bool trans_b) {
  BINDERY_CHECK(a.defined() && b.defined(), ValueError, "matmul: an operand is undefined");
  BINDERY_CHECK(a.rank() >= 1 && b.rank() >= 1, ShapeError, "matmul: a of shape ", a.shape(),
                " and b of shape ", b.shape(), ": both operands need at least one axis");
  MatmulPlan<T, B> plan;
  const bool a_vector = a.rank() == 1, b_vector = b.rank() == 1;
  plan.a = a_vector ? a.unsqueeze(0) : a;
  plan.b = b_vector ? b.unsqueeze(1) : b;
  plan.trans_a = a_vector ? false : trans_a;  // a vector has no orientation to flip
  plan.trans_b = b_vector ? false : trans_b;
  plan.m = plan.a.size(plan.trans_a ? -1 : -2);
  plan.k = plan.a.size(plan.trans_a ? -2 : -1);
  const int64_t k_b = plan.b.size(plan.trans_b ? -1 : -2);
  plan.n = plan.b.size(plan.trans_b ? -2 : -1);
  BINDERY_CHECK(plan.k == k_b, ShapeError, "matmul: a of shape ", a.shape(), (trans_a ? " (transposed)" : ""),
                " and b of shape ", b.shape(), (trans_b ? " (transposed)" : ""), ": inner extents ", plan.k,
                " and ", k_b, " differ");
  const Shape batch_a = leading_shape(plan.a.shape()), batch_b = leading_shape(plan.b.shape());
  const int64_t rank = std::max(batch_a.rank(), batch_b.rank());
  std::vector<int64_t> batch(static_cast<size_t>(rank));
  for (int64_t i = 0; i < rank; ++i) {
    const int64_t ia = i - (rank - batch_a.rank()), ib = i - (rank - batch_b.rank());
    const int64_t da = ia >= 0 ? batch_a[ia] : 1, db = ib >= 0 ? batch_b[ib] : 1;
    BINDERY_CHECK(da == db || da == 1 || db == 1, ShapeError, "matmul: a of shape ", a.shape(),
                  " and b of shape ", b.shape(), ": batch shapes ", batch_a, " and ", batch_b,
                  " do not broadcast");
    batch[static_cast<size_t>(i)] = da == 1 ? db : da;
  }
  plan.batch = Shape(batch);
  std::vector<int64_t> full = batch, result = batch;
  full.push_back(plan.m);
  full.push_back(plan.n);
  if (!a_vector) result.push_back(plan.m);
  if (!b_vector) result.push_back(plan.n);
  plan.full_shape = Shape(full);
  plan.result_shape = Shape(result);
  return plan;
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// Matrix product with NumPy semantics (torch.matmul) and optional transposes of the operands.
/// a: (..., M, K), or (..., K, M) with trans_a; b: (..., K, N), or (..., N, K) with trans_b
///   -> (broadcast(...), M, N). A 1-D a (K) acts as (1, K) and a 1-D b (K) as (K, 1); their
///   unit axis is dropped from the result, so vector · vector is a scalar of shape ().
template <class T, class B>
Tensor<T, B> matmul_forward(const Tensor<T, B>& a, const Tensor<T, B>& b, bool trans_a = false,
                            bool trans_b = false) {
  const detail::MatmulPlan<T, B> plan = detail::plan_matmul(a, b, trans_a, trans_b);
  Tensor<T, B> out = Tensor<T, B>::empty(plan.full_shape);  // (batch..., M, N)
  detail::gemm_broadcast(plan.a, plan.b, plan.trans_a, plan.trans_b, plan.m, plan.n, plan.k, plan.batch,
                         out.data(), T(1), T(0));
  return out.reshape(plan.result_shape.dims());
}

namespace detail {

/// dL/da and dL/db of matmul (undefined where `need_*` is false), each of its operand's shape.
template <class T, class B>
std::pair<Tensor<T, B>, Tensor<T, B>> matmul_backward(const Tensor<T, B>& dL_dy, const Tensor<T, B>& a,
                                                      const Tensor<T, B>& b, const Shape& a_shape,
                                                      const Shape& b_shape, bool trans_a, bool trans_b,
                                                      bool need_a, bool need_b) {
  const bool a_vector = a_shape.rank() == 1, b_vector = b_shape.rank() == 1;
  const bool ta = a_vector ? false : trans_a, tb = b_vector ? false : trans_b;
  Tensor<T, B> dL_da, dL_db;
  // The gradient reshaped to (batch..., M, N): restore the unit axes of promoted vectors.
  auto full_grad = [&](const Shape& batch, int64_t m, int64_t n) {
    std::vector<int64_t> dims(batch.begin(), batch.end());
    dims.push_back(m);
    dims.push_back(n);
    return dL_dy.reshape(dims);
  };
  if (need_a) {
    const Tensor<T, B> b2 = b_vector ? b.unsqueeze(1) : b;
    const Shape a2_shape = a_vector ? Shape{1, a_shape[0]} : a_shape;
    const int64_t m = a2_shape.at(ta ? -1 : -2);
    const int64_t n = b2.size(tb ? -2 : -1);
    const Shape batch = broadcast_shapes(leading_shape(a2_shape), leading_shape(b2.shape()));
    const Tensor<T, B> g = full_grad(batch, m, n);
    // dA_logical = dC·op(b)ᵀ; with trans_a the stored a is its transpose: dA = op(b)·dCᵀ.
    const Tensor<T, B> da = ta ? matmul_forward(b2, g, tb, true) : matmul_forward(g, b2, false, !tb);
    dL_da = sum_to_shape(da, a2_shape).reshape(a_shape.dims());
  }
  if (need_b) {
    const Tensor<T, B> a2 = a_vector ? a.unsqueeze(0) : a;
    const Shape b2_shape = b_vector ? Shape{b_shape[0], 1} : b_shape;
    const int64_t m = a2.size(ta ? -1 : -2), k = a2.size(ta ? -2 : -1);
    const int64_t n = b2_shape.at(tb ? -2 : -1);
    const Shape batch = broadcast_shapes(leading_shape(a2.shape()), leading_shape(b2_shape));
    const Tensor<T, B> g = full_grad(batch, m, n);
    Tensor<T, B> db;
    if (b2_shape.rank() == 2 && batch.rank() > 0) {
      // One shared b: sum over the batch = one GEMM over the batch flattened into rows.
      // b is 2-D, so the batch is a's own: no broadcast to undo on the a side.
      const Tensor<T, B> a_rows = (ta ? a2.transpose(-1, -2) : a2).reshape({batch.numel() * m, k});
      const Tensor<T, B> g_rows = g.reshape({batch.numel() * m, n});  // (batch·M, N)
      db = tb ? matmul_forward(g_rows, a_rows, true, false)           // (N, K)
              : matmul_forward(a_rows, g_rows, true, false);          // (K, N)
    } else {
      db = tb ? matmul_forward(g, a2, true, ta) : matmul_forward(a2, g, !ta, false);
    }
    dL_db = sum_to_shape(db, b2_shape).reshape(b_shape.dims());
  }
  return {dL_da, dL_db};
}

}  // namespace detail

// ---- differentiable ----------------------------------------------------------------------------

/// Differentiable matrix product; shapes as matmul_forward.
/// Backward: dL/da = dL/dC·op(b)ᵀ, dL/db = op(a)ᵀ·dL/dC (transposes folded into GEMM flags),
/// summed over the batch axes an operand was broadcast along.
template <class T, class B>
Var<T, B> matmul(const Var<T, B>& a, const Var<T, B>& b, bool trans_a = false, bool trans_b = false) {
  const bool need_a = needs_grad(a), need_b = needs_grad(b);
  // Save an operand only when the OTHER one needs its gradient.
  Tensor<T, B> saved_a = need_b ? a.value() : Tensor<T, B>();
  Tensor<T, B> saved_b = need_a ? b.value() : Tensor<T, B>();
  return make_result<T, B>(matmul_forward(a.value(), b.value(), trans_a, trans_b), "matmul", {a, b},
                           [saved_a, saved_b, a_shape = a.shape(), b_shape = b.shape(), trans_a, trans_b,
                            need_a, need_b](const Tensor<T, B>& dL_dy) {
                             auto [dL_da, dL_db] = detail::matmul_backward(
                                 dL_dy, saved_a, saved_b, a_shape, b_shape, trans_a, trans_b, need_a, need_b);
                             return std::vector{dL_da, dL_db};
                           });
}

}  // namespace bindery::ops
