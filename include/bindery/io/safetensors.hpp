// bindery/io/safetensors.hpp — safetensors files: read through mmap (zero copy), write atomically.
//
// Format (huggingface/safetensors): u64 little-endian N, an N-byte UTF-8 JSON object
// {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}, ...}
// padded with spaces, then the byte buffer; offsets are relative to the buffer.
// Validation follows the reference implementation (safetensors/src/tensor.rs): N <= 100 MB and inside
// the file, a JSON object starting with '{', no duplicate keys, known dtypes, shape x dtype size ==
// e - b (checked multiplication), offsets sorted, contiguous from 0, no overlap, no holes, and the
// buffer fully indexed (it ends exactly at the end of the file: no polyglot files).
//
// Zero copy: `load<float, Cpu>` of an F32 tensor (4-byte aligned, as every reference-written file is)
// wraps the mapped bytes (Tensor::from_external); the tensor keeps the mapping alive. The mapping is
// private copy-on-write, so writing to such a tensor never changes the file. Other dtypes or
// backends are converted/copied (F16/BF16 -> float exactly).
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/shape.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/io/dtype.hpp"
#include "bindery/io/file.hpp"

namespace bindery::io {

/// One tensor entry of a safetensors header.
struct SafetensorsTensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  int64_t begin = 0, end = 0;  // data_offsets, relative to the byte buffer
};

/// An open safetensors file: validated header plus the mapped buffer.
class SafetensorsFile {
 public:
  static constexpr int64_t kMaxHeaderBytes = 100'000'000;  // as the reference implementation

  /// Maps and validates `path`. Throws IoError (cannot open/map) or FormatError (file + byte offset).
  static SafetensorsFile open(const std::string& path) {
    SafetensorsFile file;
    file.mapped_ = MappedFile::open(path);
    file.parse();
    return file;
  }

  const std::string& path() const { return mapped_->path(); }
  /// Tensor names in data order (the order of their bytes in the file).
  std::vector<std::string> keys() const {
    std::vector<std::string> names;
    for (const auto& t : tensors_) names.push_back(t.name);
    return names;
  }
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  const SafetensorsTensorInfo& info(const std::string& key) const {
    const auto it = index_.find(key);
    BINDERY_CHECK(it != index_.end(), IndexError, path(), ": no tensor named '", key, "'");
    return tensors_[it->second];
  }
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  /// The "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// True when load<T, Cpu>(key) wraps the mapped bytes without copying.
  template <class T>
  bool is_zero_copy(const std::string& key) const {
    const SafetensorsTensorInfo& t = info(key);
    const auto address = reinterpret_cast<uintptr_t>(mapped_->data() + data_start_ + t.begin);
    return t.dtype == dtype_of<T>() && t.shape.numel() > 0 && address % alignof(T) == 0;
  }

