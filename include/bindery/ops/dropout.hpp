// bindery/ops/dropout.hpp — dropout (per element) and drop_path (stochastic depth, per sample).
//
// Masks come from Philox counters, never from a sequential generator: element i of a draw that
// starts at generator offset o is kept iff philox_uniform01<double>(philox(o + i, seed)) < 1 - p.
// The test is made in double for every T, so the same seed gives the same mask on every backend
// and for float and double alike. The generator advances by the number of draws.
//
// Training semantics follow PyTorch (dropout: kept elements scaled by 1/(1-p)) and timm (drop_path:
// one keep/drop decision per sample along axis 0, kept samples scaled by 1/(1-p)). In eval mode or
// with p == 0 both return x itself (the same Var, no graph node, no draw).
#pragma once

#include <cstdint>

#include "bindery/ops/shape.hpp"

namespace bindery::ops {

namespace detail {

BINDERY_HOST_DEVICE inline bool philox_keep(uint64_t seed, uint64_t counter, double keep_prob) {
  return bindery::detail::philox_uniform01<double>(bindery::detail::philox4x32_10(counter, seed)) < keep_prob;
}

/// y = keep ? x * scale : 0, recording the keep mask when `keep` is not null.
template <class T>
struct DropoutForward {
  T* y;
  uint8_t* keep;
  const T* x;
  uint64_t seed, first_counter;
  double keep_prob;
  T scale;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const bool kept = philox_keep(seed, first_counter + static_cast<uint64_t>(i), keep_prob);
    if (keep) keep[i] = kept ? 1 : 0;
    y[i] = kept ? T(x[i] * scale) : T(0);
  }
};

/// dL/dx = keep ? dL/dy * scale : 0.
template <class T>
struct DropoutBackward {
  T* dx;
  const T* g;
  const uint8_t* keep;
  T scale;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { dx[i] = keep[i] ? T(g[i] * scale) : T(0); }
};

/// factor[n] = keep ? 1/keep_prob : 0, one draw per sample.
template <class T>
struct DropPathFactor {
  T* factor;
  uint64_t seed, first_counter;
  double keep_prob;
  BINDERY_HOST_DEVICE void operator()(int64_t n) const {
    const bool kept = philox_keep(seed, first_counter + static_cast<uint64_t>(n), keep_prob);
    factor[n] = kept ? static_cast<T>(1.0 / keep_prob) : T(0);
  }
};

/// out[i] = in[i] * factor[i / per_sample]: forward and backward of drop_path alike.
template <class T>
struct ScaleSamples {
  T* out;
  const T* in;
  const T* factor;
  int64_t per_sample;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = in[i] * factor[i / per_sample]; }
};

inline void check_drop_probability(const char* op, double p) {
  BINDERY_CHECK(p >= 0.0 && p <= 1.0, ValueError, op, ": drop probability p must be in [0, 1], got ", p);
}

}  // namespace detail

// ---- dropout -----------------------------------------------------------------------------------

/// Training-mode dropout on a tensor: x: any shape -> x's shape. Draws x.numel() counters from rng.
/// Returns the output and, when `keep_mask` is not null, stores the 0/1 mask (uint8) there.
template <class T, class B>
Tensor<T, B> dropout_forward(const Tensor<T, B>& x, double p, Philox& rng,
                             Tensor<uint8_t, B>* keep_mask = nullptr) {
  detail::check_drop_probability("dropout", p);
  const Tensor<T, B> xc = x.contiguous();
  Tensor<T, B> y = Tensor<T, B>::empty(x.shape());
  Tensor<uint8_t, B> keep;
  if (keep_mask) keep = Tensor<uint8_t, B>::empty(x.shape());
  const uint64_t first = rng.advance(static_cast<uint64_t>(x.numel()));
  const double keep_prob = 1.0 - p;
  const T scale = keep_prob > 0.0 ? static_cast<T>(1.0 / keep_prob) : T(0);
  B::for_each(x.numel(), detail::DropoutForward<T>{y.data(), keep_mask ? keep.data() : nullptr, xc.data(),
                                                   rng.seed(), first, keep_prob, scale});
  if (keep_mask) *keep_mask = keep;
  return y;
}

