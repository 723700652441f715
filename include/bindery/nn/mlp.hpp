// bindery/nn/mlp.hpp — the transformer feed-forward: fc1 -> GELU -> dropout -> fc2 -> dropout.
#pragma once

#include <cstdint>
#include <memory>

#include "bindery/nn/activation.hpp"
#include "bindery/nn/linear.hpp"

namespace bindery::nn {

/// ImageBind's / timm's Mlp(in, hidden, out, drop). Children, in ImageBind's registration order:
/// `fc1` Linear(in, hidden), `act` Gelu, `fc2` Linear(hidden, out), `drop` Dropout(drop) — the one
/// Dropout is applied after the activation and again after fc2. Keys: fc1.{weight,bias},
/// fc2.{weight,bias}. Init: Linear's default, each child on its own stream derived from `seed`.
template <class T, class B = Cpu>
class Mlp : public Module<T, B> {
 public:
  Mlp(int64_t in_features, int64_t hidden_features, int64_t out_features, double drop = 0.0,
      uint64_t seed = 0, bool bias = true) {
    fc1_ = this->register_module("fc1", std::make_shared<Linear<T, B>>(in_features, hidden_features, bias,
                                                                       init::derive_seed(seed, 0)));
    act_ = this->register_module("act", std::make_shared<Gelu<T, B>>());
    fc2_ = this->register_module("fc2", std::make_shared<Linear<T, B>>(hidden_features, out_features, bias,
                                                                       init::derive_seed(seed, 1)));
    drop_ = this->register_module("drop", std::make_shared<Dropout<T, B>>(drop, init::derive_seed(seed, 2)));
  }

  /// x: (..., in) -> (..., out).
  Var<T, B> forward(const Var<T, B>& x) {
    Var<T, B> h = drop_->forward(act_->forward(fc1_->forward(x)));  // (..., hidden)
    return drop_->forward(fc2_->forward(h));
  }

  Linear<T, B>& fc1() { return *fc1_; }
  Linear<T, B>& fc2() { return *fc2_; }
  Dropout<T, B>& drop() { return *drop_; }

 private:
  std::shared_ptr<Linear<T, B>> fc1_;
  std::shared_ptr<Gelu<T, B>> act_;
  std::shared_ptr<Linear<T, B>> fc2_;
  std::shared_ptr<Dropout<T, B>> drop_;
};

}  // namespace bindery::nn
