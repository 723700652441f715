// bindery/models/imagebind/encoder.hpp — ModalityEncoder: preprocessor -> trunk -> head -> postprocessor.
//
//   ```cpp body
//   const Tensor<float> spectrograms = Tensor<float>::zeros({2, 1, 36, 64});  // tiny()'s audio input
//   auto encoder = ib::make_encoder<float>(ib::ImageBindConfig::tiny().at(ib::Modality::kAudio));
//   ib::EncoderStages<float, Cpu> s = encoder->encode_stages(spectrograms);  // every stage's output
//   Var<float> embedding = encoder->encode(spectrograms);                     // (N, out), or clips averaged
//   ```
//
// A standalone encoder names its stages `preprocessor`, `trunk`, `head`, `postprocessor`. Inside
// ImageBindModel the same stage modules are ALSO registered under the reference's
// `modality_preprocessors.<m>`, `modality_trunks.<m>`, ... (the model, not the encoder, is the
// parent there), so checkpoints load with no mapping table.
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "bindery/models/imagebind/config.hpp"
#include "bindery/models/imagebind/heads.hpp"
#include "bindery/models/imagebind/preprocessors.hpp"
#include "bindery/nn/transformer.hpp"
#include "bindery/ops/reduce.hpp"

namespace bindery::models::imagebind {

/// One modality's input: float values (images, spectrograms, IMU, ...) or token ids (text).
template <class T, class B = Cpu>
struct ModalityInput {
  Var<T, B> values;        // undefined for text
  Tensor<int64_t, B> ids;  // undefined unless text

  ModalityInput() = default;
  ModalityInput(Var<T, B> v) : values(std::move(v)) {}                        // NOLINT: implicit on purpose
  ModalityInput(const Tensor<T, B>& t) : values(Var<T, B>(t)) {}              // NOLINT
  ModalityInput(Tensor<int64_t, B> token_ids) : ids(std::move(token_ids)) {}  // NOLINT

  bool is_ids() const { return ids.defined(); }
  bool defined() const { return values.defined() || ids.defined(); }
  const Shape& shape() const { return is_ids() ? ids.shape() : values.shape(); }
  int64_t rank() const { return shape().rank(); }
};

/// Every stage's output for one input.
template <class T, class B = Cpu>
struct EncoderStages {
  TokenBatch<T, B> preprocessed;  // tokens (N, L, D) [+ mask, EOS positions]
  Var<T, B> trunk;                // (N, L, D); from forward_pooled (encode() in eval mode): (N, 1, D)
  Var<T, B> head;                 // (N, out)
  Var<T, B> postprocessed;        // (N, out): normalized [and scaled]
  Var<T, B> embedding;            // (N, out), or (B, out) averaged over the S clips of a multi-clip input
};

/// The type-erased encoder: what ImageBindModel holds per modality.
template <class T, class B = Cpu>
class Encoder : public nn::Module<T, B> {
 public:
  /// The four stages on a batch of N samples, as they come (no multi-clip handling).
  virtual EncoderStages<T, B> forward_stages(const ModalityInput<T, B>& input) = 0;

  /// The reference ImageBindModel's per-modality forward: an input of rank >= 5 holds S clips per
  /// sample (audio (B, S, 1, mel, frames), video (B, S, C, T, H, W)); the clips are encoded as a
  /// batch of B*S and their post-processed (normalized and scaled) embeddings averaged over S,
  /// without re-normalizing. Stages other than `embedding` are those of the B*S batch. So, as in the
  /// reference, one video per sample is (B, 1, C, T, H, W); forward_stages takes (N, C, T, H, W).
  EncoderStages<T, B> encode_stages(const ModalityInput<T, B>& input) { return encode_with(input, false); }
  /// The embedding alone: (N, out), or (B, out) for a multi-clip input. In inference (eval()) an
  /// encoder whose head reads one token per sample computes only that token in the trunk's last
  /// block (forward_pooled); in training mode it is encode_stages(input).embedding.
  Var<T, B> encode(const ModalityInput<T, B>& input) { return encode_with(input, true).embedding; }

