// bindery/models/imagebind/config.hpp — what an ImageBind model is made of, one row per modality.
//
// An ImageBindConfig maps each modality it holds to an EncoderSpec: the stem that turns the input
// into tokens, the trunk (a pre-norm Transformer), the head that pools one token and projects it to
// the joint space, and the postprocessor (L2 normalization, times a logit scale). The presets are
// tables, one row per modality:
//   - huge(): the official `imagebind_huge` (reference/imagebind.md; PyTorch's
//     imagebind_model.imagebind_huge), output dimension 1024, about 1.2 B parameters;
//   - tiny(): a small model with the same structure for tests and examples; it equals the reference
//     ImageBindModel built with the constructor arguments in tests/reference/make_model_fixtures.py.
// Configs round-trip through JSON (to_json / from_json, save / load).
#pragma once

#include <array>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bindery/core/error.hpp"
#include "bindery/io/json.hpp"
#include "bindery/models/imagebind/modality.hpp"

namespace bindery::models::imagebind {

/// How a preprocessor turns one sample into tokens.
enum class StemKind {
  kVideoPatches,  // PadIm2Video + Conv3d, input (C, T, H, W) or an image (C, H, W): vision
  kImagePatches,  // Conv2d [+ LayerNorm], input (C, H, W): audio spectrograms, depth, thermal
  kTokens,        // token Embedding + position embedding + causal mask, input (context_length) ids: text
  kImuPatches,    // unfold time into patches, Linear (no bias) [+ LayerNorm], input (C, T): IMU
};

/// Which token the head pools.
enum class HeadKind {
  kClsToken,  // LayerNorm -> token 0 -> [Dropout] -> Linear (no bias)
  kEosToken,  // token at argmax(ids) (the EOT token) -> LayerNorm -> Linear (no bias): text
};

/// One modality's encoder: the public encoder spec. An aggregate with defaults, filled with
/// designated initializers (fields in declaration order; see ImageBindConfig::huge()):
///
///   ib::EncoderSpec spec{.stem = ib::StemKind::kImuPatches, .stem_key = "imu_stem",
///                        .input_shape = {3, 64}, .kernel = {8}, .embed_dim = 64, .num_blocks = 2,
///                        .num_heads = 4, .out_dim = 32, .logit_scale = 5.0};
///
/// Field names follow the reference's constructor arguments. `EncoderConfig` is the same type (the
/// name it had before modalities were open).
struct EncoderSpec {
  // ---- preprocessor -----------------------------------------------------------------------------
  StemKind stem = StemKind::kImagePatches;
  /// The stem's key in the checkpoint: "rgbt_stem" (vision, audio, thermal), "depth_stem", "imu_stem".
  /// Unused for text (its keys are token_embedding.*, pos_embed, mask).
  std::string stem_key = "rgbt_stem";
  /// One sample as the position embedding was made for (the reference's img_size): vision
  /// {3, frames, H, W}, audio {1, mel bins, frames}, depth/thermal {1, H, W}, IMU {channels, steps},
  /// text {context_length}.
  std::vector<int64_t> input_shape = {};
  /// Conv kernel ({t, h, w} or {h, w}); IMU: {steps per patch}. Empty for text.
  std::vector<int64_t> kernel = {};
  /// Conv stride; empty = kernel (non-overlapping patches).
  std::vector<int64_t> stride = {};
  int64_t pad_frames = 2;       // vision: an image or a one-frame video is repeated to this many frames
  bool stem_norm = true;        // LayerNorm on the stem's tokens (audio, depth, thermal, IMU)
  double stem_norm_eps = 1e-5;  // its eps (torch's default)
  int64_t vocab_size = 0;       // text: rows of the token embedding
  bool causal_mask = false;     // text: the additive (L, L) causal mask buffer `mask`
  // ---- trunk ------------------------------------------------------------------------------------
  int64_t embed_dim = 0;            // width D
  int64_t num_blocks = 0;           // depth
  int64_t num_heads = 1;            // attention heads (D divisible by them)
  double mlp_ratio = 4.0;           // MLP hidden = int(mlp_ratio * D)
  bool add_bias_kv = false;         // learned bias_k / bias_v attention tokens
  bool pre_transformer_ln = false;  // LayerNorm before the blocks (vision)
  double drop_path = 0.0;           // stochastic depth, linear from 0 over the blocks (training only)
  double norm_eps = 1e-6;           // the trunk's LayerNorms
  // ---- head -------------------------------------------------------------------------------------
  HeadKind head = HeadKind::kClsToken;
  double head_norm_eps = 1e-6;
  double head_dropout = 0.0;  // > 0: Dropout before the Linear, which then is `3` instead of `2` (IMU)
  int64_t out_dim = 0;        // the joint embedding dimension
  // ---- postprocessor ----------------------------------------------------------------------------
  /// 0: L2 normalization only (vision). Otherwise the normalized embedding is multiplied by
  /// min(exp(log_logit_scale), max_logit_scale), log_logit_scale starting at log(logit_scale):
  /// a parameter when learnable (text), a buffer otherwise (audio 20, depth 5, thermal 10, IMU 5).
  double logit_scale = 0.0;
  bool learnable_logit_scale = false;
  double max_logit_scale = 100.0;

