// bindery/optim/grad_scaler.hpp — dynamic loss scaling for float16 training (torch.amp.GradScaler).
//
//   optim::GradScaler<float> scaler;                      // scale 65536, x2 every 2000 good steps
//   for (...) {
//     optimizer.zero_grad();
//     Var<float> loss;
//     { Autocast autocast(Precision::kFloat16); loss = compute_loss(batch); }
//     backward(scaler.scale(loss));                        // gradients are scale × the true ones
//     scaler.unscale(optimizer);                           // optional: before clipping
//     optim::clip_grad_norm(optimizer.groups(), 1.0);
//     scaler.step(optimizer);                              // skipped when a gradient is inf/NaN
//     scaler.update();                                     // backoff on overflow, growth otherwise
//   }
//
// Why: under float16 autocast the backward GEMMs round dL/dy to float16, whose smallest subnormal is
// 6e-8; smaller gradients become 0. Multiplying the loss by a large S moves them into range; the
// gradients are divided by S again (in float) before the optimizer sees them. When S is too large a
// gradient overflows to inf: that step is skipped and S halves. After `growth_interval` steps in a
// row without overflow S doubles. bfloat16 has float's range and needs no scaler.
//
// Semantics match PyTorch's GradScaler: unscale checks each gradient value for inf/NaN before
// dividing (one fused pass per gradient), step() unscales first when the caller did not, and the
// update rule is torch's _amp_update_scale_. One device-to-host read per step gathers every
// parameter's overflow flags at once.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "bindery/ops/arithmetic.hpp"
#include "bindery/optim/param_group.hpp"

namespace bindery::optim {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;  // false: scale() returns the loss, step() just steps (one code path for all)
};

/// What a checkpoint keeps of a scaler (PyTorch's GradScaler.state_dict()).
struct GradScalerState {
  double scale = 65536.0;
  int64_t growth_tracker = 0;  // steps without overflow since the last change of scale
};

namespace detail {

/// Unscales one chunk of a gradient in place and records whether a value of it was inf or NaN.
template <class T>
struct UnscaleChunk {
  T* grad;
  uint8_t* overflow;  // one flag per chunk
  int64_t n, chunk;
  T inv_scale;
  BINDERY_HOST_DEVICE void operator()(int64_t c) const {
    const int64_t begin = c * chunk, end = begin + chunk < n ? begin + chunk : n;
    bool finite = true;
    for (int64_t i = begin; i < end; ++i) {
      const T g = grad[i];
      finite = finite && (g - g) == T(0);  // false for ±inf (inf - inf = NaN) and NaN
      grad[i] = g * inv_scale;
    }
    overflow[c] = finite ? 0 : 1;
  }
};

}  // namespace detail

/// Dynamic loss scaler; see the file comment. T and B are the parameters' element type and backend.
template <class T, class B = Cpu>
class GradScaler {
 public:
  /// Elements per overflow flag (a chunk is unscaled in order by one thread).
  static constexpr int64_t kChunk = 2048;

  explicit GradScaler(GradScalerOptions options = {}) : options_(options) {
    BINDERY_CHECK(options.init_scale > 0 && std::isfinite(options.init_scale), ValueError,
                  "GradScaler: init_scale must be a positive finite number, got ", options.init_scale);
    BINDERY_CHECK(options.growth_factor > 1.0, ValueError, "GradScaler: growth_factor must be > 1, got ",
                  options.growth_factor);
    BINDERY_CHECK(options.backoff_factor > 0.0 && options.backoff_factor < 1.0, ValueError,
                  "GradScaler: backoff_factor must be in (0, 1), got ", options.backoff_factor);
    BINDERY_CHECK(options.growth_interval >= 1, ValueError, "GradScaler: growth_interval must be >= 1, got ",
                  options.growth_interval);
    state_.scale = options.init_scale;
  }

  /// loss × scale (the loss itself when disabled). Call backward on the result.
  Var<T, B> scale(const Var<T, B>& loss) const {
    if (!options_.enabled) return loss;
    return ops::mul_scalar(loss, static_cast<T>(state_.scale));
  }

