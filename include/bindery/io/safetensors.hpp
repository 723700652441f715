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
// Streaming: the mapped pages a process touches count in its resident memory as long as the file
// stays mapped, so copying a 4.8 GB file into existing weights through `load` would peak at twice
// the weights. `read` (and for_each_safetensors_tensor) pread into new memory instead: the file's
// pages stay in the page cache, outside the process. SafetensorsWriter writes tensor by tensor.
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
#include "bindery/io/json.hpp"

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
    file.file_ = std::make_shared<const File>(File::open(path));
    file.mapped_ = MappedFile::map(*file.file_);
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

  /// The tensor `key` as Tensor<T, B> in new memory, read with pread (converted as `load`): unlike
  /// `load`, it leaves none of the file's pages mapped in the process. For streaming a file into
  /// existing weights (see the file comment).
  template <class T, class B = Cpu>
  Tensor<T, B> read(const std::string& key) const {
    const SafetensorsTensorInfo& t = info(key);
    Tensor<T, B> out = Tensor<T, B>::empty(t.shape);
    if (t.shape.numel() == 0) return out;
    read_converted<T, B>(*file_, data_start_ + t.begin, t.dtype, t.shape.numel(), out.data(),
                         ::bindery::detail::concat(path(), ": tensor '", key, "'"));
    return out;
  }
  /// Reads the tensor `key` straight into `out` (host memory, its shape's element count, converted as
  /// `load`), with pread: no intermediate copy, for loading into weights that already exist.
  template <class T>
  void read_into(const std::string& key, T* out) const {
    const SafetensorsTensorInfo& t = info(key);
    if (t.shape.numel() == 0) return;
    read_converted<T, Cpu>(*file_, data_start_ + t.begin, t.dtype, t.shape.numel(), out,
                           ::bindery::detail::concat(path(), ": tensor '", key, "'"));
  }
  /// Byte offset of the data buffer in the file (tensor bytes lie at data_offset() + begin).
  int64_t data_offset() const { return data_start_; }

 private:
  template <class... Parts>
  [[noreturn]] void fail(std::string_view where, int64_t offset, const Parts&... parts) const {
    throw format_error(path(), where, static_cast<uint64_t>(offset), parts...);
  }

  /// Validates the mapped bytes and fills data_start_, metadata_, tensors_ (in data order) and index_.
  void parse() {
    const int64_t header_size = read_header_size();
    data_start_ = 8 + header_size;
    read_entries(parse_header_json(header_size));
    check_data_offsets();
    for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  /// The little-endian u64 in the first 8 bytes: the JSON header's length, checked against the
  /// reference implementation's limit and the file size.
  int64_t read_header_size() const {
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
    return header_size;
  }

  /// The JSON header (bytes [8, 8 + header_size)) as an object. Parses with a callback: it refuses
  /// duplicate keys (nlohmann keeps the last silently) and deep nesting (a valid header is 3 levels
  /// deep) before they cost anything.
  nlohmann::ordered_json parse_header_json(int64_t header_size) const {
    const unsigned char* data = mapped_->data();
    if (header_size == 0 || data[8] != '{')
      fail("safetensors header", 8, "the JSON header must start with '{'");
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
      header = nlohmann::ordered_json::parse(data + 8, data + 8 + header_size, guard);
    } catch (const nlohmann::json::parse_error& e) {
      fail("safetensors header", 8 + static_cast<int64_t>(e.byte) - (e.byte > 0 ? 1 : 0),
           "invalid JSON: ", e.what());
    } catch (const nlohmann::json::exception& e) {
      fail("safetensors header", 8, "invalid JSON: ", e.what());
    }
    if (!header.is_object()) fail("safetensors header", 8, "the JSON header is not an object");
    return header;
  }

  /// Each entry of the header: "__metadata__" (an object of strings) into metadata_, every other
  /// one validated by parse_tensor into tensors_ (in header order).
  void read_entries(const nlohmann::ordered_json& header) {
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        if (!value.is_object()) fail("safetensors header", 8, "__metadata__ must be an object of strings");
        for (const auto& [k, v] : value.items()) {
          if (!v.is_string()) fail("safetensors header", 8, "__metadata__[\"", k, "\"] is not a string");
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      tensors_.push_back(parse_tensor(name, value));
    }
  }

  /// Sorts tensors_ by offsets and checks that they tile the buffer after the header, [0, size -
  /// data_start_), exactly: no overlap, no hole, no reversed range, each range as long as its shape
  /// and dtype need, nothing past the end and nothing left over.
  void check_data_offsets() {
    const int64_t size = mapped_->size();
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
      fail_here("unknown dtype ", json_excerpt(*dtype));
    }
    auto as_size = [&](const nlohmann::ordered_json& v, const char* what) -> int64_t {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        fail_here(what, " must hold non-negative integers < 2^63, got ", json_excerpt(v));
      }
      return static_cast<int64_t>(v.get<uint64_t>());
    };
    if (!shape->is_array() || shape->size() > 64) fail_here("shape must be an array of at most 64 extents");
    std::vector<int64_t> dims;
    for (const auto& d : *shape) dims.push_back(as_size(d, "shape"));
    int64_t numel = 0;
    if (!checked_numel(dims, numel)) fail_here("shape ", json_excerpt(*shape), " overflows 64-bit sizes");
    t.shape = Shape(std::move(dims));
    if (!offsets->is_array() || offsets->size() != 2) fail_here("data_offsets must be [begin, end]");
    t.begin = as_size((*offsets)[0], "data_offsets");
    t.end = as_size((*offsets)[1], "data_offsets");
    return t;
  }

  std::shared_ptr<const File> file_;  // for read(): pread, no mapping
  std::shared_ptr<MappedFile> mapped_;
  int64_t data_start_ = 0;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// The tensors of a safetensors file that `key_filter` accepts (all when empty) as Tensor<T, B>, in
