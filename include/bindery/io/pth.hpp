// bindery/io/pth.hpp — PyTorch checkpoints written by torch.save (the zip format, PyTorch >= 1.6).
//
// Layout: a stored zip whose members share one folder, "<archive>/": data.pkl (the pickled object:
// a state_dict), data/<key> (one raw little-endian storage per key), byteorder, version, ...
// load_pth reads data.pkl with the restricted unpickler (io/pickle.hpp: nothing is executed), checks
// every storage's declared size against its real archive member, then preads each storage ONCE,
// straight into its final tensor (converted to T in 1 MiB chunks when the dtype differs): peak memory
// is about the size of the weights. Tensors that share a storage (views, tied weights) share it here
// too; a transposed or offset view keeps its strides and offset. `PthOptions::key_filter` selects
// tensors by name: the storages of the others are never read. for_each_pth_tensor streams instead:
// each storage is released after its last tensor was visited, so copying a checkpoint into existing
// weights costs the largest storage on top of them, not the whole file.
//
// Refused with a FormatError naming the file (and a byte offset): TorchScript archives (constants.pkl,
// code/ — they hold code, and a loader that routes them elsewhere is CVE-2025-32434), the legacy
// non-zip torch.save format (_use_new_zipfile_serialization=False), compressed members, unknown pickle
// globals, storages whose member size differs from numel x element size, views that leave their
// storage.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/shape.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/io/dtype.hpp"
#include "bindery/io/file.hpp"
#include "bindery/io/pickle.hpp"
#include "bindery/io/zip.hpp"