  /// Divides every gradient of the optimizer's parameters by the scale, in place, and records
  /// whether any was inf or NaN. At most once per step (a second call throws ValueError).
  template <class Optimizer>
  void unscale(Optimizer& optimizer) {
    if (!options_.enabled) return;
    BINDERY_CHECK(!unscaled_, ValueError,
                  "GradScaler::unscale: already called since the last update(); call it once per step");
    std::vector<Var<T, B>> params;
    int64_t chunks = 0;
    for (auto& group : optimizer.groups()) {
      for (auto& p : group.params) {
        if (!p.defined() || !p.has_grad() || p.grad().numel() == 0) continue;
        if (!p.grad().is_contiguous()) p.set_grad(p.grad().contiguous());  // a fresh copy this scaler owns
        params.push_back(p);
        chunks += (p.grad().numel() + kChunk - 1) / kChunk;
      }
    }
    found_inf_ = false;
    unscaled_ = true;
    if (params.empty()) return;
    Tensor<uint8_t, B> overflow = Tensor<uint8_t, B>::empty(Shape{chunks});
    const T inv_scale = static_cast<T>(1.0 / state_.scale);
    int64_t first = 0;
    for (auto& p : params) {
      const int64_t n = p.grad().numel(), count = (n + kChunk - 1) / kChunk;
      B::for_each(count,
                  detail::UnscaleChunk<T>{p.grad().data(), overflow.data() + first, n, kChunk, inv_scale}, 1);
      first += count;
    }
    for (const uint8_t flag : overflow.to_vector()) found_inf_ = found_inf_ || flag != 0;
  }

  /// Unscales (unless unscale() already ran this step), then runs optimizer.step() unless a gradient
  /// was inf or NaN. Returns whether the optimizer stepped.
  template <class Optimizer>
  bool step(Optimizer& optimizer) {
    if (!options_.enabled) {
      optimizer.step();
      return true;
    }
    if (!unscaled_) unscale(optimizer);
    stepped_ = true;
    if (found_inf_) return false;
    optimizer.step();
    return true;
  }

  /// Adjusts the scale after a step: × backoff_factor after an overflow, × growth_factor after
  /// growth_interval clean steps in a row. Ends the step (unscale may be called again).
  void update() {
    if (!options_.enabled) return;
    BINDERY_CHECK(
        unscaled_ || stepped_, ValueError,
        "GradScaler::update: no unscale() or step() since the last update(): nothing to update from");
    if (found_inf_) {
      state_.scale *= options_.backoff_factor;
      state_.growth_tracker = 0;
    } else if (++state_.growth_tracker == options_.growth_interval) {
      const double grown = state_.scale * options_.growth_factor;
      if (std::isfinite(grown)) state_.scale = grown;
      state_.growth_tracker = 0;
    }
    found_inf_ = unscaled_ = stepped_ = false;
  }

  /// The current scale S.
  double get_scale() const { return options_.enabled ? state_.scale : 1.0; }
  /// Whether the last unscale() saw an inf or NaN gradient (the step it guards is skipped).
  bool found_inf() const { return found_inf_; }
  bool enabled() const { return options_.enabled; }
  const GradScalerOptions& options() const { return options_; }

  GradScalerState state() const { return state_; }
  /// Restores state() output (a checkpoint); throws ValueError on a non-positive scale.
  void load_state(const GradScalerState& state) {
    BINDERY_CHECK(state.scale > 0 && std::isfinite(state.scale) && state.growth_tracker >= 0, ValueError,
                  "GradScaler::load_state: scale ", state.scale, " and growth_tracker ", state.growth_tracker,
                  " must be positive finite and non-negative");
    state_ = state;
  }

 private:
  GradScalerOptions options_;
  GradScalerState state_;
  bool found_inf_ = false, unscaled_ = false, stepped_ = false;
};

}  // namespace bindery::optim
