// bindery/nn/attention.hpp — MultiheadAttention with torch.nn.MultiheadAttention's parameters.
//
// Same parameters, names, shapes and math as PyTorch (so checkpoints load by name), but the inputs
// are BATCH-FIRST: (B, L, D), i.e. torch's `batch_first=True`. ImageBind's trunk runs sequence-first
// (L, B, D) internally; that is only a permute at the call site and does not change the result.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>

#include "bindery/nn/init.hpp"
#include "bindery/nn/linear.hpp"
#include "bindery/ops/attention.hpp"
#include "bindery/ops/concat.hpp"
#include "bindery/ops/dropout.hpp"
#include "bindery/ops/matmul.hpp"
#include "bindery/ops/softmax.hpp"

namespace bindery::nn {

/// Options of MultiheadAttention (torch's constructor arguments, plus the init seed).
struct MultiheadAttentionConfig {
  int64_t embed_dim = 0;     // D; must be divisible by num_heads
  int64_t num_heads = 1;     // H; head_dim = D / H
  bool bias = true;          // in_proj_bias and out_proj.bias
  bool add_bias_kv = false;  // learned bias_k / bias_v tokens appended to the keys and values
  double dropout = 0.0;      // on the attention probabilities, in training only
  /// Philox seed for the init and the dropout stream; unset: the next seed of this thread's sequence
  /// (nn/seed.hpp).
  std::optional<uint64_t> seed = std::nullopt;
};

/// torch.nn.MultiheadAttention(embed_dim, num_heads, bias, add_bias_kv, dropout) with
/// batch_first=True. Parameters (in PyTorch's order):
///   in_proj_weight (3D, D)  rows [0, D) project queries, [D, 2D) keys, [2D, 3D) values
///   in_proj_bias (3D)       when bias
///   bias_k, bias_v (1, 1, D) when add_bias_kv
///   out_proj.weight (D, D), out_proj.bias (D) (bias when bias)
/// Init as torch: in_proj_weight xavier_uniform, biases 0, bias_k/bias_v xavier_normal, out_proj.weight
/// U(-1/sqrt(D), 1/sqrt(D)).
template <class T, class B = Cpu>
class MultiheadAttention : public Module<T, B> {
 public:
  explicit MultiheadAttention(const MultiheadAttentionConfig& config)
      : MultiheadAttention(config, resolve_seed(config.seed)) {}
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, bool bias = true, bool add_bias_kv = false,
                     double dropout = 0.0, std::optional<uint64_t> seed = std::nullopt)
      : MultiheadAttention(MultiheadAttentionConfig{embed_dim, num_heads, bias, add_bias_kv, dropout, seed}) {
  }

