// bindery/nn/transformer.hpp — a stack of Blocks (ImageBind's SimpleTransformer).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bindery/nn/block.hpp"
#include "bindery/nn/sequential.hpp"

namespace bindery::nn {

/// How Transformer re-initializes the Linear layers of its blocks (SimpleTransformer's
/// weight_init_style); LayerNorms are always reset to weight 1, bias 0.
enum class WeightInit {
  kPytorch,  // weight trunc_normal(std 0.02) in [-2, 2], bias 0 (ImageBind's choice)
  kJax,      // weight xavier_uniform, bias 0 (MAE / JAX ViT)
  kDefault,  // keep each module's own default init
};

/// Options of Transformer (SimpleTransformer's arguments and the BlockWithMasking ones it forwards).
struct TransformerConfig {
  int64_t embed_dim = 0;                       // D
  int64_t num_blocks = 0;                      // depth
  int64_t num_heads = 1;                       // attention heads per block
  double mlp_ratio = 4.0;                      // Mlp hidden = int(mlp_ratio * D)
  bool add_bias_kv = false;                    // attention bias_k / bias_v (audio, depth, thermal, IMU)
  bool pre_transformer_ln = false;             // LayerNorm before the blocks (vision)
  double drop_path_rate = 0.0;                 // largest stochastic-depth rate
  bool progressive_drop_path = true;           // rates linspace(0, rate, num_blocks); else all = rate
  double attn_dropout = 0.0;                   // dropout on attention probabilities
  double ffn_dropout = 0.0;                    // Mlp dropout
  double norm_eps = 1e-6;                      // every LayerNorm of the trunk
  LayerScale layer_scale = LayerScale::kNone;  // optional per-block gammas
  double layer_scale_init = 1e-4;              // their initial value
  WeightInit weight_init = WeightInit::kPytorch;
  std::optional<uint64_t> seed = std::nullopt;  // init and dropout streams; unset: nn/seed.hpp
};

/// tokens (B, L, D) -> [pre_transformer_layer LayerNorm] -> blocks 0..n-1 -> (B, L, D), each block
/// given the same attn_mask. Keys, as ImageBind's trunks: `pre_transformer_layer.0.{weight,bias}`
/// (when pre_transformer_ln), `blocks.<i>.*` (see Block). Block i has drop-path rate
/// rate * i / (n - 1) (linspace; block 0 always 0).
template <class T, class B = Cpu>
class Transformer : public Module<T, B> {
 public:
  explicit Transformer(const TransformerConfig& config) : embed_dim_(config.embed_dim) {
    const uint64_t seed = resolve_seed(config.seed);
    BINDERY_CHECK(config.embed_dim > 0 && config.num_blocks >= 0, ValueError, "Transformer: embed_dim ",
                  config.embed_dim, " must be positive and num_blocks ", config.num_blocks, " non-negative");
    if (config.pre_transformer_ln) {
      pre_norm_ = std::make_shared<LayerNorm<T, B>>(config.embed_dim, config.norm_eps);
      this->register_module("pre_transformer_layer",
                            std::make_shared<Sequential<LayerNorm<T, B>>>(pre_norm_));
    }
    blocks_ = this->register_module("blocks", std::make_shared<ModuleList<Block<T, B>>>());
    for (int64_t i = 0; i < config.num_blocks; ++i) {
      double rate = config.drop_path_rate;
      if (config.progressive_drop_path) {
        rate = config.num_blocks > 1 ? config.drop_path_rate * static_cast<double>(i) /
                                           static_cast<double>(config.num_blocks - 1)
                                     : 0.0;
      }
      blocks_->push_back(std::make_shared<Block<T, B>>(
          BlockConfig{config.embed_dim, config.num_heads, config.mlp_ratio, true, config.add_bias_kv,
                      config.attn_dropout, config.ffn_dropout, rate, config.norm_eps, config.layer_scale,
                      config.layer_scale_init, init::derive_seed(seed, static_cast<uint64_t>(i))}));
    }
    reinitialize(config.weight_init, init::derive_seed(seed, ~uint64_t(0)));
  }

