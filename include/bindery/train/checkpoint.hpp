// bindery/train/checkpoint.hpp — training checkpoints: everything a run needs to continue bit for bit.
//
//   const std::string path = train::save_checkpoint(dir, step, model, optimizer, rngs, cursor, user,
//                                                   /*keep_last=*/3);
//   ...
//   const train::CheckpointSearch latest = train::latest_valid_checkpoint(dir);  // newest that verifies
//   if (latest.path) info = train::load_checkpoint(*latest.path, model, optimizer, rngs);
//
// Any optimizer (optim::Optimizer: AdamW, SGD, ...) is saved through its state_dict().
// One file per checkpoint, `<dir>/step-00001234.safetensors`: weights as `model.<key>`, the
// optimizer's tensors as `optim.<i>.<name>` (AdamW's `optim.<i>.exp_avg(_sq)`, SGD's
// `optim.<i>.momentum_buffer`), and a JSON manifest (step, data cursor, RNG states, the
// optimizer's steps and groups, per-tensor CRC-32s, user metadata) in the safetensors metadata;
// train/checkpoint_format.hpp describes it.
//
// Crash safety. save_checkpoint writes the new file completely (atomic rename) before it deletes
// anything, and never deletes the file it just wrote: a process killed at any instant (SIGKILL,
// power loss after the rename's folder fsync) leaves the previous checkpoints or the new one, never
// a torn file under a checkpoint name. A kill mid-write leaves the writer's temporary file
// (`step-XXXXXXXX.safetensors.tmp.XXXXXX`, io::AtomicFileWriter's pattern). Writers of one folder
// hold an exclusive flock on `<dir>/.bindery-checkpoint.lock` while they save; the kernel releases
// it when a process dies, so the next writer, holding the lock, knows that any such temporary file
// is stale and removes it. Other files in the folder are never touched.
//
// Loading checks everything before it changes anything: the manifest (version, checksum), every
// tensor's checksum and dtype, the model's keys and shapes (nn::StateDictError, as
// Module::load_state_dict, naming key and shapes), the optimizer's type (another type: ValueError),
// groups, parameter count, the shapes of its state tensors, which model parameter each one belongs
// to, and its construction hyper-parameters (AdamW's betas/eps, SGD's momentum...: a resume with
// other ones would not be the same run: ValueError). On any error the model,
// optimizer and rngs are unchanged. Damage is a FormatError and missing/unreadable files an
// IoError, each naming the file; those two are what latest_valid_checkpoint skips.
#pragma once

#include <cmath>
#include <unordered_map>

#include "bindery/nn/module.hpp"
#include "bindery/optim/optimizer.hpp"
#include "bindery/train/checkpoint_format.hpp"

namespace bindery::train {

/// A checkpoint latest_valid_checkpoint passed over, and why (the error's message).
struct SkippedCheckpoint {
  std::string path;
  std::string reason;
};

/// latest_valid_checkpoint's answer: the newest checkpoint that verifies (none when the folder
/// holds none, or none that verifies), and the newer ones it skipped, newest first.
struct CheckpointSearch {
  std::optional<std::string> path;
  std::vector<SkippedCheckpoint> skipped;
};

/// "step-00001234.safetensors": the file name of the checkpoint of `step` (>= 8 digits).
inline std::string checkpoint_filename(int64_t step) {
  BINDERY_CHECK(step >= 0, ValueError, "checkpoint_filename: negative step ", step);
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%08lld", static_cast<long long>(step));
  return ::bindery::detail::concat(detail::kPrefix, digits, detail::kSuffix);
}

/// Paths of the checkpoints in `dir` ("step-<digits>.safetensors"), oldest step first. A folder
/// that does not exist holds none; temporary files are not listed.
inline std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> paths;
  for (auto& [step, path] : detail::scan(dir)) paths.push_back(std::move(path));
  return paths;
}

/// The checkpoint of `dir` with the highest step (not verified), or nullopt.
inline std::optional<std::string> latest_checkpoint(const std::string& dir) {
  auto found = detail::scan(dir);
  if (found.empty()) return std::nullopt;
  return std::move(found.back().second);
}

/// Reads the whole checkpoint at `path` and checks it (manifest and every tensor's checksum)
/// without a model. Throws FormatError (damaged), IoError (unreadable) or ValueError (a newer
/// format version), naming the file.
inline CheckpointInfo verify_checkpoint(const std::string& path) {
  detail::OpenCheckpoint ck = detail::open_checkpoint(path);
  for (const auto& t : ck.file.tensors()) {  // one tensor in memory at a time, read with pread
    const uint32_t crc = ck.info.dtype == "F64" ? detail::tensor_crc32(ck.file.read<double, Cpu>(t.name))
                                                : detail::tensor_crc32(ck.file.read<float, Cpu>(t.name));
    if (crc != ck.crcs.at(t.name)) detail::checksum_error(path, t.name, ck.crcs.at(t.name), crc);
  }
  return std::move(ck.info);
}