  // ---- derived ----------------------------------------------------------------------------------

  const std::vector<int64_t>& effective_stride() const { return stride.empty() ? kernel : stride; }
  int64_t in_channels() const { return input_shape.empty() ? 0 : input_shape[0]; }
  /// Text: the number of token positions (77).
  int64_t context_length() const { return input_shape.empty() ? 0 : input_shape[0]; }
  /// The native patch layout (the reference's patches_layout): vision {t, h, w}, 2-D stems {h, w},
  /// IMU {patches}; text {context_length}.
  std::vector<int64_t> patch_grid() const {
    validate_geometry();
    const std::vector<int64_t>& s = effective_stride();
    std::vector<int64_t> grid;
    switch (stem) {
      case StemKind::kTokens:
        return {context_length()};
      case StemKind::kImuPatches:
        return {input_shape[1] / kernel[0]};
      case StemKind::kVideoPatches: {
        const int64_t frames = input_shape[1] == 1 ? pad_frames : input_shape[1];
        grid.push_back((frames - kernel[0]) / s[0] + 1);
        for (size_t i = 1; i < 3; ++i) grid.push_back((input_shape[i + 1] - kernel[i]) / s[i] + 1);
        return grid;
      }
      case StemKind::kImagePatches:
        for (size_t i = 0; i < 2; ++i) grid.push_back((input_shape[i + 1] - kernel[i]) / s[i] + 1);
        return grid;
    }
    return grid;
  }
  /// Patches of a native sample (text: context_length).
  int64_t num_patches() const {
    int64_t n = 1;
    for (int64_t g : patch_grid()) n *= g;
    return n;
  }
  /// Tokens the trunk sees for a native sample: 1 cls token + the patches (text: no cls token).
  int64_t num_tokens() const { return num_patches() + (has_cls_token() ? 1 : 0); }
  bool has_cls_token() const { return stem != StemKind::kTokens; }
  /// IMU: values per patch (channels x steps), the Linear's in_features.
  int64_t imu_patch_values() const { return in_channels() * (kernel.empty() ? 0 : kernel[0]); }

  /// Throws ValueError (naming `where`) unless the numbers describe a buildable encoder.
  void validate(const std::string& where = "EncoderSpec") const {
    validate_geometry(where);
    BINDERY_CHECK(embed_dim > 0 && num_blocks >= 0 && num_heads > 0 && embed_dim % num_heads == 0, ValueError,
                  where, ": embed_dim ", embed_dim, " must be positive and divisible by num_heads ",
                  num_heads, ", num_blocks (", num_blocks, ") non-negative");
    BINDERY_CHECK(out_dim > 0 && mlp_ratio > 0, ValueError, where, ": out_dim ", out_dim, " and mlp_ratio ",
                  mlp_ratio, " must be positive");
    BINDERY_CHECK(drop_path >= 0 && drop_path <= 1 && head_dropout >= 0 && head_dropout <= 1, ValueError,
                  where, ": drop_path ", drop_path, " and head_dropout ", head_dropout,
                  " must lie in [0, 1]");
    BINDERY_CHECK(logit_scale >= 0 && max_logit_scale > 0, ValueError, where, ": logit_scale ", logit_scale,
                  " must be >= 0 (0 = none) and max_logit_scale ", max_logit_scale, " positive");
    BINDERY_CHECK(
        (head == HeadKind::kEosToken) == (stem == StemKind::kTokens), ValueError, where,
        ": the EOS-token head goes with the token stem (text) and the cls-token head with the others");
    BINDERY_CHECK(stem == StemKind::kTokens || !stem_key.empty(), ValueError, where, ": stem_key is empty");
  }

