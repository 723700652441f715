// bindery/models/imagebind/heads.hpp — the last two stages: pool + project, normalize + scale.
//
// Keys, as the reference's nn.Sequential indices (index 1 is SelectElement, which has no state):
//   ClsHead        0.{weight,bias} (LayerNorm), 2.weight (Linear) — or 3.weight after the Dropout
//                  at index 2 (IMU)
//   EosHead        proj.0.{weight,bias} (LayerNorm), proj.1.weight (Linear)   (SelectEOSAndProject)
//   Postprocessor  1.log_logit_scale (a parameter when learnable, else a buffer); none for vision
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>

#include "bindery/models/imagebind/config.hpp"
#include "bindery/models/imagebind/preprocessors.hpp"
#include "bindery/nn/activation.hpp"
#include "bindery/nn/init.hpp"
#include "bindery/nn/layer_norm.hpp"
#include "bindery/nn/linear.hpp"
#include "bindery/nn/sequential.hpp"
#include "bindery/ops/index.hpp"
#include "bindery/ops/normalize.hpp"
#include "bindery/ops/pointwise.hpp"

namespace bindery::models::imagebind {

/// LayerNorm -> token 0 (the cls token) -> [Dropout] -> Linear without bias.
template <class T, class B = Cpu>
class ClsHead : public nn::Module<T, B> {
 public:
  explicit ClsHead(const EncoderConfig& config, uint64_t seed = 0) : dim_(config.embed_dim) {
    norm_ = this->register_module("0", std::make_shared<nn::LayerNorm<T, B>>(dim_, config.head_norm_eps));
    if (config.head_dropout > 0) {
      dropout_ = this->register_module(
          "2", std::make_shared<nn::Dropout<T, B>>(config.head_dropout, nn::init::derive_seed(seed, 0)));
    }
    proj_ = this->register_module(
        dropout_ ? "3" : "2",
        std::make_shared<nn::Linear<T, B>>(dim_, config.out_dim, false, nn::init::derive_seed(seed, 1)));
  }

  /// x: (N, L, D) -> (N, out). LayerNorm acts per token, so only token 0 is normalized.
  Var<T, B> forward(const Var<T, B>& x, const TokenBatch<T, B>& = {}) {
    BINDERY_CHECK(x.rank() == 3 && x.size(1) >= 1 && x.size(2) == dim_, ShapeError,
                  "ClsHead: input of shape ", x.shape(), " must be (N, L, ", dim_, ")");
    return forward_selected(ops::select(x, 1, 0));
  }
  /// The token forward() reads from each of `samples` sequences: 0, the cls token.
  Tensor<int64_t, B> read_rows(const TokenBatch<T, B>&, int64_t samples) const {
    return Tensor<int64_t, B>::zeros(Shape{samples});
  }
  /// forward() from the token it reads, already selected: (N, D) -> (N, out).
  Var<T, B> forward_selected(const Var<T, B>& token) {
    BINDERY_CHECK(token.rank() == 2 && token.size(1) == dim_, ShapeError, "ClsHead: selected token of shape ",
                  token.shape(), " must be (N, ", dim_, ")");
    Var<T, B> pooled = norm_->forward(token);
    if (dropout_) pooled = dropout_->forward(pooled);
    return proj_->forward(pooled);
  }

  nn::LayerNorm<T, B>& norm() { return *norm_; }
  nn::Linear<T, B>& proj() { return *proj_; }
  /// Null without head dropout.
  nn::Dropout<T, B>* dropout() { return dropout_.get(); }

 private:
  int64_t dim_;
  std::shared_ptr<nn::LayerNorm<T, B>> norm_;
  std::shared_ptr<nn::Dropout<T, B>> dropout_;
  std::shared_ptr<nn::Linear<T, B>> proj_;
};

/// SelectEOSAndProject: the token at each sequence's EOS position -> LayerNorm -> Linear (no bias).
template <class T, class B = Cpu>
class EosHead : public nn::Module<T, B> {
 public:
  using Projection = nn::Sequential<nn::LayerNorm<T, B>, nn::Linear<T, B>>;

  explicit EosHead(const EncoderConfig& config, uint64_t seed = 0) : dim_(config.embed_dim) {
    proj_ = this->register_module(
        "proj",
        std::make_shared<Projection>(
            std::make_shared<nn::LayerNorm<T, B>>(dim_, config.head_norm_eps),
            std::make_shared<nn::Linear<T, B>>(dim_, config.out_dim, false, nn::init::derive_seed(seed, 1))));
  }