/// The newest checkpoint of `dir` that verify_checkpoint accepts; newer ones that are damaged or
/// unreadable (FormatError, IoError) are skipped and reported with the reason. Other errors (a newer
/// format version) propagate. A caller that resumes should refuse to start from scratch when
/// `path` is empty but `skipped` is not (every checkpoint is damaged).
inline CheckpointSearch latest_valid_checkpoint(const std::string& dir) {
  CheckpointSearch search;
  auto found = detail::scan(dir);
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    try {
      verify_checkpoint(it->second);
      search.path = it->second;
      break;
    } catch (const FormatError& e) {
      search.skipped.push_back({it->second, e.what()});
    } catch (const IoError& e) {
      search.skipped.push_back({it->second, e.what()});
    }
  }
  return search;
}

namespace detail {

/// The model name of each optimizer slot (group order, then parameter order; "" for a parameter the
/// model does not hold). Recorded so that a load into an optimizer whose groups list the parameters
/// in another order is refused instead of scrambling the per-parameter state.
template <class T, class B>
std::vector<std::string> optimizer_param_names(const nn::Module<T, B>& model,
                                               const optim::Optimizer<T, B>& optimizer) {
  std::unordered_map<const void*, std::string> names;
  for (const auto& [name, var] : model.named_parameters()) names.emplace(var.node().get(), name);
  std::vector<std::string> out;
  for (const auto& group : optimizer.groups()) {
    for (const auto& p : group.params) {
      const auto it = names.find(p.node().get());
      out.push_back(it == names.end() ? std::string() : it->second);
    }
  }
  return out;
}

}  // namespace detail

/// Writes the checkpoint of `step` as `<dir>/step-XXXXXXXX.safetensors` (creating `dir`), atomically,
/// then deletes all but the `keep_last` checkpoints of highest step (0 keeps every one) — never the
/// one just written — and stale temporary files of killed writers (see the file comment). `optimizer`:
/// any optim::Optimizer (AdamW, SGD, ...), stored as its state_dict(). `rngs`: named Philox states
/// (data sampler, dropout streams); `cursor`: the data position; `user`: a JSON object stored as is.
/// Returns the new file's path. Throws ValueError (bad arguments), IoError.
template <class T, class B>
std::string save_checkpoint(const std::string& dir, int64_t step, const nn::Module<T, B>& model,
                            const optim::Optimizer<T, B>& optimizer,
                            const std::map<std::string, Philox>& rngs, int64_t cursor,
                            const nlohmann::json& user = nlohmann::json::object(), int keep_last = 3) {
  BINDERY_CHECK(step >= 0, ValueError, "save_checkpoint(", dir, "): negative step ", step);
  BINDERY_CHECK(keep_last >= 0, ValueError, "save_checkpoint(", dir,
                "): keep_last must be >= 0 (0 keeps all), got ", keep_last);
  BINDERY_CHECK(user.is_object(), ValueError, "save_checkpoint(", dir,
                "): user metadata must be a JSON object, got ", user.type_name());
  const std::string path = (std::filesystem::path(dir) / checkpoint_filename(step)).string();

  std::vector<std::pair<std::string, Tensor<T, B>>> tensors;
  for (const auto& [key, value] : model.state_dict()) tensors.emplace_back("model." + key, value);
  for (const auto& group : optimizer.groups()) {
    BINDERY_CHECK(
        std::isfinite(group.lr) && std::isfinite(group.weight_decay) && std::isfinite(group.initial_lr),
        ValueError, "save_checkpoint(", dir, "): non-finite lr or weight decay in a parameter group");
  }
  optim::OptimizerState<T, B> state = optimizer.state_dict();
  for (auto& [name, tensor] : state.tensors) tensors.emplace_back("optim." + name, std::move(tensor));
  nlohmann::json optimizer_json = std::move(state.hyper);
  optimizer_json["names"] = detail::optimizer_param_names(model, optimizer);
  nlohmann::json crcs = nlohmann::json::object();
  for (const auto& [name, tensor] : tensors) crcs[name] = detail::hex32(detail::tensor_crc32(tensor));
  nlohmann::json rng_states = nlohmann::json::object();
  for (const auto& [name, rng] : rngs)
    rng_states[name] = {{"seed", std::to_string(rng.seed())}, {"offset", std::to_string(rng.offset())}};
  nlohmann::json manifest = {{"format", kCheckpointManifestKey},
                             {"version", kCheckpointFormatVersion},
                             {"dtype", io::dtype_name(io::dtype_of<T>())},
                             {"step", step},
                             {"cursor", cursor},
                             {"rngs", rng_states},
                             {"optimizer", std::move(optimizer_json)},
                             {"tensors", crcs},
                             {"user", user}};
  std::string text;
  try {
    text = manifest.dump();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(
        ::bindery::detail::concat("save_checkpoint(", dir, "): ", e.what(), " (strings must be UTF-8)"));
  }
  const std::map<std::string, std::string> metadata = {
      {kCheckpointManifestKey, text},
      {kCheckpointManifestCrcKey, detail::hex32(detail::crc32_bytes(0, text.data(), text.size()))}};

  std::error_code error;
  if (std::filesystem::create_directories(dir, error)) {
    const std::filesystem::path parent = std::filesystem::absolute(dir).parent_path();
    detail::fsync_folder(parent.empty() ? std::string(".") : parent.string());  // the new folder's entry
  }
  if (error)
    throw IoError(::bindery::detail::concat(dir, ": cannot create the checkpoint folder: ", error.message()));
  const detail::FolderLock lock(dir);
  detail::remove_stale_temps(dir);
  io::save_safetensors(path, tensors, metadata);  // temp file, fsync, rename, folder fsync

  if (keep_last > 0) {
    const auto found = detail::scan(dir);
    const size_t excess = found.size() > static_cast<size_t>(keep_last) ? found.size() - keep_last : 0;
    for (size_t i = 0; i < excess; ++i) {
      if (found[i].second == path) continue;
      if (::unlink(found[i].second.c_str()) != 0 && errno != ENOENT)
        throw io::io_error(found[i].second, "cannot delete an old checkpoint (keep_last ", keep_last, ")");
    }
  }
  return path;
}