/// data order (zero-copy where possible; see SafetensorsFile::load).
template <class T, class B = Cpu>
std::vector<std::pair<std::string, Tensor<T, B>>> load_safetensors(const std::string& path,
                                                                   const KeyFilter& key_filter = {}) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  std::vector<std::pair<std::string, Tensor<T, B>>> out;
  for (const auto& t : file.tensors()) {
    if (accepts(key_filter, t.name)) out.emplace_back(t.name, file.template load<T, B>(t.name));
  }
  return out;
}

/// Streams a safetensors file: calls visit(name, tensor) for each tensor `key_filter` accepts (all
/// when empty), in data order, each read into new memory (SafetensorsFile::read) and dropped after
/// the call unless `visit` keeps it: memory beyond what `visit` keeps is one tensor at a time.
template <class T, class B = Cpu, class Visit>
void for_each_safetensors_tensor(const std::string& path, Visit&& visit, const KeyFilter& key_filter = {}) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  for (const auto& t : file.tensors()) {
    if (accepts(key_filter, t.name)) visit(t.name, file.template read<T, B>(t.name));
  }
}

/// Writes a safetensors file tensor by tensor, so that files larger than memory can be written
/// (converting a checkpoint costs one chunk, not the file): the header, built from every tensor's
/// name, dtype and shape, goes first; then the tensors' bytes, in the order of entries() (name
/// order), in as many write() calls as wanted. Atomic as AtomicFileWriter: nothing appears at
/// `path` before commit(), which checks that every byte was written. Deterministic bytes, identical
/// to the reference writer for one dtype: "__metadata__" first (when given), tensors in name order,
/// compact JSON, spaces padding the header to a multiple of 8.
///
///   SafetensorsWriter out(path, {{"b", DType::kF32, Shape{2}}, {"a", DType::kF16, Shape{3}}});
///   out.write(a_bytes, 6);  // "a" first: name order
///   out.write(b_bytes, 8);
///   out.commit();
class SafetensorsWriter {
 public:
  struct Entry {
    std::string name;
    DType dtype = DType::kF32;
    Shape shape;
  };