 protected:
  /// forward_stages where `trunk` may hold only the rows the head reads: an encoder that can skip
  /// the rest overrides this (ModalityEncoder: (N, 1, D) in eval mode). The embedding is the same.
  virtual EncoderStages<T, B> forward_pooled(const ModalityInput<T, B>& input) {
    return forward_stages(input);
  }

 private:
  EncoderStages<T, B> encode_with(const ModalityInput<T, B>& input, bool pooled) {
    BINDERY_CHECK(input.defined(), ValueError, "Encoder::encode: the input is undefined");
    auto run = [&](const ModalityInput<T, B>& in) {
      return pooled ? forward_pooled(in) : forward_stages(in);
    };
    if (input.rank() < 5) return run(input);
    const Shape& shape = input.shape();
    const int64_t batch = shape[0], clips = shape[1];
    std::vector<int64_t> flat{batch * clips};
    for (int64_t d = 2; d < shape.rank(); ++d) flat.push_back(shape[d]);
    const ModalityInput<T, B> flattened = input.is_ids()
                                              ? ModalityInput<T, B>(input.ids.reshape(flat))
                                              : ModalityInput<T, B>(ops::reshape(input.values, flat));
    EncoderStages<T, B> stages = run(flattened);
    const Var<T, B>& post = stages.postprocessed;  // (B*S, out)
    stages.embedding = ops::mean(ops::reshape(post, {batch, clips, post.size(-1)}), {1});
    return stages;
  }
};

/// A trunk that computes only some rows of its last block (forward_rows) and a head that names the
/// rows it reads and runs on them (read_rows, forward_selected): ModalityEncoder::forward_pooled's
/// condition (nn::Transformer with ClsHead or EosHead).
template <class Trunk, class Head, class T, class B>
concept PoolsRows = requires(Trunk& t, Head& h, const TokenBatch<T, B>& b, const Var<T, B>& v,
                             const Tensor<int64_t, B>& r) {
  t.forward_rows(v, v, r);
  h.read_rows(b, int64_t{1});
  h.forward_selected(v);
};

/// The chain of four typed stages. Pre::forward(Pre::input_type) -> TokenBatch;
/// Trunk::forward(tokens, mask) -> (N, L, D); Head::forward(x, TokenBatch) -> (N, out);
/// Post::forward(x) -> (N, out).
template <class Pre, class Trunk, class Head, class Post>
class ModalityEncoder : public Encoder<typename Pre::value_type, typename Pre::backend_type> {
 public:
  using T = typename Pre::value_type;
  using B = typename Pre::backend_type;

  ModalityEncoder(std::shared_ptr<Pre> pre, std::shared_ptr<Trunk> trunk, std::shared_ptr<Head> head,
                  std::shared_ptr<Post> post) {
    pre_ = this->register_module("preprocessor", std::move(pre));
    trunk_ = this->register_module("trunk", std::move(trunk));
    head_ = this->register_module("head", std::move(head));
    post_ = this->register_module("postprocessor", std::move(post));
  }

  EncoderStages<T, B> forward_stages(const ModalityInput<T, B>& input) override {
    if constexpr (requires { requires B::kShapeOnly; }) {
      // A shape-only backend (a "meta device": no memory, no kernels) builds models to list their keys
      // and count their parameters; it cannot run them. Not compiling the chain keeps it kernel-free.
      (void)input;
      throw ValueError(
          ::bindery::detail::concat("ModalityEncoder: the backend ", B::kName, " only holds shapes"));
    } else {
      return run_stages(input);
    }
  }

  /// forward_stages in eval mode when the head reads one token per sample (read_rows) and the trunk
  /// can compute just those (forward_rows): the trunk's last block runs on one query row per sample,
  /// so `trunk` is (N, 1, D), the rows the head reads; the other stages are forward_stages' (to
  /// rounding: the rows are the same sums in the same order). Otherwise forward_stages.
  EncoderStages<T, B> forward_pooled(const ModalityInput<T, B>& input) override {
    if constexpr (!requires { requires B::kShapeOnly; } && PoolsRows<Trunk, Head, T, B>) {
      if (!this->is_training()) {
        EncoderStages<T, B> s;
        s.preprocessed = preprocess(input);
        const Var<T, B>& tokens = s.preprocessed.tokens;
        const Tensor<int64_t, B> rows = head_->read_rows(s.preprocessed, tokens.size(0));
        const Var<T, B> selected = trunk_->forward_rows(tokens, s.preprocessed.attn_mask, rows);  // (N, D)
        s.trunk = ops::unsqueeze(selected, 1);
        s.head = head_->forward_selected(selected);
        return postprocess(std::move(s));
      }
    }
    return forward_stages(input);
  }

