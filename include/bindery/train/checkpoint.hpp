// bindery/train/checkpoint.hpp — training checkpoints: everything a run needs to continue bit for bit.
//
//   const std::string path = train::save_checkpoint(dir, step, model, optimizer, rngs, cursor, user,
//                                                   /*keep_last=*/3);
//   ...
//   const train::CheckpointSearch latest = train::latest_valid_checkpoint(dir);  // newest that verifies
//   if (latest.path) info = train::load_checkpoint(*latest.path, model, optimizer, rngs);
//
// One file per checkpoint, `<dir>/step-00001234.safetensors`: weights as `model.<key>`, AdamW
// moments as `optim.<i>.exp_avg(_sq)`, and a JSON manifest (step, data cursor, RNG states, the
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
// Module::load_state_dict, naming key and shapes), the optimizer's groups, parameter count, the
// shapes of its moments, which model parameter each one belongs to, and its betas/eps (a resume
// with other hyperparameters would not be the same run: ValueError). On any error the model,
// optimizer and rngs are unchanged. Damage is a FormatError and missing/unreadable files an
// IoError, each naming the file; those two are what latest_valid_checkpoint skips.
#pragma once

#include <array>
#include <cmath>
#include <set>
#include <unordered_map>

#include "bindery/nn/module.hpp"
#include "bindery/optim/adamw.hpp"
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

