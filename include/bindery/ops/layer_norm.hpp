// bindery/ops/layer_norm.hpp — layer normalization over the last axis (F.layer_norm).
//
// Forward per row of D elements: mean μ, rstd = 1 / sqrt(var + eps) (biased variance, two passes),
// x̂ = (x - μ) rstd, y = x̂ ∘ w + b. μ and rstd are saved per row for backward.
// Backward with g = dy ∘ w (or dy without affine):
//   dx = rstd (g - mean(g) - x̂ mean(g ∘ x̂)),   dw = Σ_rows dy ∘ x̂,   db = Σ_rows dy.
// The column sums dw, db are accumulated per fixed chunk of rows in double, then summed over the
// chunks in order: deterministic for a given shape, whatever the thread count.
#pragma once

#include <vector>

#include "bindery/ops/linear.hpp"
#include "bindery/ops/softmax.hpp"

namespace bindery::ops {

namespace detail {

/// One row of the portable layer-norm forward; weight and bias may be null.
template <class T>
struct LayerNormRowForward {
  const T *x, *weight, *bias;
  T *y, *mean, *rstd;
  int64_t d;
  double eps;
  BINDERY_HOST_DEVICE void operator()(int64_t r) const {
    const T* xr = x + r * d;
    T sum = T(0);
    for (int64_t j = 0; j < d; ++j) sum += xr[j];
    const T mu = d > 0 ? sum / static_cast<T>(d) : T(0);
    T squares = T(0);
    for (int64_t j = 0; j < d; ++j) squares += (xr[j] - mu) * (xr[j] - mu);
    const T var = d > 0 ? squares / static_cast<T>(d) : T(0);
    const T inv = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
    mean[r] = mu;
    rstd[r] = inv;
    for (int64_t j = 0; j < d; ++j) {
      T v = (xr[j] - mu) * inv;
      if (weight != nullptr) v *= weight[j];
      if (bias != nullptr) v += bias[j];
      y[r * d + j] = v;
    }
  }
};

/// One row of dx for the portable layer-norm backward.
template <class T>
struct LayerNormRowBackward {
  const T *dy, *x, *mean, *rstd, *weight;
  T* dx;
  int64_t d;
  BINDERY_HOST_DEVICE void operator()(int64_t r) const {
    const T mu = mean[r], inv = rstd[r];
    T sum_g = T(0), sum_gx = T(0);
    for (int64_t j = 0; j < d; ++j) {
      const T g = weight != nullptr ? dy[r * d + j] * weight[j] : dy[r * d + j];
      sum_g += g;
      sum_gx += g * ((x[r * d + j] - mu) * inv);
    }
    const T inv_d = T(1) / static_cast<T>(d);
    const T mean_g = sum_g * inv_d, mean_gx = sum_gx * inv_d;
    for (int64_t j = 0; j < d; ++j) {
      const T g = weight != nullptr ? dy[r * d + j] * weight[j] : dy[r * d + j];
      dx[r * d + j] = (g - mean_g - ((x[r * d + j] - mu) * inv) * mean_gx) * inv;
    }
  }
};

/// One column of dweight / dbias (either may be null), summed over the rows in double.
template <class T>
struct LayerNormColumnBackward {
  const T *dy, *x, *mean, *rstd;
  T *dweight, *dbias;
  int64_t rows, d;
  BINDERY_HOST_DEVICE void operator()(int64_t j) const {
    double w = 0.0, b = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const double g = static_cast<double>(dy[r * d + j]);
      w += g * static_cast<double>((x[r * d + j] - mean[r]) * rstd[r]);
      b += g;
    }
    if (dweight != nullptr) dweight[j] = static_cast<T>(w);
    if (dbias != nullptr) dbias[j] = static_cast<T>(b);
  }
};

}  // namespace detail

