// bindery/nn/activation.hpp — parameter-free modules: Identity, Gelu, Dropout, DropPath.
//
// They own no parameters, so they add no state-dict keys; they exist so that module trees (and
// named_modules()) have the same shape as PyTorch's (`mlp.act`, `mlp.drop`, `drop_path`).
#pragma once

#include <cstdint>
#include <optional>

#include "bindery/nn/module.hpp"
#include "bindery/nn/seed.hpp"
#include "bindery/ops/dropout.hpp"
#include "bindery/ops/pointwise.hpp"

namespace bindery::nn {

/// y = x (torch.nn.Identity).
template <class T, class B = Cpu>
class Identity : public Module<T, B> {
 public:
  Var<T, B> forward(const Var<T, B>& x) { return x; }
};

/// Exact (erf) GELU, torch.nn.GELU(). x: any shape -> same shape.
template <class T, class B = Cpu>
class Gelu : public Module<T, B> {
 public:
  Var<T, B> forward(const Var<T, B>& x) { return ops::gelu(x); }
};

/// torch.nn.Dropout(p): in training, zeroes each element with probability p and scales the rest by
/// 1/(1-p); identity in eval mode. The mask comes from the module's own Philox stream (`seed`),
/// which advances with each training forward (save generator() with a checkpoint to resume exactly).
template <class T, class B = Cpu>
class Dropout : public Module<T, B> {
 public:
  /// `seed` of the mask stream; unset: the next seed of this thread's sequence (nn/seed.hpp).
  explicit Dropout(double p = 0.5, std::optional<uint64_t> seed = std::nullopt)
      : p_(p), rng_(resolve_seed(seed)) {
    ops::detail::check_drop_probability("Dropout", p);
  }
  /// x: any shape -> same shape.
  Var<T, B> forward(const Var<T, B>& x) { return ops::dropout(x, p_, this->is_training(), rng_); }
  double p() const { return p_; }
  Philox& generator() { return rng_; }

 private:
  double p_;
  Philox rng_;
};

/// Stochastic depth (timm's DropPath(p)): in training, each sample along axis 0 is dropped with
/// probability p and kept samples are scaled by 1/(1-p); identity in eval mode or when p == 0.
template <class T, class B = Cpu>
class DropPath : public Module<T, B> {
 public:
  /// `seed` of the drop stream; unset: the next seed of this thread's sequence (nn/seed.hpp).
  explicit DropPath(double p = 0.0, std::optional<uint64_t> seed = std::nullopt)
      : p_(p), rng_(resolve_seed(seed)) {
    ops::detail::check_drop_probability("DropPath", p);
  }
  /// x: (N, ...) -> same shape.
  Var<T, B> forward(const Var<T, B>& x) { return ops::drop_path(x, p_, this->is_training(), rng_); }
  double p() const { return p_; }
  Philox& generator() { return rng_; }

 private:
  double p_;
  Philox rng_;
};

}  // namespace bindery::nn
