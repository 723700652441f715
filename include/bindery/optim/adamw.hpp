// bindery/optim/adamw.hpp — AdamW (Loshchilov & Hutter), exactly as torch.optim.AdamW (amsgrad off).
//
// For each parameter p with gradient g, at its own step count t (starting at 1):
//   p   <- p * (1 - lr * weight_decay)                  decoupled weight decay
//   m   <- beta1 * m + (1 - beta1) * g                  exp_avg
//   v   <- beta2 * v + (1 - beta2) * g²                 exp_avg_sq
//   p   <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// (eps is added outside the square root of the bias-corrected v, as PyTorch does.)
//
// The whole update is ONE elementwise pass per parameter: AdamWUpdate<T> is a BINDERY_HOST_DEVICE
// functor run through B::for_each, so the CUDA backend launches the very same code. The scalars that
// depend only on t (bias corrections, step size) are computed once on the host, in double.
#pragma once

#include <cmath>
#include <utility>
#include <vector>

#include "bindery/optim/param_group.hpp"

namespace bindery::optim {

struct AdamWOptions {
  double lr = 1e-3;  // default lr of groups built from a plain parameter list
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // default weight decay of groups built from a plain parameter list
};

/// Per-parameter AdamW state, PyTorch's {'step', 'exp_avg', 'exp_avg_sq'}. A parameter that was
/// never updated has step 0 and undefined tensors.
template <class T, class B = Cpu>
struct AdamWState {
  int64_t step = 0;
  Tensor<T, B> exp_avg;     // first moment m, the parameter's shape
  Tensor<T, B> exp_avg_sq;  // second moment v, the parameter's shape
};

namespace detail {

/// The fused AdamW update of one element (see the file comment for the formulas).
template <class T>
struct AdamWUpdate {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  T decay;         // 1 - lr * weight_decay
  T beta1, beta2;  // moment decay rates
  T step_size;     // lr / (1 - beta1^t)
  T bias2_sqrt;    // sqrt(1 - beta2^t)
  T eps;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const T g = grad[i];
    const T m = beta1 * exp_avg[i] + (T(1) - beta1) * g;
    const T v = beta2 * exp_avg_sq[i] + (T(1) - beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const T denom = std::sqrt(v) / bias2_sqrt + eps;
    param[i] = param[i] * decay - step_size * m / denom;
  }
};

}  // namespace detail

/// AdamW over parameter groups (per-group lr and weight decay; betas and eps shared).
///
/// Checkpointing: state() returns one AdamWState per parameter, in group order then parameter
/// order (the numbering of PyTorch's optimizer state_dict); load_state() takes the same list back
/// (copies it) after checking its length and shapes. Learning rates live in groups().
template <class T, class B = Cpu>
class AdamW {
 public:
  using State = AdamWState<T, B>;

  explicit AdamW(std::vector<ParamGroup<T, B>> groups, AdamWOptions options = {})
      : groups_(std::move(groups)), options_(options) {
    BINDERY_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
                  ValueError, "AdamW: betas must be in [0, 1), got (", options.beta1, ", ", options.beta2,
                  ")");
    BINDERY_CHECK(options.eps >= 0, ValueError, "AdamW: eps must be >= 0, got ", options.eps);
    for (const auto& group : groups_) detail::check_group(group, "AdamW");
    state_.resize(detail::count_params(groups_));
  }
  explicit AdamW(std::vector<Var<T, B>> params, AdamWOptions options = {})
      : AdamW(detail::single_group(std::move(params), options.lr, options.weight_decay), options) {}

  /// One update of every parameter that has a gradient (others are skipped, see ParamGroup).
  void step() {
    state_.resize(detail::count_params(groups_));
    size_t k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        State& s = state_[k++];
        if (!detail::has_update(p)) continue;
        detail::check_updatable(p, "AdamW");
        if (!s.exp_avg.defined()) {
          s.exp_avg = Tensor<T, B>::zeros(p.shape());
          s.exp_avg_sq = Tensor<T, B>::zeros(p.shape());
        }
        BINDERY_CHECK(s.exp_avg.shape() == p.shape(), ShapeError, "AdamW: state of shape ", s.exp_avg.shape(),
                      " for parameter ", k - 1, " of shape ", p.shape(), " (were the groups edited?)");
        ++s.step;
        const double t = static_cast<double>(s.step);
        const double bias1 = 1.0 - std::pow(options_.beta1, t);
        const double bias2 = 1.0 - std::pow(options_.beta2, t);
        const Tensor<T, B> grad = p.grad().contiguous();
        B::for_each(p.numel(),
                    detail::AdamWUpdate<T>{
                        p.value().data(), grad.data(), s.exp_avg.data(), s.exp_avg_sq.data(),
                        static_cast<T>(1.0 - group.lr * group.weight_decay), static_cast<T>(options_.beta1),
                        static_cast<T>(options_.beta2), static_cast<T>(group.lr / bias1),
                        static_cast<T>(std::sqrt(bias2)), static_cast<T>(options_.eps)});
      }
    }
  }

  /// Drops every parameter's gradient (set to undefined, like PyTorch's set_to_none).
  void zero_grad() { detail::zero_grad(groups_); }

  /// Appends a group; its parameters start with empty state.
  void add_param_group(ParamGroup<T, B> group) {
    detail::check_group(group, "AdamW");
    groups_.push_back(std::move(group));
    state_.resize(detail::count_params(groups_));
  }

  std::vector<ParamGroup<T, B>>& groups() { return groups_; }
  const std::vector<ParamGroup<T, B>>& groups() const { return groups_; }
  const AdamWOptions& options() const { return options_; }

  /// One state per parameter, in group then parameter order (see the class comment).
  const std::vector<State>& state() const { return state_; }
  /// Restores state() output (deep copies). Throws ShapeError on a count or shape mismatch.
  void load_state(const std::vector<State>& state) {
    const size_t n = detail::count_params(groups_);
    BINDERY_CHECK(state.size() == n, ShapeError, "AdamW::load_state: ", state.size(),
                  " parameter states for ", n, " parameters");
    std::vector<State> copy(n);
    size_t k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        const State& s = state[k];
        BINDERY_CHECK(s.step >= 0, ValueError, "AdamW::load_state: negative step ", s.step, " for parameter ",
                      k);
        if (s.exp_avg.defined() || s.exp_avg_sq.defined()) {
          BINDERY_CHECK(s.exp_avg.defined() && s.exp_avg_sq.defined() && s.exp_avg.shape() == p.shape() &&
                            s.exp_avg_sq.shape() == p.shape(),
                        ShapeError, "AdamW::load_state: parameter ", k, " of shape ", p.shape(),
                        " got exp_avg of shape ",
                        s.exp_avg.defined() ? s.exp_avg.shape().to_string() : "undefined",
                        " and exp_avg_sq of shape ",
                        s.exp_avg_sq.defined() ? s.exp_avg_sq.shape().to_string() : "undefined");
          copy[k] = State{s.step, s.exp_avg.clone(), s.exp_avg_sq.clone()};
        } else {
          copy[k] = State{s.step, {}, {}};
        }
        ++k;
      }
    }
    state_ = std::move(copy);
  }

 private:
  std::vector<ParamGroup<T, B>> groups_;
  AdamWOptions options_;
  std::vector<State> state_;
};

}  // namespace bindery::optim
