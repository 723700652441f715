// bindery/models/imagebind/model.hpp — ImageBindModel: the encoders of the modalities it holds.
//
//   using namespace bindery::models::imagebind;
//   auto model = ImageBindModel<float>::from_checkpoint("imagebind_huge.pth", ImageBindConfig::huge(),
//                                                       {Modality::kVision, Modality::kText});
//   Var<float> image = model->encode(Modality::kVision, images);  // (N, 1024), L2-normalized
//   Var<float> text = model->encode(Modality::kText, token_ids);  // (N, 1024), normalized x logit scale
//
// The module tree is the reference's: modality_preprocessors.<m>, modality_trunks.<m>,
// modality_heads.<m>, modality_postprocessors.<m>, so named_parameters() / state_dict() keys are
// the checkpoint's keys, verbatim. A model built for some modalities allocates only their weights,
// and load() reads only their tensors from a .pth or .safetensors file (the other modalities' keys
// are skipped unread; unknown keys, missing keys and shape mismatches are StateDictErrors).
#pragma once

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindery/io/pth.hpp"
#include "bindery/io/safetensors.hpp"
#include "bindery/models/imagebind/config.hpp"
#include "bindery/models/imagebind/encoder.hpp"
#include "bindery/nn/module.hpp"

namespace bindery::models::imagebind {

/// The four stage containers of the reference model, in its order.
inline constexpr std::array<const char*, 4> kStageContainers = {"modality_preprocessors", "modality_trunks",
                                                                "modality_heads", "modality_postprocessors"};

/// The modality a checkpoint key belongs to ("modality_trunks.audio.blocks.0..." -> audio), or none
/// for keys outside the four stage containers.
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
  for (Modality m : kModalities) {
    if (name == modality_name(m)) return m;
  }
  return std::nullopt;
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

/// io::load_pth restricted to the keys `keep` accepts: only their storages are read.
/// TODO(io): replace with a key filter in io::load_pth when it has one.
template <class T, class B, class Keep>
std::vector<std::pair<std::string, Tensor<T, B>>> load_pth_subset(const std::string& path, Keep&& keep) {
  const io::detail::PthArchive archive = io::detail::open_pth(path, io::PthOptions{});
  const auto& storages = archive.pickle.storages;
  std::vector<Tensor<T, B>> loaded(storages.size());
  std::vector<std::pair<std::string, Tensor<T, B>>> out;
  for (const auto& [name, index] : archive.named) {
    if (!keep(name)) continue;
    const io::TensorRecord& t = archive.pickle.tensors[static_cast<size_t>(index)];
    const auto s = static_cast<size_t>(t.storage);
    const Shape shape(t.sizes);
    if (shape.numel() == 0) {
      out.emplace_back(name, Tensor<T, B>::empty(shape));
      continue;
    }
    if (!loaded[s].defined()) {
      loaded[s] = Tensor<T, B>::empty(Shape{storages[s].numel});
      io::read_converted<T, B>(archive.zip.file(), archive.storage_entries[s]->data_offset, storages[s].dtype,
                               storages[s].numel, loaded[s].data(),
                               ::bindery::detail::concat(path, ": tensor '", name, "'"));
    }
    out.emplace_back(name, loaded[s].as_strided(shape, t.strides, t.offset));
  }
  return out;
}

inline bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace detail

/// ImageBind: one Encoder per modality held, registered under the reference's key layout.
template <class T, class B = Cpu>
class ImageBindModel : public nn::Module<T, B> {
 public:
  /// Builds the encoders of `modalities` (all of config's when empty) with weights drawn from `seed`.
  /// The model starts in training mode, as a PyTorch module; call eval() for inference (from_checkpoint
  /// does).
  explicit ImageBindModel(const ImageBindConfig& config, const std::vector<Modality>& modalities = {},
                          uint64_t seed = 0) {
    config.validate();
    std::vector<std::shared_ptr<detail::ModuleDict<T, B>>> containers;
    for (const char* name : kStageContainers) {
      containers.push_back(this->register_module(name, std::make_shared<detail::ModuleDict<T, B>>()));
    }
    for (Modality m : kModalities) {  // the reference's order, whatever the order asked
      const bool wanted = modalities.empty()
                              ? config.has(m)
                              : std::find(modalities.begin(), modalities.end(), m) != modalities.end();
      if (!wanted) continue;
      config_.encoders[m] = config.at(m);  // throws naming m when the config lacks it
      auto encoder = make_encoder<T, B>(config.at(m), nn::init::derive_seed(seed, static_cast<uint64_t>(m)));
      const auto stages = encoder->named_children();  // preprocessor, trunk, head, postprocessor
      for (size_t i = 0; i < containers.size(); ++i) containers[i]->add(modality_name(m), stages[i].second);
      encoders_[m] = std::move(encoder);
    }
  }