  /// The tensor `key` as Tensor<T, B>: zero-copy for T's own dtype on Cpu (see the file comment),
  /// otherwise converted (io/dtype.hpp policy) into new memory.
  template <class T, class B = Cpu>
  Tensor<T, B> load(const std::string& key) const {
    const SafetensorsTensorInfo& t = info(key);
    const unsigned char* bytes = mapped_->data() + data_start_ + t.begin;
    if constexpr (std::is_same_v<B, Cpu>) {
      if (is_zero_copy<T>(key)) {
        // Aliasing shared_ptr: points at the tensor's bytes, owns (a share of) the mapping.
        std::shared_ptr<T> owner(mapped_, reinterpret_cast<T*>(mapped_->data() + data_start_ + t.begin));
        return Tensor<T, B>::from_external(std::move(owner), t.shape.numel(), t.shape);
      }
    }
    Tensor<T, B> out = Tensor<T, B>::empty(t.shape);
    const std::string what = ::bindery::detail::concat(path(), ": tensor '", key, "'");
    if constexpr (B::kHostAccessible) {
      convert_elements<T>(t.dtype, bytes, out.data(), t.shape.numel(), what);
    } else {
      std::vector<T> host(static_cast<size_t>(t.shape.numel()));
      convert_elements<T>(t.dtype, bytes, host.data(), t.shape.numel(), what);
      B::copy_from_host(out.data(), host.data(), t.shape.numel());
    }
    return out;
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(std::string_view where, int64_t offset, const Parts&... parts) const {
    throw format_error(path(), where, static_cast<uint64_t>(offset), parts...);
  }

  void parse() {
    const int64_t size = mapped_->size();
    const unsigned char* data = mapped_->data();
    if (size < 8)
      fail("safetensors header size", 0, "file of ", size, " bytes is shorter than the 8-byte header size");
    const uint64_t n = read_le<uint64_t>(data);
    if (n > static_cast<uint64_t>(kMaxHeaderBytes)) {
      fail("safetensors header size", 0, "header of ", n, " bytes exceeds the ", kMaxHeaderBytes,
           "-byte limit");
    }
    const auto header_size = static_cast<int64_t>(n);
    if (8 + header_size > size) {
      fail("safetensors header size", 0, "header of ", header_size, " bytes runs past the end of the file (",
           size, " bytes)");
    }
    data_start_ = 8 + header_size;
    if (header_size == 0 || data[8] != '{')
      fail("safetensors header", 8, "the JSON header must start with '{'");

    // Parse with a callback: it refuses duplicate keys (nlohmann keeps the last silently) and deep
    // nesting (a valid header is 3 levels deep) before they cost anything.
    std::vector<std::unordered_set<std::string>> keys_per_level(1);
    auto guard = [&](int depth, nlohmann::ordered_json::parse_event_t event, nlohmann::ordered_json& parsed) {
      using Event = nlohmann::ordered_json::parse_event_t;
      if (event == Event::object_start || event == Event::array_start) {
        if (depth > 8) fail("safetensors header", 8, "JSON nested more than 8 levels deep");
        if (event == Event::object_start) {
          keys_per_level.resize(static_cast<size_t>(depth) + 1);
          keys_per_level[static_cast<size_t>(depth)].clear();
        }
      } else if (event == Event::key) {
        auto& level = keys_per_level[static_cast<size_t>(depth) - 1];
        if (!level.insert(parsed.get<std::string>()).second) {
          fail("safetensors header", 8, "duplicate key \"", parsed.get<std::string>(), "\"");
        }
      }
      return true;
    };
    nlohmann::ordered_json header;
    try {
      header = nlohmann::ordered_json::parse(data + 8, data + data_start_, guard);
    } catch (const nlohmann::json::parse_error& e) {
      fail("safetensors header", 8 + static_cast<int64_t>(e.byte) - (e.byte > 0 ? 1 : 0),
           "invalid JSON: ", e.what());
    } catch (const nlohmann::json::exception& e) {
      fail("safetensors header", 8, "invalid JSON: ", e.what());
    }
    if (!header.is_object()) fail("safetensors header", 8, "the JSON header is not an object");

    for (auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        if (!value.is_object()) fail("safetensors header", 8, "__metadata__ must be an object of strings");
        for (auto& [k, v] : value.items()) {
          if (!v.is_string()) fail("safetensors header", 8, "__metadata__[\"", k, "\"] is not a string");
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      tensors_.push_back(parse_tensor(name, value));
    }
    // Sorted by offsets, the tensors must tile [0, buffer size) exactly: no overlap, no hole.
    std::stable_sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    int64_t expected_begin = 0;
    for (const SafetensorsTensorInfo& t : tensors_) {
      const std::string where = ::bindery::detail::concat("safetensors tensor '", t.name, "'");
      const int64_t at = data_start_ + std::min(t.begin, size - data_start_);
      if (t.begin != expected_begin || t.end < t.begin) {
        fail(where, at, "data_offsets [", t.begin, ", ", t.end, "] ",
             t.begin < expected_begin ? "overlap the previous tensor"
                                      : (t.end < t.begin ? "are reversed" : "leave a hole before it"),
             " (expected it to start at ", expected_begin, ")");
      }
      int64_t numel = 0, bytes = 0;
      if (!checked_numel(t.shape, numel) || !checked_mul(numel, dtype_size(t.dtype), bytes)) {
        fail(where, at, "shape ", t.shape, " of ", dtype_name(t.dtype), " overflows 64-bit sizes");
      }
      if (bytes != t.end - t.begin) {
        fail(where, at, "shape ", t.shape, " of ", dtype_name(t.dtype), " needs ", bytes,
             " bytes but data_offsets [", t.begin, ", ", t.end, "] span ", t.end - t.begin);
      }
      expected_begin = t.end;
    }
    if (expected_begin != size - data_start_) {
      fail("safetensors data", data_start_ + std::min(expected_begin, size - data_start_),
           "the tensors index ", expected_begin, " bytes but the buffer after the header holds ",
           size - data_start_, " (truncated file, or unindexed bytes)");
    }
    for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  SafetensorsTensorInfo parse_tensor(const std::string& name, const nlohmann::ordered_json& value) const {
    const std::string where = ::bindery::detail::concat("safetensors header entry '", name, "'");
    auto fail_here = [&](const auto&... parts) { fail(where, 8, parts...); };
    if (!value.is_object()) fail_here("must be an object with dtype, shape and data_offsets");
    SafetensorsTensorInfo t;
    t.name = name;
    const auto dtype = value.find("dtype");
    const auto shape = value.find("shape");
    const auto offsets = value.find("data_offsets");
    if (dtype == value.end() || shape == value.end() || offsets == value.end())
      fail_here("lacks dtype, shape or data_offsets");
    if (!dtype->is_string() || !parse_dtype_name(dtype->get_ref<const std::string&>(), t.dtype)) {
      fail_here("unknown dtype ", dtype->dump());
    }
    auto as_size = [&](const nlohmann::ordered_json& v, const char* what) -> int64_t {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        fail_here(what, " must hold non-negative integers < 2^63, got ", v.dump());
      }
      return static_cast<int64_t>(v.get<uint64_t>());
    };
    if (!shape->is_array() || shape->size() > 64) fail_here("shape must be an array of at most 64 extents");
    std::vector<int64_t> dims;
    for (const auto& d : *shape) dims.push_back(as_size(d, "shape"));
    t.shape = Shape(std::move(dims));
    if (!offsets->is_array() || offsets->size() != 2) fail_here("data_offsets must be [begin, end]");
    t.begin = as_size((*offsets)[0], "data_offsets");
    t.end = as_size((*offsets)[1], "data_offsets");
    return t;
  }

  std::shared_ptr<MappedFile> mapped_;
  int64_t data_start_ = 0;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// Every tensor of a safetensors file as Tensor<T, B>, in data order (zero-copy where possible).
template <class T, class B = Cpu>
std::vector<std::pair<std::string, Tensor<T, B>>> load_safetensors(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  std::vector<std::pair<std::string, Tensor<T, B>>> out;
  for (const auto& t : file.tensors()) out.emplace_back(t.name, file.template load<T, B>(t.name));
  return out;
}

/// Writes named tensors (any layout, any backend) as a safetensors file, atomically (temp file,
/// fsync, rename, folder fsync). Deterministic bytes, identical to the reference writer for one
/// dtype: "__metadata__" first, tensors in name order, compact JSON, spaces padding the header to
/// a multiple of 8. Names must be unique and not "__metadata__".
template <class T, class B>
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor<T, B>>>& tensors,
                      const std::map<std::string, std::string>& metadata = {}) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].first < tensors[b].first; });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& [name, tensor] = tensors[order[k]];
    BINDERY_CHECK(name != "__metadata__", ValueError, "save_safetensors(", path,
                  "): '__metadata__' is reserved");
    BINDERY_CHECK(k == 0 || name != tensors[order[k - 1]].first, ValueError, "save_safetensors(", path,
                  "): duplicate tensor name '", name, "'");
    BINDERY_CHECK(tensor.defined(), ValueError, "save_safetensors(", path, "): tensor '", name,
                  "' is undefined");
    const int64_t bytes = tensor.numel() * static_cast<int64_t>(sizeof(T));
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_name(dtype_of<T>());
    entry["shape"] = tensor.shape().dims();
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = std::move(entry);
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(
        ::bindery::detail::concat("save_safetensors(", path, "): ", e.what(), " (names must be UTF-8)"));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_size = text.size();
  AtomicFileWriter out(path);
  out.write(&header_size, 8);
  out.write(text.data(), static_cast<int64_t>(text.size()));
  for (size_t index : order) {
    const std::vector<T> values = tensors[index].second.to_vector();
    out.write(values.data(), static_cast<int64_t>(values.size() * sizeof(T)));
  }
  out.commit();
}

}  // namespace bindery::io
