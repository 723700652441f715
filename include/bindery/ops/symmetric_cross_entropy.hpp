// bindery/ops/symmetric_cross_entropy.hpp — fused symmetric cross-entropy of square logits: the
// InfoNCE / CLIP loss once the (N, N) similarity logits are made (loss/info_nce.hpp).
//
// Forward, for logits l (N, N) whose diagonal holds the matching pairs:
//   loss = ( mean_i [lse_row_i - l_ii] + mean_j [lse_col_j - l_jj] ) / 2,
//   lse_row_i = log Σ_j exp(l_ij),  lse_col_j = log Σ_i exp(l_ij),
// i.e. (CE(l, arange N) + CE(lᵀ, arange N)) / 2 without a transposed copy. Each log-sum-exp is kept
// as its max and log Σ exp(x - max) (as ops/cross_entropy.hpp: accurate where x - lse cancels);
// the two pairs of (N) vectors are all backward saves — no (N, N) softmax is stored:
//   dL/dl_ij = g / (2N) · ( softmax_row(l)_ij + softmax_col(l)_ij - 2 δ_ij ).
// Arithmetic in T (float sums in float, as cross_entropy).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "bindery/ops/softmax.hpp"

namespace bindery::ops {

namespace detail {

/// Max and log Σ exp(x - max) of one row (stride 1) or one column (stride n) of (N, N) logits.
template <class T>
struct LineLogSumExp {
  const T* logits;
  T* max_out;
  T* log_sum_out;
  int64_t n, line_stride, step;  // line i starts at i * line_stride and walks `step` apart
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const T* x = logits + i * line_stride;
    T max = x[0];
    for (int64_t j = 1; j < n; ++j) max = x[j * step] > max ? x[j * step] : max;
    T sum = T(0);
    for (int64_t j = 0; j < n; ++j) sum += std::exp(x[j * step] - max);
    max_out[i] = max;
    log_sum_out[i] = std::log(sum);
  }
};

template <class T>
struct SymmetricTerms {
  const T *logits, *row_max, *row_log_sum, *col_max, *col_log_sum;
  T* terms;
  int64_t n;
  BINDERY_HOST_DEVICE void operator()(int64_t k) const {
    const T diagonal = logits[k * n + k];
    terms[k] = (row_log_sum[k] - (diagonal - row_max[k])) + (col_log_sum[k] - (diagonal - col_max[k]));
  }
};

template <class T>
struct SymmetricBackwardRow {
  const T *logits, *row_max, *row_log_sum, *col_max, *col_log_sum, *g;
  T g_scale;
  T* dx;
  int64_t n;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const T scale = g[0] * g_scale;
    for (int64_t j = 0; j < n; ++j) {
      const T x = logits[i * n + j];
      dx[i * n + j] =
          (std::exp((x - row_max[i]) - row_log_sum[i]) + std::exp((x - col_max[j]) - col_log_sum[j])) * scale;
    }
    dx[i * n + i] -= T(2) * scale;
  }
};

}  // namespace detail

/// Kernels on contiguous square logits (N, N); specialized per backend (kernels/*.cuh for Cuda).
/// The primary template is the portable kernel: one B::for_each item per row or column.
template <class B>
struct SymmetricCrossEntropyKernel {
  template <class T>
  static void forward(const T* logits, T* row_max, T* row_log_sum, T* col_max, T* col_log_sum, T* terms,
                      int64_t n) {
    const int64_t grain = std::max<int64_t>(1, B::kDefaultGrain / n);
    B::for_each(n, detail::LineLogSumExp<T>{logits, row_max, row_log_sum, n, n, 1}, grain);
    B::for_each(n, detail::LineLogSumExp<T>{logits, col_max, col_log_sum, n, 1, n}, grain);
    B::for_each(n, detail::SymmetricTerms<T>{logits, row_max, row_log_sum, col_max, col_log_sum, terms, n});
  }
  template <class T>
  static void backward(const T* logits, const T* row_max, const T* row_log_sum, const T* col_max,
                       const T* col_log_sum, const T* g, T g_scale, T* dx, int64_t n) {
    B::for_each(n,
                detail::SymmetricBackwardRow<T>{logits, row_max, row_log_sum, col_max, col_log_sum, g,
                                                g_scale, dx, n},
                std::max<int64_t>(1, B::kDefaultGrain / n));
  }
};

template <>
struct SymmetricCrossEntropyKernel<Cpu> {
  static constexpr int64_t kColumnSlab = detail::cpu::kColumnSlab;  // columns per task of the column pass

