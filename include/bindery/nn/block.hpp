// bindery/nn/block.hpp — the pre-norm transformer block of ImageBind (BlockWithMasking).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "bindery/nn/activation.hpp"
#include "bindery/nn/attention.hpp"
#include "bindery/nn/layer_norm.hpp"
#include "bindery/nn/mlp.hpp"
#include "bindery/ops/index.hpp"
#include "bindery/ops/shape.hpp"

namespace bindery::nn {

/// CaiT's LayerScale: the residual branches multiplied by a learned gamma.
enum class LayerScale {
  kNone,        // no gamma (ImageBind's encoders)
  kPerChannel,  // gamma (1, 1, D)
  kScalar,      // gamma (1, 1, 1)
};

/// Options of Block (ImageBind's BlockWithMasking arguments, plus the attention's and a seed).
struct BlockConfig {
  int64_t dim = 0;                              // D
  int64_t num_heads = 1;                        // attention heads (D divisible by them)
  double mlp_ratio = 4.0;                       // hidden = int(mlp_ratio * D)
  bool qkv_bias = true;                         // attention biases (ImageBind: true)
  bool add_bias_kv = false;                     // attention bias_k / bias_v tokens
  double attn_dropout = 0.0;                    // dropout on attention probabilities
  double ffn_dropout = 0.0;                     // Mlp dropout
  double drop_path = 0.0;                       // stochastic-depth rate of this block
  double norm_eps = 1e-6;                       // norm_1 / norm_2 eps (ImageBind: 1e-6)
  LayerScale layer_scale = LayerScale::kNone;   // optional gammas
  double layer_scale_init = 1e-4;               // their initial value
  std::optional<uint64_t> seed = std::nullopt;  // init and dropout streams; unset: nn/seed.hpp
};

/// x = x + drop_path(attn(norm_1(x), mask)); x = x + drop_path(mlp(norm_2(x))) — each residual
/// branch times layer_scale_gamma{1,2} when layer scale is on. Keys, as ImageBind:
///   layer_scale_gamma1, layer_scale_gamma2 (with layer scale), attn.* (MultiheadAttention),
///   norm_1.{weight,bias}, mlp.fc1.*, mlp.fc2.*, norm_2.{weight,bias}; `drop_path` has none.
/// Note: ImageBind applies timm's DropPath to SEQUENCE-first tensors, so in training it drops token
/// positions across the batch; this block is batch-first and drops whole samples (stochastic depth
/// as intended). Eval and drop_path = 0 are identical.
template <class T, class B = Cpu>
class Block : public Module<T, B> {
 public:
  explicit Block(const BlockConfig& config) : dim_(config.dim) {
    const uint64_t seed = resolve_seed(config.seed);
    const int64_t d = config.dim;
    BINDERY_CHECK(d > 0 && config.mlp_ratio > 0, ValueError, "Block: dim ", d, " and mlp_ratio ",
                  config.mlp_ratio, " must be positive");
    if (config.layer_scale != LayerScale::kNone) {
      const Shape gamma = config.layer_scale == LayerScale::kPerChannel ? Shape{1, 1, d} : Shape{1, 1, 1};
      const T value = static_cast<T>(config.layer_scale_init);
      gamma_1_ = this->register_parameter("layer_scale_gamma1", Tensor<T, B>::full(gamma, value));
      gamma_2_ = this->register_parameter("layer_scale_gamma2", Tensor<T, B>::full(gamma, value));
    }
    attn_ = this->register_module("attn", std::make_shared<MultiheadAttention<T, B>>(MultiheadAttentionConfig{
                                              d, config.num_heads, config.qkv_bias, config.add_bias_kv,
                                              config.attn_dropout, init::derive_seed(seed, 0)}));
    drop_path_ = this->register_module(
        "drop_path", std::make_shared<DropPath<T, B>>(config.drop_path, init::derive_seed(seed, 1)));
    norm_1_ = this->register_module("norm_1", std::make_shared<LayerNorm<T, B>>(d, config.norm_eps));
    const auto hidden = static_cast<int64_t>(config.mlp_ratio * static_cast<double>(d));
    mlp_ = this->register_module(
        "mlp", std::make_shared<Mlp<T, B>>(
                   d, hidden, d, MlpOptions{.drop = config.ffn_dropout, .seed = init::derive_seed(seed, 2)}));
    norm_2_ = this->register_module("norm_2", std::make_shared<LayerNorm<T, B>>(d, config.norm_eps));
  }