 private:
  void validate_geometry(const std::string& where = "EncoderSpec") const {
    const std::vector<int64_t>& s = effective_stride();
    bool ok = true;
    for (int64_t v : input_shape) ok = ok && v > 0;
    for (int64_t v : kernel) ok = ok && v > 0;
    for (int64_t v : s) ok = ok && v > 0;
    size_t rank = 0, kernels = 0;
    switch (stem) {
      case StemKind::kVideoPatches:
        rank = 4, kernels = 3;
        break;
      case StemKind::kImagePatches:
        rank = 3, kernels = 2;
        break;
      case StemKind::kTokens:
        rank = 1, kernels = 0;
        break;
      case StemKind::kImuPatches:
        rank = 2, kernels = 1;
        break;
    }
    ok = ok && input_shape.size() == rank && kernel.size() == kernels && s.size() == kernels;
    if (ok && stem == StemKind::kVideoPatches) {
      const int64_t frames = input_shape[1] == 1 ? pad_frames : input_shape[1];
      ok =
          pad_frames > 0 && frames >= kernel[0] && input_shape[2] >= kernel[1] && input_shape[3] >= kernel[2];
    } else if (ok && stem == StemKind::kImagePatches) {
      ok = input_shape[1] >= kernel[0] && input_shape[2] >= kernel[1];
    } else if (ok && stem == StemKind::kImuPatches) {
      ok = input_shape[1] >= kernel[0] && s[0] == kernel[0];
    } else if (ok && stem == StemKind::kTokens) {
      ok = vocab_size > 0;
    }
    BINDERY_CHECK(ok, ValueError, where, ": input_shape, kernel and stride do not fit the stem (",
                  "video: input {C, T, H, W}, kernel/stride of 3; image: {C, H, W}, 2; IMU: {C, T}, 1 with ",
                  "stride = kernel; text: {context_length} with vocab_size > 0), got input_shape of ",
                  input_shape.size(), ", kernel of ", kernel.size(), ", stride of ", s.size(), " values");
  }
};

/// The former name of EncoderSpec.
using EncoderConfig = EncoderSpec;

/// The encoders of a model, by modality: the six built-in ones and any of the user's own (a subset
/// of them, in any combination).
struct ImageBindConfig {
  std::map<Modality, EncoderSpec> encoders;

  bool has(const Modality& m) const { return encoders.count(m) != 0; }
  /// Throws ValueError naming the modality when it is absent.
  const EncoderSpec& at(const Modality& m) const {
    const auto it = encoders.find(m);
    BINDERY_CHECK(it != encoders.end(), ValueError, "ImageBindConfig: no encoder for modality '",
                  modality_name(m), "'");
    return it->second;
  }
  EncoderSpec& at(const Modality& m) {
    return const_cast<EncoderSpec&>(static_cast<const ImageBindConfig&>(*this).at(m));
  }
  std::vector<Modality> modalities() const {
    std::vector<Modality> out;
    for (const auto& [m, c] : encoders) out.push_back(m);
    return out;
  }
  void validate() const {
    for (const auto& [m, c] : encoders)
      c.validate(::bindery::detail::concat("ImageBindConfig[", modality_name(m), "]"));
  }