/// Zeroes each element with probability p and scales the rest by 1/(1-p) (p == 1: all zeros).
/// x: any shape -> x's shape. Identity (x itself) when !training or p == 0. p outside [0, 1]
/// throws ValueError. dL/dx = dL/dy * mask / (1-p) with the forward's mask.
template <class T, class B>
Var<T, B> dropout(const Var<T, B>& x, double p, bool training, Philox& rng) {
  detail::check_drop_probability("dropout", p);
  if (!training || p == 0.0) return x;
  const bool want = needs_grad(x);
  Tensor<uint8_t, B> keep;
  Tensor<T, B> y = dropout_forward(x.value(), p, rng, want ? &keep : nullptr);
  const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  return make_result<T, B>(y, "dropout", {x}, [keep, scale](const Tensor<T, B>& dL_dy) {
    const Tensor<T, B> g = dL_dy.contiguous();
    Tensor<T, B> dL_dx = Tensor<T, B>::empty(g.shape());
    B::for_each(g.numel(), detail::DropoutBackward<T>{dL_dx.data(), g.data(), keep.data(), scale});
    return std::vector{dL_dx};
  });
}

// ---- drop_path (stochastic depth) -------------------------------------------------------------

/// The per-sample factors of drop_path: (N) with values 0 (dropped) or 1/(1-p) (kept); draws N
/// counters from rng.
template <class T, class B>
Tensor<T, B> drop_path_factors(int64_t samples, double p, Philox& rng) {
  detail::check_drop_probability("drop_path", p);
  Tensor<T, B> factor = Tensor<T, B>::empty(Shape{samples});
  const uint64_t first = rng.advance(static_cast<uint64_t>(samples));
  B::for_each(samples, detail::DropPathFactor<T>{factor.data(), rng.seed(), first, 1.0 - p}, 1024);
  return factor;
}

/// x: (N, ...) and factor: (N) -> x's shape, each sample n multiplied by factor[n].
template <class T, class B>
Tensor<T, B> scale_samples(const Tensor<T, B>& x, const Tensor<T, B>& factor) {
  BINDERY_CHECK(x.rank() >= 1 && factor.rank() == 1 && factor.shape()[0] == x.shape()[0], ShapeError,
                "scale_samples: x of shape ", x.shape(), " and factor of shape ", factor.shape(),
                " must be (N, ...) and (N)");
  const Tensor<T, B> xc = x.contiguous();
  Tensor<T, B> out = Tensor<T, B>::empty(x.shape());
  const int64_t per_sample = std::max<int64_t>(1, x.numel() / std::max<int64_t>(1, x.shape()[0]));
  B::for_each(x.numel(), detail::ScaleSamples<T>{out.data(), xc.data(), factor.data(), per_sample});
  return out;
}

/// Stochastic depth (timm's drop_path): each sample along axis 0 is zeroed with probability p and
/// kept samples are scaled by 1/(1-p). x: (N, ...) -> x's shape. Identity (x itself) when
/// !training or p == 0. dL/dx = dL/dy scaled by the same per-sample factors.
template <class T, class B>
Var<T, B> drop_path(const Var<T, B>& x, double p, bool training, Philox& rng) {
  detail::check_drop_probability("drop_path", p);
  if (!training || p == 0.0) return x;
  BINDERY_CHECK(x.rank() >= 1, ShapeError, "drop_path: x of shape ", x.shape(),
                " needs a sample axis (rank >= 1)");
  const Tensor<T, B> factor = drop_path_factors<T, B>(x.shape()[0], p, rng);
  return make_result<T, B>(
      scale_samples(x.value(), factor), "drop_path", {x},
      [factor](const Tensor<T, B>& dL_dy) { return std::vector{scale_samples(dL_dy, factor)}; });
}

}  // namespace bindery::ops
