// bindery/nn/layer_norm.hpp — LayerNorm over the last axis (torch.nn.LayerNorm(dim)).
#pragma once

#include <cstdint>

#include "bindery/nn/module.hpp"
#include "bindery/ops/layer_norm.hpp"

namespace bindery::nn {

/// torch.nn.LayerNorm(dim, eps, elementwise_affine): y = (x - mean) / sqrt(var + eps) * weight + bias
/// over the last axis (biased variance). Parameters when `affine`: `weight` (dim) init 1, `bias`
/// (dim) init 0. ImageBind's blocks use eps 1e-6, its stems 1e-5 (torch's default).
struct LayerNormOptions {
  double eps = 1e-5;   // torch's default; ImageBind's blocks use 1e-6
  bool affine = true;  // learned weight and bias
};

template <class T, class B = Cpu>
class LayerNorm : public Module<T, B> {
 public:
  /// `nn::LayerNorm<float>(dim, {.eps = 1e-6})`. No seed: the init is constant.
  explicit LayerNorm(int64_t dim, LayerNormOptions options = {}) : dim_(dim), eps_(options.eps) {
    BINDERY_CHECK(dim > 0 && options.eps >= 0, ValueError, "LayerNorm: dim ", dim,
                  " must be positive and eps ", options.eps, " non-negative");
    if (options.affine) {
      weight_ = this->register_parameter("weight", Tensor<T, B>::ones(Shape{dim}));
      bias_ = this->register_parameter("bias", Tensor<T, B>::zeros(Shape{dim}));
    }
  }

  /// The old positional form: LayerNorm(dim, eps, affine) is LayerNorm(dim, {.eps = eps, .affine = affine}).
  LayerNorm(int64_t dim, double eps, bool affine = true)
      : LayerNorm(dim, LayerNormOptions{.eps = eps, .affine = affine}) {}

  /// x: (..., dim) -> (..., dim).
  Var<T, B> forward(const Var<T, B>& x) {
    BINDERY_CHECK(x.rank() >= 1 && x.size(-1) == dim_, ShapeError, "LayerNorm: input of shape ", x.shape(),
                  " does not end in the normalized dim ", dim_);
    return ops::layer_norm(x, weight_, bias_, eps_);
  }

  /// Undefined when not affine.
  Var<T, B> weight() const { return weight_; }
  Var<T, B> bias() const { return bias_; }
  int64_t dim() const { return dim_; }
  double eps() const { return eps_; }

 private:
  int64_t dim_;
  double eps_;
  Var<T, B> weight_, bias_;
};

}  // namespace bindery::nn