namespace detail {

/// Load step 1: the manifest fits this load (dtype of T; every stream the caller holds is saved).
template <class T>
void check_dtype_and_streams(const OpenCheckpoint& ck, const std::map<std::string, Philox>& rngs) {
  const std::string& path = ck.info.path;
  const std::string dtype = io::dtype_name(io::dtype_of<T>());
  BINDERY_CHECK(ck.info.dtype == dtype, ValueError, path, ": the checkpoint holds ", ck.info.dtype,
                " tensors but the model is ", dtype);
  for (const auto& [name, rng] : rngs) {
    BINDERY_CHECK(ck.info.rngs.count(name), nn::StateDictError, path, ": no random stream '", name,
                  "' in the checkpoint (it holds ", ck.info.rngs.size(), ")");
  }
}

/// Load step 2: every tensor, read (pread: no mapping left behind) and checked against its CRC,
/// split into the model's state dict ("model.*") and the optimizer's tensors ("optim.*"). Any other
/// tensor is damage (FormatError).
template <class T, class B>
std::pair<nn::StateDict<T, B>, std::map<std::string, Tensor<T, B>>> read_tensors(const OpenCheckpoint& ck) {
  const std::string& path = ck.info.path;
  nn::StateDict<T, B> model;
  std::map<std::string, Tensor<T, B>> optimizer;
  for (const auto& t : ck.file.tensors()) {
    const Tensor<T, Cpu> host = ck.file.template read<T, Cpu>(t.name);
    const uint32_t crc = tensor_crc32(host);
    if (crc != ck.crcs.at(t.name)) checksum_error(path, t.name, ck.crcs.at(t.name), crc);
    if (t.name.starts_with("model.")) {
      model.insert(t.name.substr(6), host.template to<B>());
    } else if (t.name.starts_with("optim.")) {
      optimizer.emplace(t.name.substr(6), host.template to<B>());
    } else {
      manifest_error(path, "unexpected tensor '", t.name, "'");
    }
  }
  return {std::move(model), std::move(optimizer)};
}

/// Load step 3: the model's keys and shapes match the checkpoint's; else the StateDictError of
/// Module::load_state_dict (missing / unexpected / mis-shaped keys), before anything is written.
template <class T, class B>
void check_model_fits(const std::string& path, nn::Module<T, B>& model, const nn::StateDict<T, B>& dict) {
  const nn::StateDict<T, B> current = model.state_dict();
  bool fits = current.size() == dict.size();
  for (const auto& [key, value] : current) {
    const Tensor<T, B>* stored = dict.find(key);
    fits = fits && stored != nullptr && stored->shape() == value.shape();
  }
  if (fits) return;
  try {
    model.load_state_dict(dict);  // throws, naming the keys and shapes
  } catch (const nn::StateDictError& e) {
    throw nn::StateDictError(::bindery::detail::concat(path, ": ", e.what()));
  }
  throw nn::StateDictError(::bindery::detail::concat(path, ": the model does not fit the checkpoint"));
}

/// Load step 4a: the optimizer's state as the checkpoint stores it, after checking that each slot
/// updates the same model parameter as when it was saved (the manifest's "names").
template <class T, class B>
optim::OptimizerState<T, B> optimizer_state(const OpenCheckpoint& ck, const nn::Module<T, B>& model,
                                            const optim::Optimizer<T, B>& optimizer,
                                            std::map<std::string, Tensor<T, B>> tensors) {
  const std::string& path = ck.info.path;
  const nlohmann::json& o = ck.manifest.at("optimizer");
  const nlohmann::json& type = member(path, o, "type", JsonKind::kString);
  BINDERY_CHECK(type == optimizer.type_name(), ValueError, path, ": the checkpoint's optimizer is ",
                type.get<std::string>(), ", not ", optimizer.type_name(), " (resume with a ",
                type.get<std::string>(), " optimizer)");
  const nlohmann::json& names = member(path, o, "names", JsonKind::kArray);
  const std::vector<std::string> mine = optimizer_param_names(model, optimizer);
  // Other group sizes are the optimizer's to report (load_state_dict names them): check the names
  // only when the groups agree.
  const auto groups = o.find("groups");
  bool same_groups = groups != o.end() && groups->is_array() && groups->size() == optimizer.groups().size();
  for (size_t g = 0; same_groups && g < groups->size(); ++g) {
    const nlohmann::json& group = (*groups)[g];
    same_groups =
        group.is_object() && group.contains("params") && group.at("params").is_number_integer() &&
        group.at("params").get<int64_t>() == static_cast<int64_t>(optimizer.groups()[g].params.size());
  }
  if (same_groups && names.size() != mine.size())
    manifest_error(path, "optimizer names list ", names.size(), " entries for ", mine.size(), " parameters");
  for (size_t k = 0; same_groups && k < mine.size(); ++k) {
    if (!names[k].is_string()) manifest_error(path, "optimizer name ", k, " is ", names[k].dump());
    const std::string& saved = names[k].get_ref<const std::string&>();
    BINDERY_CHECK(saved.empty() || mine[k].empty() || saved == mine[k], nn::StateDictError, path,
                  ": optimizer parameter ", k, " is '", saved, "' in the checkpoint but '", mine[k],
                  "' in this optimizer (groups in another order?)");
  }
  optim::OptimizerState<T, B> state{o, std::move(tensors)};
  state.hyper.erase("names");
  return state;
}

/// Load step 4b: optimizer.load_state_dict (all or nothing), its errors prefixed with the path and
/// keeping their types (ValueError: other type or hyper-parameters; StateDictError: other groups,
/// tensors; FormatError: a malformed manifest).
template <class T, class B>
void restore_optimizer(const std::string& path, optim::Optimizer<T, B>& optimizer,
                       const optim::OptimizerState<T, B>& state) {
  auto prefixed = [&](const Error& e) { return ::bindery::detail::concat(path, ": ", e.what()); };
  try {
    optimizer.load_state_dict(state);
  } catch (const nn::StateDictError& e) {
    throw nn::StateDictError(prefixed(e));
  } catch (const ValueError& e) {
    throw ValueError(prefixed(e));
  } catch (const FormatError& e) {
    throw FormatError(prefixed(e));
  } catch (const ShapeError& e) {
    throw ShapeError(prefixed(e));
  }
}

}  // namespace detail

