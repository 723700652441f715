// bindery/models/imagebind/preprocessors.hpp — inputs to tokens: the first stage of every encoder.
//
// Three preprocessors cover the six modalities, with the reference's parameter names:
//   PatchPreprocessor  (RGBDTPreprocessor: vision, audio, depth, thermal)
//       cls_token (1, 1, D), <stem_key>.proj[.1].weight, <stem_key>.norm_layer.*,
//       pos_embedding_helper.pos_embed (1, 1 + patches, D)
//   TextPreprocessor   pos_embed (1, 77, D), mask (77, 77) buffer, token_embedding.weight (V, D)
//   ImuPreprocessor    pos_embed (1, 1 + patches, D), cls_token, imu_stem.proj.weight (D, C*k),
//                      imu_stem.norm_layer.*
// Each returns a TokenBatch: the tokens for the trunk plus what the trunk and head need besides
// (the causal mask, the EOS positions).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bindery/models/imagebind/config.hpp"
#include "bindery/nn/embedding.hpp"
#include "bindery/nn/init.hpp"
#include "bindery/nn/layer_norm.hpp"
#include "bindery/nn/linear.hpp"
#include "bindery/nn/patch_embed.hpp"
#include "bindery/ops/arithmetic.hpp"
#include "bindery/ops/concat.hpp"
#include "bindery/ops/embedding.hpp"
#include "bindery/ops/matmul.hpp"
#include "bindery/ops/shape.hpp"
#include "bindery/ops/unfold.hpp"

namespace bindery::models::imagebind {

/// A preprocessor's output.
template <class T, class B = Cpu>
struct TokenBatch {
  Var<T, B> tokens;              // (N, L, D): cls token (if any) + patch tokens, position embedding added
  Var<T, B> attn_mask;           // (L, L) additive mask for every block (text: causal), or undefined
  Tensor<int64_t, B> eos_index;  // text: (N) position of each sequence's EOS token; else undefined
};

namespace detail {

/// PyTorch's bicubic kernel (A = -0.75): the weights of the taps at offsets -1, 0, 1, 2 for a sample
/// at fraction t in [0, 1) past the tap at offset 0.
inline std::array<double, 4> cubic_weights(double t) {
  constexpr double a = -0.75;
  auto near = [](double x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };       // |x| <= 1
  auto far = [](double x) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; };  // 1 < |x| < 2
  return {far(t + 1), near(t), near(1 - t), far(2 - t)};
}

/// The (out, in) matrix of F.interpolate(..., scale_factor=scale, mode="bicubic",
/// align_corners=False) along one axis, out = floor(in * scale). As PyTorch: the source coordinate of
/// output i is (i + 0.5) / scale - 0.5 (scale as given, not in/out), NOT clamped, and the four taps
/// are clamped to the border (so border weights accumulate). Row-major, host memory.
inline std::vector<double> bicubic_matrix(int64_t in, double scale, int64_t& out) {
  out = static_cast<int64_t>(std::floor(static_cast<double>(in) * scale));
  std::vector<double> w(static_cast<size_t>(out * in), 0.0);
  for (int64_t i = 0; i < out; ++i) {
    const double source = (static_cast<double>(i) + 0.5) / scale - 0.5;
    const double first = std::floor(source);
    const std::array<double, 4> taps = cubic_weights(source - first);
    for (int64_t k = 0; k < 4; ++k) {
      const int64_t j = std::clamp<int64_t>(static_cast<int64_t>(first) - 1 + k, 0, in - 1);
      w[static_cast<size_t>(i * in + j)] += taps[static_cast<size_t>(k)];
    }
  }
  return w;
}

}  // namespace detail