  /// x: (B, L, D) -> (B, L, D); attn_mask as MultiheadAttention::forward (e.g. (L, L) causal).
  Var<T, B> forward(const Var<T, B>& x, const Var<T, B>& attn_mask = Var<T, B>()) {
    BINDERY_CHECK(x.rank() == 3 && x.size(-1) == dim_, ShapeError, "Block: input of shape ", x.shape(),
                  " must be (B, L, D) with D = ", dim_);
    const Var<T, B> normed = norm_1_->forward(x);
    return residuals(x, normed, normed, attn_mask);
  }

  /// The block's output at one token per sample, rows[i] of sample i: (B, L, D) -> (B, D), equal to
  /// gather_rows(forward(x, attn_mask), rows) without computing the other L - 1 rows. Every token's
  /// keys and values are still needed, so norm_1 and the k / v projections run on all L tokens;
  /// the query projection, attention, out_proj, the residuals, norm_2 and the Mlp run on one row per
  /// sample. The last block of an encoder whose head reads one token (cls or EOS) is run this way in
  /// inference (ModalityEncoder::forward_pooled). attn_mask: undefined or (L, L) (its rows[i]-th row
  /// is sample i's); any other mask shape runs the whole block and gathers.
  Var<T, B> forward_rows(const Var<T, B>& x, const Var<T, B>& attn_mask, const Tensor<int64_t, B>& rows) {
    BINDERY_CHECK(x.rank() == 3 && x.size(-1) == dim_, ShapeError, "Block: input of shape ", x.shape(),
                  " must be (B, L, D) with D = ", dim_);
    if (attn_mask.defined() && attn_mask.rank() != 2) return ops::gather_rows(forward(x, attn_mask), rows);
    const int64_t batch = x.size(0), length = x.size(1);
    const Var<T, B> normed = norm_1_->forward(x);                               // (B, L, D): keys, values
    const Var<T, B> query = ops::unsqueeze(ops::gather_rows(normed, rows), 1);  // (B, 1, D)
    Var<T, B> mask;  // (B, 1, 1, L): row rows[i] of the (L, L) mask for sample i
    if (attn_mask.defined()) {
      BINDERY_CHECK(attn_mask.size(0) == length && attn_mask.size(1) == length, ShapeError,
                    "Block: attn_mask of shape ", attn_mask.shape(), " must be (L, L) with L = ", length);
      mask = ops::reshape(ops::index_select(attn_mask, 0, rows), {batch, 1, 1, length});
    }
    return ops::squeeze(residuals(ops::unsqueeze(ops::gather_rows(x, rows), 1), query, normed, mask), 1);
  }

  MultiheadAttention<T, B>& attn() { return *attn_; }
  DropPath<T, B>& drop_path() { return *drop_path_; }
  LayerNorm<T, B>& norm_1() { return *norm_1_; }
  Mlp<T, B>& mlp() { return *mlp_; }
  LayerNorm<T, B>& norm_2() { return *norm_2_; }
  /// Undefined without layer scale.
  Var<T, B> layer_scale_gamma1() const { return gamma_1_; }
  Var<T, B> layer_scale_gamma2() const { return gamma_2_; }
  int64_t dim() const { return dim_; }

 private:
  /// The two residual branches on the rows x (B, Lq, D): x + attn(query, context, context), then
  /// + mlp(norm_2(·)), each times its layer-scale gamma and through drop_path. query = context (one
  /// node: norm_1 of all of x) is self-attention; forward_rows passes the pooled rows' queries.
  Var<T, B> residuals(const Var<T, B>& x, const Var<T, B>& query, const Var<T, B>& context,
                      const Var<T, B>& attn_mask) {
    Var<T, B> branch = attn_->forward(query, context, context, attn_mask);  // (B, Lq, D)
    if (gamma_1_.defined()) branch = branch * gamma_1_;
    Var<T, B> y = x + drop_path_->forward(branch);
    branch = mlp_->forward(norm_2_->forward(y));
    if (gamma_2_.defined()) branch = branch * gamma_2_;
    return y + drop_path_->forward(branch);
  }

  int64_t dim_;
  Var<T, B> gamma_1_, gamma_2_;
  std::shared_ptr<MultiheadAttention<T, B>> attn_;
  std::shared_ptr<DropPath<T, B>> drop_path_;
  std::shared_ptr<LayerNorm<T, B>> norm_1_;
  std::shared_ptr<Mlp<T, B>> mlp_;
  std::shared_ptr<LayerNorm<T, B>> norm_2_;
};

}  // namespace bindery::nn