/// Layer-norm kernels on contiguous (rows, D) data; specialized per backend. The primary template
/// is the portable kernel: one B::for_each item per row (forward, dx) or per column (dw, db).
template <class B>
struct LayerNormKernel {
  template <class T>
  static void forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd, int64_t rows,
                      int64_t d, double eps) {
    B::for_each(rows, detail::LayerNormRowForward<T>{x, weight, bias, y, mean, rstd, d, eps},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(d, 1)));
  }
  template <class T>
  static void backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* weight, T* dx,
                       T* dweight, T* dbias, int64_t rows, int64_t d) {
    if (dx != nullptr) {
      B::for_each(rows, detail::LayerNormRowBackward<T>{dy, x, mean, rstd, weight, dx, d},
                  std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(d, 1)));
    }
    if (dweight != nullptr || dbias != nullptr) {
      B::for_each(d, detail::LayerNormColumnBackward<T>{dy, x, mean, rstd, dweight, dbias, rows, d},
                  std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(rows, 1)));
    }
  }
};

template <>
struct LayerNormKernel<Cpu> {
  static constexpr int64_t kMaxChunks = 64;  // row chunks of the dw/db column sums

  /// y = (x - μ) rstd ∘ w + b; weight and bias may be null (no affine). mean, rstd: (rows).
  template <class T>
  static void forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd, int64_t rows,
                      int64_t d, double eps) {
    using namespace detail::cpu;
    Cpu::for_each(
        rows,
        [=](int64_t r) {
          const ConstRowMap<T> xr(x + r * d, d);
          RowMap<T> yr(y + r * d, d);
          const T mu = d > 0 ? xr.sum() / static_cast<T>(d) : T(0);
          const T var = d > 0 ? (xr - mu).square().sum() / static_cast<T>(d) : T(0);
          const T inv = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
          mean[r] = mu;
          rstd[r] = inv;
          if (weight != nullptr && bias != nullptr) {
            yr = (xr - mu) * inv * ConstRowMap<T>(weight, d) + ConstRowMap<T>(bias, d);
          } else if (weight != nullptr) {
            yr = (xr - mu) * inv * ConstRowMap<T>(weight, d);
          } else if (bias != nullptr) {
            yr = (xr - mu) * inv + ConstRowMap<T>(bias, d);
          } else {
            yr = (xr - mu) * inv;
          }
        },
        row_grain(d));
  }

  /// dx (or null), dweight (or null), dbias (or null) from dy and the saved x, mean, rstd.
  template <class T>
  static void backward(const T* dy, const T* x, const T* mean, const T* rstd, const T* weight, T* dx,
                       T* dweight, T* dbias, int64_t rows, int64_t d) {
    using namespace detail::cpu;
    const bool columns = dweight != nullptr || dbias != nullptr;
    const int64_t chunks = std::min<int64_t>(rows, kMaxChunks);
    const int64_t chunk_rows = chunks > 0 ? (rows + chunks - 1) / chunks : 0;
    // Per-chunk partial column sums: [chunk][0 = dw, 1 = db][d], in double.
    std::vector<double> partial(columns ? static_cast<size_t>(chunks * 2 * d) : 0, 0.0);
    Cpu::for_each(
        chunks,
        [&](int64_t chunk) {
          Eigen::Array<T, Eigen::Dynamic, 1> xhat(d), g(d);
          double* const sum_w = dweight != nullptr ? partial.data() + chunk * 2 * d : nullptr;
          double* const sum_b = dbias != nullptr ? partial.data() + chunk * 2 * d + d : nullptr;
          const int64_t end = std::min(rows, (chunk + 1) * chunk_rows);
          for (int64_t r = chunk * chunk_rows; r < end; ++r) {
            const ConstRowMap<T> xr(x + r * d, d), gr(dy + r * d, d);
            // One plain loop for x̂ and the column sums: the compiler vectorizes the widening to double.
            const T* xp = x + r * d;
            const T* gp = dy + r * d;
            T* xh = xhat.data();
            const T mu = mean[r], inv = rstd[r];
            if (sum_w != nullptr && sum_b != nullptr) {
              for (int64_t j = 0; j < d; ++j) {
                xh[j] = (xp[j] - mu) * inv;
                sum_w[j] += static_cast<double>(gp[j]) * static_cast<double>(xh[j]);
                sum_b[j] += static_cast<double>(gp[j]);
              }
            } else {
              xhat = (xr - mu) * inv;
              if (sum_w != nullptr) {
                for (int64_t j = 0; j < d; ++j)
                  sum_w[j] += static_cast<double>(gp[j]) * static_cast<double>(xh[j]);
              }
              if (sum_b != nullptr) {
                for (int64_t j = 0; j < d; ++j) sum_b[j] += static_cast<double>(gp[j]);
              }
            }
            if (dx == nullptr) continue;
            if (weight != nullptr) {
              g = gr * ConstRowMap<T>(weight, d);
            } else {
              g = gr;
            }
            const T inv_d = T(1) / static_cast<T>(d);
            const T mean_g = g.sum() * inv_d, mean_gx = (g * xhat).sum() * inv_d;
            RowMap<T>(dx + r * d, d) = (g - mean_g - xhat * mean_gx) * rstd[r];
          }
        },
        1);
    if (!columns) return;
    Cpu::for_each(
        d,
        [&](int64_t j) {
          double w = 0.0, b = 0.0;
          for (int64_t chunk = 0; chunk < chunks; ++chunk) {
            w += partial[static_cast<size_t>(chunk * 2 * d + j)];
            b += partial[static_cast<size_t>(chunk * 2 * d + d + j)];
          }
          if (dweight != nullptr) dweight[j] = static_cast<T>(w);
          if (dbias != nullptr) dbias[j] = static_cast<T>(b);
        },
        row_grain(chunks, 4096));
  }
};