  /// row_max, row_log_sum, col_max, col_log_sum: (N) each (lse = max + log_sum);
  /// terms: (N), terms[k] = (lse_row_k - l_kk) + (lse_col_k - l_kk), so loss = Σ terms / (2N).
  template <class T>
  static void forward(const T* logits, T* row_max, T* row_log_sum, T* col_max, T* col_log_sum, T* terms,
                      int64_t n) {
    using namespace detail::cpu;
    // rows: contiguous, vectorized along the row
    for_each_row(n, n, [=](int64_t i) {
      const ConstRowMap<T> xr(logits + i * n, n);
      const T max = xr.maxCoeff();
      row_max[i] = max;
      row_log_sum[i] = std::log((xr - max).exp().sum());
    });
    // columns: slabs of kColumnSlab columns walked row by row, vectorized across the slab
    for_each_slab(1, n, n, [=](const Slab& s) {
      const ConstBlockMap<T> xs(logits + s.base, n, s.width, Eigen::OuterStride<>(n));
      RowVector<T> max = xs.row(0);
      for (int64_t i = 1; i < n; ++i) max = max.max(xs.row(i));
      RowVector<T> sum = RowVector<T>::Zero(s.width);
      for (int64_t i = 0; i < n; ++i) sum += (xs.row(i) - max).exp();
      Eigen::Map<RowVector<T>>(col_max + s.column, s.width) = max;
      Eigen::Map<RowVector<T>>(col_log_sum + s.column, s.width) = sum.log();
    });
    for (int64_t k = 0; k < n; ++k) {
      const T diagonal = logits[k * n + k];
      terms[k] = (row_log_sum[k] - (diagonal - row_max[k])) + (col_log_sum[k] - (diagonal - col_max[k]));
    }
  }

  /// dx: (N, N) = g_scale g[0] (exp(x - row_max_i - row_log_sum_i) + exp(x - col_max_j - col_log_sum_j)
  /// - 2 δ_ij); g: the loss's gradient (one element).
  template <class T>
  static void backward(const T* logits, const T* row_max, const T* row_log_sum, const T* col_max,
                       const T* col_log_sum, const T* g, T g_scale, T* dx, int64_t n) {
    using namespace detail::cpu;
    const T scale = g[0] * g_scale;
    const ConstRowMap<T> cmax(col_max, n), cls(col_log_sum, n);
    Cpu::for_each(
        n,
        [=](int64_t i) {
          const ConstRowMap<T> xr(logits + i * n, n);
          RowMap<T> dxr(dx + i * n, n);
          dxr = (((xr - row_max[i]) - row_log_sum[i]).exp() + ((xr - cmax) - cls).exp()) * scale;
          dxr[i] -= T(2) * scale;
        },
        row_grain(n));
  }
};

namespace detail {

template <class T, class B>
struct SymmetricCrossEntropyResult {
  Tensor<T, B> loss;    // ()
  Tensor<T, B> stats;   // (4, N): row_max, row_log_sum, col_max, col_log_sum
  Tensor<T, B> logits;  // contiguous (N, N)
};

template <class T, class B>
SymmetricCrossEntropyResult<T, B> symmetric_cross_entropy_impl(const Tensor<T, B>& logits) {
  BINDERY_CHECK(logits.defined(), ValueError, "symmetric_cross_entropy: logits undefined");
  BINDERY_CHECK(logits.rank() == 2 && logits.size(0) == logits.size(1) && logits.size(0) >= 1, ShapeError,
                "symmetric_cross_entropy: logits of shape ", logits.shape(),
                " must be square (N, N) with N >= 1");
  const int64_t n = logits.size(0);
  SymmetricCrossEntropyResult<T, B> result;
  result.logits = logits.contiguous();
  result.stats = Tensor<T, B>::empty(Shape{4, n});
  Tensor<T, B> terms = Tensor<T, B>::empty(Shape{n});
  T* stats = result.stats.data();
  SymmetricCrossEntropyKernel<B>::forward(result.logits.data(), stats, stats + n, stats + 2 * n,
                                          stats + 3 * n, terms.data(), n);
  result.loss = sum_forward(terms, {}, false, T(1) / static_cast<T>(2 * n));  // ()
  return result;
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// logits: (N, N), N >= 1 -> (): (CE(logits, arange N) + CE(logitsᵀ, arange N)) / 2, each CE a mean.
template <class T, class B>
Tensor<T, B> symmetric_cross_entropy_forward(const Tensor<T, B>& logits) {
  return detail::symmetric_cross_entropy_impl(logits).loss;
}

// ---- differentiable ----------------------------------------------------------------------------

/// logits: (N, N), N >= 1 -> (): the symmetric (InfoNCE) cross-entropy whose targets are the
/// diagonal, fused. Backward: g / (2N) (softmax over rows + softmax over columns - 2 I), recomputed
/// from the saved row and column log-sum-exps.
template <class T, class B>
Var<T, B> symmetric_cross_entropy(const Var<T, B>& logits) {
  detail::SymmetricCrossEntropyResult<T, B> r = detail::symmetric_cross_entropy_impl(logits.value());
  if (!needs_grad(logits)) return Var<T, B>(r.loss, false);
  return make_result<T, B>(r.loss, "symmetric_cross_entropy", {logits},
                           [x = r.logits, stats = r.stats](const Tensor<T, B>& dL_dy) {
                             const int64_t n = x.size(0);
                             const Tensor<T, B> g = dL_dy.contiguous();
                             const T* s = stats.data();
                             Tensor<T, B> dL_dx = Tensor<T, B>::empty(x.shape());  // (N, N)
                             SymmetricCrossEntropyKernel<B>::backward(
                                 x.data(), s, s + n, s + 2 * n, s + 3 * n, g.data(),
                                 T(1) / static_cast<T>(2 * n), dL_dx.data(), n);
                             return std::vector{dL_dx};
                           });
}

}  // namespace bindery::ops
