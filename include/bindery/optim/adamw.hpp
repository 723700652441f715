// bindery/optim/adamw.hpp — AdamW (Loshchilov & Hutter), exactly as torch.optim.AdamW (amsgrad off).
//
// For each parameter p with gradient g, at its own step count t (starting at 1):
//   p   <- p * (1 - lr * weight_decay)                  decoupled weight decay
//   m   <- beta1 * m + (1 - beta1) * g                  exp_avg
//   v   <- beta2 * v + (1 - beta2) * g²                 exp_avg_sq
//   p   <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// (eps is added outside the square root of the bias-corrected v, as PyTorch does.)
//
// The whole update is ONE elementwise pass: AdamWUpdate<T> is a BINDERY_HOST_DEVICE functor run
// through B::for_each, so the CUDA backend launches the very same code. The scalars that depend only
// on t (bias corrections, step size) are computed once on the host, in double.
// Launches: per parameter (one pass each; the default on the CPU, where a pass is a cache-friendly
// loop) or multi-tensor (ONE launch for every parameter of the step: a table of slots, each element
// finds its parameter by binary search; the default on device backends, where a launch per
// parameter would cost more than the update of a small one). Both give bit-identical results.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "bindery/optim/optimizer.hpp"

namespace bindery::optim {

struct AdamWOptions {
  double lr = 1e-3;  // default lr of groups built from a plain parameter list
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // default weight decay of groups built from a plain parameter list
  /// One launch for all parameters (true), one per parameter (false), or the backend's default
  /// (unset: multi-tensor on device backends, per parameter on the CPU).
  std::optional<bool> multi_tensor = std::nullopt;
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

/// One parameter of a multi-tensor step: its pointers, where its elements start in the step's
/// global numbering, and its per-parameter scalars (groups differ in lr and weight decay, and
/// parameters in step count).
template <class T>
struct AdamWSlot {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  int64_t first;  // global index of element 0
  T decay, step_size, bias2_sqrt;
};

/// Element i of the concatenation of every slot's parameter: find its slot, apply AdamWUpdate.
template <class T>
struct AdamWMultiUpdate {
  const AdamWSlot<T>* slots;  // in backend memory, sorted by `first`
  int64_t count;
  T beta1, beta2, eps;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    int64_t lo = 0, hi = count - 1;  // the last slot with first <= i
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (slots[mid].first <= i) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    const AdamWSlot<T>& s = slots[lo];
    AdamWUpdate<T>{s.param, s.grad, s.exp_avg,   s.exp_avg_sq, s.decay,
                   beta1,   beta2,  s.step_size, s.bias2_sqrt, eps}(i - s.first);
  }
};

}  // namespace detail

/// AdamW over parameter groups (per-group lr and weight decay; betas and eps shared).
///
/// Checkpointing: state() returns one AdamWState per parameter, in group order then parameter
/// order (the numbering of PyTorch's optimizer state_dict); load_state() takes the same list back
/// (copies it) after checking its length and shapes. Learning rates live in groups().
/// Through the Optimizer interface, state_dict() holds hyper = {"type": "AdamW", "beta1", "beta2",
/// "eps", "groups", "steps": [per-parameter step]} and tensors "<i>.exp_avg", "<i>.exp_avg_sq" (for
/// parameters updated at least once): the names checkpoints have always used.
template <class T, class B = Cpu>
class AdamW : public Optimizer<T, B> {
 public:
  using State = AdamWState<T, B>;
  using Options = AdamWOptions;

