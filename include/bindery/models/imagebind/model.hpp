// bindery/models/imagebind/model.hpp — ImageBindModel: the encoders of the modalities it holds.
//
//   ```cpp body
//   const Tensor<float> images = Tensor<float>::zeros({2, 3, 224, 224});
//   const Tensor<int64_t> token_ids = Tensor<int64_t>::zeros({2, 77});
//   auto model = ib::ImageBindModel<float>::from_checkpoint("imagebind_huge.pth",
//   ib::ImageBindConfig::huge(),
//                                                           {ib::Modality::kVision, ib::Modality::kText});
//   Var<float> image = model->encode(ib::Modality::kVision, images);  // (N, 1024), L2-normalized
//   Var<float> text = model->encode(ib::Modality::kText, token_ids);  // (N, 1024), normalized x logit scale
//   // A modality of your own, with your own module (any forward giving (N, 1024)):
//   model->add_encoder(ib::Modality("trajectory"),
//                      ib::make_module_encoder(std::make_shared<nn::Linear<float>>(192, 1024)));
//   ```
//
// The module tree is the reference's: modality_preprocessors.<m>, modality_trunks.<m>,
// modality_heads.<m>, modality_postprocessors.<m>, so named_parameters() / state_dict() keys are
// the checkpoint's keys, verbatim. A model built for some modalities allocates only their weights,
// and load() reads only their tensors from a .pth or .safetensors file (the other modalities' keys
// are skipped unread; unknown keys, missing keys and shape mismatches are StateDictErrors), one
// tensor at a time straight into the model's weights: loading costs about the model's size.
#pragma once

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bindery/io/pth.hpp"
#include "bindery/io/safetensors.hpp"
#include "bindery/models/imagebind/config.hpp"
#include "bindery/models/imagebind/encoder.hpp"
#include "bindery/nn/lowp_io.hpp"
#include "bindery/nn/module.hpp"

namespace bindery::models::imagebind {

/// The four stage containers of the reference model, in its order.
inline constexpr std::array<const char*, 4> kStageContainers = {"modality_preprocessors", "modality_trunks",
                                                                "modality_heads", "modality_postprocessors"};

/// The modality a checkpoint key belongs to ("modality_trunks.audio.blocks.0..." -> audio, and
/// "modality_trunks.trajectory.fc1.weight" -> Modality("trajectory")), or none for keys outside the
/// four stage containers (or whose second component is not a modality name).
inline std::optional<Modality> key_modality(std::string_view key) {
  const size_t first = key.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const std::string_view container = key.substr(0, first);
  bool known = false;
  for (const char* c : kStageContainers) known = known || container == c;
  if (!known) return std::nullopt;
  const size_t second = key.find('.', first + 1);
  const std::string_view name =
      key.substr(first + 1, second == std::string_view::npos ? key.npos : second - first - 1);
  if (!Modality::is_valid_name(name)) return std::nullopt;
  return Modality(name);
}

namespace detail {

/// torch.nn.ModuleDict: children by name.
template <class T, class B>
class ModuleDict : public nn::Module<T, B> {
 public:
  void add(const std::string& name, std::shared_ptr<nn::Module<T, B>> module) {
    this->register_module(name, std::move(module));
  }
};

inline bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The checks of nn::Module::load_state_dict on a checkpoint's (key, shape) list, before any data
/// is read: shape mismatches always, missing and unexpected keys when `strict`, all listed in one
/// StateDictError. Returns the missing and unexpected keys otherwise.
template <class T, class B>
nn::LoadResult check_checkpoint_fit(const nn::StateDict<T, B>& targets,
                                    const std::vector<std::pair<std::string, Shape>>& found, bool strict,
                                    const std::string& path) {
  nn::LoadResult result;
  std::vector<std::string> mismatched;
  std::unordered_set<std::string> present;
  for (const auto& [key, shape] : found) {
    present.insert(key);
    const Tensor<T, B>* target = targets.find(key);
    if (target == nullptr) {
      result.unexpected_keys.push_back(key);
    } else if (!(target->shape() == shape)) {
      mismatched.push_back(
          ::bindery::detail::concat(key, ": checkpoint ", shape, " vs model ", target->shape()));
    }
  }
  for (const auto& [key, value] : targets) {
    if (!present.count(key)) result.missing_keys.push_back(key);
  }
  const bool key_errors = strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty());
  if (!key_errors && mismatched.empty()) return result;
  std::string message =
      ::bindery::detail::concat("ImageBindModel::load(", path, "): the checkpoint does not fit the model");
  auto list = [&message](const char* what, const std::vector<std::string>& items) {
    if (items.empty()) return;
    message += ::bindery::detail::concat("\n  ", what, " (", items.size(), "): ");
    for (size_t i = 0; i < items.size(); ++i) message += (i ? ", " : "") + items[i];
  };
  if (strict) list("missing keys", result.missing_keys);
  if (strict) list("unexpected keys", result.unexpected_keys);
  list("shape mismatches", mismatched);
  throw nn::StateDictError(message);
}

}  // namespace detail

