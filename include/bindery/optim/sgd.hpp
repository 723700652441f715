// bindery/optim/sgd.hpp — stochastic gradient descent with momentum, as torch.optim.SGD.
//
// For each parameter p with gradient g:
//   d   <- g + weight_decay * p                        (coupled L2 decay, PyTorch's SGD)
//   buf <- d                                           on the first step (no dampening)
//   buf <- momentum * buf + (1 - dampening) * d        afterwards
//   d   <- nesterov ? d + momentum * buf : buf         (only when momentum != 0)
//   p   <- p - lr * d
// One fused elementwise pass per parameter (SgdUpdate<T>, a BINDERY_HOST_DEVICE functor).
#pragma once

#include <utility>
#include <vector>

#include "bindery/optim/optimizer.hpp"

namespace bindery::optim {

struct SgdOptions {
  double lr = 1e-2;  // default lr of groups built from a plain parameter list
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // default weight decay of groups built from a plain parameter list
  bool nesterov = false;
};

/// Per-parameter SGD state, PyTorch's {'momentum_buffer'}: undefined until the first step with
/// momentum != 0.
template <class T, class B = Cpu>
struct SgdState {
  Tensor<T, B> momentum_buffer;
};

namespace detail {

template <class T>
struct SgdUpdate {
  T* param;
  const T* grad;
  T* buffer;  // null when momentum == 0
  T lr, weight_decay, momentum, dampening;
  bool first;  // the buffer is initialised with d instead of being decayed
  bool nesterov;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    T d = grad[i] + weight_decay * param[i];
    if (buffer != nullptr) {
      const T b = first ? d : momentum * buffer[i] + (T(1) - dampening) * d;
      buffer[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    param[i] -= lr * d;
  }
};

}  // namespace detail

/// SGD over parameter groups (per-group lr and weight decay; momentum, dampening and nesterov
/// shared). state()/load_state() expose one SgdState per parameter in group then parameter order.
/// Through the Optimizer interface (type_name() "SGD", as torch.optim.SGD), state_dict() holds
/// hyper = {"type": "SGD", "momentum", "dampening", "nesterov", "groups"} and tensors
/// "<i>.momentum_buffer" (for parameters that have one).
template <class T, class B = Cpu>
class Sgd : public Optimizer<T, B> {
 public:
  using State = SgdState<T, B>;
  using Options = SgdOptions;

  explicit Sgd(std::vector<ParamGroup<T, B>> groups, SgdOptions options = {})
      : Optimizer<T, B>(std::move(groups)), options_(options) {
    BINDERY_CHECK(options.momentum >= 0, ValueError, "Sgd: momentum must be >= 0, got ", options.momentum);
    BINDERY_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0), ValueError,
                  "Sgd: nesterov needs momentum > 0 and dampening == 0, got momentum ", options.momentum,
                  " and dampening ", options.dampening);
    for (const auto& group : groups_) detail::check_group(group, "Sgd");
    state_.resize(detail::count_params(groups_));
  }
  explicit Sgd(std::vector<Var<T, B>> params, SgdOptions options = {})
      : Sgd(detail::single_group(std::move(params), options.lr, options.weight_decay), options) {}

  std::string type_name() const override { return "SGD"; }

  /// One update of every parameter that has a gradient (others are skipped, see ParamGroup).
  void step() override {
    state_.resize(detail::count_params(groups_));
    const bool use_momentum = options_.momentum != 0.0;
    size_t k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        State& s = state_[k++];
        if (!detail::has_update(p)) continue;
        detail::check_updatable(p, "Sgd");
        bool first = false;
        if (use_momentum && !s.momentum_buffer.defined()) {
          s.momentum_buffer = Tensor<T, B>::empty(p.shape());
          first = true;
        }
        if (use_momentum) {
          BINDERY_CHECK(s.momentum_buffer.shape() == p.shape(), ShapeError, "Sgd: momentum buffer of shape ",
                        s.momentum_buffer.shape(), " for parameter ", k - 1, " of shape ", p.shape());
        }
        const Tensor<T, B> grad = p.grad().contiguous();
        B::for_each(
            p.numel(),
            detail::SgdUpdate<T>{p.value().data(), grad.data(),
                                 use_momentum ? s.momentum_buffer.data() : nullptr, static_cast<T>(group.lr),
                                 static_cast<T>(group.weight_decay), static_cast<T>(options_.momentum),
                                 static_cast<T>(options_.dampening), first, options_.nesterov});
      }
    }
  }

  const SgdOptions& options() const { return options_; }

  const std::vector<State>& state() const { return state_; }
  /// Restores state() output (deep copies). Throws ShapeError on a count or shape mismatch.
  void load_state(const std::vector<State>& state) {
    const size_t n = detail::count_params(groups_);
    BINDERY_CHECK(state.size() == n, ShapeError, "Sgd::load_state: ", state.size(), " parameter states for ",
                  n, " parameters");
    std::vector<State> copy(n);
    size_t k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        const Tensor<T, B>& buffer = state[k].momentum_buffer;
        if (buffer.defined()) {
          BINDERY_CHECK(buffer.shape() == p.shape(), ShapeError, "Sgd::load_state: parameter ", k,
                        " of shape ", p.shape(), " got a momentum buffer of shape ", buffer.shape());
          copy[k].momentum_buffer = buffer.clone();
        }
        ++k;
      }
    }
    state_ = std::move(copy);
  }

  OptimizerState<T, B> state_dict() const override {
    OptimizerState<T, B> out{this->base_hyper(), {}};
    out.hyper["momentum"] = options_.momentum;
    out.hyper["dampening"] = options_.dampening;
    out.hyper["nesterov"] = options_.nesterov;
    for (size_t k = 0; k < state_.size(); ++k) {
      if (state_[k].momentum_buffer.defined())
        out.tensors.emplace(::bindery::detail::concat(k, ".momentum_buffer"), state_[k].momentum_buffer);
    }
    return out;
  }

  /// Checks (see Optimizer) then restores the momentum buffers and the groups' lr / weight decay /
  /// initial lr. momentum, dampening and nesterov must equal this optimizer's (ValueError).
  void load_state_dict(const OptimizerState<T, B>& state) override {
    const auto hyper = this->check_base(state, {"momentum_buffer"});
    this->check_same(state, "momentum", options_.momentum);
    this->check_same(state, "dampening", options_.dampening);
    this->check_same(state, "nesterov", options_.nesterov);
    std::vector<State> states(detail::count_params(groups_));
    size_t k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        const Tensor<T, B>* buffer = this->find_tensor(state, k, "momentum_buffer");
        BINDERY_CHECK(buffer == nullptr || buffer->shape() == p.shape(), nn::StateDictError,
                      "SGD::load_state_dict: tensor '", k, ".momentum_buffer' of shape ",
                      buffer ? buffer->shape().to_string() : "", " does not fit parameter ", k, " of shape ",
                      p.shape());
        if (buffer) states[k].momentum_buffer = *buffer;
        ++k;
      }
    }
    load_state(states);  // deep copies; cannot fail after the checks above
    this->apply_groups(hyper);
  }

 private:
  void groups_changed() override { state_.resize(detail::count_params(groups_)); }

  using Optimizer<T, B>::groups_;
  SgdOptions options_;
  std::vector<State> state_;
};

/// torch's spelling of Sgd.
template <class T, class B = Cpu>
using SGD = Sgd<T, B>;

}  // namespace bindery::optim