  explicit AdamW(std::vector<ParamGroup<T, B>> groups, AdamWOptions options = {})
      : Optimizer<T, B>(std::move(groups)), options_(options) {
    BINDERY_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
                  ValueError, "AdamW: betas must be in [0, 1), got (", options.beta1, ", ", options.beta2,
                  ")");
    BINDERY_CHECK(options.eps >= 0, ValueError, "AdamW: eps must be >= 0, got ", options.eps);
    for (const auto& group : groups_) detail::check_group(group, "AdamW");
    state_.resize(detail::count_params(groups_));
  }
  explicit AdamW(std::vector<Var<T, B>> params, AdamWOptions options = {})
      : AdamW(detail::single_group(std::move(params), options.lr, options.weight_decay), options) {}

  std::string type_name() const override { return "AdamW"; }

  /// One update of every parameter that has a gradient (others are skipped, see ParamGroup).
  void step() override {
    state_.resize(detail::count_params(groups_));
    const bool multi = options_.multi_tensor.value_or(!B::kHostAccessible);
    std::vector<detail::AdamWSlot<T>> slots;
    std::vector<Tensor<T, B>> grads;  // keeps contiguous copies alive until the launch
    int64_t total = 0;
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
        grads.push_back(p.grad().contiguous());
        const detail::AdamWSlot<T> slot{p.value().data(),
                                        grads.back().data(),
                                        s.exp_avg.data(),
                                        s.exp_avg_sq.data(),
                                        total,
                                        static_cast<T>(1.0 - group.lr * group.weight_decay),
                                        static_cast<T>(group.lr / bias1),
                                        static_cast<T>(std::sqrt(bias2))};
        if (multi) {
          slots.push_back(slot);
          total += p.numel();
        } else {
          B::for_each(p.numel(),
                      detail::AdamWUpdate<T>{slot.param, slot.grad, slot.exp_avg, slot.exp_avg_sq, slot.decay,
                                             beta1(), beta2(), slot.step_size, slot.bias2_sqrt, eps()});
        }
      }
    }
    if (slots.empty()) return;
    const int64_t count = static_cast<int64_t>(slots.size());
    detail::AdamWSlot<T>* table = B::template allocate<detail::AdamWSlot<T>>(count);
    B::copy_from_host(table, slots.data(), count);
    B::for_each(total, detail::AdamWMultiUpdate<T>{table, count, beta1(), beta2(), eps()});
    B::deallocate(table);  // reused only by work queued after the launch
  }

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

  OptimizerState<T, B> state_dict() const override {
    OptimizerState<T, B> out{this->base_hyper(), {}};
    out.hyper["beta1"] = options_.beta1;
    out.hyper["beta2"] = options_.beta2;
    out.hyper["eps"] = options_.eps;
    nlohmann::json steps = nlohmann::json::array();
    const size_t n = detail::count_params(groups_);
    for (size_t k = 0; k < n; ++k) {
      const State* s = k < state_.size() ? &state_[k] : nullptr;  // groups added since the last step
      steps.push_back(s ? s->step : 0);
      if (s && s->exp_avg.defined()) {
        out.tensors.emplace(::bindery::detail::concat(k, ".exp_avg"), s->exp_avg);
        out.tensors.emplace(::bindery::detail::concat(k, ".exp_avg_sq"), s->exp_avg_sq);
      }
    }
    out.hyper["steps"] = std::move(steps);
    return out;
  }

  /// Checks (see Optimizer) then restores steps, moments and the groups' lr / weight decay /
  /// initial lr. betas and eps must equal this optimizer's (ValueError).
  void load_state_dict(const OptimizerState<T, B>& state) override {
    const auto hyper = this->check_base(state, {"exp_avg", "exp_avg_sq"});
    this->check_same(state, "beta1", options_.beta1);
    this->check_same(state, "beta2", options_.beta2);
    this->check_same(state, "eps", options_.eps);
    const std::string who = "AdamW::load_state_dict";
    const nlohmann::json& steps = this->member(who, state.hyper, "steps");
    const size_t n = detail::count_params(groups_);
    if (!steps.is_array() || steps.size() != n)
      this->malformed(who, "\"steps\" must list one step per parameter (", n, "), got ",
                      io::json_excerpt(steps));
    std::vector<State> states(n);
    size_t k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        if (!steps[k].is_number_integer() || steps[k].get<int64_t>() < 0)
          this->malformed(who, "step ", io::json_excerpt(steps[k]), " of parameter ", k);
        states[k].step = steps[k].get<int64_t>();
        const Tensor<T, B>* m = this->find_tensor(state, k, "exp_avg");
        const Tensor<T, B>* v = this->find_tensor(state, k, "exp_avg_sq");
        BINDERY_CHECK((m == nullptr) == (v == nullptr) && (m != nullptr || states[k].step == 0),
                      nn::StateDictError, who, ": parameter ", k, " has step ", states[k].step, " but ",
                      m   ? "no exp_avg_sq"
                      : v ? "no exp_avg"
                          : "no exp_avg / exp_avg_sq",
                      " tensor");
        for (const auto& [name, t] :
             {std::pair<const char*, const Tensor<T, B>*>{"exp_avg", m}, {"exp_avg_sq", v}}) {
          BINDERY_CHECK(t == nullptr || t->shape() == p.shape(), nn::StateDictError, who, ": tensor '", k,
                        ".", name, "' of shape ", t ? t->shape().to_string() : "", " does not fit parameter ",
                        k, " of shape ", p.shape());
        }
        if (m) {
          states[k].exp_avg = *m;
          states[k].exp_avg_sq = *v;
        }
        ++k;
      }
    }
    load_state(states);  // deep copies; cannot fail after the checks above
    this->apply_groups(hyper);
  }

 private:
  void groups_changed() override { state_.resize(detail::count_params(groups_)); }

  T beta1() const { return static_cast<T>(options_.beta1); }
  T beta2() const { return static_cast<T>(options_.beta2); }
  T eps() const { return static_cast<T>(options_.eps); }

  using Optimizer<T, B>::groups_;
  AdamWOptions options_;
  std::vector<State> state_;
};

}  // namespace bindery::optim