/// The reference's interpolate_pos_encoding for a (1, g, g) patch layout with one cls token:
/// pos_embed (1, 1 + g*g, D) -> (1, 1 + target_patches, D). The cls row is kept; the g x g grid is
/// resized bicubically with scale_factor = sqrt(target_patches / (g*g)) to floor(g * scale) per side,
/// which must give target_patches (else ShapeError, where the reference fails to add). Differentiable
/// (a constant (P, g*g) matrix times the grid).
template <class T, class B>
Var<T, B> interpolate_pos_embed(const Var<T, B>& pos_embed, int64_t target_patches) {
  BINDERY_CHECK(pos_embed.rank() == 3 && pos_embed.size(0) == 1 && pos_embed.size(1) >= 2, ShapeError,
                "interpolate_pos_embed: pos_embed of shape ", pos_embed.shape(), " must be (1, 1 + g*g, D)");
  const int64_t n = pos_embed.size(1) - 1, d = pos_embed.size(2);
  if (target_patches == n) return pos_embed;
  const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  BINDERY_CHECK(side * side == n && target_patches > 0, ShapeError,
                "interpolate_pos_embed: pos_embed of shape ", pos_embed.shape(), " has ", n,
                " patch positions, not a square grid, or the target (", target_patches, " patches) is empty");
  const double scale = std::sqrt(static_cast<double>(target_patches) / static_cast<double>(n));
  int64_t out = 0;
  const std::vector<double> w = detail::bicubic_matrix(side, scale, out);
  BINDERY_CHECK(out * out == target_patches, ShapeError, "interpolate_pos_embed: a ", side, "x", side,
                " grid (pos_embed of shape ", pos_embed.shape(), ") scaled by sqrt(", target_patches, "/", n,
                ") gives ", out, "x", out, " positions, not ", target_patches,
                " (the input must give a square patch grid)");
  // kron(w, w): (out*out, side*side), row p*out+q, column i*side+j -> w[p][i] * w[q][j].
  std::vector<T> kron(static_cast<size_t>(out * out * n));
  for (int64_t p = 0; p < out; ++p)
    for (int64_t q = 0; q < out; ++q)
      for (int64_t i = 0; i < side; ++i)
        for (int64_t j = 0; j < side; ++j)
          kron[static_cast<size_t>(((p * out + q) * side + i) * side + j)] =
              static_cast<T>(w[static_cast<size_t>(p * side + i)] * w[static_cast<size_t>(q * side + j)]);
  const Var<T, B> resize(Tensor<T, B>::from_vector(kron, Shape{out * out, n}));
  const Var<T, B> cls = ops::slice(pos_embed, 1, 0, 1);                             // (1, 1, D)
  const Var<T, B> grid = ops::reshape(ops::slice(pos_embed, 1, 1, n + 1), {n, d});  // (n, D)
  const Var<T, B> resized = ops::unsqueeze(ops::matmul(resize, grid), 0);           // (1, P, D)
  return ops::concat({cls, resized}, 1);
}

/// The reference's SpatioTemporalPosEmbeddingHelper (learnable): one parameter `pos_embed`.
template <class T, class B = Cpu>
class PositionEmbedding : public nn::Module<T, B> {
 public:
  /// pos_embed (1, tokens, dim) ~ N(0, 1) * dim^-0.5 (the reference's OpenCLIP init).
  PositionEmbedding(int64_t tokens, int64_t dim, uint64_t seed = 0) {
    Philox rng(seed);
    pos_embed_ = this->register_parameter(
        "pos_embed", Tensor<T, B>::normal(Shape{1, tokens, dim}, rng, 0.0, 1.0 / std::sqrt(double(dim))));
  }
  Var<T, B> pos_embed() const { return pos_embed_; }

 private:
  Var<T, B> pos_embed_;
};

/// RGBDTPreprocessor / AudioPreprocessor / ThermalPreprocessor: conv stem -> [cls token | patches]
/// -> + position embedding. Vision (a Conv3d stem with PadIm2Video) takes images (N, C, H, W) or
/// videos (N, C, T, H, W); other sizes than the native one interpolate the position embedding
/// bicubically, as the reference does (square grids of one temporal patch only). Audio, depth and
/// thermal take (N, C, H, W) of exactly the native size (the reference cannot interpolate them).
template <class T, class B = Cpu>
class PatchPreprocessor : public nn::Module<T, B> {
 public:
  using input_type = Var<T, B>;

