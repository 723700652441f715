// bindery/train/checkpoint_format.hpp — the file format of training checkpoints (the API is in
// train/checkpoint.hpp): file names, the manifest, checksums, and the folder lock of writers.
//
// One file per checkpoint, `<dir>/step-00001234.safetensors`, written by io::save_safetensors (so
// atomically: temporary file, fsync, rename, folder fsync; any safetensors reader opens it):
//   model.<state_dict key>                 weights and persistent buffers (nn::Module::state_dict)
//   optim.<i>.<name>                        the optimizer's tensors for parameter i (group order,
//                                           then parameter order): its state_dict().tensors, e.g.
//                                           AdamW's exp_avg / exp_avg_sq (absent while its step is
//                                           0), SGD's momentum_buffer
//   __metadata__["bindery.checkpoint"]       the manifest, a JSON document:
//     {"format": "bindery.checkpoint", "version": 1, "dtype": "F32", "step": 1234, "cursor": 5678,
//      "rngs": {"<name>": {"seed": "<uint64 decimal>", "offset": "<uint64 decimal>"}},
//      "optimizer": <the optimizer's state_dict().hyper> + {"names": [model name of each parameter
//                   or ""]}, e.g. {"type": "AdamW", "beta1": .., "beta2": .., "eps": ..,
//                   "groups": [{"lr": .., "weight_decay": .., "initial_lr": .., "params": n}],
//                   "steps": [per-parameter step], "names": [..]} (the layout of every version-1
//                   checkpoint, from before optimizers shared an interface) or {"type": "SGD",
//                   "momentum": .., "dampening": .., "nesterov": .., "groups": [..], "names": [..]},
//      "tensors": {"<tensor name>": "<crc32 of its bytes, 8 hex digits>"}, "user": {...}}
//   __metadata__["bindery.checkpoint.crc32"] the CRC-32 of the manifest text.
// uint64 values are decimal strings (JSON numbers lose them in most readers); doubles (learning
// rates) are written in their shortest round-trip form, so they reload exactly.
//
// Why checksums: the safetensors validation catches a truncated or structurally broken file, but
// not a flipped byte inside tensor data or a changed digit in the manifest. With the CRCs, any
// damage is a FormatError naming the file and the tensor, and latest_valid_checkpoint falls back to
// the previous checkpoint. (zlib's crc32, already a dependency; about a GB/s and more.)
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bindery/core/error.hpp"
#include "bindery/core/philox.hpp"
#include "bindery/io/file.hpp"
#include "bindery/io/json.hpp"
#include "bindery/io/safetensors.hpp"

namespace bindery::train {

inline constexpr int kCheckpointFormatVersion = 1;
inline constexpr const char* kCheckpointManifestKey = "bindery.checkpoint";
inline constexpr const char* kCheckpointManifestCrcKey = "bindery.checkpoint.crc32";
inline constexpr const char* kCheckpointLockName = ".bindery-checkpoint.lock";

/// The non-tensor content of a checkpoint (load_checkpoint / verify_checkpoint).
struct CheckpointInfo {
  std::string path;
  int format_version = kCheckpointFormatVersion;
  std::string dtype;  // of every tensor: "F32" or "F64"
  int64_t step = 0;
  int64_t cursor = 0;  // the data cursor saved with it
  std::map<std::string, Philox> rngs;
  nlohmann::json user = nlohmann::json::object();
};

namespace detail {

inline constexpr std::string_view kPrefix = "step-";
inline constexpr std::string_view kSuffix = ".safetensors";
inline constexpr std::string_view kTempMarker = ".tmp.";  // io::AtomicFileWriter: "<path>.tmp.XXXXXX"

/// CRC-32 (zlib) of `n` bytes, continuing `crc`.
inline uint32_t crc32_bytes(uint32_t crc, const void* data, size_t n) {
  return static_cast<uint32_t>(::crc32_z(crc, static_cast<const Bytef*>(data), n));
}
inline std::string hex32(uint32_t value) {
  char text[9];
  std::snprintf(text, sizeof(text), "%08x", value);
  return text;
}

/// CRC-32 of a tensor's elements in row-major order (the bytes safetensors stores).
template <class T, class B>
uint32_t tensor_crc32(const Tensor<T, B>& t) {
  if constexpr (B::kHostAccessible) {
    if (t.is_contiguous()) return crc32_bytes(0, t.data(), static_cast<size_t>(t.numel()) * sizeof(T));
  }
  const std::vector<T> values = t.to_vector();
  return crc32_bytes(0, values.data(), values.size() * sizeof(T));
}

/// Step of a checkpoint file name "step-<digits>.safetensors", or nullopt.
inline std::optional<int64_t> parse_step(std::string_view name) {
  if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix))
    return std::nullopt;
  const std::string_view digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  int64_t step = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  if (error != std::errc() || end != digits.data() + digits.size() || digits.front() == '-')
    return std::nullopt;
  return step;
}