namespace bindery::io {

/// One tensor of a checkpoint, described without loading its data.
struct PthTensorInfo {
  std::string name;  // state_dict key; nested dicts give dotted names ("model.linear.weight")
  DType dtype = DType::kF32;
  Shape shape;
  Strides strides;
  int64_t storage_offset = 0;  // in elements
  std::string storage_key;     // archive member <archive>/data/<key>
  int64_t storage_numel = 0;
};

struct PthOptions {
  /// Verify each storage's CRC-32 (data.pkl's is always verified). Off by default: it costs a
  /// second pass over gigabytes, and the sizes and structure are checked regardless.
  bool verify_checksums = false;
  PickleLimits limits;
  /// The tensors to load, by state_dict key (empty: all). Storages that only rejected tensors use are
  /// never read; every structural check still covers the whole file.
  KeyFilter key_filter;
};

namespace detail {

struct PthArchive {
  ZipReader zip;
  std::string prefix;  // "<archive>/"
  PickleResult pickle;
  std::vector<std::pair<std::string, int64_t>> named;  // (name, index into pickle.tensors)
  std::vector<const ZipEntry*> storage_entries;        // per pickle.storages, sizes checked
};

/// Refuses what is not a torch.save zip before any zip parsing, with a message saying what it is.
inline File open_pth_file(const std::string& path) {
  File file = File::open(path);
  unsigned char head[512] = {};
  const int64_t n = std::min<int64_t>(file.size(), sizeof(head));
  file.read_at(0, head, n, "file start");
  if (n >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return file;
  if (n >= 2 && head[0] == 0x80 && head[1] <= 5) {
    throw format_error(
        path, "file start", 0,
        "a legacy (non-zip) torch.save file (_use_new_zipfile_serialization="
        "False, or PyTorch < 1.6): not supported; re-save it with torch.save in a recent PyTorch");
  }
  if (n >= 262 && std::memcmp(head + 257, "ustar", 5) == 0) {
    throw format_error(path, "file start", 0,
                       "a legacy tar-format torch.save file: not supported; re-save it");
  }
  if (n >= 4 && std::memcmp(head, "PK\x05\x06", 4) == 0)
    throw format_error(path, "file start", 0, "an empty zip archive");
  throw format_error(path, "file start", 0,
                     "not a PyTorch checkpoint (a torch.save zip archive starts with \"PK\\3\\4\")");
}

inline void collect_tensors(PthArchive& archive, int32_t dict, const std::string& prefix, int depth,
                            std::unordered_set<int32_t>& seen, std::unordered_set<std::string>& names) {
  const std::string& path = archive.zip.path();
  const auto& objects = archive.pickle.objects;
  if (depth > 16 || !seen.insert(dict).second) {
    throw format_error(path, "pickle", 0, "dict '", prefix, "' is nested more than 16 deep or appears twice");
  }
  const auto& items = objects[static_cast<size_t>(dict)].items;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const pickle::Object& key = objects[static_cast<size_t>(items[i])];
    const pickle::Object& value = objects[static_cast<size_t>(items[i + 1])];
    if (key.kind != pickle::Kind::kString) continue;  // not a state_dict entry (e.g. optimizer state ids)
    const std::string name = prefix + archive.pickle.strings[static_cast<size_t>(key.number)];
    if (value.kind == pickle::Kind::kTensor) {
      if (!names.insert(name).second)
        throw format_error(path, "pickle", 0, "tensor name '", name, "' appears twice");
      archive.named.emplace_back(name, value.number);
    } else if (value.kind == pickle::Kind::kDict) {
      collect_tensors(archive, items[i + 1], name + ".", depth + 1, seen, names);
    }  // ints, strings, None...: metadata, not tensors
  }
}

inline PthArchive open_pth(const std::string& path, const PthOptions& options) {
  PthArchive archive{ZipReader(open_pth_file(path)), {}, {}, {}, {}};
  const ZipReader& zip = archive.zip;
  const auto& entries = zip.entries();
  if (entries.empty()) throw format_error(path, "zip central directory", 0, "the archive has no entries");
  const size_t slash = entries[0].name.find('/');
  if (slash == std::string::npos || slash == 0) {
    throw format_error(path, zip.describe(entries[0]), static_cast<uint64_t>(entries[0].local_header_offset),
                       "torch.save archives keep every member in one folder");
  }
  archive.prefix = entries[0].name.substr(0, slash + 1);
  const std::string& prefix = archive.prefix;
  for (const ZipEntry& e : entries) {
    const auto at = static_cast<uint64_t>(e.local_header_offset);
    if (e.name.compare(0, prefix.size(), prefix) != 0) {
      throw format_error(path, zip.describe(e), at, "is outside the archive folder '", prefix, "'");
    }
    const std::string rest = e.name.substr(prefix.size());
    if (rest == "constants.pkl" || rest == "bytecode.pkl" || rest.compare(0, 5, "code/") == 0) {
      throw format_error(path, zip.describe(e), at,
                         "this is a TorchScript archive (torch.jit.save), which holds code; "
                         "bindery loads only torch.save state_dicts and never hands a file to a code-running "
                         "loader. Save model.state_dict() with torch.save instead");
    }
  }
  if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
    const std::string value = zip.read_small(*order, 16);
    if (value != "little") {
      throw format_error(path, zip.describe(*order), static_cast<uint64_t>(order->data_offset),
                         "byte order '", value, "' is not supported (only little-endian checkpoints)");
    }
  }
  const ZipEntry* data_pkl = zip.find(prefix + "data.pkl");
  if (data_pkl == nullptr)
    throw format_error(path, "zip central directory", 0, "no member '", prefix, "data.pkl'");
  const std::string pickle_bytes = zip.read_small(*data_pkl, options.limits.max_pickle_bytes);
  archive.pickle = read_pickle(pickle_bytes, path, data_pkl->name, data_pkl->data_offset, options.limits);

  const auto& root = archive.pickle.objects[static_cast<size_t>(archive.pickle.root)];
  if (root.kind != pickle::Kind::kDict) {
    throw format_error(path, zip.describe(*data_pkl), static_cast<uint64_t>(data_pkl->data_offset),
                       "the pickled object is not a dict (a state_dict); bindery loads state_dicts");
  }
  std::unordered_set<int32_t> seen;
  std::unordered_set<std::string> names;
  collect_tensors(archive, archive.pickle.root, "", 0, seen, names);

  // Every storage's member must exist, be stored and hold exactly numel x element size bytes.
  for (const StorageRecord& storage : archive.pickle.storages) {
    const ZipEntry* entry = zip.find(prefix + "data/" + storage.key);
    if (entry == nullptr) {
      throw format_error(path, ::bindery::detail::concat("pickle '", data_pkl->name, "'"),
                         static_cast<uint64_t>(data_pkl->data_offset + storage.pickle_offset), "storage '",
                         storage.key, "' has no archive member '", prefix, "data/", storage.key, "'");
    }
    zip.require_stored(*entry);
    int64_t bytes = 0;
    if (!checked_mul(storage.numel, dtype_size(storage.dtype), bytes) || bytes != entry->size) {
      throw format_error(path, zip.describe(*entry), static_cast<uint64_t>(entry->data_offset), "storage '",
                         storage.key, "' declares ", storage.numel, " elements of ",
                         dtype_name(storage.dtype), " (", dtype_size(storage.dtype),
                         " bytes each) but its member holds ", entry->size, " bytes");
    }
    archive.storage_entries.push_back(entry);
  }
  return archive;
}

}  // namespace detail