/// ImageBind: one Encoder per modality held, registered under the reference's key layout.
template <class T, class B = Cpu>
class ImageBindModel : public nn::Module<T, B> {
 public:
  /// Builds the encoders of `modalities` (all of config's when empty) with weights drawn from `seed`.
  /// The model starts in training mode, as a PyTorch module; call eval() for inference (from_checkpoint
  /// does). Encoders are registered in the config's order (the six built-in modalities in the
  /// reference's order, then the user's by name), whatever the order asked.
  explicit ImageBindModel(const ImageBindConfig& config, const std::vector<Modality>& modalities = {},
                          uint64_t seed = 0) {
    config.validate();
    for (const Modality& m : modalities) config.at(m);  // throws naming m when the config lacks it
    for (const char* name : kStageContainers) {
      containers_.push_back(this->register_module(name, std::make_shared<detail::ModuleDict<T, B>>()));
    }
    for (const auto& [m, spec] : config.encoders) {
      const bool wanted =
          modalities.empty() || std::find(modalities.begin(), modalities.end(), m) != modalities.end();
      if (!wanted) continue;
      config_.encoders[m] = spec;
      insert_encoder(m, make_encoder<T, B>(spec, nn::init::derive_seed(seed, modality_seed_index(m))));
    }
  }

  /// Adds the encoder of a modality of your own (or of a built-in one the model does not hold): any
  /// Encoder whose children are among `preprocessor`, `trunk`, `head` and `postprocessor` (what
  /// make_encoder and make_module_encoder build), registered as the reference registers its own:
  /// `modality_trunks.<name>.<keys>`, ... So it is saved, loaded, trained and encoded with the rest.
  /// A spec-built encoder (make_encoder(spec)) also enters config() (save_config writes it, and
  /// bindery-embed can rebuild it); pass the spec as the third argument for that. Throws ValueError
  /// when the modality is already held or the encoder has other children or parameters of its own.
  void add_encoder(const Modality& m, std::shared_ptr<Encoder<T, B>> encoder,
                   const std::optional<EncoderSpec>& spec = std::nullopt) {
    BINDERY_CHECK(encoder != nullptr, ValueError, "ImageBindModel::add_encoder(", m,
                  "): the encoder is null");
    BINDERY_CHECK(!has(m), ValueError, "ImageBindModel::add_encoder: modality '", m, "' is already held (",
                  held_names(), ")");
    BINDERY_CHECK(encoder->named_parameters(false).empty() && encoder->named_buffers(false).empty(),
                  ValueError, "ImageBindModel::add_encoder(", m,
                  "): the encoder has parameters or buffers of its own; put them in one of its stages ",
                  "(preprocessor, trunk, head, postprocessor), or wrap your module with make_module_encoder");
    for (const auto& [name, child] : encoder->named_children()) {
      BINDERY_CHECK(stage_index(name) >= 0, ValueError, "ImageBindModel::add_encoder(", m,
                    "): the encoder has a child '", name,
                    "'; an encoder's children are its stages: preprocessor, trunk, head, postprocessor");
    }
    if (spec) {
      spec->validate(::bindery::detail::concat("ImageBindModel::add_encoder(", m, ")"));
      config_.encoders[m] = *spec;
    }
    insert_encoder(m, std::move(encoder));
  }