  explicit PatchPreprocessor(const EncoderConfig& config, uint64_t seed = 0)
      : config_(config), grid_(config.patch_grid()) {
    BINDERY_CHECK(config.stem == StemKind::kVideoPatches || config.stem == StemKind::kImagePatches,
                  ValueError, "PatchPreprocessor: needs a video_patches or image_patches stem");
    config.validate("PatchPreprocessor");
    const int64_t d = config.embed_dim;
    const bool video = config.stem == StemKind::kVideoPatches;
    Philox rng(nn::init::derive_seed(seed, 0));
    cls_token_ = this->register_parameter(
        "cls_token", Tensor<T, B>::normal(Shape{1, 1, d}, rng, 0.0, 1.0 / std::sqrt(static_cast<double>(d))));
    nn::PatchEmbedConfig stem{config.in_channels(),
                              d,
                              config.kernel,
                              config.effective_stride(),
                              false,
                              config.stem_norm,
                              config.stem_norm_eps,
                              video ? config.pad_frames : 0,
                              nn::init::derive_seed(seed, 1)};
    stem_ = this->register_module(config.stem_key, std::make_shared<nn::PatchEmbed<T, B>>(stem));
    pos_ = this->register_module(
        "pos_embedding_helper",
        std::make_shared<PositionEmbedding<T, B>>(config.num_tokens(), d, nn::init::derive_seed(seed, 2)));
  }

  /// x: vision (N, C, H, W) or (N, C, T, H, W); others (N, C, H, W) -> tokens (N, 1 + patches, D).
  TokenBatch<T, B> forward(const Var<T, B>& x) {
    const bool video = config_.stem == StemKind::kVideoPatches;
    BINDERY_CHECK((x.rank() == 4 || (video && x.rank() == 5)) && x.size(1) == config_.in_channels(),
                  ShapeError, "PatchPreprocessor: input of shape ", x.shape(), " must be (N, ",
                  config_.in_channels(), video ? ", H, W) or (N, C, T, H, W)" : ", H, W)");
    const Var<T, B> patches = stem_->forward(x);  // (N, P, D)
    const int64_t n = patches.size(0), p = patches.size(1), d = patches.size(2);
    const Var<T, B> cls = ops::expand(cls_token_, Shape{n, 1, d});
    const Var<T, B> tokens = ops::concat({cls, patches}, 1);  // (N, 1 + P, D)
    return {tokens + position_embedding(x, p), Var<T, B>(), Tensor<int64_t, B>()};
  }

  /// The position embedding for an input with `patches` patches: the parameter itself at the native
  /// size, else (vision) its bicubic interpolation. (1, 1 + patches, D).
  Var<T, B> position_embedding(const Var<T, B>& x, int64_t patches) const {
    if (patches == config_.num_patches()) return pos_->pos_embed();
    const bool interpolable = grid_.size() == 3 && grid_[0] == 1 && grid_[1] == grid_[2];
    BINDERY_CHECK(interpolable, ShapeError, "PatchPreprocessor: input of shape ", x.shape(), " gives ",
                  patches, " patches but the position embedding holds ", config_.num_patches(),
                  "; only vision stems with one temporal patch interpolate it (as the reference), so this ",
                  "modality needs inputs of the native shape (N, ", shape_string(), ")");
    return interpolate_pos_embed(pos_->pos_embed(), patches);
  }

  Var<T, B> cls_token() const { return cls_token_; }
  nn::PatchEmbed<T, B>& stem() { return *stem_; }
  PositionEmbedding<T, B>& pos_embedding_helper() { return *pos_; }
  const EncoderConfig& config() const { return config_; }

 private:
  std::string shape_string() const {
    std::string s;
    for (size_t i = 0; i < config_.input_shape.size(); ++i)
      s += (i ? ", " : "") + std::to_string(config_.input_shape[i]);
    return s;
  }

  EncoderConfig config_;
  std::vector<int64_t> grid_;
  Var<T, B> cls_token_;
  std::shared_ptr<nn::PatchEmbed<T, B>> stem_;
  std::shared_ptr<PositionEmbedding<T, B>> pos_;
};

/// (L, L) additive causal mask: 0 on and below the diagonal, -inf above (build_causal_attention_mask).
template <class T, class B = Cpu>
Tensor<T, B> causal_mask(int64_t length) {
  std::vector<T> values(static_cast<size_t>(length * length), T(0));
  for (int64_t i = 0; i < length; ++i)
    for (int64_t j = i + 1; j < length; ++j)
      values[static_cast<size_t>(i * length + j)] = -std::numeric_limits<T>::infinity();
  return Tensor<T, B>::from_vector(values, Shape{length, length});
}

