// bindery/nn/linear.hpp — Linear: y = x W^T + b (torch.nn.Linear).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>

#include "bindery/nn/init.hpp"
#include "bindery/nn/lowp_weight.hpp"
#include "bindery/nn/module.hpp"
#include "bindery/ops/gelu.hpp"
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
    check_input(x);
    if (lowp_) return lowp_forward(x, GemmActivation::kNone);
    return ops::linear(x, weight_, bias_);
  }

  /// gelu(forward(x)) (the transformer's fc1 → GELU). Frozen, the inference kernel applies GELU to
  /// each output tile as it stores it: no second pass over the output, the same bits as ops::gelu
  /// after forward(). Trainable, it is ops::gelu(forward(x)).
  Var<T, B> forward_gelu(const Var<T, B>& x) {
    if (!lowp_) return ops::gelu(forward(x));
    check_input(x);
    return lowp_forward(x, GemmActivation::kGelu);
  }

  /// Converts the weight for inference (nn/lowp_weight.hpp) and frees the (out, in) weight: fp32
  /// packs the same values for the inference x·Wᵀ kernel, bf16 / int8 quantize them. `weight` stays
  /// registered with shape (0, in) and the bias stays fp32, both frozen. Freeze after loading a
  /// checkpoint (loading into a frozen layer fails on the shape). Forward then needs no gradient for
  /// its input (throws ValueError otherwise). Only Linear<float, Cpu>; any other T or backend throws
  /// ValueError, as does a second call.
  Linear& freeze(WeightPrecision precision) {
    BINDERY_CHECK(!lowp_, ValueError, "Linear::freeze: the layer is already frozen at ",
                  to_string(lowp_->precision()), "; freeze a trainable fp32 layer (reload it) to change it");
    if constexpr (std::is_same_v<T, float> && std::is_same_v<B, Cpu>) {
      const Tensor<T, B> w = weight_.value().contiguous();
      set_lowp_weight(
          std::make_shared<LowpWeight>(precision, w.data(), out_features_, in_features_, in_features_));
    } else {
      throw ValueError(
          ::bindery::detail::concat("Linear::freeze: ", to_string(precision),
                                    " inference weights run on the CPU in float only; this layer "
                                    "is not Linear<float, Cpu>"));
    }
    return *this;
  }
  /// freeze() to bf16 or int8; fp32 is a no-op (the layer stays trainable).
  Linear& quantize(WeightPrecision precision) {
    if (precision == WeightPrecision::kFloat32) return *this;
    return freeze(precision);
  }
  /// Installs an inference weight (out_features × in_features), as freeze() does with the one it
  /// converts: the (out, in) weight is freed (it is never read: a model built under
  /// SkipRandomInit and loaded this way never touches its fp32 pages). Throws as freeze().
  Linear& set_lowp_weight(std::shared_ptr<const LowpWeight> w) {
    BINDERY_CHECK(w != nullptr && w->rows() == out_features_ && w->cols() == in_features_, ShapeError,
                  "Linear::set_lowp_weight: the weight is (", w ? w->rows() : 0, ", ", w ? w->cols() : 0,
                  "), the layer (", out_features_, ", ", in_features_, ")");
    BINDERY_CHECK(!lowp_, ValueError, "Linear::set_lowp_weight: the layer is already ",
                  to_string(lowp_->precision()));
    if constexpr (std::is_same_v<T, float> && std::is_same_v<B, Cpu>) {
      lowp_ = std::move(w);
      weight_.node()->value = Tensor<T, B>::empty(Shape{0, in_features_});
      weight_.set_requires_grad(false);
      if (bias_.defined()) bias_.set_requires_grad(false);
    } else {
      throw ValueError("Linear::set_lowp_weight: inference weights run on the CPU in float only");
    }
    return *this;
  }
  /// The inference weight, or null while the layer is trainable.
  const std::shared_ptr<const LowpWeight>& lowp_weight() const { return lowp_; }
  /// Bytes the weight holds: fp32, or what freeze() converted it to.
  size_t weight_bytes() const {
    return lowp_ ? lowp_->bytes() : static_cast<size_t>(weight_.numel()) * sizeof(T);
  }
  /// fp32 unless freeze() converted the weight to bf16 or int8.
  WeightPrecision precision() const { return lowp_ ? lowp_->precision() : WeightPrecision::kFloat32; }

  Var<T, B> weight() const { return weight_; }
  /// Undefined when the layer has no bias.
  Var<T, B> bias() const { return bias_; }
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

 private:
  int64_t in_features_, out_features_;
  Var<T, B> weight_, bias_;
  std::shared_ptr<const LowpWeight> lowp_;  // set by freeze()

  void check_input(const Var<T, B>& x) const {
    BINDERY_CHECK(x.rank() >= 1 && x.size(-1) == in_features_, ShapeError, "Linear: input of shape ",
                  x.shape(), " does not end in in_features ", in_features_, " (weight of shape ",
                  weight_.shape(), ")");
  }

  Var<T, B> lowp_forward(const Var<T, B>& x, GemmActivation act) const {
    BINDERY_CHECK(!needs_grad(x), ValueError, "Linear: this layer is frozen for inference (",
                  to_string(lowp_->precision()),
                  " weights) and has no backward; run it under NoGrad or on inputs that ",
                  "need no gradient");
    if constexpr (std::is_same_v<T, float> && std::is_same_v<B, Cpu>) {
      const int64_t rows = x.numel() / in_features_;
      const Tensor<T, B> x_rows = x.value().contiguous();
      Tensor<T, B> y = Tensor<T, B>::empty(Shape{rows, out_features_});
      lowp_->apply(rows, x_rows.data(), in_features_, y.data(), out_features_,
                   bias_.defined() ? bias_.value().contiguous().data() : nullptr, act);
      std::vector<int64_t> dims(x.shape().begin(), x.shape().end() - 1);
      dims.push_back(out_features_);
      return Var<T, B>(y.reshape(dims), false);
    } else {
      throw ValueError("Linear: frozen layers run on the CPU in float only");
    }
  }
};

}  // namespace bindery::nn