/// True for io::AtomicFileWriter's temporary file of a checkpoint: "step-<digits>.safetensors.tmp.XXXXXX".
inline bool is_checkpoint_temp(std::string_view name) {
  const size_t marker = name.rfind(kTempMarker);
  return marker != std::string_view::npos && name.size() == marker + kTempMarker.size() + 6 &&
         parse_step(name.substr(0, marker)).has_value();
}

/// Checkpoints of `dir` as (step, path), sorted by step (then name). A missing folder has none.
inline std::vector<std::pair<int64_t, std::string>> scan(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code error;
  fs::directory_iterator it(dir, error);
  if (error == std::errc::no_such_file_or_directory) return found;
  if (error) throw IoError(::bindery::detail::concat(dir, ": cannot list checkpoints: ", error.message()));
  for (; it != fs::directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (const auto step = parse_step(name)) found.emplace_back(*step, (fs::path(dir) / name).string());
  }
  if (error) throw IoError(::bindery::detail::concat(dir, ": cannot list checkpoints: ", error.message()));
  std::sort(found.begin(), found.end());
  return found;
}

inline void fsync_folder(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw io::io_error(dir, "cannot open the folder to fsync it");
  const int synced = ::fsync(fd);
  ::close(fd);
  if (synced != 0) throw io::io_error(dir, "fsync of the folder failed");
}

/// Exclusive flock on `<dir>/.bindery-checkpoint.lock` for the lifetime of the object (see the
/// file comment). The kernel drops it when the process dies, however it dies.
class FolderLock {
 public:
  explicit FolderLock(const std::string& dir)
      : path_((std::filesystem::path(dir) / kCheckpointLockName).string()) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw io::io_error(path_, "cannot open the checkpoint lock file");
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const IoError error = io::io_error(path_, "cannot lock");
      ::close(fd_);
      throw error;
    }
  }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  ~FolderLock() { ::close(fd_); }  // closing the descriptor releases the lock

 private:
  std::string path_;
  int fd_ = -1;
};

/// Removes temporary checkpoint files left by killed writers. Call with the FolderLock held.
inline void remove_stale_temps(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  for (fs::directory_iterator it(dir, error); !error && it != fs::directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (is_checkpoint_temp(name) && ::unlink(it->path().c_str()) != 0 && errno != ENOENT)
      throw io::io_error(it->path().string(), "cannot remove a stale temporary checkpoint file");
  }
  if (error) throw IoError(::bindery::detail::concat(dir, ": cannot list the folder: ", error.message()));
}

template <class... Parts>
[[noreturn]] void manifest_error(const std::string& path, const Parts&... parts) {
  throw FormatError(::bindery::detail::concat(path, ": checkpoint manifest (__metadata__[\"",
                                              kCheckpointManifestKey, "\"]): ", parts...));
}

enum class JsonKind { kString, kObject, kArray, kInteger, kNumber };

/// The member `key` of object `j`, which must exist and be of `kind`.
inline const nlohmann::json& member(const std::string& path, const nlohmann::json& j, const char* key,
                                    JsonKind kind) {
  static constexpr const char* kNames[] = {"a string", "an object", "an array", "an integer", "a number"};
  const auto it = j.find(key);
  if (it == j.end()) manifest_error(path, "missing \"", key, "\"");
  const bool ok = kind == JsonKind::kString    ? it->is_string()
                  : kind == JsonKind::kObject  ? it->is_object()
                  : kind == JsonKind::kArray   ? it->is_array()
                  : kind == JsonKind::kInteger ? it->is_number_integer()
                                               : it->is_number();
  if (!ok)
    manifest_error(path, "\"", key, "\" must be ", kNames[static_cast<int>(kind)], ", got ",
                   io::json_excerpt(*it));
  return *it;
}
inline int64_t int_member(const std::string& path, const nlohmann::json& j, const char* key) {
  const auto& v = member(path, j, key, JsonKind::kInteger);
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    manifest_error(path, "\"", key, "\" = ", v.dump(), " exceeds int64");
  return v.get<int64_t>();
}
inline double double_member(const std::string& path, const nlohmann::json& j, const char* key) {
  return member(path, j, key, JsonKind::kNumber).get<double>();
}
inline uint64_t uint64_string_member(const std::string& path, const nlohmann::json& j, const char* key) {
  const auto& v = member(path, j, key, JsonKind::kString);
  const std::string& text = v.get_ref<const std::string&>();
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size())
    manifest_error(path, "\"", key, "\" = \"", text, "\" is not a decimal uint64");
  return value;
}

/// An open, verified-structure checkpoint: the safetensors file and its parsed manifest.
struct OpenCheckpoint {
  io::SafetensorsFile file;
  nlohmann::json manifest;
  CheckpointInfo info;
  std::map<std::string, uint32_t> crcs;  // tensor name -> CRC-32, exactly the file's tensors
};