  /// A config from (modality, spec) pairs sharing one joint dimension: a spec whose out_dim is 0 gets
  /// `out_dim`; one that sets another value is a ValueError (every encoder must land in one space).
  /// Validated.
  static ImageBindConfig from_specs(std::vector<std::pair<Modality, EncoderSpec>> specs, int64_t out_dim) {
    ImageBindConfig config;
    for (auto& [m, spec] : specs) {
      BINDERY_CHECK(spec.out_dim == 0 || spec.out_dim == out_dim, ValueError,
                    "ImageBindConfig::from_specs: ", modality_name(m), " has out_dim ", spec.out_dim,
                    " but the joint space has ", out_dim);
      BINDERY_CHECK(!config.has(m), ValueError, "ImageBindConfig::from_specs: modality '", modality_name(m),
                    "' appears twice");
      spec.out_dim = out_dim;
      config.encoders.emplace(m, std::move(spec));
    }
    config.validate();
    return config;
  }

  /// The official imagebind_huge (about 1.20 B parameters, 4.8 GB in fp32), joint dimension 1024.
  static ImageBindConfig huge() {
    using S = StemKind;
    using H = HeadKind;
    constexpr double kClipScale = 1.0 / 0.07;
    return from_specs(
        {
            {Modality::kVision,
             {.stem = S::kVideoPatches,
              .stem_key = "rgbt_stem",
              .input_shape = {3, 2, 224, 224},
              .kernel = {2, 14, 14},
              .stem_norm = false,
              .embed_dim = 1280,
              .num_blocks = 32,
              .num_heads = 16,
              .pre_transformer_ln = true}},
            {Modality::kText,
             {.stem = S::kTokens,
              .stem_key = "",
              .input_shape = {77},
              .stem_norm = false,
              .vocab_size = 49408,
              .causal_mask = true,
              .embed_dim = 1024,
              .num_blocks = 24,
              .num_heads = 16,
              .head = H::kEosToken,
              .logit_scale = kClipScale,
              .learnable_logit_scale = true}},
            {Modality::kAudio,
             {.stem = S::kImagePatches,
              .stem_key = "rgbt_stem",
              .input_shape = {1, 128, 204},
              .kernel = {16, 16},
              .stride = {10, 10},
              .embed_dim = 768,
              .num_blocks = 12,
              .num_heads = 12,
              .add_bias_kv = true,
              .drop_path = 0.1,
              .logit_scale = 20.0}},
            {Modality::kDepth,
             {.stem = S::kImagePatches,
              .stem_key = "depth_stem",
              .input_shape = {1, 224, 224},
              .kernel = {16, 16},
              .embed_dim = 384,
              .num_blocks = 12,
              .num_heads = 8,
              .add_bias_kv = true,
              .logit_scale = 5.0}},
            {Modality::kThermal,
             {.stem = S::kImagePatches,
              .stem_key = "rgbt_stem",
              .input_shape = {1, 224, 224},
              .kernel = {16, 16},
              .embed_dim = 768,
              .num_blocks = 12,
              .num_heads = 12,
              .add_bias_kv = true,
              .logit_scale = 10.0}},
            {Modality::kImu,
             {.stem = S::kImuPatches,
              .stem_key = "imu_stem",
              .input_shape = {6, 2000},
              .kernel = {8},
              .embed_dim = 512,
              .num_blocks = 6,
              .num_heads = 8,
              .add_bias_kv = true,
              .drop_path = 0.7,
              .head_dropout = 0.5,
              .logit_scale = 5.0}},
        },
        1024);
  }