/// Lists a checkpoint's tensors (names, dtypes, shapes, strides, storages) in state_dict order,
/// without reading their data; only those options.key_filter accepts. Every structural check of
/// load_pth runs.
inline std::vector<PthTensorInfo> inspect_pth(const std::string& path, const PthOptions& options = {}) {
  const detail::PthArchive archive = detail::open_pth(path, options);
  std::vector<PthTensorInfo> infos;
  for (const auto& [name, index] : archive.named) {
    if (!accepts(options.key_filter, name)) continue;
    const TensorRecord& t = archive.pickle.tensors[static_cast<size_t>(index)];
    const StorageRecord& s = archive.pickle.storages[static_cast<size_t>(t.storage)];
    infos.push_back({name, s.dtype, Shape(t.sizes), t.strides, t.offset, s.key, s.numel});
  }
  return infos;
}

/// Streams a torch.save state_dict: calls visit(name, tensor) for each tensor options.key_filter
/// accepts, in the file's order, with elements converted to T as load_pth does. A storage is read
/// once, when its first accepted tensor comes, and dropped after its last one unless `visit` kept a
/// reference: memory beyond what `visit` keeps is one storage at a time (a tied or viewed storage
/// stays until its last view). Throws as load_pth; an exception from `visit` propagates.
template <class T, class B = Cpu, class Visit>
void for_each_pth_tensor(const std::string& path, Visit&& visit, const PthOptions& options = {}) {
  const detail::PthArchive archive = detail::open_pth(path, options);
  const auto& storages = archive.pickle.storages;
  std::vector<int64_t> uses(storages.size(), 0);  // accepted, non-empty tensors not visited yet
  std::vector<std::pair<const std::string*, const TensorRecord*>> accepted;
  for (const auto& [name, index] : archive.named) {
    if (!accepts(options.key_filter, name)) continue;
    const TensorRecord& t = archive.pickle.tensors[static_cast<size_t>(index)];
    accepted.emplace_back(&name, &t);
    if (Shape(t.sizes).numel() != 0) ++uses[static_cast<size_t>(t.storage)];
  }
  std::vector<Tensor<T, B>> loaded(storages.size());
  for (const auto& [name, t] : accepted) {
    const auto s = static_cast<size_t>(t->storage);
    const Shape shape(t->sizes);
    if (shape.numel() == 0) {
      visit(*name, Tensor<T, B>::empty(shape));
      continue;
    }
    if (!loaded[s].defined()) {  // first tensor of this storage: read it, once
      const ZipEntry& entry = *archive.storage_entries[s];
      if (options.verify_checksums) archive.zip.verify_crc32(entry);
      loaded[s] = Tensor<T, B>::empty(Shape{storages[s].numel});
      read_converted<T, B>(
          archive.zip.file(), entry.data_offset, storages[s].dtype, storages[s].numel, loaded[s].data(),
          ::bindery::detail::concat(path, ": tensor '", *name, "' (storage '", storages[s].key, "')"));
    }
    Tensor<T, B> view = loaded[s].as_strided(shape, t->strides, t->offset);
    if (--uses[s] == 0) loaded[s] = Tensor<T, B>();  // its last tensor: `view` (and visit) own it now
    visit(*name, std::move(view));
  }
}

/// Loads a torch.save state_dict: (name, tensor) in the file's order, elements converted to T
/// (float16/bfloat16/float/double -> float or double exactly or rounded to nearest; integer and bool
/// tensors too — see io/dtype.hpp); only the tensors options.key_filter accepts (the others' storages
/// are not read). Views and shared storages are preserved. Throws IoError or FormatError (file +
/// byte offset), ValueError for a conversion that would truncate.
template <class T, class B = Cpu>
std::vector<std::pair<std::string, Tensor<T, B>>> load_pth(const std::string& path,
                                                           const PthOptions& options = {}) {
  std::vector<std::pair<std::string, Tensor<T, B>>> out;
  for_each_pth_tensor<T, B>(
      path,
      [&out](const std::string& name, Tensor<T, B> tensor) { out.emplace_back(name, std::move(tensor)); },
      options);
  return out;
}

}  // namespace bindery::io