namespace detail {

/// best[r] = the first position of the largest id in row r of contiguous ids (rows, length).
struct ArgmaxRowsFunctor {
  const int64_t* ids;
  int64_t* best;
  int64_t length;
  BINDERY_HOST_DEVICE void operator()(int64_t r) const {
    const int64_t* row = ids + r * length;
    int64_t at = 0;
    for (int64_t c = 1; c < length; ++c) {
      if (row[c] > row[at]) at = c;
    }
    best[r] = at;
  }
};

}  // namespace detail

/// Per row of ids (N, L), the position of its largest id, the first one on ties (torch.argmax): the
/// EOT token 49407 of a CLIP-tokenized text. One loop per row on the ids' backend (no host copy).
template <class B>
Tensor<int64_t, B> argmax_rows(const Tensor<int64_t, B>& ids) {
  BINDERY_CHECK(ids.rank() == 2 && ids.size(1) > 0, ShapeError, "argmax_rows: ids of shape ", ids.shape(),
                " must be (N, L) with L > 0");
  const int64_t n = ids.size(0), l = ids.size(1);
  const Tensor<int64_t, B> rows = ids.contiguous();
  Tensor<int64_t, B> best = Tensor<int64_t, B>::empty(Shape{n});
  B::for_each(n, detail::ArgmaxRowsFunctor{rows.data(), best.data(), l},
              std::max<int64_t>(1, B::kDefaultGrain / l));
  return best;
}

/// TextPreprocessor: token embedding + position embedding; hands the trunk the causal mask and the
/// head the EOS positions (argmax of the ids, as the reference: the EOT id 49407 is the largest).
template <class T, class B = Cpu>
class TextPreprocessor : public nn::Module<T, B> {
 public:
  using input_type = Tensor<int64_t, B>;

  explicit TextPreprocessor(const EncoderConfig& config, uint64_t seed = 0)
      : context_length_(config.context_length()), dim_(config.embed_dim) {
    BINDERY_CHECK(config.stem == StemKind::kTokens, ValueError, "TextPreprocessor: needs a tokens stem");
    config.validate("TextPreprocessor");
    Philox rng(nn::init::derive_seed(seed, 0));
    pos_embed_ = this->register_parameter(
        "pos_embed", Tensor<T, B>::normal(Shape{1, context_length_, dim_}, rng, 0.0, 0.01));
    if (config.causal_mask) mask_ = this->register_buffer("mask", causal_mask<T, B>(context_length_));
    token_embedding_ = this->register_module(
        "token_embedding",
        std::make_shared<nn::Embedding<T, B>>(config.vocab_size, dim_, nn::init::derive_seed(seed, 1)));
    Philox embedding_rng(nn::init::derive_seed(seed, 2));  // the reference's N(0, 0.02)
    token_embedding_->weight().assign(
        Tensor<T, B>::normal(token_embedding_->weight().shape(), embedding_rng, 0.0, 0.02));
  }

  /// ids: (N, context_length) int64 in [0, vocab) -> tokens (N, context_length, D), mask (L, L),
  /// eos_index (N).
  TokenBatch<T, B> forward(const Tensor<int64_t, B>& ids) {
    BINDERY_CHECK(ids.rank() == 2 && ids.size(1) == context_length_, ShapeError,
                  "TextPreprocessor: ids of shape ", ids.shape(), " must be (N, ", context_length_,
                  ") (pad with 0 after the EOT token)");
    const Var<T, B> tokens = token_embedding_->forward(ids) + pos_embed_;  // (N, L, D)
    return {tokens, mask_.defined() ? Var<T, B>(mask_) : Var<T, B>(), argmax_rows(ids)};
  }

  Var<T, B> pos_embed() const { return pos_embed_; }
  /// Undefined without a causal mask.
  const Tensor<T, B>& mask() const { return mask_; }
  nn::Embedding<T, B>& token_embedding() { return *token_embedding_; }
  int64_t context_length() const { return context_length_; }

 private:
  int64_t context_length_, dim_;
  Var<T, B> pos_embed_;
  Tensor<T, B> mask_;
  std::shared_ptr<nn::Embedding<T, B>> token_embedding_;
};