  Pre& preprocessor() { return *pre_; }
  Trunk& trunk() { return *trunk_; }
  Head& head() { return *head_; }
  Post& postprocessor() { return *post_; }
  std::shared_ptr<Pre> preprocessor_ptr() const { return pre_; }
  std::shared_ptr<Trunk> trunk_ptr() const { return trunk_; }
  std::shared_ptr<Head> head_ptr() const { return head_; }
  std::shared_ptr<Post> postprocessor_ptr() const { return post_; }

 private:
  TokenBatch<T, B> preprocess(const ModalityInput<T, B>& input) {
    if constexpr (std::is_same_v<typename Pre::input_type, Tensor<int64_t, B>>) {
      BINDERY_CHECK(input.is_ids(), ValueError,
                    "ModalityEncoder: this encoder takes token ids (int64), got values of shape ",
                    input.shape());
      return pre_->forward(input.ids);
    } else {
      BINDERY_CHECK(!input.is_ids() && input.values.defined(), ValueError,
                    "ModalityEncoder: this encoder takes float values, got token ids of shape ",
                    input.is_ids() ? input.ids.shape() : Shape{});
      return pre_->forward(input.values);
    }
  }

  EncoderStages<T, B> run_stages(const ModalityInput<T, B>& input) {
    EncoderStages<T, B> s;
    s.preprocessed = preprocess(input);
    s.trunk = trunk_->forward(s.preprocessed.tokens, s.preprocessed.attn_mask);
    s.head = head_->forward(s.trunk, s.preprocessed);
    return postprocess(std::move(s));
  }

  /// The stages after the head: postprocessed, and the embedding (the same, for one clip each).
  EncoderStages<T, B> postprocess(EncoderStages<T, B> s) {
    s.postprocessed = post_->forward(s.head);
    s.embedding = s.postprocessed;
    return s;
  }

  std::shared_ptr<Pre> pre_;
  std::shared_ptr<Trunk> trunk_;
  std::shared_ptr<Head> head_;
  std::shared_ptr<Post> post_;
};

/// How ModuleEncoder post-processes its module's output, as ImageBind's postprocessors do: L2
/// normalization, then (when logit_scale > 0) a logit scale, learnable or fixed.
struct PostprocessOptions {
  double logit_scale = 0.0;  // 0: normalization only (as vision)
  bool learnable_logit_scale = false;
  double max_logit_scale = 100.0;
};

/// Any module of your own as a modality encoder: `module->forward(x)` gives (N, out) from a batch of
/// values (a Var or a Tensor of T) or of token ids (a Tensor<int64_t, B>), whichever it takes; the
/// output is normalized (and scaled) as ImageBind's postprocessors do. Inside ImageBindModel its
/// module is the modality's trunk (`modality_trunks.<name>.<your keys>`) and the normalization its
/// postprocessor (`modality_postprocessors.<name>.1.log_logit_scale` when scaled):
///
///   auto encoder = ib::make_module_encoder(std::make_shared<MyEncoder>(...));
///   model.add_encoder(ib::Modality("trajectory"), encoder);
template <class M>
class ModuleEncoder : public Encoder<typename M::value_type, typename M::backend_type> {
 public:
  using T = typename M::value_type;
  using B = typename M::backend_type;

  explicit ModuleEncoder(std::shared_ptr<M> module, const PostprocessOptions& options = {}) {
    module_ = this->register_module("trunk", std::move(module));
    EncoderSpec post;  // only the postprocessor's fields matter
    post.logit_scale = options.logit_scale;
    post.learnable_logit_scale = options.learnable_logit_scale;
    post.max_logit_scale = options.max_logit_scale;
    post_ = this->register_module("postprocessor", std::make_shared<Postprocessor<T, B>>(post));
  }