  /// A model of `modalities` (all of config's when empty) with the weights of a checkpoint (.pth from
  /// torch.save, or .safetensors), in eval mode. Only those modalities' tensors are read.
  static std::shared_ptr<ImageBindModel> from_checkpoint(const std::string& path,
                                                         const ImageBindConfig& config,
                                                         const std::vector<Modality>& modalities = {}) {
    auto model = std::make_shared<ImageBindModel>(config, modalities);
    model->load(path);
    model->eval();
    return model;
  }

  // ---- structure -------------------------------------------------------------------------------

  bool has(Modality m) const { return encoders_.count(m) != 0; }
  std::vector<Modality> modalities() const { return config_.modalities(); }
  /// The config of the modalities held.
  const ImageBindConfig& config() const { return config_; }
  /// Throws ValueError naming the modality when it is not held.
  Encoder<T, B>& encoder(Modality m) const {
    const auto it = encoders_.find(m);
    BINDERY_CHECK(it != encoders_.end(), ValueError, "ImageBindModel: modality '", modality_name(m),
                  "' is not loaded (held: ", held_names(), ")");
    return *it->second;
  }
  /// Parameter elements of one modality's encoder.
  int64_t num_parameters(Modality m) const { return encoder(m).num_parameters(); }
  using nn::Module<T, B>::num_parameters;

  // ---- inference -------------------------------------------------------------------------------

  /// One modality's embeddings: values (N, ...) or, for text, ids (N, 77) -> (N, out); multi-clip
  /// inputs (rank >= 5: (B, S, ...)) -> (B, out), the clips' embeddings averaged (see Encoder).
  Var<T, B> encode(Modality m, const ModalityInput<T, B>& input) { return encoder(m).encode(input); }
  /// Every stage's output (for parity checks and inspection).
  EncoderStages<T, B> encode_stages(Modality m, const ModalityInput<T, B>& input) {
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
  /// Loads a checkpoint: ".safetensors" (memory-mapped) or else a torch.save ".pth". Reads only the
  /// tensors of the modalities held. Throws IoError / FormatError for a bad file, nn::StateDictError
  /// for keys or shapes that do not fit (see load_weights).
  nn::LoadResult load(const std::string& path, bool strict = true) {
    nn::StateDict<T, B> dict;
    if (detail::ends_with(path, ".safetensors")) {
      const io::SafetensorsFile file = io::SafetensorsFile::open(path);
      for (const std::string& key : file.keys()) {
        if (wants_key(key)) dict.insert(key, file.template load<T, B>(key));
      }
    } else {
      for (auto& [key, value] :
           detail::load_pth_subset<T, B>(path, [this](const std::string& k) { return wants_key(k); }))
        dict.insert(key, std::move(value));
    }
    return load_weights(dict, strict);
  }
  /// Writes every parameter and persistent buffer as safetensors (keys as the reference's).
  void save(const std::string& path) const {
    std::vector<std::pair<std::string, Tensor<T, B>>> tensors;
    for (const auto& [key, value] : this->state_dict()) tensors.emplace_back(key, value);
    io::save_safetensors(path, tensors, {{"format", "pt"}});
  }

 private:
  std::string held_names() const {
    std::string names;
    for (const auto& [m, e] : encoders_) names += (names.empty() ? "" : ", ") + std::string(modality_name(m));
    return names.empty() ? "none" : names;
  }

  ImageBindConfig config_;
  std::map<Modality, std::shared_ptr<Encoder<T, B>>> encoders_;
};

}  // namespace bindery::models::imagebind