  /// A tiny model with huge()'s structure (a few thousand parameters per encoder plus the 49408-row
  /// text embedding, whose width 6 keeps the fixture files under 2 MiB): the reference
  /// ImageBindModel(out_embed_dim=16, vision_embed_dim=16, ...) of
  /// tests/reference/make_model_fixtures.py. Native inputs: vision 3x224x224 (14-pixel patches, so
  /// smaller images interpolate the position embedding), audio 1x36x64, depth and thermal 1x224x224
  /// (patches of 56 and 32 pixels), IMU 6x2000, text 77 ids.
  static ImageBindConfig tiny() {
    using S = StemKind;
    using H = HeadKind;
    constexpr double kClipScale = 1.0 / 0.07;
    return from_specs(
        {
            {Modality::kVision,
             {.stem = S::kVideoPatches,
              .stem_key = "rgbt_stem",
              .input_shape = {3, 2, 224, 224},
              .kernel = {2, 14, 14},
              .stem_norm = false,
              .embed_dim = 16,
              .num_blocks = 2,
              .num_heads = 2,
              .pre_transformer_ln = true}},
            {Modality::kText,
             {.stem = S::kTokens,
              .stem_key = "",
              .input_shape = {77},
              .stem_norm = false,
              .vocab_size = 49408,
              .causal_mask = true,
              .embed_dim = 6,
              .num_blocks = 2,
              .num_heads = 2,
              .head = H::kEosToken,
              .logit_scale = kClipScale,
              .learnable_logit_scale = true}},
            {Modality::kAudio,
             {.stem = S::kImagePatches,
              .stem_key = "rgbt_stem",
              .input_shape = {1, 36, 64},
              .kernel = {16, 16},
              .stride = {10, 10},
              .embed_dim = 16,
              .num_blocks = 2,
              .num_heads = 4,
              .add_bias_kv = true,
              .drop_path = 0.1,
              .logit_scale = 20.0}},
            {Modality::kDepth,
             {.stem = S::kImagePatches,
              .stem_key = "depth_stem",
              .input_shape = {1, 224, 224},
              .kernel = {56, 56},
              .embed_dim = 16,
              .num_blocks = 2,
              .num_heads = 2,
              .add_bias_kv = true,
              .logit_scale = 5.0}},
            {Modality::kThermal,
             {.stem = S::kImagePatches,
              .stem_key = "rgbt_stem",
              .input_shape = {1, 224, 224},
              .kernel = {32, 32},
              .embed_dim = 16,
              .num_blocks = 2,
              .num_heads = 2,
              .add_bias_kv = true,
              .logit_scale = 10.0}},
            {Modality::kImu,
             {.stem = S::kImuPatches,
              .stem_key = "imu_stem",
              .input_shape = {6, 2000},
              .kernel = {8},
              .embed_dim = 16,
              .num_blocks = 2,
              .num_heads = 2,
              .add_bias_kv = true,
              .drop_path = 0.7,
              .head_dropout = 0.5,
              .logit_scale = 5.0}},
        },
        16);
  }
};

// ---- JSON -----------------------------------------------------------------------------------------

namespace detail {

inline const char* stem_kind_name(StemKind kind) {
  switch (kind) {
    case StemKind::kVideoPatches:
      return "video_patches";
    case StemKind::kImagePatches:
      return "image_patches";
    case StemKind::kTokens:
      return "tokens";
    case StemKind::kImuPatches:
      return "imu_patches";
  }
  throw ValueError("stem_kind_name: invalid StemKind value");
}
inline StemKind stem_kind_from_name(const std::string& name, const std::string& where) {
  for (StemKind k :
       {StemKind::kVideoPatches, StemKind::kImagePatches, StemKind::kTokens, StemKind::kImuPatches}) {
    if (name == stem_kind_name(k)) return k;
  }
  throw ValueError(::bindery::detail::concat(
      where, ": unknown stem '", name, "' (expected video_patches, image_patches, tokens or imu_patches)"));
}
inline const char* head_kind_name(HeadKind kind) {
  return kind == HeadKind::kClsToken ? "cls_token" : "eos_token";
}
inline HeadKind head_kind_from_name(const std::string& name, const std::string& where) {
  if (name == "cls_token") return HeadKind::kClsToken;
  if (name == "eos_token") return HeadKind::kEosToken;
  throw ValueError(
      ::bindery::detail::concat(where, ": unknown head '", name, "' (expected cls_token or eos_token)"));
}

}  // namespace detail

namespace detail {

/// Calls f(name, member) for every field of an EncoderSpec, in declaration order: the one list
/// that to_json and from_json share.
template <class Config, class F>
void visit_encoder_fields(Config& c, F&& f) {
  f("stem", c.stem);
  f("stem_key", c.stem_key);
  f("input_shape", c.input_shape);
  f("kernel", c.kernel);
  f("stride", c.stride);
  f("pad_frames", c.pad_frames);
  f("stem_norm", c.stem_norm);
  f("stem_norm_eps", c.stem_norm_eps);
  f("vocab_size", c.vocab_size);
  f("causal_mask", c.causal_mask);
  f("embed_dim", c.embed_dim);
  f("num_blocks", c.num_blocks);
  f("num_heads", c.num_heads);
  f("mlp_ratio", c.mlp_ratio);
  f("add_bias_kv", c.add_bias_kv);
  f("pre_transformer_ln", c.pre_transformer_ln);
  f("drop_path", c.drop_path);
  f("norm_eps", c.norm_eps);
  f("head", c.head);
  f("head_norm_eps", c.head_norm_eps);
  f("head_dropout", c.head_dropout);
  f("out_dim", c.out_dim);
  f("logit_scale", c.logit_scale);
  f("learnable_logit_scale", c.learnable_logit_scale);
  f("max_logit_scale", c.max_logit_scale);
}

inline nlohmann::ordered_json field_to_json(StemKind kind) {
  return stem_kind_name(kind);
}
inline nlohmann::ordered_json field_to_json(HeadKind kind) {
  return head_kind_name(kind);
}
template <class V>
nlohmann::ordered_json field_to_json(const V& value) {
  return value;
}
inline void field_from_json(const nlohmann::ordered_json& j, StemKind& kind, const std::string& where) {
  kind = stem_kind_from_name(j.get<std::string>(), where);
}
inline void field_from_json(const nlohmann::ordered_json& j, HeadKind& kind, const std::string& where) {
  kind = head_kind_from_name(j.get<std::string>(), where);
}
inline void field_from_json(const nlohmann::ordered_json& j, int64_t& value, const std::string& where) {
  const std::optional<int64_t> v = io::json_int64(j);
  BINDERY_CHECK(v.has_value(), ValueError, where, ": expected an integer in int64 range, got ",
                io::json_excerpt(j));
  value = *v;
}
inline void field_from_json(const nlohmann::ordered_json& j, std::vector<int64_t>& values,
                            const std::string& where) {
  BINDERY_CHECK(j.is_array(), ValueError, where, ": expected an array of integers, got ",
                io::json_excerpt(j));
  std::vector<int64_t> out;
  for (const auto& item : j) {
    int64_t v = 0;
    field_from_json(item, v, where);
    out.push_back(v);
  }
  values = std::move(out);
}
template <class V>
void field_from_json(const nlohmann::ordered_json& j, V& value, const std::string&) {
  value = j.get<V>();
}

}  // namespace detail

/// {"stem": "video_patches", "stem_key": "rgbt_stem", "input_shape": [3, 2, 224, 224], ...}: every
/// field of EncoderSpec under its own name, enums as strings.
inline nlohmann::ordered_json to_json(const EncoderSpec& c) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  detail::visit_encoder_fields(
      c, [&](const char* name, const auto& value) { j[name] = detail::field_to_json(value); });
  return j;
}