  EncoderStages<T, B> forward_stages(const ModalityInput<T, B>& input) override {
    EncoderStages<T, B> s;
    if constexpr (std::is_invocable_v<decltype(&M::forward), M&, const Tensor<int64_t, B>&>) {
      BINDERY_CHECK(input.is_ids(), ValueError, "ModuleEncoder: this module takes token ids (int64), got ",
                    "values of shape ", input.shape());
      s.trunk = module_->forward(input.ids);
    } else {
      BINDERY_CHECK(!input.is_ids() && input.values.defined(), ValueError,
                    "ModuleEncoder: this module takes values of T, got token ids of shape ",
                    input.is_ids() ? input.ids.shape() : Shape{});
      if constexpr (std::is_invocable_v<decltype(&M::forward), M&, const Var<T, B>&>) {
        s.trunk = module_->forward(input.values);
      } else {
        s.trunk = module_->forward(input.values.value());
      }
    }
    BINDERY_CHECK(s.trunk.shape().rank() == 2, ShapeError,
                  "ModuleEncoder: the module must give (N, out), gave ", s.trunk.shape());
    s.head = s.trunk;
    s.postprocessed = post_->forward(s.head);
    s.embedding = s.postprocessed;
    return s;
  }

  M& module() { return *module_; }
  std::shared_ptr<M> module_ptr() const { return module_; }
  Postprocessor<T, B>& postprocessor() { return *post_; }

 private:
  std::shared_ptr<M> module_;
  std::shared_ptr<Postprocessor<T, B>> post_;
};

/// A ModuleEncoder around `module` (types deduced).
template <class M>
std::shared_ptr<ModuleEncoder<M>> make_module_encoder(std::shared_ptr<M> module,
                                                      const PostprocessOptions& options = {}) {
  return std::make_shared<ModuleEncoder<M>>(std::move(module), options);
}

/// The trunk options of an encoder config (the reference's instantiate_trunk: SimpleTransformer
/// with "jax" init, progressive drop path, no layer scale).
inline nn::TransformerConfig trunk_config(const EncoderSpec& config, uint64_t seed = 0) {
  nn::TransformerConfig t;
  t.embed_dim = config.embed_dim;
  t.num_blocks = config.num_blocks;
  t.num_heads = config.num_heads;
  t.mlp_ratio = config.mlp_ratio;
  t.add_bias_kv = config.add_bias_kv;
  t.pre_transformer_ln = config.pre_transformer_ln;
  t.drop_path_rate = config.drop_path;
  t.progressive_drop_path = true;
  t.norm_eps = config.norm_eps;
  t.weight_init = nn::WeightInit::kJax;
  t.seed = seed;
  return t;
}

namespace detail {

template <class Pre, class Head, class T, class B>
std::shared_ptr<Encoder<T, B>> make_typed_encoder(const EncoderSpec& config, uint64_t seed) {
  using Trunk = nn::Transformer<T, B>;
  return std::make_shared<ModalityEncoder<Pre, Trunk, Head, Postprocessor<T, B>>>(
      std::make_shared<Pre>(config, nn::init::derive_seed(seed, 0)),
      std::make_shared<Trunk>(trunk_config(config, nn::init::derive_seed(seed, 1))),
      std::make_shared<Head>(config, nn::init::derive_seed(seed, 2)),
      std::make_shared<Postprocessor<T, B>>(config));
}

}  // namespace detail

/// Builds the encoder a config describes, with weights drawn from `seed` (the reference's init
/// distributions). Throws ValueError when the config is invalid.
template <class T, class B = Cpu>
std::shared_ptr<Encoder<T, B>> make_encoder(const EncoderSpec& config, uint64_t seed = 0) {
  config.validate("make_encoder");
  switch (config.stem) {
    case StemKind::kTokens:
      return detail::make_typed_encoder<TextPreprocessor<T, B>, EosHead<T, B>, T, B>(config, seed);
    case StemKind::kImuPatches:
      return detail::make_typed_encoder<ImuPreprocessor<T, B>, ClsHead<T, B>, T, B>(config, seed);
    case StemKind::kVideoPatches:
    case StemKind::kImagePatches:
      return detail::make_typed_encoder<PatchPreprocessor<T, B>, ClsHead<T, B>, T, B>(config, seed);
  }
  throw ValueError("make_encoder: invalid StemKind");
}

}  // namespace bindery::models::imagebind