  /// tokens: (B, L, D) -> (B, L, D). attn_mask: see MultiheadAttention::forward ((L, L) causal for text).
  Var<T, B> forward(const Var<T, B>& tokens, const Var<T, B>& attn_mask = Var<T, B>()) {
    Var<T, B> x = blocks_input(tokens);
    for (const auto& block : *blocks_) x = block->forward(x, attn_mask);
    return x;
  }

  /// The trunk's output at one token per sample, rows[i] of sample i: (B, L, D) -> (B, D), equal to
  /// gather_rows(forward(tokens, attn_mask), rows). Blocks 0..n-2 run on every token (the last
  /// block's keys and values depend on all of them); the last block computes only the rows asked
  /// for (Block::forward_rows).
  Var<T, B> forward_rows(const Var<T, B>& tokens, const Var<T, B>& attn_mask,
                         const Tensor<int64_t, B>& rows) {
    Var<T, B> x = blocks_input(tokens);
    const int64_t n = blocks_->size();
    if (n == 0) return ops::gather_rows(x, rows);
    for (int64_t i = 0; i + 1 < n; ++i) x = (*blocks_)[i].forward(x, attn_mask);
    return (*blocks_)[n - 1].forward_rows(x, attn_mask, rows);
  }

  ModuleList<Block<T, B>>& blocks() { return *blocks_; }
  Block<T, B>& block(int64_t i) { return (*blocks_)[i]; }
  /// Null without pre_transformer_ln.
  LayerNorm<T, B>* pre_transformer_norm() { return pre_norm_.get(); }
  int64_t embed_dim() const { return embed_dim_; }
  int64_t num_blocks() const { return blocks_->size(); }

 private:
  /// tokens checked as (B, L, D), then the pre-transformer LayerNorm where there is one.
  Var<T, B> blocks_input(const Var<T, B>& tokens) const {
    BINDERY_CHECK(tokens.rank() == 3 && tokens.size(-1) == embed_dim_, ShapeError,
                  "Transformer: tokens of shape ", tokens.shape(),
                  " must be (B, L, D) with D = ", embed_dim_);
    return pre_norm_ ? pre_norm_->forward(tokens) : tokens;
  }

  /// SimpleTransformer._init_weights, applied to every Linear (out_proj, fc1, fc2) and LayerNorm.
  void reinitialize(WeightInit style, uint64_t seed) {
    if (style == WeightInit::kDefault) return;
    uint64_t stream = 0;
    this->apply([&](Module<T, B>& m) {
      if (auto* linear = dynamic_cast<Linear<T, B>*>(&m)) {
        Philox rng(init::derive_seed(seed, stream++));
        const Shape shape = linear->weight().shape();
        // Under SkipRandomInit the draw is skipped, and so is the copy: copying the unfilled tensor
        // would write every page of the weight, which a checkpoint load (or a bf16 / int8 one that
        // never reads it) is about to replace.
        if (!::bindery::detail::skip_random_fill())
          linear->weight().assign(style == WeightInit::kJax ? init::xavier_uniform<T, B>(shape, rng)
                                                            : init::trunc_normal<T, B>(shape, rng, 0.02));
        if (linear->bias().defined()) linear->bias().assign(Tensor<T, B>::zeros(linear->bias().shape()));
      } else if (auto* norm = dynamic_cast<LayerNorm<T, B>*>(&m); norm && norm->weight().defined()) {
        norm->weight().assign(Tensor<T, B>::ones(norm->weight().shape()));
        norm->bias().assign(Tensor<T, B>::zeros(norm->bias().shape()));
      }
    });
  }

  int64_t embed_dim_;
  std::shared_ptr<LayerNorm<T, B>> pre_norm_;
  std::shared_ptr<ModuleList<Block<T, B>>> blocks_;
};

}  // namespace bindery::nn