/// Reads what to_json writes. Absent fields keep EncoderSpec's defaults; unknown fields and wrong
/// types throw ValueError naming `where` and the field; the result is validated.
inline EncoderSpec encoder_spec_from_json(const nlohmann::ordered_json& j, const std::string& where) {
  BINDERY_CHECK(j.is_object(), ValueError, where, ": expected a JSON object, got ", io::json_excerpt(j));
  EncoderSpec c;
  for (const auto& item : j.items()) {  // not a structured binding: clang 14 cannot capture those
    const std::string key = item.key();
    const nlohmann::ordered_json& value = item.value();
    const std::string field = ::bindery::detail::concat(where, ".", key);
    bool known = false;
    try {
      detail::visit_encoder_fields(c, [&](const char* name, auto& member) {
        if (key != name) return;
        known = true;
        detail::field_from_json(value, member, field);
      });
    } catch (const nlohmann::json::exception& e) {
      throw ValueError(
          ::bindery::detail::concat(field, ": ", e.what(), " (value ", io::json_excerpt(value), ")"));
    }
    BINDERY_CHECK(known, ValueError, field, ": unknown field");
  }
  c.validate(where);
  return c;
}

/// The former name of encoder_spec_from_json.
inline EncoderSpec encoder_config_from_json(const nlohmann::ordered_json& j, const std::string& where) {
  return encoder_spec_from_json(j, where);
}