  /// query: (B, Lq, D), key: (B, Lk, D), value: (B, Lk, D) -> (B, Lq, D). Unbatched (L, D) inputs
  /// give (Lq, D). attn_mask (optional) is ADDED to the scores q·k/sqrt(head_dim) before the softmax
  /// (use -inf to forbid a key); its shape must broadcast to (B, H, Lq, Lk): (Lq, Lk) as torch,
  /// (B, 1, 1, Lk) for key padding, (B, H, Lq, Lk) per head; torch's (B*H, Lq, Lk) is also accepted.
  /// With add_bias_kv the keys number Lk + 1 and the mask gets a zero column, as torch.
  Var<T, B> forward(const Var<T, B>& query, const Var<T, B>& key, const Var<T, B>& value,
                    const Var<T, B>& attn_mask = Var<T, B>()) {
    check_inputs(query, key, value);
    if (query.rank() == 2) {  // unbatched: run as a batch of one
      const Var<T, B> out =
          forward(ops::unsqueeze(query, 0), ops::unsqueeze(key, 0), ops::unsqueeze(value, 0),
                  attn_mask.defined() && attn_mask.rank() == 3 ? ops::unsqueeze(attn_mask, 0) : attn_mask);
      return ops::squeeze(out, 0);
    }
    const int64_t batch = query.size(0), lq = query.size(1), d = embed_dim_, hd = d / num_heads_;
    const int64_t lk = key.size(1);
    Var<T, B> mask = prepare_mask(attn_mask, batch, lq, lk);  // broadcasts to (B, H, Lq, Lk), or undefined
    Var<T, B> q, k, v;                                        // (B, H, L, hd) each: views, no copies
    if (query.node() == key.node() && key.node() == value.node()) {
      // Self-attention: one GEMM against the packed (3D, D) weight, then q | k | v as views.
      const Var<T, B> heads = split_blocks(project(query, 0, 3), 3);
      q = ops::select(heads, 0, 0);
      k = ops::select(heads, 0, 1);
      v = ops::select(heads, 0, 2);
    } else if (key.node() == value.node()) {
      // Keys and values from one tensor (a block's pooled rows attending to all tokens): k | v as one
      // GEMM against rows [D, 3D) of the packed weight.
      q = split_heads(project(query, 0, 1));
      const Var<T, B> heads = split_blocks(project(key, 1, 2), 2);
      k = ops::select(heads, 0, 0);
      v = ops::select(heads, 0, 1);
    } else {
      q = split_heads(project(query, 0, 1));
      k = split_heads(project(key, 1, 1));
      v = split_heads(project(value, 2, 1));
    }
    Var<T, B> k_token, v_token;  // bias_k / bias_v as (B, H, 1, hd)
    if (bias_k_.defined()) {     // one more key/value token, learned (appended after the projection)
      k_token = bias_token(bias_k_, batch);
      v_token = bias_token(bias_v_, batch);
      if (mask.defined()) mask = pad_key_column(mask, lk);
    }
    const bool dropped = this->is_training() && dropout_ > 0.0;
    // bf16 / int8 (inference only): attention's Q·Kᵀ and P·V in bf16 as well, where AVX512_BF16 runs;
    // the bias tokens are packed with the keys and values there, not concatenated to them
    const bool bf16 = !dropped && precision() != WeightPrecision::kFloat32 && !needs_grad(q) &&
                      !needs_grad(k) && !needs_grad(v) && !needs_grad(mask) && !needs_grad(k_token) &&
                      !needs_grad(v_token);
    if (k_token.defined() && !bf16) {
      k = ops::concat(std::vector<Var<T, B>>{k, k_token}, 2);  // (B, H, Lk+1, hd)
      v = ops::concat(std::vector<Var<T, B>>{v, v_token}, 2);
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    Var<T, B> attended;  // (B, H, Lq, hd)
    if (dropped) {
      // Dropout on the probabilities needs them explicitly: the composite form of attention.
      Var<T, B> scores = ops::matmul(q, k, false, true) * static_cast<T>(scale);  // (B, H, Lq, Lk)
      if (mask.defined()) scores = scores + mask;
      const Var<T, B> probs = ops::dropout(ops::softmax(scores, -1), dropout_, true, rng_);
      attended = ops::matmul(probs, v);
    } else if (bf16) {
      attended =
          Var<T, B>(ops::scaled_dot_product_attention_bf16(
                        q.value(), k.value(), v.value(), mask.defined() ? mask.value() : Tensor<T, B>(),
                        scale, false, k_token.defined() ? k_token.value() : Tensor<T, B>(),
                        v_token.defined() ? v_token.value() : Tensor<T, B>()),
                    false);
    } else {
      attended = ops::scaled_dot_product_attention(q, k, v, mask, scale);
    }
    const Var<T, B> merged =
        ops::reshape(ops::permute(attended, {0, 2, 1, 3}), {batch, lq, d});  // (B, Lq, D)
    return out_proj_->forward(merged);
  }
  /// Self-attention: forward(x, x, x, attn_mask).
  Var<T, B> forward(const Var<T, B>& x, const Var<T, B>& attn_mask = Var<T, B>()) {
    return forward(x, x, x, attn_mask);
  }

  /// Converts in_proj_weight (as three (D, D) blocks) and out_proj's weight for inference and frees
  /// the (out, in) weights (Linear::freeze's rules: fp32 packed, bf16 or int8; in_proj_weight stays
  /// registered as (0, D), biases stay fp32, all frozen). bf16 / int8 also run attention's Q·Kᵀ and
  /// P·V in bf16; fp32 keeps them fp32.
  MultiheadAttention& freeze(WeightPrecision precision) {
    BINDERY_CHECK(!lowp_in_[0], ValueError, "MultiheadAttention::freeze: already frozen at ",
                  to_string(lowp_in_[0]->precision()), "; freeze a trainable fp32 module to change it");
    out_proj_->freeze(precision);  // first: it throws for what this cannot run either
    if constexpr (std::is_same_v<T, float> && std::is_same_v<B, Cpu>) {
      const Tensor<T, B> w = in_proj_weight_.value().contiguous();
      const int64_t d = embed_dim_;
      std::array<std::shared_ptr<const LowpWeight>, 3> blocks;
      for (int64_t which = 0; which < 3; ++which)
        blocks[which] = std::make_shared<LowpWeight>(precision, w.data() + which * d * d, d, d, d);
      set_lowp_in_proj(std::move(blocks));
    }
    return *this;
  }
  /// freeze() to bf16 or int8; fp32 is a no-op (the module stays trainable).
  MultiheadAttention& quantize(WeightPrecision precision) {
    if (precision == WeightPrecision::kFloat32) return *this;
    return freeze(precision);
  }
  /// Installs in_proj_weight as inference weights, its q, k and v blocks of (D, D), as freeze() does with the
  /// ones it converts (out_proj is a Linear: its set_lowp_weight). Frees the fp32 in_proj_weight. Throws
  /// ShapeError for a block that is not (D, D), ValueError when the projections are already converted or the
  /// module is not float on the CPU.
  MultiheadAttention& set_lowp_in_proj(std::array<std::shared_ptr<const LowpWeight>, 3> blocks) {
    const int64_t d = embed_dim_;
    for (const auto& b : blocks)
      BINDERY_CHECK(b != nullptr && b->rows() == d && b->cols() == d, ShapeError,
                    "MultiheadAttention::set_lowp_in_proj: each block must be (", d, ", ", d, ")");
    BINDERY_CHECK(!lowp_in_[0], ValueError, "MultiheadAttention::set_lowp_in_proj: already ",
                  to_string(lowp_in_[0]->precision()));
    if constexpr (std::is_same_v<T, float> && std::is_same_v<B, Cpu>) {
      for (int which = 0; which < 3; ++which) lowp_in_[which] = std::move(blocks[which]);
      in_proj_weight_.node()->value = Tensor<T, B>::empty(Shape{0, d});
      in_proj_weight_.set_requires_grad(false);
      if (in_proj_bias_.defined()) in_proj_bias_.set_requires_grad(false);
    } else {
      throw ValueError(
          "MultiheadAttention::set_lowp_in_proj: inference weights run on the CPU in float only");
    }
    return *this;
  }
  /// Block `which` (0 q, 1 k, 2 v) of the frozen in_proj_weight, or null while it is trainable.
  const std::shared_ptr<const LowpWeight>& lowp_in_proj(int which) const { return lowp_in_[which]; }
  /// Bytes in_proj_weight holds: fp32, or what freeze() converted it to.
  size_t in_proj_bytes() const {
    if (!lowp_in_[0]) return static_cast<size_t>(in_proj_weight_.numel()) * sizeof(T);
    return lowp_in_[0]->bytes() + lowp_in_[1]->bytes() + lowp_in_[2]->bytes();
  }
  /// fp32 unless freeze() converted the projections to bf16 or int8.
  WeightPrecision precision() const {
    return lowp_in_[0] ? lowp_in_[0]->precision() : WeightPrecision::kFloat32;
  }

  Var<T, B> in_proj_weight() const { return in_proj_weight_; }
  Var<T, B> in_proj_bias() const { return in_proj_bias_; }  // undefined without bias
  Var<T, B> bias_k() const { return bias_k_; }              // undefined without add_bias_kv
  Var<T, B> bias_v() const { return bias_v_; }
  Linear<T, B>& out_proj() { return *out_proj_; }
  int64_t embed_dim() const { return embed_dim_; }
  int64_t num_heads() const { return num_heads_; }
  int64_t head_dim() const { return embed_dim_ / num_heads_; }
  Philox& generator() { return rng_; }

 private:
  /// The constructor proper, with the config's seed resolved (nn/seed.hpp).
  MultiheadAttention(const MultiheadAttentionConfig& config, uint64_t seed)
      : embed_dim_(config.embed_dim),
        num_heads_(config.num_heads),
        dropout_(config.dropout),
        rng_(init::derive_seed(seed, 3)) {
    const int64_t d = config.embed_dim, h = config.num_heads;
    BINDERY_CHECK(d > 0 && h > 0 && d % h == 0, ValueError, "MultiheadAttention: embed_dim ", d,
                  " must be positive and divisible by num_heads ", h);
    ops::detail::check_drop_probability("MultiheadAttention", config.dropout);
    Philox rng(init::derive_seed(seed, 0));
    in_proj_weight_ =
        this->register_parameter("in_proj_weight", init::xavier_uniform<T, B>(Shape{3 * d, d}, rng));
    if (config.bias)
      in_proj_bias_ = this->register_parameter("in_proj_bias", Tensor<T, B>::zeros(Shape{3 * d}));
    if (config.add_bias_kv) {
      Philox kv_rng(init::derive_seed(seed, 1));
      bias_k_ = this->register_parameter("bias_k", init::xavier_normal<T, B>(Shape{1, 1, d}, kv_rng));
      bias_v_ = this->register_parameter("bias_v", init::xavier_normal<T, B>(Shape{1, 1, d}, kv_rng));
    }
    out_proj_ = this->register_module(
        "out_proj", std::make_shared<Linear<T, B>>(
                        d, d, LinearOptions{.bias = config.bias, .seed = init::derive_seed(seed, 2)}));
    if (config.bias) out_proj_->bias().assign(Tensor<T, B>::zeros(Shape{d}));
  }

  void check_inputs(const Var<T, B>& q, const Var<T, B>& k, const Var<T, B>& v) const {
    const bool ranks = (q.rank() == 3 || q.rank() == 2) && k.rank() == q.rank() && v.rank() == q.rank();
    const bool dims =
        ranks && q.size(-1) == embed_dim_ && k.size(-1) == embed_dim_ && v.size(-1) == embed_dim_;
    const bool lengths = dims && k.size(-2) == v.size(-2) &&
                         (q.rank() == 2 || (q.size(0) == k.size(0) && k.size(0) == v.size(0)));
    BINDERY_CHECK(lengths, ShapeError, "MultiheadAttention: query ", q.shape(), ", key ", k.shape(),
                  " and value ", v.shape(),
                  " must be (B, Lq, D), (B, Lk, D), (B, Lk, D) (or unbatched (L, D)) with D = embed_dim ",
                  embed_dim_);
  }

  /// Blocks [first, first + count) of the packed projection (q, k, v: rows [first*D, (first+count)*D))
  /// applied to x: (B, L, D) -> (B, L, count·D).
  Var<T, B> project(const Var<T, B>& x, int64_t first, int64_t count) const {
    if (lowp_in_[0]) return lowp_in_projection(x, first, count);
    if (count == 3) return ops::linear(x, in_proj_weight_, in_proj_bias_);  // all of it: no slice views
    const int64_t d = embed_dim_, begin = first * d, end = (first + count) * d;
    const Var<T, B> w = ops::slice(in_proj_weight_, 0, begin, end);  // (count·D, D)
    const Var<T, B> b = in_proj_bias_.defined() ? ops::slice(in_proj_bias_, 0, begin, end) : Var<T, B>();
    return ops::linear(x, w, b);
  }
  /// (B, L, count·D) from project(x, first, count) -> (count, B, H, L, hd), a view.
  Var<T, B> split_blocks(const Var<T, B>& x, int64_t count) const {
    return ops::permute(ops::reshape(x, {x.size(0), x.size(1), count, num_heads_, embed_dim_ / num_heads_}),
                        {2, 0, 3, 1, 4});
  }
  /// (B, L, D) -> (B, H, L, hd), a view.
  Var<T, B> split_heads(const Var<T, B>& x) const {
    return ops::permute(ops::reshape(x, {x.size(0), x.size(1), num_heads_, embed_dim_ / num_heads_}),
                        {0, 2, 1, 3});
  }
  /// bias_k or bias_v (1, 1, D) as one token per head: (B, H, 1, hd).
  Var<T, B> bias_token(const Var<T, B>& bias, int64_t batch) const {
    return ops::expand(split_heads(bias), Shape{batch, num_heads_, 1, embed_dim_ / num_heads_});
  }

  /// Checks the mask against (B, H, Lq, Lk); maps torch's (B*H, Lq, Lk) to (B, H, Lq, Lk).
  Var<T, B> prepare_mask(const Var<T, B>& mask, int64_t batch, int64_t lq, int64_t lk) const {
    if (!mask.defined()) return mask;
    const Shape full{batch, num_heads_, lq, lk};
    Var<T, B> m = mask;
    if (m.rank() == 3 && m.size(0) == batch * num_heads_ && batch > 1)
      m = ops::reshape(m, {batch, num_heads_, lq, lk});
    bool fits = m.rank() >= 2 && m.rank() <= 4;
    for (int64_t i = 1; fits && i <= m.rank(); ++i) {
      fits = m.size(-i) == 1 || m.size(-i) == full[4 - i];
    }
    BINDERY_CHECK(fits, ShapeError, "MultiheadAttention: attn_mask of shape ", mask.shape(),
                  " does not broadcast to (B, H, Lq, Lk) = ", full);
    return m;
  }
  /// mask (..., Lq, Lk or 1) -> (..., Lq, Lk + 1) with zeros in the new column (the bias_k token).
  static Var<T, B> pad_key_column(const Var<T, B>& mask, int64_t lk) {
    Shape full = mask.shape();
    full[full.rank() - 1] = lk;
    const Var<T, B> expanded = mask.size(-1) == lk ? mask : ops::expand(mask, full);  // (..., Lq, Lk)
    Shape column = full;
    column[column.rank() - 1] = 1;
    return ops::concat(std::vector<Var<T, B>>{expanded, Var<T, B>(Tensor<T, B>::zeros(column))}, -1);
  }

  int64_t embed_dim_, num_heads_;
  double dropout_;
  Philox rng_;
  Var<T, B> in_proj_weight_, in_proj_bias_, bias_k_, bias_v_;
  std::shared_ptr<Linear<T, B>> out_proj_;
  std::shared_ptr<const LowpWeight> lowp_in_[3];  // q, k, v blocks of in_proj, set by freeze()

  /// Blocks [first, first + count) of the frozen in-projection applied to x: (B, L, D) ->
  /// (B, L, count·D), each block's kernel writing its columns of one output.
  Var<T, B> lowp_in_projection(const Var<T, B>& x, int64_t first, int64_t count) const {
    BINDERY_CHECK(!needs_grad(x), ValueError, "MultiheadAttention: the projections are ",
                  "frozen for inference (", to_string(lowp_in_[0]->precision()),
                  " weights) and have no backward; run under NoGrad or on inputs that need ", "no gradient");
    if constexpr (std::is_same_v<T, float> && std::is_same_v<B, Cpu>) {
      const int64_t d = embed_dim_, rows = x.numel() / d, cols = count * d;
      const Tensor<T, B> x_rows = x.value().contiguous();
      const Tensor<T, B> bias = in_proj_bias_.defined() ? in_proj_bias_.value().contiguous() : Tensor<T, B>();
      Tensor<T, B> y = Tensor<T, B>::empty(Shape{rows, cols});
      const LowpWeight* blocks[3] = {};
      const float* biases[3] = {};
      for (int64_t i = 0; i < count; ++i) {
        blocks[i] = lowp_in_[first + i].get();
        biases[i] = bias.defined() ? bias.data() + (first + i) * d : nullptr;
      }
      // one product: A rounded or quantized once, one parallel region over the count·D columns
      LowpWeight::apply_blocks(static_cast<int>(count), blocks, rows, x_rows.data(), d, y.data(), cols,
                               biases);
      std::vector<int64_t> dims(x.shape().begin(), x.shape().end() - 1);
      dims.push_back(cols);
      return Var<T, B>(y.reshape(dims), false);
    } else {
      throw ValueError("MultiheadAttention: frozen projections run on the CPU in float only");
    }
  }
};

}  // namespace bindery::nn
