// bindery/ops/cross_entropy.hpp — fused log_softmax + negative log-likelihood (F.cross_entropy).
//
// Forward per row i with target t and label smoothing s over C classes:
//   loss_i = lse_i - (1 - s) x[i, t] - (s / C) Σ_c x[i, c],   lse_i = log Σ_c exp(x[i, c]),
// which is -Σ_c q_c log softmax(x_i)_c for q = (1 - s) onehot(t) + s / C, as PyTorch.
// The row's max and log Σ exp(x - max) are saved, so backward needs no softmax tensor:
//   dx[i, c] = g_i (softmax(x_i)_c - q_c),   with g_i = dL/dloss_i (÷ N for the mean).
#pragma once

#include <limits>
#include <vector>

#include "bindery/ops/softmax.hpp"

namespace bindery::ops {

/// How a per-sample loss is reduced (PyTorch's `reduction`).
enum class Reduction { kNone, kMean, kSum };

namespace detail {

/// One row of the portable cross-entropy forward: loss, row max and log Σ exp(x - max).
template <class T>
struct CrossEntropyRowForward {
  const T* logits;
  const int64_t* targets;
  T *loss, *row_max, *log_sum;
  int64_t c;
  T keep, spread;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const T* x = logits + i * c;
    T max = x[0];
    for (int64_t j = 1; j < c; ++j) max = x[j] > max ? x[j] : max;
    T sum = T(0), shifted = T(0);
    for (int64_t j = 0; j < c; ++j) {
      sum += std::exp(x[j] - max);
      shifted += x[j] - max;
    }
    const T ls = std::log(sum);
    row_max[i] = max;
    log_sum[i] = ls;
    loss[i] = ls - keep * (x[targets[i]] - max) - spread * shifted;
  }
};

/// One row of the portable cross-entropy backward.
template <class T>
struct CrossEntropyRowBackward {
  const T* logits;
  const int64_t* targets;
  const T *row_max, *log_sum, *g;
  int64_t g_stride;
  T g_scale;
  T* dx;
  int64_t c;
  T keep, spread;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const T gi = g[i * g_stride] * g_scale;
    for (int64_t j = 0; j < c; ++j) {
      dx[i * c + j] = std::exp((logits[i * c + j] - row_max[i]) - log_sum[i]) * gi - spread * gi;
    }
    dx[i * c + targets[i]] -= keep * gi;
  }
};

}  // namespace detail

/// Cross-entropy kernels on contiguous (N, C) logits; specialized per backend. The primary template
/// is the portable kernel: targets are checked on the host (one small copy), then one B::for_each
/// item per row.
template <class B>
struct CrossEntropyKernel {
  template <class T>
  static int64_t forward(const T* logits, const int64_t* targets, T* loss, T* row_max, T* log_sum, int64_t n,
                         int64_t c, double smoothing) {
    std::vector<int64_t> host(static_cast<size_t>(n));
    B::copy_to_host(host.data(), targets, n);
    B::synchronize();
    for (int64_t i = 0; i < n; ++i) {
      if (host[static_cast<size_t>(i)] < 0 || host[static_cast<size_t>(i)] >= c) return i;
    }
    const T keep = static_cast<T>(1.0 - smoothing),
            spread = static_cast<T>(smoothing / static_cast<double>(c));
    B::for_each(n,
                detail::CrossEntropyRowForward<T>{logits, targets, loss, row_max, log_sum, c, keep, spread},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(c, 1)));
    return -1;
  }
  template <class T>
  static void backward(const T* logits, const int64_t* targets, const T* row_max, const T* log_sum,
                       const T* g, int64_t g_stride, T g_scale, T* dx, int64_t n, int64_t c,
                       double smoothing) {
    const T keep = static_cast<T>(1.0 - smoothing),
            spread = static_cast<T>(smoothing / static_cast<double>(c));
    B::for_each(n,
                detail::CrossEntropyRowBackward<T>{logits, targets, row_max, log_sum, g, g_stride, g_scale,
                                                   dx, c, keep, spread},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(c, 1)));
  }
};

template <>
struct CrossEntropyKernel<Cpu> {
  /// loss: (N); row_max, log_sum: (N), so that lse = row_max + log_sum. Kept apart because
  /// x - row_max - log_sum is accurate where x - lse cancels (logits ~1e3 in float).
  /// Returns the first row whose target is outside [0, C), or -1 (then nothing is written).
  template <class T>
  static int64_t forward(const T* logits, const int64_t* targets, T* loss, T* row_max, T* log_sum, int64_t n,
                         int64_t c, double smoothing) {
    using namespace detail::cpu;
    for (int64_t i = 0; i < n; ++i) {
      if (targets[i] < 0 || targets[i] >= c) return i;
    }
    const T keep = static_cast<T>(1.0 - smoothing),
            spread = static_cast<T>(smoothing / static_cast<double>(c));
    Cpu::for_each(
        n,
        [=](int64_t i) {
          const ConstRowMap<T> xr(logits + i * c, c);
          const T max = xr.maxCoeff();
          const T ls = std::log((xr - max).exp().sum());
          row_max[i] = max;
          log_sum[i] = ls;
          // lse - keep x_t - spread Σx, with every logit shifted by max (keep + spread C = 1)
          T value = ls - keep * (xr[targets[i]] - max);
          if (spread != T(0)) value -= spread * (xr - max).sum();
          loss[i] = value;
        },
        row_grain(c));
    return -1;
  }