/// {"model": "imagebind", "encoders": {"vision": {...}, "text": {...}, ...}}. A config holding
/// modalities of the user's own also lists them: "extra_modalities": ["trajectory"], so that a
/// misspelt built-in name ("vison") is an error, not a new modality.
inline nlohmann::ordered_json to_json(const ImageBindConfig& config) {
  nlohmann::ordered_json j;
  j["model"] = "imagebind";
  nlohmann::ordered_json extra = nlohmann::ordered_json::array();
  for (const auto& [m, c] : config.encoders) {
    if (!m.is_builtin()) extra.push_back(modality_name(m));
  }
  if (!extra.empty()) j["extra_modalities"] = std::move(extra);
  nlohmann::ordered_json encoders = nlohmann::ordered_json::object();
  for (const auto& [m, c] : config.encoders) encoders[modality_name(m)] = to_json(c);
  j["encoders"] = std::move(encoders);
  return j;
}

inline ImageBindConfig imagebind_config_from_json(const nlohmann::ordered_json& j) {
  BINDERY_CHECK(j.is_object() && j.contains("encoders") && j["encoders"].is_object(), ValueError,
                "ImageBindConfig JSON: expected {\"model\": \"imagebind\", \"encoders\": {...}}");
  std::set<std::string> extra;
  for (const auto& [key, value] : j.items()) {
    BINDERY_CHECK(key == "model" || key == "encoders" || key == "extra_modalities", ValueError,
                  "ImageBindConfig JSON: unknown field '", key, "'");
    BINDERY_CHECK(key != "model" || value == "imagebind", ValueError,
                  "ImageBindConfig JSON: \"model\" must be \"imagebind\", got ", io::json_excerpt(value));
    if (key != "extra_modalities") continue;
    BINDERY_CHECK(value.is_array(), ValueError,
                  "ImageBindConfig JSON: \"extra_modalities\" must be an array of names, got ",
                  io::json_excerpt(value));
    for (const auto& name : value) {
      BINDERY_CHECK(name.is_string(), ValueError,
                    "ImageBindConfig JSON: extra_modalities: ", io::json_excerpt(name), " is not a string");
      const Modality m(name.get<std::string>());  // validates the name
      BINDERY_CHECK(!m.is_builtin(), ValueError,
                    "ImageBindConfig JSON: extra_modalities lists the built-in '", m.name(), "'");
      extra.insert(std::string(m.name()));
    }
  }
  ImageBindConfig config;
  for (const auto& [name, value] : j["encoders"].items()) {
    if (!extra.count(name) && !(Modality::is_valid_name(name) && Modality(name).is_builtin())) {
      throw ValueError(::bindery::detail::concat(
          "ImageBindConfig JSON: unknown modality '", name,
          "' in \"encoders\" (built-in: vision, text, audio, depth, thermal, imu; a modality of your own ",
          "is listed in \"extra_modalities\")"));
    }
    const Modality m(name);
    config.encoders[m] = encoder_spec_from_json(value, ::bindery::detail::concat("encoders.", name));
  }
  for (const std::string& name : extra) {
    BINDERY_CHECK(config.has(Modality(name)), ValueError, "ImageBindConfig JSON: extra_modalities lists '",
                  name, "' but \"encoders\" has no entry for it");
  }
  return config;
}

/// Writes `config` as indented JSON to `path`; throws IoError when the file cannot be written.
inline void save_config(const ImageBindConfig& config, const std::string& path) {
  std::ofstream out(path);
  BINDERY_CHECK(out.good(), IoError, "save_config: cannot open '", path, "' for writing");
  out << to_json(config).dump(2) << "\n";
  out.flush();
  BINDERY_CHECK(out.good(), IoError, "save_config: writing '", path, "' failed");
}

/// Reads a config written by save_config; throws IoError (cannot read), FormatError (not JSON, or
/// nested deeper than io::kJsonMaxDepth levels: io/json.hpp) or ValueError (a bad field, named).
inline ImageBindConfig load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BINDERY_CHECK(in.good(), IoError, "load_config: cannot open '", path, "'");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  BINDERY_CHECK(!in.bad(), IoError, "load_config: reading '", path, "' failed");
  return imagebind_config_from_json(
      io::parse_json<nlohmann::ordered_json>(text, ::bindery::detail::concat("load_config: '", path, "'")));
}

}  // namespace bindery::models::imagebind