  /// x: (N, L, D), batch.eos_index: (N) -> (N, out).
  Var<T, B> forward(const Var<T, B>& x, const TokenBatch<T, B>& batch) {
    BINDERY_CHECK(x.rank() == 3 && x.size(2) == dim_ && batch.eos_index.defined() &&
                      batch.eos_index.rank() == 1 && batch.eos_index.size(0) == x.size(0),
                  ShapeError, "EosHead: input of shape ", x.shape(), " must be (N, L, ", dim_,
                  ") with one EOS position per sequence (eos_index of shape ",
                  batch.eos_index.defined() ? batch.eos_index.shape() : Shape{}, ")");
    return forward_selected(ops::gather_rows(x, batch.eos_index));
  }
  /// The token forward() reads from each sequence: its EOS position, batch.eos_index.
  Tensor<int64_t, B> read_rows(const TokenBatch<T, B>& batch, int64_t samples) const {
    BINDERY_CHECK(
        batch.eos_index.defined() && batch.eos_index.rank() == 1 && batch.eos_index.size(0) == samples,
        ShapeError, "EosHead: one EOS position per sequence is needed for ", samples,
        " sequences (eos_index of shape ", batch.eos_index.defined() ? batch.eos_index.shape() : Shape{},
        ")");
    return batch.eos_index;
  }
  /// forward() from the EOS tokens, already selected: (N, D) -> (N, out).
  Var<T, B> forward_selected(const Var<T, B>& token) {
    BINDERY_CHECK(token.rank() == 2 && token.size(1) == dim_, ShapeError, "EosHead: selected token of shape ",
                  token.shape(), " must be (N, ", dim_, ")");
    return proj_->forward(token);
  }

  Projection& proj() { return *proj_; }

 private:
  int64_t dim_;
  std::shared_ptr<Projection> proj_;
};

/// LearnableLogitScaling: x * min(exp(log_logit_scale), max_logit_scale). log_logit_scale is a
/// scalar: a parameter when learnable, a (saved) buffer otherwise, so a loaded checkpoint's value
/// is what multiplies.
template <class T, class B = Cpu>
class LogitScale : public nn::Module<T, B> {
 public:
  LogitScale(double init, bool learnable, double max_scale) : max_(max_scale) {
    BINDERY_CHECK(init > 0 && max_scale > 0, ValueError, "LogitScale: init ", init, " and max ", max_scale,
                  " must be positive");
    const Tensor<T, B> value = Tensor<T, B>::scalar(static_cast<T>(std::log(init)));
    if (learnable) {
      log_scale_ = this->register_parameter("log_logit_scale", value);
    } else {
      log_scale_ = Var<T, B>(this->register_buffer("log_logit_scale", value));
    }
  }
  /// x: any shape -> x * scale().
  Var<T, B> forward(const Var<T, B>& x) { return x * scale(); }
  /// min(exp(log_logit_scale), max): a scalar Var (differentiable when learnable).
  Var<T, B> scale() const {
    return ops::clamp(ops::exp(log_scale_), std::numeric_limits<T>::lowest(), static_cast<T>(max_));
  }
  Var<T, B> log_logit_scale() const { return log_scale_; }

 private:
  double max_;
  Var<T, B> log_scale_;  // the parameter, or a constant Var sharing the buffer's storage
};

/// Normalize(dim=-1) [-> LogitScale]: x (N, out) -> x / max(||x||, 1e-12) [* scale].
template <class T, class B = Cpu>
class Postprocessor : public nn::Module<T, B> {
 public:
  explicit Postprocessor(const EncoderConfig& config) {
    if (config.logit_scale > 0) {
      scale_ = this->register_module(
          "1", std::make_shared<LogitScale<T, B>>(config.logit_scale, config.learnable_logit_scale,
                                                  config.max_logit_scale));
    }
  }
  /// x: (..., out) -> same shape.
  Var<T, B> forward(const Var<T, B>& x) {
    const Var<T, B> normalized = ops::l2_normalize(x, -1, 1e-12);
    return scale_ ? scale_->forward(normalized) : normalized;
  }
  /// Null for vision (normalization only).
  LogitScale<T, B>* logit_scale() { return scale_.get(); }

 private:
  std::shared_ptr<LogitScale<T, B>> scale_;
};

}  // namespace bindery::models::imagebind