/// Writes the checkpoint of `step` as `<dir>/step-XXXXXXXX.safetensors` (creating `dir`), atomically,
/// then deletes all but the `keep_last` checkpoints of highest step (0 keeps every one) — never the
/// one just written — and stale temporary files of killed writers (see the file comment). `rngs`:
/// named Philox states (data sampler, dropout streams); `cursor`: the data position; `user`: a JSON
/// object stored as is. Returns the new file's path. Throws ValueError (bad arguments), IoError.
template <class T, class B>
std::string save_checkpoint(const std::string& dir, int64_t step, const nn::Module<T, B>& model,
                            const optim::AdamW<T, B>& optimizer, const std::map<std::string, Philox>& rngs,
                            int64_t cursor, const nlohmann::json& user = nlohmann::json::object(),
                            int keep_last = 3) {
  BINDERY_CHECK(step >= 0, ValueError, "save_checkpoint(", dir, "): negative step ", step);
  BINDERY_CHECK(keep_last >= 0, ValueError, "save_checkpoint(", dir,
                "): keep_last must be >= 0 (0 keeps all), got ", keep_last);
  BINDERY_CHECK(user.is_object(), ValueError, "save_checkpoint(", dir,
                "): user metadata must be a JSON object, got ", user.type_name());
  const std::string path = (std::filesystem::path(dir) / checkpoint_filename(step)).string();

  std::vector<std::pair<std::string, Tensor<T, B>>> tensors;
  for (const auto& [key, value] : model.state_dict()) tensors.emplace_back("model." + key, value);
  // Which model parameter each optimizer slot updates: recorded so that a load into an optimizer
  // whose groups list the parameters in another order is refused instead of scrambling the moments.
  std::unordered_map<const void*, std::string> names;
  for (const auto& [name, var] : model.named_parameters()) names.emplace(var.node().get(), name);
  nlohmann::json groups = nlohmann::json::array(), steps = nlohmann::json::array(),
                 param_names = nlohmann::json::array();
  size_t k = 0;
  for (const auto& group : optimizer.groups()) {
    BINDERY_CHECK(
        std::isfinite(group.lr) && std::isfinite(group.weight_decay) && std::isfinite(group.initial_lr),
        ValueError, "save_checkpoint(", dir, "): non-finite lr or weight decay in a parameter group");
    groups.push_back({{"lr", group.lr},
                      {"weight_decay", group.weight_decay},
                      {"initial_lr", group.initial_lr},
                      {"params", group.params.size()}});
    for (const auto& p : group.params) {
      const auto it = names.find(p.node().get());
      param_names.push_back(it == names.end() ? std::string() : it->second);
    }
  }
  const auto& state = optimizer.state();
  BINDERY_CHECK(state.size() == param_names.size(), ValueError, "save_checkpoint(", dir,
                "): the optimizer holds ", state.size(), " states for ", param_names.size(), " parameters");
  for (const auto& s : state) {
    steps.push_back(s.step);
    if (s.exp_avg.defined()) {
      tensors.emplace_back(::bindery::detail::concat("optim.", k, ".exp_avg"), s.exp_avg);
      tensors.emplace_back(::bindery::detail::concat("optim.", k, ".exp_avg_sq"), s.exp_avg_sq);
    }
    ++k;
  }
  nlohmann::json crcs = nlohmann::json::object();
  for (const auto& [name, tensor] : tensors) crcs[name] = detail::hex32(detail::tensor_crc32(tensor));
  nlohmann::json rng_states = nlohmann::json::object();
  for (const auto& [name, rng] : rngs)
    rng_states[name] = {{"seed", std::to_string(rng.seed())}, {"offset", std::to_string(rng.offset())}};
  const optim::AdamWOptions& options = optimizer.options();
  nlohmann::json manifest = {{"format", kCheckpointManifestKey},
                             {"version", kCheckpointFormatVersion},
                             {"dtype", io::dtype_name(io::dtype_of<T>())},
                             {"step", step},
                             {"cursor", cursor},
                             {"rngs", rng_states},
                             {"optimizer",
                              {{"type", "AdamW"},
                               {"beta1", options.beta1},
                               {"beta2", options.beta2},
                               {"eps", options.eps},
                               {"groups", groups},
                               {"steps", steps},
                               {"names", param_names}}},
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

/// Loads the checkpoint at `path` into `model` (weights and buffers, strict), `optimizer` (moments,
/// per-parameter steps, each group's lr / weight decay / initial lr) and `rngs` (replaced by the
/// checkpoint's streams; a name `rngs` held that the checkpoint lacks is an error). Checks
/// everything first; on error nothing changes (see the file comment for the error types).
template <class T, class B>
CheckpointInfo load_checkpoint(const std::string& path, nn::Module<T, B>& model,
                               optim::AdamW<T, B>& optimizer, std::map<std::string, Philox>& rngs) {
  detail::OpenCheckpoint ck = detail::open_checkpoint(path);
  const std::string dtype = io::dtype_name(io::dtype_of<T>());
  BINDERY_CHECK(ck.info.dtype == dtype, ValueError, path, ": the checkpoint holds ", ck.info.dtype,
                " tensors but the model is ", dtype);
  for (const auto& [name, rng] : rngs) {
    BINDERY_CHECK(ck.info.rngs.count(name), nn::StateDictError, path, ": no random stream '", name,
                  "' in the checkpoint (it holds ", ck.info.rngs.size(), ")");
  }

  // Every tensor, read (pread: no mapping left behind) and checked against its CRC.
  std::map<std::string, Tensor<T, B>> loaded;
  for (const auto& t : ck.file.tensors()) {
    const Tensor<T, Cpu> host = ck.file.template read<T, Cpu>(t.name);
    const uint32_t crc = detail::tensor_crc32(host);
    if (crc != ck.crcs.at(t.name)) detail::checksum_error(path, t.name, ck.crcs.at(t.name), crc);
    loaded.emplace(t.name, host.template to<B>());
  }

  // The model: build its state dict; if it does not fit, load_state_dict throws its StateDictError
  // (missing / unexpected / mis-shaped keys) before writing anything.
  nn::StateDict<T, B> dict;
  std::set<std::string> used;
  for (const auto& [name, tensor] : loaded) {
    if (name.starts_with("model.")) {
      dict.insert(name.substr(6), tensor);
      used.insert(name);
    }
  }
  auto load_model = [&] {
    try {
      model.load_state_dict(dict);
    } catch (const nn::StateDictError& e) {
      throw nn::StateDictError(::bindery::detail::concat(path, ": ", e.what()));
    }
  };
  {
    const nn::StateDict<T, B> current = model.state_dict();
    bool fits = current.size() == dict.size();
    for (const auto& [key, value] : current) {
      const Tensor<T, B>* stored = dict.find(key);
      fits = fits && stored != nullptr && stored->shape() == value.shape();
    }
    if (!fits) load_model();  // throws, naming the keys and shapes
  }

  // The optimizer: same groups, parameters, shapes, hyperparameters.
  const nlohmann::json& o = ck.manifest.at("optimizer");
  const nlohmann::json& type = detail::member(path, o, "type", detail::JsonKind::kString);
  BINDERY_CHECK(type == "AdamW", ValueError, path, ": the checkpoint's optimizer is ", type.dump(),
                ", not AdamW");
  const optim::AdamWOptions& options = optimizer.options();
  for (const auto& [key, mine] : {std::pair<const char*, double>{"beta1", options.beta1},
                                  {"beta2", options.beta2},
                                  {"eps", options.eps}}) {
    const double saved = detail::double_member(path, o, key);
    BINDERY_CHECK(saved == mine, ValueError, path, ": the checkpoint's AdamW ", key, " is ", saved,
                  " but the optimizer's is ", mine, " (construct AdamW with the checkpoint's options)");
  }
  const nlohmann::json& groups = detail::member(path, o, "groups", detail::JsonKind::kArray);
  const nlohmann::json& steps = detail::member(path, o, "steps", detail::JsonKind::kArray);
  const nlohmann::json& names = detail::member(path, o, "names", detail::JsonKind::kArray);
  auto& my_groups = optimizer.groups();
  auto group_sizes = [](const auto& list, auto size_of) {
    std::string s = "(";
    for (size_t i = 0; i < list.size(); ++i) s += (i ? ", " : "") + std::to_string(size_of(list[i]));
    return s + ")";
  };
  std::vector<int64_t> saved_sizes;
  for (const auto& g : groups) {
    if (!g.is_object()) detail::manifest_error(path, "optimizer groups must be objects");
    saved_sizes.push_back(detail::int_member(path, g, "params"));
  }
  bool same_groups = saved_sizes.size() == my_groups.size();
  for (size_t i = 0; same_groups && i < my_groups.size(); ++i)
    same_groups = saved_sizes[i] == static_cast<int64_t>(my_groups[i].params.size());
  BINDERY_CHECK(same_groups, nn::StateDictError, path, ": the checkpoint's optimizer has groups of ",
                group_sizes(saved_sizes, [](int64_t n) { return n; }), " parameters but this optimizer has ",
                group_sizes(my_groups, [](const auto& g) { return g.params.size(); }));
  const size_t count = optim::detail::count_params(my_groups);
  if (steps.size() != count || names.size() != count)
    detail::manifest_error(path, "optimizer steps/names list ", steps.size(), "/", names.size(),
                           " entries for ", count, " parameters");
  std::unordered_map<const void*, std::string> model_names;
  for (const auto& [name, var] : model.named_parameters()) model_names.emplace(var.node().get(), name);
  std::vector<optim::AdamWState<T, B>> states(count);
  size_t k = 0;
  for (const auto& group : my_groups) {
    for (const auto& p : group.params) {
      const std::string key = ::bindery::detail::concat("optim.", k);
      if (!steps[k].is_number_integer() || steps[k].get<int64_t>() < 0 || !names[k].is_string())
        detail::manifest_error(path, "optimizer entry ", k, ": step ", steps[k].dump(), ", name ",
                               names[k].dump());
      const std::string& saved_name = names[k].get_ref<const std::string&>();
      const auto mine = model_names.find(p.node().get());
      BINDERY_CHECK(saved_name.empty() || mine == model_names.end() || mine->second == saved_name,
                    nn::StateDictError, path, ": optimizer parameter ", k, " is '", saved_name,
                    "' in the checkpoint but '", mine->second,
                    "' in this optimizer (groups in another order?)");
      states[k].step = steps[k].get<int64_t>();
      const auto m = loaded.find(key + ".exp_avg");
      const auto v = loaded.find(key + ".exp_avg_sq");
      if (m != loaded.end() || v != loaded.end()) {
        if (m == loaded.end() || v == loaded.end())
          detail::manifest_error(path, "optimizer parameter ", k, " has only one of exp_avg / exp_avg_sq");
        for (const auto& it : {m, v}) {
          BINDERY_CHECK(it->second.shape() == p.shape(), nn::StateDictError, path, ": optimizer state '",
                        it->first, "' of shape ", it->second.shape(), " does not fit parameter ", k,
                        mine == model_names.end() ? std::string() : " ('" + mine->second + "')", " of shape ",
                        p.shape());
          used.insert(it->first);
        }
        states[k].exp_avg = m->second;
        states[k].exp_avg_sq = v->second;
      } else if (states[k].step > 0) {
        detail::manifest_error(path, "optimizer parameter ", k, " has step ", states[k].step,
                               " but no exp_avg / exp_avg_sq tensors");
      }
      ++k;
    }
  }
  for (const auto& [name, tensor] : loaded) {
    if (!used.count(name)) detail::manifest_error(path, "unexpected tensor '", name, "'");
  }
  std::vector<std::array<double, 3>> hyper;  // lr, weight_decay, initial_lr per group
  for (const auto& g : groups) {
    hyper.push_back({detail::double_member(path, g, "lr"), detail::double_member(path, g, "weight_decay"),
                     detail::double_member(path, g, "initial_lr")});
    BINDERY_CHECK(hyper.back()[0] >= 0 && hyper.back()[1] >= 0, ValueError, path,
                  ": negative lr or weight decay in the checkpoint's optimizer groups");
  }

  // Everything fits: apply. Nothing below throws for a reason the checks above did not rule out.
  load_model();
  optimizer.load_state(states);
  for (size_t i = 0; i < my_groups.size(); ++i) {
    my_groups[i].lr = hyper[i][0];
    my_groups[i].weight_decay = hyper[i][1];
    my_groups[i].initial_lr = hyper[i][2];
  }
  rngs = ck.info.rngs;
  return std::move(ck.info);
}

}  // namespace bindery::train
