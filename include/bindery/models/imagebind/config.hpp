// bindery/models/imagebind/config.hpp — what an ImageBind model is made of, one row per modality.
//
// An ImageBindConfig maps each modality it holds to an EncoderConfig: the stem that turns the input
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
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bindery/core/error.hpp"

namespace bindery::models::imagebind {

/// The six modalities of ImageBind, in the reference's order (the order of its ModuleDicts).
enum class Modality { kVision, kText, kAudio, kDepth, kThermal, kImu };

inline constexpr std::array<Modality, 6> kModalities = {Modality::kVision,  Modality::kText,
                                                        Modality::kAudio,   Modality::kDepth,
                                                        Modality::kThermal, Modality::kImu};

/// The reference's name of a modality ("vision", "text", "audio", "depth", "thermal", "imu"): the
/// second component of every checkpoint key (`modality_trunks.vision.blocks.0...`).
inline const char* modality_name(Modality modality) {
  switch (modality) {
    case Modality::kVision:
      return "vision";
    case Modality::kText:
      return "text";
    case Modality::kAudio:
      return "audio";
    case Modality::kDepth:
      return "depth";
    case Modality::kThermal:
      return "thermal";
    case Modality::kImu:
      return "imu";
  }
  throw ValueError("modality_name: invalid Modality value");
}

/// The Modality named `name`; throws ValueError listing the valid names.
inline Modality modality_from_name(std::string_view name) {
  for (Modality m : kModalities) {
    if (name == modality_name(m)) return m;
  }
  throw ValueError(::bindery::detail::concat("unknown modality '", name,
                                             "' (expected vision, text, audio, depth, thermal or imu)"));
}

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

/// One modality's encoder. Field names follow the reference's constructor arguments.
struct EncoderConfig {
  // ---- preprocessor -----------------------------------------------------------------------------
  StemKind stem = StemKind::kImagePatches;
  /// The stem's key in the checkpoint: "rgbt_stem" (vision, audio, thermal), "depth_stem", "imu_stem".
  /// Unused for text (its keys are token_embedding.*, pos_embed, mask).
  std::string stem_key = "rgbt_stem";
  /// One sample as the position embedding was made for (the reference's img_size): vision
  /// {3, frames, H, W}, audio {1, mel bins, frames}, depth/thermal {1, H, W}, IMU {channels, steps},
  /// text {context_length}.
  std::vector<int64_t> input_shape;
  /// Conv kernel ({t, h, w} or {h, w}); IMU: {steps per patch}. Empty for text.
  std::vector<int64_t> kernel;
  /// Conv stride; empty = kernel (non-overlapping patches).
  std::vector<int64_t> stride;
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
  void validate(const std::string& where = "EncoderConfig") const {
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
  void validate_geometry(const std::string& where = "EncoderConfig") const {
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

namespace detail {

/// One row of a preset table (see ImageBindConfig::huge()).
struct EncoderRow {
  Modality modality;
  StemKind stem;
  const char* stem_key;
  std::vector<int64_t> input_shape, kernel, stride;
  int64_t embed_dim, num_blocks, num_heads;
  bool add_bias_kv, pre_transformer_ln;
  double drop_path;
  HeadKind head;
  double head_dropout, logit_scale;
  bool learnable_logit_scale;
};

inline EncoderConfig encoder_from_row(const EncoderRow& row, int64_t out_dim) {
  EncoderConfig c;
  c.stem = row.stem;
  c.stem_key = row.stem_key;
  c.input_shape = row.input_shape;
  c.kernel = row.kernel;
  c.stride = row.stride;
  c.stem_norm = row.stem == StemKind::kImagePatches || row.stem == StemKind::kImuPatches;
  c.vocab_size = row.stem == StemKind::kTokens ? 49408 : 0;
  c.causal_mask = row.stem == StemKind::kTokens;
  c.embed_dim = row.embed_dim;
  c.num_blocks = row.num_blocks;
  c.num_heads = row.num_heads;
  c.add_bias_kv = row.add_bias_kv;
  c.pre_transformer_ln = row.pre_transformer_ln;
  c.drop_path = row.drop_path;
  c.head = row.head;
  c.head_dropout = row.head_dropout;
  c.out_dim = out_dim;
  c.logit_scale = row.logit_scale;
  c.learnable_logit_scale = row.learnable_logit_scale;
  return c;
}

}  // namespace detail

/// The encoders of a model, by modality (a subset of the six is allowed).
struct ImageBindConfig {
  std::map<Modality, EncoderConfig> encoders;

  bool has(Modality m) const { return encoders.count(m) != 0; }
  /// Throws ValueError naming the modality when it is absent.
  const EncoderConfig& at(Modality m) const {
    const auto it = encoders.find(m);
    BINDERY_CHECK(it != encoders.end(), ValueError, "ImageBindConfig: no encoder for modality '",
                  modality_name(m), "'");
    return it->second;
  }
  EncoderConfig& at(Modality m) {
    return const_cast<EncoderConfig&>(static_cast<const ImageBindConfig&>(*this).at(m));
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

  /// Builds a config from preset rows with a common output dimension.
  static ImageBindConfig from_rows(const std::vector<detail::EncoderRow>& rows, int64_t out_dim) {
    ImageBindConfig config;
    for (const auto& row : rows) config.encoders[row.modality] = detail::encoder_from_row(row, out_dim);
    config.validate();
    return config;
  }

  /// The official imagebind_huge (about 1.20 B parameters, 4.8 GB in fp32), joint dimension 1024.
  static ImageBindConfig huge() {
    using M = Modality;
    using S = StemKind;
    using H = HeadKind;
    constexpr double kClipScale = 1.0 / 0.07;
    // clang-format off
    return from_rows({
      // modality     stem                stem key      input shape         kernel         stride     width blocks heads bias_kv pre_ln drop_path head          head_drop logit     learnable
      {M::kVision,  S::kVideoPatches, "rgbt_stem",  {3, 2, 224, 224}, {2, 14, 14}, {},        1280, 32,   16,   false,  true,  0.0,      H::kClsToken, 0.0,      0.0,       false},
      {M::kText,    S::kTokens,       "",           {77},             {},          {},        1024, 24,   16,   false,  false, 0.0,      H::kEosToken, 0.0,      kClipScale, true},
      {M::kAudio,   S::kImagePatches, "rgbt_stem",  {1, 128, 204},    {16, 16},    {10, 10},  768,  12,   12,   true,   false, 0.1,      H::kClsToken, 0.0,      20.0,      false},
      {M::kDepth,   S::kImagePatches, "depth_stem", {1, 224, 224},    {16, 16},    {},        384,  12,   8,    true,   false, 0.0,      H::kClsToken, 0.0,      5.0,       false},
      {M::kThermal, S::kImagePatches, "rgbt_stem",  {1, 224, 224},    {16, 16},    {},        768,  12,   12,   true,   false, 0.0,      H::kClsToken, 0.0,      10.0,      false},
      {M::kImu,     S::kImuPatches,   "imu_stem",   {6, 2000},        {8},         {},        512,  6,    8,    true,   false, 0.7,      H::kClsToken, 0.5,      5.0,       false},
    }, 1024);
    // clang-format on
  }

  /// A tiny model with huge()'s structure (a few thousand parameters per encoder plus the 49408-row
  /// text embedding, whose width 6 keeps the fixture files under 2 MiB): the reference
  /// ImageBindModel(out_embed_dim=16, vision_embed_dim=16, ...) of
  /// tests/reference/make_model_fixtures.py. Native inputs: vision 3x224x224 (14-pixel patches, so
  /// smaller images interpolate the position embedding), audio 1x36x64, depth and thermal 1x224x224
  /// (patches of 56 and 32 pixels), IMU 6x2000, text 77 ids.
  static ImageBindConfig tiny() {
    using M = Modality;
    using S = StemKind;
    using H = HeadKind;
    constexpr double kClipScale = 1.0 / 0.07;
    // clang-format off
    return from_rows({
      // modality     stem                stem key      input shape         kernel         stride     width blocks heads bias_kv pre_ln drop_path head          head_drop logit     learnable
      {M::kVision,  S::kVideoPatches, "rgbt_stem",  {3, 2, 224, 224}, {2, 14, 14}, {},        16,   2,    2,    false,  true,  0.0,      H::kClsToken, 0.0,      0.0,       false},
      {M::kText,    S::kTokens,       "",           {77},             {},          {},        6,    2,    2,    false,  false, 0.0,      H::kEosToken, 0.0,      kClipScale, true},
      {M::kAudio,   S::kImagePatches, "rgbt_stem",  {1, 36, 64},      {16, 16},    {10, 10},  16,   2,    4,    true,   false, 0.1,      H::kClsToken, 0.0,      20.0,      false},
      {M::kDepth,   S::kImagePatches, "depth_stem", {1, 224, 224},    {56, 56},    {},        16,   2,    2,    true,   false, 0.0,      H::kClsToken, 0.0,      5.0,       false},
      {M::kThermal, S::kImagePatches, "rgbt_stem",  {1, 224, 224},    {32, 32},    {},        16,   2,    2,    true,   false, 0.0,      H::kClsToken, 0.0,      10.0,      false},
      {M::kImu,     S::kImuPatches,   "imu_stem",   {6, 2000},        {8},         {},        16,   2,    2,    true,   false, 0.7,      H::kClsToken, 0.5,      5.0,       false},
    }, 16);
    // clang-format on
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

/// Calls f(name, member) for every field of an EncoderConfig, in declaration order: the one list
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
template <class V>
void field_from_json(const nlohmann::ordered_json& j, V& value, const std::string&) {
  value = j.get<V>();
}

}  // namespace detail

/// {"stem": "video_patches", "stem_key": "rgbt_stem", "input_shape": [3, 2, 224, 224], ...}: every
/// field of EncoderConfig under its own name, enums as strings.
inline nlohmann::ordered_json to_json(const EncoderConfig& c) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  detail::visit_encoder_fields(
      c, [&](const char* name, const auto& value) { j[name] = detail::field_to_json(value); });
  return j;
}

/// Reads what to_json writes. Absent fields keep EncoderConfig's defaults; unknown fields and wrong
/// types throw ValueError naming `where` and the field; the result is validated.
inline EncoderConfig encoder_config_from_json(const nlohmann::ordered_json& j, const std::string& where) {
  BINDERY_CHECK(j.is_object(), ValueError, where, ": expected a JSON object, got ", j.dump());
  EncoderConfig c;
  for (const auto& [key, value] : j.items()) {
    const std::string field = ::bindery::detail::concat(where, ".", key);
    bool known = false;
    try {
      detail::visit_encoder_fields(c, [&](const char* name, auto& member) {
        if (key != name) return;
        known = true;
        detail::field_from_json(value, member, field);
      });
    } catch (const nlohmann::json::exception& e) {
      throw ValueError(::bindery::detail::concat(field, ": ", e.what(), " (value ", value.dump(), ")"));
    }
    BINDERY_CHECK(known, ValueError, field, ": unknown field");
  }
  c.validate(where);
  return c;
}

/// {"model": "imagebind", "encoders": {"vision": {...}, "text": {...}, ...}}.
inline nlohmann::ordered_json to_json(const ImageBindConfig& config) {
  nlohmann::ordered_json j;
  j["model"] = "imagebind";
  nlohmann::ordered_json encoders = nlohmann::ordered_json::object();
  for (const auto& [m, c] : config.encoders) encoders[modality_name(m)] = to_json(c);
  j["encoders"] = std::move(encoders);
  return j;
}

inline ImageBindConfig imagebind_config_from_json(const nlohmann::ordered_json& j) {
  BINDERY_CHECK(j.is_object() && j.contains("encoders") && j["encoders"].is_object(), ValueError,
                "ImageBindConfig JSON: expected {\"model\": \"imagebind\", \"encoders\": {...}}");
  for (const auto& [key, value] : j.items()) {
    BINDERY_CHECK(key == "model" || key == "encoders", ValueError, "ImageBindConfig JSON: unknown field '",
                  key, "'");
    BINDERY_CHECK(key != "model" || value == "imagebind", ValueError,
                  "ImageBindConfig JSON: \"model\" must be \"imagebind\", got ", value.dump());
  }
  ImageBindConfig config;
  for (const auto& [name, value] : j["encoders"].items()) {
    const Modality m = modality_from_name(name);
    config.encoders[m] = encoder_config_from_json(value, ::bindery::detail::concat("encoders.", name));
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

/// Reads a config written by save_config; throws IoError (cannot read) or ValueError (bad JSON, with
/// the field named).
inline ImageBindConfig load_config(const std::string& path) {
  std::ifstream in(path);
  BINDERY_CHECK(in.good(), IoError, "load_config: cannot open '", path, "'");
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(::bindery::detail::concat("load_config: '", path, "' is not valid JSON: ", e.what()));
  }
  return imagebind_config_from_json(j);
}

}  // namespace bindery::models::imagebind