  /// A model of `modalities` (all of config's when empty) with the weights of a checkpoint (.pth from
  /// torch.save, or .safetensors), in eval mode. Only those modalities' tensors are read.
  /// `precision` bf16 / int8 converts the weights as they are read (see load); a bf16 / int8 file
  /// (nn::save_lowp_safetensors) loads at its own precision.
  static std::shared_ptr<ImageBindModel> from_checkpoint(
      const std::string& path, const ImageBindConfig& config, const std::vector<Modality>& modalities = {},
      nn::WeightPrecision precision = nn::WeightPrecision::kFloat32) {
    std::shared_ptr<ImageBindModel> model;
    {
      SkipRandomInit no_init;  // every weight is overwritten by the strict load below
      model = std::make_shared<ImageBindModel>(config, modalities);
    }
    model->load(path, true, precision);
    model->eval();
    return model;
  }

  // ---- structure -------------------------------------------------------------------------------

  bool has(const Modality& m) const { return encoders_.count(m) != 0; }
  /// The modalities held: the built-in ones in the reference's order, then the user's by name.
  std::vector<Modality> modalities() const {
    std::vector<Modality> out;
    for (const auto& [m, e] : encoders_) out.push_back(m);
    return out;
  }
  /// The specs of the spec-built encoders held (an encoder added without a spec is not in it).
  const ImageBindConfig& config() const { return config_; }
  /// The shared encoder of a modality (for a Trainer's module map, or to keep it beyond the model).
  std::shared_ptr<Encoder<T, B>> encoder_ptr(const Modality& m) const {
    const auto it = encoders_.find(m);
    BINDERY_CHECK(it != encoders_.end(), ValueError, "ImageBindModel: modality '", modality_name(m),
                  "' is not loaded (held: ", held_names(), ")");
    return it->second;
  }
  /// Throws ValueError naming the modality when it is not held.
  Encoder<T, B>& encoder(const Modality& m) const { return *encoder_ptr(m); }
  /// Parameter elements of one modality's encoder.
  int64_t num_parameters(const Modality& m) const { return encoder(m).num_parameters(); }
  using nn::Module<T, B>::num_parameters;

  // ---- inference -------------------------------------------------------------------------------

  /// One modality's embeddings: values (N, ...) or, for text, ids (N, 77) -> (N, out); multi-clip
  /// inputs (rank >= 5: (B, S, ...)) -> (B, out), the clips' embeddings averaged (see Encoder).
  Var<T, B> encode(const Modality& m, const ModalityInput<T, B>& input) { return encoder(m).encode(input); }
  /// Every stage's output (for parity checks and inspection).
  EncoderStages<T, B> encode_stages(const Modality& m, const ModalityInput<T, B>& input) {
    return encoder(m).encode_stages(input);
  }
  /// The reference's forward: a map modality -> input, to modality -> embedding.
  std::map<Modality, Var<T, B>> forward(const std::map<Modality, ModalityInput<T, B>>& inputs) {
    std::map<Modality, Var<T, B>> out;
    for (const auto& [m, input] : inputs) out.emplace(m, encode(m, input));
    return out;
  }

  // ---- weights ---------------------------------------------------------------------------------