  /// dx: (N, C) = g_i (exp(x - max_i - log_sum_i) - q) with g_i = g[i * g_stride] * g_scale.
  template <class T>
  static void backward(const T* logits, const int64_t* targets, const T* row_max, const T* log_sum,
                       const T* g, int64_t g_stride, T g_scale, T* dx, int64_t n, int64_t c,
                       double smoothing) {
    using namespace detail::cpu;
    const T keep = static_cast<T>(1.0 - smoothing),
            spread = static_cast<T>(smoothing / static_cast<double>(c));
    Cpu::for_each(
        n,
        [=](int64_t i) {
          const T gi = g[i * g_stride] * g_scale;
          const ConstRowMap<T> xr(logits + i * c, c);
          RowMap<T> dxr(dx + i * c, c);
          dxr = ((xr - row_max[i]) - log_sum[i]).exp() * gi - spread * gi;
          dxr[targets[i]] -= keep * gi;
        },
        row_grain(c));
  }
};

namespace detail {

template <class T, class B>
struct CrossEntropyResult {
  Tensor<T, B> loss;              // () or (N)
  Tensor<T, B> row_max, log_sum;  // (N) each: the row's logsumexp is their sum
  Tensor<T, B> logits;            // contiguous (N, C)
};

template <class T, class B>
CrossEntropyResult<T, B> cross_entropy_impl(const Tensor<T, B>& logits, const Tensor<int64_t, B>& targets,
                                            Reduction reduction, double label_smoothing) {
  BINDERY_CHECK(logits.defined() && targets.defined(), ValueError,
                "cross_entropy: logits or targets undefined");
  BINDERY_CHECK(logits.rank() == 2 && targets.shape() == Shape{logits.size(0)}, ShapeError,
                "cross_entropy: logits of shape ", logits.shape(), " and targets of shape ", targets.shape(),
                ": need logits (N, C) and targets (N)");
  BINDERY_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError,
                "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  const int64_t n = logits.size(0), c = logits.size(1);
  CrossEntropyResult<T, B> result;
  result.logits = logits.contiguous();
  const Tensor<int64_t, B> t = targets.contiguous();
  Tensor<T, B> loss = Tensor<T, B>::empty(Shape{n});
  result.row_max = Tensor<T, B>::empty(Shape{n});
  result.log_sum = Tensor<T, B>::empty(Shape{n});
  const int64_t bad =
      CrossEntropyKernel<B>::forward(result.logits.data(), t.data(), loss.data(), result.row_max.data(),
                                     result.log_sum.data(), n, c, label_smoothing);
  BINDERY_CHECK(bad < 0, IndexError, "cross_entropy: target ", (bad >= 0 ? t.at({bad}) : 0), " at index ",
                bad, " is out of range [0, ", c, ") for logits of shape ", logits.shape());
  if (reduction == Reduction::kNone) {
    result.loss = loss;
  } else {
    const T scale = reduction == Reduction::kMean ? T(1) / static_cast<T>(n) : T(1);
    result.loss = sum_forward(loss, {}, false, scale);
  }
  return result;
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// logits: (N, C), targets: (N) class indices in [0, C) -> (N) for kNone, () otherwise.
/// Throws IndexError naming the first target outside [0, C).
template <class T, class B>
Tensor<T, B> cross_entropy_forward(const Tensor<T, B>& logits, const Tensor<int64_t, B>& targets,
                                   Reduction reduction = Reduction::kMean, double label_smoothing = 0.0) {
  return detail::cross_entropy_impl(logits, targets, reduction, label_smoothing).loss;
}

// ---- differentiable ----------------------------------------------------------------------------

/// Cross-entropy of logits (N, C) against class indices targets (N), with optional label smoothing
/// (PyTorch's label_smoothing) -> (N) for Reduction::kNone, () for kMean (÷ N) and kSum.
/// Backward: dL/dlogits = g (softmax(logits) - q), q the (smoothed) one-hot target.
template <class T, class B>
Var<T, B> cross_entropy(const Var<T, B>& logits, const Tensor<int64_t, B>& targets,
                        Reduction reduction = Reduction::kMean, double label_smoothing = 0.0) {
  detail::CrossEntropyResult<T, B> r =
      detail::cross_entropy_impl(logits.value(), targets, reduction, label_smoothing);
  const Tensor<int64_t, B> t = targets.contiguous();
  return make_result<T, B>(
      r.loss, "cross_entropy", {logits},
      [x = r.logits, row_max = r.row_max, log_sum = r.log_sum, t, reduction,
       label_smoothing](const Tensor<T, B>& dL_dy) {
        const int64_t n = x.size(0), c = x.size(1);
        const Tensor<T, B> g = dL_dy.contiguous();
        const T g_scale = reduction == Reduction::kMean ? T(1) / static_cast<T>(n) : T(1);
        Tensor<T, B> dL_dx = Tensor<T, B>::empty(x.shape());
        CrossEntropyKernel<B>::backward(x.data(), t.data(), row_max.data(), log_sum.data(), g.data(),
                                        reduction == Reduction::kNone ? 1 : 0, g_scale, dL_dx.data(), n, c,
                                        label_smoothing);
        return std::vector{dL_dx};
      });
}

}  // namespace bindery::ops