namespace detail {

template <class T, class B>
void check_layer_norm(const Tensor<T, B>& x, const Tensor<T, B>& weight, const Tensor<T, B>& bias,
                      double eps) {
  BINDERY_CHECK(x.defined(), ValueError, "layer_norm: x is undefined");
  BINDERY_CHECK(x.rank() >= 1, ShapeError, "layer_norm: x of shape ", x.shape(), " needs at least one axis");
  const Shape d{x.size(-1)};
  BINDERY_CHECK(!weight.defined() || weight.shape() == d, ShapeError, "layer_norm: x of shape ", x.shape(),
                " and weight of shape ", weight.shape(), ": weight must be ", d);
  BINDERY_CHECK(!bias.defined() || bias.shape() == d, ShapeError, "layer_norm: x of shape ", x.shape(),
                " and bias of shape ", bias.shape(), ": bias must be ", d);
  BINDERY_CHECK(eps >= 0, ValueError, "layer_norm: eps must be >= 0, got ", eps);
}

template <class T, class B>
struct LayerNormResult {
  Tensor<T, B> y, x, mean, rstd;  // x: the contiguous input, mean/rstd: (rows)
};

template <class T, class B>
LayerNormResult<T, B> layer_norm_impl(const Tensor<T, B>& x, const Tensor<T, B>& weight,
                                      const Tensor<T, B>& bias, double eps) {
  check_layer_norm(x, weight, bias, eps);
  const int64_t d = x.size(-1), rows = leading_shape(x.shape(), 1).numel();
  LayerNormResult<T, B> r;
  r.x = x.contiguous();
  r.y = Tensor<T, B>::empty(x.shape());
  r.mean = Tensor<T, B>::empty(Shape{rows});
  r.rstd = Tensor<T, B>::empty(Shape{rows});
  const Tensor<T, B> w = weight.defined() ? weight.contiguous() : Tensor<T, B>();
  const Tensor<T, B> b = bias.defined() ? bias.contiguous() : Tensor<T, B>();
  LayerNormKernel<B>::forward(r.x.data(), w.defined() ? w.data() : nullptr, b.defined() ? b.data() : nullptr,
                              r.y.data(), r.mean.data(), r.rstd.data(), rows, d, eps);
  return r;
}

/// t as U (undefined stays undefined).
template <class U, class T, class B>
Tensor<U, B> cast_defined(const Tensor<T, B>& t) {
  return t.defined() ? t.template cast<U>() : Tensor<U, B>();
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// x: (..., D), weight and bias: (D) or undefined (no affine) -> (..., D).
template <class T, class B>
Tensor<T, B> layer_norm_forward(const Tensor<T, B>& x, const Tensor<T, B>& weight, const Tensor<T, B>& bias,
                                double eps = 1e-5) {
  using Compute = accumulate_t<T>;  // 16-bit T: computed in float, see layer_norm
  if constexpr (std::is_same_v<Compute, T>) {
    return detail::layer_norm_impl(x, weight, bias, eps).y;
  } else {
    return detail::layer_norm_impl(x.template cast<Compute>(), detail::cast_defined<Compute>(weight),
                                   detail::cast_defined<Compute>(bias), eps)
        .y.template cast<T>();
  }
}

// ---- differentiable ----------------------------------------------------------------------------

namespace detail {

/// dL/dx, dL/dw, dL/db of layer_norm from the saved row statistics (undefined where not needed).
template <class T, class B>
std::vector<Tensor<T, B>> layer_norm_backward(const Tensor<T, B>& dL_dy, const Tensor<T, B>& x_saved,
                                              const Tensor<T, B>& mean, const Tensor<T, B>& rstd,
                                              const Tensor<T, B>& w_saved, bool need_x, bool need_w,
                                              bool need_b) {
  const int64_t d = x_saved.size(-1), rows = mean.numel();
  const Tensor<T, B> g = dL_dy.contiguous();
  Tensor<T, B> dL_dx, dL_dw, dL_db;
  if (need_x) dL_dx = Tensor<T, B>::empty(x_saved.shape());
  if (need_w) dL_dw = Tensor<T, B>::empty(Shape{d});
  if (need_b) dL_db = Tensor<T, B>::empty(Shape{d});
  LayerNormKernel<B>::backward(g.data(), x_saved.data(), mean.data(), rstd.data(),
                               w_saved.defined() ? w_saved.data() : nullptr, need_x ? dL_dx.data() : nullptr,
                               need_w ? dL_dw.data() : nullptr, need_b ? dL_db.data() : nullptr, rows, d);
  return {dL_dx, dL_dw, dL_db};
}

}  // namespace detail

/// Layer norm over the last axis. x: (..., D), weight and bias: (D) or an undefined Var (no scale /
/// no shift) -> (..., D). Backward through the fused kernel (dx, dweight, dbias in one pass).
/// 16-bit T (bfloat16, float16): the statistics and the normalisation are computed in float (the
/// kernel runs on float copies) and the results rounded to T, as PyTorch's bf16 layer_norm does.
template <class T, class B>
Var<T, B> layer_norm(const Var<T, B>& x, const Var<T, B>& weight, const Var<T, B>& bias, double eps = 1e-5) {
  using Compute = accumulate_t<T>;  // float for the 16-bit types, T otherwise
  const Tensor<T, B> w = weight.defined() ? weight.value() : Tensor<T, B>();
  const Tensor<T, B> b = bias.defined() ? bias.value() : Tensor<T, B>();
  const bool need_x = needs_grad(x), need_w = needs_grad(weight), need_b = needs_grad(bias);
  if constexpr (std::is_same_v<Compute, T>) {
    detail::LayerNormResult<T, B> r = detail::layer_norm_impl(x.value(), w, b, eps);
    return make_result<T, B>(r.y, "layer_norm", {x, weight, bias},
                             [x_saved = r.x, mean = r.mean, rstd = r.rstd,
                              w_saved = need_x && w.defined() ? w.contiguous() : Tensor<T, B>(), need_x,
                              need_w, need_b](const Tensor<T, B>& dL_dy) {
                               return detail::layer_norm_backward(dL_dy, x_saved, mean, rstd, w_saved, need_x,
                                                                  need_w, need_b);
                             });
  } else {
    const Tensor<Compute, B> wf = detail::cast_defined<Compute>(w);
    detail::LayerNormResult<Compute, B> r = detail::layer_norm_impl(x.value().template cast<Compute>(), wf,
                                                                    detail::cast_defined<Compute>(b), eps);
    return make_result<T, B>(
        r.y.template cast<T>(), "layer_norm", {x, weight, bias},
        [x_saved = r.x, mean = r.mean, rstd = r.rstd, w_saved = need_x ? wf : Tensor<Compute, B>(), need_x,
         need_w, need_b](const Tensor<T, B>& dL_dy) {
          std::vector<Tensor<T, B>> grads;
          for (const Tensor<Compute, B>& grad : detail::layer_norm_backward(
                   dL_dy.template cast<Compute>(), x_saved, mean, rstd, w_saved, need_x, need_w, need_b)) {
            grads.push_back(detail::cast_defined<T>(grad));
          }
          return grads;
        });
  }
}

}  // namespace bindery::ops