  /// True for the keys this model loads: those of the modalities it holds, and keys outside the
  /// stage containers (so that a strict load reports them as unexpected).
  bool wants_key(const std::string& key) const {
    const std::optional<Modality> m = key_modality(key);
    return !m || has(*m);
  }
  /// load_state_dict after dropping the keys of the modalities not held. Strict by default: a missing
  /// or unexpected key, or a shape mismatch, throws nn::StateDictError listing every problem, and
  /// nothing is written.
  nn::LoadResult load_weights(const nn::StateDict<T, B>& dict, bool strict = true) {
    nn::StateDict<T, B> kept;
    for (const auto& [key, value] : dict) {
      if (wants_key(key)) kept.insert(key, value);
    }
    return this->load_state_dict(kept, strict);
  }
  /// Loads a checkpoint: ".safetensors", or else a torch.save ".pth". Reads only the tensors of the
  /// modalities held, and streams them: each is read, copied into its parameter or buffer and
  /// released, so the peak memory is the model plus its largest tensor, not twice the model.
  /// Keys and shapes are checked from the file's header before any weight is read, as load_weights
  /// checks them (strict: missing or unexpected keys are errors too): nn::StateDictError listing every
  /// problem, and nothing is written. IoError / FormatError for a bad file (a file that fails while
  /// its data is read leaves the model partly loaded).
  ///
  /// `precision` bf16 or int8 converts every Linear and attention-projection weight as it is read
  /// (what nn::quantize does after an fp32 load, with the same bits, but without ever holding the
  /// fp32 weights: the peak memory is about the converted model plus one fp32 tensor), then puts
  /// the model in eval mode with gradients off. A file written by nn::save_lowp_safetensors
  /// (`bindery-embed convert`) loads at its own precision, its bf16 / int8 weights taken from their
  /// bytes; asking it for the other low precision is a ValueError. Only float models on the CPU
  /// hold bf16 / int8 weights (ValueError otherwise).
  nn::LoadResult load(const std::string& path, bool strict = true,
                      nn::WeightPrecision precision = nn::WeightPrecision::kFloat32) {
    constexpr bool kLowpCapable = std::is_same_v<T, float> && std::is_same_v<B, Cpu>;
    const io::KeyFilter wanted = [this](const std::string& key) { return wants_key(key); };
    const bool safetensors = detail::ends_with(path, ".safetensors");
    std::map<std::string, nn::LowpSlot> slots;
    if constexpr (kLowpCapable) slots = nn::lowp_slots(*this);
    std::vector<std::pair<std::string, Shape>> found;  // the checkpoint's wanted keys, from its header
    std::optional<io::SafetensorsFile> file;
    std::unordered_set<std::string> scale_keys;  // int8 scales: read with their weight
    nn::WeightPrecision stored = nn::WeightPrecision::kFloat32;
    if (safetensors) {
      file = io::SafetensorsFile::open(path);
      const auto meta = file->metadata().find(nn::kLowpMetadataKey);
      BINDERY_CHECK(kLowpCapable || meta == file->metadata().end() || meta->second != "int8", ValueError,
                    "ImageBindModel::load(", path,
                    "): the file holds int8 weights, which only a float model on ", "the CPU can hold");
      for (const auto& t : file->tensors()) {
        if (!wanted(t.name) || !slots.count(t.name)) continue;
        const nn::WeightPrecision p = nn::stored_precision(*file, t.name);
        if (p == nn::WeightPrecision::kFloat32) continue;
        BINDERY_CHECK(stored == nn::WeightPrecision::kFloat32 || stored == p, ValueError,
                      "ImageBindModel::load(", path, "): the file mixes ", nn::to_string(stored), " and ",
                      nn::to_string(p), " weights");
        stored = p;
        if (p == nn::WeightPrecision::kInt8) scale_keys.insert(t.name + nn::kLowpScaleSuffix);
      }
      for (const auto& t : file->tensors()) {
        if (wanted(t.name) && !scale_keys.count(t.name)) found.emplace_back(t.name, t.shape);
      }
    } else {
      io::PthOptions options;
      options.key_filter = wanted;
      for (const io::PthTensorInfo& t : io::inspect_pth(path, options)) found.emplace_back(t.name, t.shape);
    }
    if (stored != nn::WeightPrecision::kFloat32) {
      BINDERY_CHECK(precision == nn::WeightPrecision::kFloat32 || precision == stored, ValueError,
                    "ImageBindModel::load(", path, "): the file holds ", nn::to_string(stored),
                    " weights; load it as ", nn::to_string(stored), ", or convert the fp32 checkpoint to ",
                    nn::to_string(precision), " at load");
      precision = stored;
    }
    BINDERY_CHECK(kLowpCapable || precision == nn::WeightPrecision::kFloat32, ValueError,
                  "ImageBindModel::load(", path, "): ", nn::to_string(precision),
                  " weights need a float model on the CPU");
    const nn::StateDict<T, B> targets = this->state_dict();  // handles on the model's own storage
    nn::LoadResult result = detail::check_checkpoint_fit(targets, found, strict, path);
    bool converted = false;
    auto copy_in = [&](const std::string& key, const Tensor<T, B>& value) {
      const Tensor<T, B>* target = targets.find(key);
      if (target == nullptr) return;  // unexpected, not strict
      BINDERY_CHECK(value.shape() == target->shape(), nn::StateDictError, "ImageBindModel::load(", path,
                    "): ", key, " has shape ", value.shape(), " but its header said ", target->shape(),
                    " (the file changed while it was read?)");
      if constexpr (kLowpCapable) {
        const auto slot = slots.find(key);
        if (precision != nn::WeightPrecision::kFloat32 && slot != slots.end()) {
          const Tensor<T, B> dense = value.contiguous();
          slot->second.install(nn::convert_lowp_blocks(precision, dense.data(), slot->second));
          converted = true;
          return;
        }
      }
      Tensor<T, B> destination = *target;
      destination.copy_(value);
    };
    if (safetensors) {
      std::vector<float> scratch;              // one fp32 weight at a time on its way to bf16 / int8
      for (const auto& t : file->tensors()) {  // data order, one tensor in memory at a time
        if (!wanted(t.name) || scale_keys.count(t.name)) continue;
        if constexpr (kLowpCapable) {
          const auto slot = slots.find(t.name);
          if (slot != slots.end() && nn::stored_precision(*file, t.name) != nn::WeightPrecision::kFloat32) {
            slot->second.install(nn::read_lowp_blocks(*file, t.name, slot->second));
            converted = true;
            continue;
          }
          if (slot != slots.end() && precision != nn::WeightPrecision::kFloat32 &&
              targets.find(t.name) != nullptr) {
            scratch.resize(static_cast<size_t>(t.shape.numel()));
            file->template read_into<float>(t.name, scratch.data());
            slot->second.install(nn::convert_lowp_blocks(precision, scratch.data(), slot->second));
            converted = true;
            continue;
          }
        }
        if constexpr (B::kHostAccessible) {  // an fp32 weight kept as it is: read in place, no copy
          const Tensor<T, B>* target = targets.find(t.name);
          const bool convert = precision != nn::WeightPrecision::kFloat32 && slots.count(t.name) != 0;
          if (target != nullptr && !convert && target->is_contiguous() && target->shape() == t.shape) {
            Tensor<T, B> destination = *target;
            file->template read_into<T>(t.name, destination.data());
            continue;
          }
        }
        copy_in(t.name, file->template read<T, B>(t.name));
      }
    } else {
      io::PthOptions options;
      options.key_filter = wanted;
      io::for_each_pth_tensor<T, B>(path, copy_in, options);
    }
    if (converted) {
      this->eval();
      this->set_requires_grad(false);
      if constexpr (std::is_same_v<B, Cpu>) Cpu::empty_cache();  // the fp32 tensors read on the way
    }
    return result;
  }
  /// Writes every parameter and persistent buffer as safetensors (keys as the reference's); a model
  /// with bf16 / int8 weights writes them in their own dtype (nn::save_lowp_safetensors).
  void save(const std::string& path) const {
    if constexpr (std::is_same_v<T, float> && std::is_same_v<B, Cpu>) {
      // The walk over the modules only reads them; lowp_slots takes them non-const for load's sake.
      nn::save_lowp_safetensors(const_cast<ImageBindModel&>(*this), path);
      return;
    }
    std::vector<std::pair<std::string, Tensor<T, B>>> tensors;
    for (const auto& [key, value] : this->state_dict()) tensors.emplace_back(key, value);
    io::save_safetensors(path, tensors, {{"format", "pt"}});
  }

 private:
  static int stage_index(const std::string& name) {
    static constexpr std::array<const char*, 4> kStages = {"preprocessor", "trunk", "head", "postprocessor"};
    for (size_t i = 0; i < kStages.size(); ++i) {
      if (name == kStages[i]) return static_cast<int>(i);
    }
    return -1;
  }
  /// Registers the encoder's stages in the four containers under the modality's name.
  void insert_encoder(const Modality& m, std::shared_ptr<Encoder<T, B>> encoder) {
    for (const auto& [name, stage] : encoder->named_children())
      containers_[static_cast<size_t>(stage_index(name))]->add(modality_name(m), stage);
    encoders_[m] = std::move(encoder);
  }
  std::string held_names() const {
    std::string names;
    for (const auto& [m, e] : encoders_) names += (names.empty() ? "" : ", ") + std::string(modality_name(m));
    return names.empty() ? "none" : names;
  }

  ImageBindConfig config_;
  std::vector<std::shared_ptr<detail::ModuleDict<T, B>>> containers_;
  std::map<Modality, std::shared_ptr<Encoder<T, B>>> encoders_;
};

}  // namespace bindery::models::imagebind