/// Opens `path` and checks the manifest: its checksum, format, version, types, and that it lists
/// exactly the file's tensors, each of the checkpoint's dtype. Tensor bytes are not read here.
inline OpenCheckpoint open_checkpoint(const std::string& path) {
  OpenCheckpoint ck{io::SafetensorsFile::open(path), {}, {}, {}};
  const auto& metadata = ck.file.metadata();
  const auto text = metadata.find(kCheckpointManifestKey);
  const auto crc = metadata.find(kCheckpointManifestCrcKey);
  if (text == metadata.end() || crc == metadata.end()) {
    throw FormatError(::bindery::detail::concat(path, ": not a bindery checkpoint (no __metadata__[\"",
                                                kCheckpointManifestKey, "\"] with its crc32)"));
  }
  const std::string actual = hex32(crc32_bytes(0, text->second.data(), text->second.size()));
  if (actual != crc->second)
    manifest_error(path, "checksum ", actual, " differs from the recorded ", crc->second,
                   " (the file is damaged)");
  try {
    ck.manifest =
        io::parse_json(text->second, path + ": checkpoint manifest");  // depth-limited (io/json.hpp)
  } catch (const nlohmann::json::exception& e) {
    manifest_error(path, "invalid JSON: ", e.what());
  }
  const nlohmann::json& m = ck.manifest;
  if (!m.is_object()) manifest_error(path, "not a JSON object");
  const auto& format = member(path, m, "format", JsonKind::kString);
  if (format != kCheckpointManifestKey)
    manifest_error(path, "format ", format.dump(), " is not \"", kCheckpointManifestKey, "\"");
  CheckpointInfo& info = ck.info;
  info.path = path;
  const int64_t version = int_member(path, m, "version");
  if (version < 1) manifest_error(path, "invalid version ", version);
  BINDERY_CHECK(version <= kCheckpointFormatVersion, ValueError, path, ": checkpoint format version ",
                version, " is newer than this bindery reads (", kCheckpointFormatVersion,
                "); update bindery");
  info.format_version = static_cast<int>(version);
  info.dtype = member(path, m, "dtype", JsonKind::kString).get<std::string>();
  io::DType dtype{};
  if (!io::parse_dtype_name(info.dtype, dtype) || (dtype != io::DType::kF32 && dtype != io::DType::kF64))
    manifest_error(path, "dtype \"", info.dtype, "\" is not F32 or F64");
  info.step = int_member(path, m, "step");
  if (info.step < 0) manifest_error(path, "negative step ", info.step);
  info.cursor = int_member(path, m, "cursor");
  const auto& rngs = member(path, m, "rngs", JsonKind::kObject);
  for (const auto& [name, state] : rngs.items()) {
    if (!state.is_object()) manifest_error(path, "rngs[\"", name, "\"] must be an object {seed, offset}");
    info.rngs.emplace(
        name, Philox(uint64_string_member(path, state, "seed"), uint64_string_member(path, state, "offset")));
  }
  info.user = member(path, m, "user", JsonKind::kObject);
  member(path, m, "optimizer", JsonKind::kObject);

  const auto& tensors = member(path, m, "tensors", JsonKind::kObject);
  for (const auto& [name, value] : tensors.items()) {
    uint32_t sum = 0;
    const std::string* hex = value.is_string() ? &value.get_ref<const std::string&>() : nullptr;
    const auto [end, error] = hex ? std::from_chars(hex->data(), hex->data() + hex->size(), sum, 16)
                                  : std::from_chars_result{nullptr, std::errc::invalid_argument};
    if (!hex || hex->size() != 8 || error != std::errc() || end != hex->data() + hex->size())
      manifest_error(path, "tensors[\"", name, "\"] = ", value.dump(), " is not an 8-digit hex CRC-32");
    if (!ck.file.contains(name)) manifest_error(path, "lists tensor '", name, "' that the file lacks");
    ck.crcs.emplace(name, sum);
  }
  for (const auto& t : ck.file.tensors()) {
    if (!ck.crcs.count(t.name)) manifest_error(path, "does not list the file's tensor '", t.name, "'");
    if (t.dtype != dtype)
      manifest_error(path, "tensor '", t.name, "' is ", io::dtype_name(t.dtype), ", not the checkpoint's ",
                     info.dtype);
  }
  return ck;
}

[[noreturn]] inline void checksum_error(const std::string& path, const std::string& key, uint32_t expected,
                                        uint32_t actual) {
  throw FormatError(::bindery::detail::concat(path, ": tensor '", key, "': CRC-32 ", hex32(actual),
                                              " differs from the recorded ", hex32(expected),
                                              " (the file is damaged)"));
}

}  // namespace detail

}  // namespace bindery::train