  /// Names must be unique and not "__metadata__" (ValueError).
  SafetensorsWriter(const std::string& path, std::vector<Entry> entries,
                    const std::map<std::string, std::string>& metadata = {})
      : path_(path), entries_(std::move(entries)) {
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const Entry& a, const Entry& b) { return a.name < b.name; });
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    for (size_t k = 0; k < entries_.size(); ++k) {
      const Entry& e = entries_[k];
      BINDERY_CHECK(e.name != "__metadata__", ValueError, "save_safetensors(", path,
                    "): '__metadata__' is reserved");
      BINDERY_CHECK(k == 0 || e.name != entries_[k - 1].name, ValueError, "save_safetensors(", path,
                    "): duplicate tensor name '", e.name, "'");
      const int64_t bytes = e.shape.numel() * dtype_size(e.dtype);
      nlohmann::ordered_json entry;
      entry["dtype"] = dtype_name(e.dtype);
      entry["shape"] = e.shape.dims();
      entry["data_offsets"] = {total_, total_ + bytes};
      header[e.name] = std::move(entry);
      starts_.push_back(total_);
      ends_.push_back(total_ + bytes);
      total_ += bytes;
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
    out_ = std::make_unique<AtomicFileWriter>(path);
    out_->write(&header_size, 8);
    out_->write(text.data(), static_cast<int64_t>(text.size()));
  }

  /// The tensors in the order their bytes are written.
  const std::vector<Entry>& entries() const { return entries_; }
  /// Bytes of tensor data written so far, and in all.
  int64_t written() const { return written_; }
  int64_t total() const { return total_; }

  /// Appends `n` raw little-endian bytes of tensor data.
  void write(const void* bytes, int64_t n) {
    BINDERY_CHECK(n >= 0 && n <= total_ - written_, ValueError, "save_safetensors(", path_, "): writing ", n,
                  " more bytes after ", written_, " of ", total_, " would run past the last tensor");
    out_->write(bytes, n);
    written_ += n;
    while (next_ < entries_.size() && starts_[next_] < written_ && ends_[next_] <= written_) ++next_;
  }
  /// Appends the next tensor whole: it must be the next entry, with its shape, and T its dtype.
  template <class T, class B>
  void write(const Tensor<T, B>& tensor) {
    BINDERY_CHECK(next_ < entries_.size() && starts_[next_] == written_, ValueError, "save_safetensors(",
                  path_, "): a whole tensor must start where the next tensor starts (", written_, " of ",
                  total_, " bytes written)");
    const Entry& e = entries_[next_];
    BINDERY_CHECK(tensor.defined(), ValueError, "save_safetensors(", path_, "): tensor '", e.name,
                  "' is undefined");
    BINDERY_CHECK(tensor.shape() == e.shape && dtype_of<T>() == e.dtype, ValueError, "save_safetensors(",
                  path_, "): tensor '", e.name, "' was declared ", dtype_name(e.dtype), " ", e.shape,
                  " but is ", dtype_name(dtype_of<T>()), " ", tensor.shape());
    if (tensor.numel() == 0) {
      ++next_;
      return;
    }
    if constexpr (B::kHostAccessible) {
      if (tensor.is_contiguous()) {
        write(tensor.data(), tensor.numel() * static_cast<int64_t>(sizeof(T)));
        return;
      }
    }
    const std::vector<T> values = tensor.to_vector();
    write(values.data(), static_cast<int64_t>(values.size() * sizeof(T)));
  }
  /// Checks that every tensor's bytes were written, then makes the file appear at `path`.
  void commit() {
    BINDERY_CHECK(written_ == total_, ValueError, "save_safetensors(", path_, "): only ", written_, " of ",
                  total_, " bytes of tensor data were written");
    out_->commit();
  }

 private:
  std::string path_;
  std::vector<Entry> entries_;
  std::vector<int64_t> starts_, ends_;  // each entry's bytes, relative to the data buffer
  int64_t total_ = 0, written_ = 0;
  size_t next_ = 0;  // the first entry not entirely written
  std::unique_ptr<AtomicFileWriter> out_;
};

/// Writes named tensors (any layout, any backend) as a safetensors file, atomically (temp file,
/// fsync, rename, folder fsync), with SafetensorsWriter (same bytes). Names must be unique and not
/// "__metadata__".
template <class T, class B>
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor<T, B>>>& tensors,
                      const std::map<std::string, std::string>& metadata = {}) {
  std::vector<SafetensorsWriter::Entry> entries;
  std::map<std::string, const Tensor<T, B>*> by_name;
  for (const auto& [name, tensor] : tensors) {
    BINDERY_CHECK(tensor.defined(), ValueError, "save_safetensors(", path, "): tensor '", name,
                  "' is undefined");
    entries.push_back({name, dtype_of<T>(), tensor.shape()});
    by_name.emplace(name, &tensor);
  }
  SafetensorsWriter out(path, std::move(entries), metadata);
  for (const auto& entry : out.entries()) out.write(*by_name.at(entry.name));
  out.commit();
}

}  // namespace bindery::io
