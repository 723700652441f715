// bindery/nn/mlp.hpp — the transformer feed-forward: fc1 -> GELU -> dropout -> fc2 -> dropout.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "bindery/nn/activation.hpp"
#include "bindery/nn/linear.hpp"

namespace bindery::nn {

/// Options of Mlp: `nn::Mlp<float>(in, hidden, out, {.drop = 0.1, .seed = 3})`.
struct MlpOptions {
  double drop = 0.0;  // dropout probability, after the activation and after fc2
  bool bias = true;   // fc1 and fc2 biases
  /// Init and dropout seed; unset: the next seed of this thread's sequence (nn/seed.hpp). The
  /// children's seeds derive from it.
  std::optional<uint64_t> seed = std::nullopt;
};

/// ImageBind's / timm's Mlp(in, hidden, out, drop). Children, in ImageBind's registration order:
/// `fc1` Linear(in, hidden), `act` Gelu, `fc2` Linear(hidden, out), `drop` Dropout(drop) — the one
/// Dropout is applied after the activation and again after fc2. Keys: fc1.{weight,bias},
/// fc2.{weight,bias}. Init: Linear's default, each child on its own stream derived from `seed`.
template <class T, class B = Cpu>
class Mlp : public Module<T, B> {
 public:
  Mlp(int64_t in_features, int64_t hidden_features, int64_t out_features, MlpOptions options = {}) {
    const uint64_t seed = resolve_seed(options.seed);
    const bool bias = options.bias;
    const double drop = options.drop;
    fc1_ = this->register_module("fc1", std::make_shared<Linear<T, B>>(
                                            in_features, hidden_features,
                                            LinearOptions{.bias = bias, .seed = init::derive_seed(seed, 0)}));
    act_ = this->register_module("act", std::make_shared<Gelu<T, B>>());
    fc2_ = this->register_module("fc2", std::make_shared<Linear<T, B>>(
                                            hidden_features, out_features,
                                            LinearOptions{.bias = bias, .seed = init::derive_seed(seed, 1)}));
    drop_ = this->register_module("drop", std::make_shared<Dropout<T, B>>(drop, init::derive_seed(seed, 2)));
  }

  /// The old positional form: Mlp(in, hidden, out, drop, seed, bias) is
  /// Mlp(in, hidden, out, {.drop = drop, .bias = bias, .seed = seed}).
  Mlp(int64_t in_features, int64_t hidden_features, int64_t out_features, double drop,
      std::optional<uint64_t> seed = std::nullopt, bool bias = true)
      : Mlp(in_features, hidden_features, out_features,
            MlpOptions{.drop = drop, .bias = bias, .seed = seed}) {}

  /// x: (..., in) -> (..., out). A frozen fc1 (nn::freeze) applies the GELU in its kernel.
  Var<T, B> forward(const Var<T, B>& x) {
    const Var<T, B> a = fc1_->lowp_weight() ? fc1_->forward_gelu(x) : act_->forward(fc1_->forward(x));
    Var<T, B> h = drop_->forward(a);  // (..., hidden)
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