/// PatchEmbedGeneric with a Linear projection (the IMU stem): x (N, P, in) -> proj -> [norm_layer].
/// Keys: proj.weight, norm_layer.{weight,bias}.
template <class T, class B = Cpu>
class LinearPatchEmbed : public nn::Module<T, B> {
 public:
  LinearPatchEmbed(int64_t in_features, int64_t dim, bool norm, double norm_eps, uint64_t seed = 0) {
    proj_ = this->register_module("proj", std::make_shared<nn::Linear<T, B>>(in_features, dim, false, seed));
    if (norm)
      norm_ = this->register_module("norm_layer", std::make_shared<nn::LayerNorm<T, B>>(dim, norm_eps));
  }
  /// x: (N, P, in) -> (N, P, D).
  Var<T, B> forward(const Var<T, B>& x) {
    const Var<T, B> y = proj_->forward(x);
    return norm_ ? norm_->forward(y) : y;
  }
  nn::Linear<T, B>& proj() { return *proj_; }
  /// Null without norm.
  nn::LayerNorm<T, B>* norm_layer() { return norm_.get(); }

 private:
  std::shared_ptr<nn::Linear<T, B>> proj_;
  std::shared_ptr<nn::LayerNorm<T, B>> norm_;
};

/// IMUPreprocessor: (N, C, T) -> patches of k steps, each flattened channel-major (C*k values: all
/// steps of channel 0, then channel 1, ...) -> Linear -> LayerNorm -> [cls | patches] + pos_embed.
template <class T, class B = Cpu>
class ImuPreprocessor : public nn::Module<T, B> {
 public:
  using input_type = Var<T, B>;

  explicit ImuPreprocessor(const EncoderConfig& config, uint64_t seed = 0)
      : channels_(config.in_channels()), patch_(config.kernel.at(0)), patches_(config.num_patches()) {
    BINDERY_CHECK(config.stem == StemKind::kImuPatches, ValueError,
                  "ImuPreprocessor: needs an imu_patches stem");
    config.validate("ImuPreprocessor");
    const int64_t d = config.embed_dim;
    Philox rng(nn::init::derive_seed(seed, 0));
    pos_embed_ = this->register_parameter("pos_embed",
                                          Tensor<T, B>::normal(Shape{1, patches_ + 1, d}, rng, 0.0, 0.01));
    cls_token_ = this->register_parameter(
        "cls_token", Tensor<T, B>::normal(Shape{1, 1, d}, rng, 0.0, 1.0 / std::sqrt(static_cast<double>(d))));
    stem_ = this->register_module(config.stem_key, std::make_shared<LinearPatchEmbed<T, B>>(
                                                       config.imu_patch_values(), d, config.stem_norm,
                                                       config.stem_norm_eps, nn::init::derive_seed(seed, 1)));
  }

  /// x: (N, C, T) with T / k = the native patch count -> tokens (N, 1 + T/k, D).
  TokenBatch<T, B> forward(const Var<T, B>& x) {
    BINDERY_CHECK(
        x.rank() == 3 && x.size(1) == channels_ && x.size(2) >= patch_ && x.size(2) / patch_ == patches_,
        ShapeError, "ImuPreprocessor: input of shape ", x.shape(), " must be (N, ", channels_, ", T) with ",
        patches_, " patches of ", patch_, " steps (T = ", patches_ * patch_, ")");
    const int64_t n = x.size(0);
    const Var<T, B> windows = ops::unfold(x, 2, patch_, patch_);  // (N, C, P, k)
    const Var<T, B> patches =
        ops::reshape(ops::permute(windows, {0, 2, 1, 3}), {n, patches_, channels_ * patch_});  // (N, P, C*k)
    const Var<T, B> embedded = stem_->forward(patches);                                        // (N, P, D)
    const Var<T, B> cls = ops::expand(cls_token_, Shape{n, 1, embedded.size(2)});
    return {ops::concat({cls, embedded}, 1) + pos_embed_, Var<T, B>(), Tensor<int64_t, B>()};
  }

  Var<T, B> pos_embed() const { return pos_embed_; }
  Var<T, B> cls_token() const { return cls_token_; }
  LinearPatchEmbed<T, B>& stem() { return *stem_; }

 private:
  int64_t channels_, patch_, patches_;
  Var<T, B> pos_embed_, cls_token_;
  std::shared_ptr<LinearPatchEmbed<T, B>> stem_;
};

}  // namespace bindery::models::imagebind