/// Loads the checkpoint at `path` into `model` (weights and buffers, strict), `optimizer` (any
/// optim::Optimizer of the checkpoint's type: its load_state_dict, so per-parameter state and each
/// group's lr / weight decay / initial lr) and `rngs` (replaced by the checkpoint's streams; a name
/// `rngs` held that the checkpoint lacks is an error). Checks everything first; on error nothing
/// changes (see the file comment for the error types). Another optimizer type is a ValueError.
template <class T, class B>
CheckpointInfo load_checkpoint(const std::string& path, nn::Module<T, B>& model,
                               optim::Optimizer<T, B>& optimizer, std::map<std::string, Philox>& rngs) {
  detail::OpenCheckpoint ck = detail::open_checkpoint(path);  // the manifest, checked
  detail::check_dtype_and_streams<T>(ck, rngs);
  auto [weights, optimizer_tensors] = detail::read_tensors<T, B>(ck);
  detail::check_model_fits(path, model, weights);
  const optim::OptimizerState<T, B> state =
      detail::optimizer_state(ck, model, optimizer, std::move(optimizer_tensors));
  // Everything but the optimizer's own checks has passed; load_state_dict checks before it writes,
  // and the model's load cannot fail once it fits. So the first write is the optimizer's.
  detail::restore_optimizer(path, optimizer, state);
  model.load_state_dict(weights);
  rngs = ck.info.rngs;
  return std::move(ck.info);
}

}  // namespace bindery::train
