// bindery/nn/linear.hpp — Linear: y = x W^T + b (torch.nn.Linear).
#pragma once

#include <cstdint>
#include <optional>

#include "bindery/nn/init.hpp"
#include "bindery/nn/module.hpp"
#include "bindery/ops/linear.hpp"

namespace bindery::nn {

/// Options of Linear, for designated initializers: `nn::Linear<float>(64, 32, {.bias = false, .seed = 7})`.
struct LinearOptions {
  bool bias = true;
  /// Init seed; unset: the next seed of this thread's sequence (nn/seed.hpp), so layers built
  /// without one differ from each other and are still the same in every run.
  std::optional<uint64_t> seed = std::nullopt;
};

/// torch.nn.Linear(in_features, out_features, bias). Parameters: `weight` (out, in) and, when
/// `bias`, `bias` (out). Init as torch: both U(-1/sqrt(in), 1/sqrt(in)), drawn from Philox(seed).
template <class T, class B = Cpu>
class Linear : public Module<T, B> {
 public:
  explicit Linear(int64_t in_features, int64_t out_features, LinearOptions options = {})
      : in_features_(in_features), out_features_(out_features) {
    BINDERY_CHECK(in_features > 0 && out_features > 0, ValueError, "Linear: in_features ", in_features,
                  " and out_features ", out_features, " must be positive");
    Philox rng(resolve_seed(options.seed));
    weight_ = this->register_parameter(
        "weight", init::default_uniform<T, B>(Shape{out_features, in_features}, in_features, rng));
    if (options.bias) {
      bias_ = this->register_parameter("bias",
                                       init::default_uniform<T, B>(Shape{out_features}, in_features, rng));
    }
  }

  /// The old positional form, kept for existing code: Linear(in, out, bias, seed) is
  /// Linear(in, out, {.bias = bias, .seed = seed}), the same weights.
  Linear(int64_t in_features, int64_t out_features, bool bias, std::optional<uint64_t> seed = std::nullopt)
      : Linear(in_features, out_features, LinearOptions{.bias = bias, .seed = seed}) {}

  /// x: (..., in) -> (..., out).
  Var<T, B> forward(const Var<T, B>& x) {
    BINDERY_CHECK(x.rank() >= 1 && x.size(-1) == in_features_, ShapeError, "Linear: input of shape ",
                  x.shape(), " does not end in in_features ", in_features_, " (weight of shape ",
                  weight_.shape(), ")");
    return ops::linear(x, weight_, bias_);
  }

  Var<T, B> weight() const { return weight_; }
  /// Undefined when the layer has no bias.
  Var<T, B> bias() const { return bias_; }
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

 private:
  int64_t in_features_, out_features_;
  Var<T, B> weight_, bias_;
};

}  // namespace bindery::nn
