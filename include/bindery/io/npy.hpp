// bindery/io/npy.hpp — NumPy .npy files: read into Tensor<T, B>, write from it.
//
// Format (numpy/lib/format.py): "\x93NUMPY", major, minor, header length (u16 for v1.0, u32 for
// v2.0/v3.0), then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and '\n', then the raw elements. Supported descr: <f2 <f4 <f8 <i1..<i8 <u1..<u8
// |b1 (one-byte types also as '|'); big-endian, structured and object arrays are refused.
// fortran_order True is handled (read, then transposed into C order).
//
// Why not xtensor's npy reader: its errors are untyped strings without file/offset, it trusts the
// header's shape before checking the file size, and it reads into xarrays (an extra copy) — here the
// data goes straight into the tensor with every size checked against the file first.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/shape.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/io/dtype.hpp"
#include "bindery/io/file.hpp"

namespace bindery::io {

/// What an .npy header declares.
struct NpyInfo {
  DType dtype = DType::kF32;
  Shape shape;
  bool fortran_order = false;
  int64_t data_offset = 0;  // byte where the elements start
};

namespace detail {

inline constexpr int64_t kNpyMaxHeader = int64_t{1} << 20;  // numpy writes < 100 bytes; refuse huge ones

/// Parses the header dict literal; `base` is its byte offset in the file (for messages).
class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& file, const std::string& text, int64_t base)
      : file_(file), text_(text), base_(base) {}

  NpyInfo parse() {
    NpyInfo info;
    bool has_descr = false, has_order = false, has_shape = false;
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const int64_t key_at = pos_;
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"')
          fail("descr is not a string (structured dtypes are not supported)");
        const int64_t at = pos_;
        info.dtype = parse_descr(parse_string(), at);
        has_descr = true;
      } else if (key == "fortran_order") {
        info.fortran_order = parse_bool();
        has_order = true;
      } else if (key == "shape") {
        info.shape = parse_shape();
        has_shape = true;
      } else {
        pos_ = key_at;
        fail("unexpected key '", key, "' (expected descr, fortran_order, shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_space();
      if (peek() != '}') fail("expected ',' or '}'");
    }
    if (!has_descr || !has_order || !has_shape) fail("the header lacks one of descr, fortran_order, shape");
    return info;
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    throw format_error(file_, "npy header", static_cast<uint64_t>(base_ + pos_), parts...);
  }
  char peek() const {
    return pos_ < static_cast<int64_t>(text_.size()) ? text_[static_cast<size_t>(pos_)] : '\0';
  }
  void skip_space() {
    while (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r') ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail("expected '", c, "'");
    ++pos_;
  }
  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    ++pos_;
    std::string out;
    while (peek() != quote) {
      if (peek() == '\0' || peek() == '\\') fail("unterminated or escaped string");
      out += peek();
      ++pos_;
    }
    ++pos_;
    return out;
  }
  bool parse_bool() {
    for (const bool value : {true, false}) {
      const std::string word = value ? "True" : "False";
      if (text_.compare(static_cast<size_t>(pos_), word.size(), word) == 0) {
        pos_ += static_cast<int64_t>(word.size());
        return value;
      }
    }
    fail("expected True or False");
  }
  Shape parse_shape() {
    expect('(');
    std::vector<int64_t> dims;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a non-negative integer extent");
      int64_t value = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (!checked_mul(value, 10, value) || !checked_add(value, peek() - '0', value))
          fail("extent overflows int64");
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long literal
      dims.push_back(value);
      if (dims.size() > 64) fail("more than 64 dimensions");
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in shape");
      }
    }
    ++pos_;
    // Checked before Shape sees it: Shape would throw a ShapeError that names no file.
    int64_t numel = 0;
    if (!checked_numel(dims, numel)) {
      std::string shape = "(";
      for (size_t d = 0; d < dims.size(); ++d) shape += (d ? ", " : "") + std::to_string(dims[d]);
      throw format_error(file_, "npy header", static_cast<uint64_t>(base_), "shape ", shape,
                         dims.size() == 1 ? ",)" : ")", " overflows 64-bit sizes");
    }
    return Shape(std::move(dims));
  }
  DType parse_descr(const std::string& descr, int64_t at) const {
    auto bad = [&](const char* why) {
      throw format_error(file_, "npy header", static_cast<uint64_t>(base_ + at), "descr '", descr,
                         "': ", why);
    };
    if (descr.size() < 3) bad("unknown dtype");
    const char order = descr[0];
    const std::string code = descr.substr(1);
    struct Entry {
      const char* code;
      DType dtype;
    };
    static constexpr Entry kTable[] = {{"f2", DType::kF16}, {"f4", DType::kF32}, {"f8", DType::kF64},
                                       {"i1", DType::kI8},  {"i2", DType::kI16}, {"i4", DType::kI32},
                                       {"i8", DType::kI64}, {"u1", DType::kU8},  {"u2", DType::kU16},
                                       {"u4", DType::kU32}, {"u8", DType::kU64}, {"b1", DType::kBool}};
    for (const Entry& e : kTable) {
      if (code != e.code) continue;
      const bool one_byte = dtype_size(e.dtype) == 1;
      if (order == '<' || order == '=' || order == '|' || (order == '>' && one_byte)) {
        if (order == '|' && !one_byte) bad("'|' (no byte order) on a multi-byte type");
        return e.dtype;
      }
      if (order == '>')
        bad("big-endian arrays are not supported; save with arr.astype(arr.dtype.newbyteorder('<'))");
      bad("unknown byte-order character");
    }
    bad("unsupported dtype (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)");
    return DType::kF32;  // unreachable
  }

  const std::string& file_;
  const std::string& text_;
  int64_t base_;
  int64_t pos_ = 0;
};

inline NpyInfo read_npy_header(const File& file) {
  const std::string& path = file.path();
  unsigned char preamble[12] = {};
  if (file.size() < 10)
    throw format_error(path, "npy preamble", 0, "file of ", file.size(), " bytes is too short");
  file.read_at(0, preamble, 10, "npy preamble");
  if (std::memcmp(preamble, "\x93NUMPY", 6) != 0)
    throw format_error(path, "npy preamble", 0, "not an .npy file (bad magic)");
  const int major = preamble[6];
  int64_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length = read_le<uint16_t>(preamble + 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    file.read_at(10, preamble + 10, 2, "npy preamble");
    header_length = read_le<uint32_t>(preamble + 8);
    header_start = 12;
  } else {
    throw format_error(path, "npy preamble", 6, "unsupported format version ", major, ".", int(preamble[7]));
  }
  if (header_length > kNpyMaxHeader || header_start + header_length > file.size()) {
    throw format_error(path, "npy preamble", 8, "header length ", header_length, " exceeds the file (",
                       file.size(), " bytes) or the ", kNpyMaxHeader, "-byte limit");
  }
  std::string text(static_cast<size_t>(header_length), '\0');
  file.read_at(header_start, text.data(), header_length, "npy header");
  NpyInfo info = NpyHeaderParser(path, text, header_start).parse();
  info.data_offset = header_start + header_length;
  int64_t numel = 0, bytes = 0;
  if (!checked_numel(info.shape, numel) || !checked_mul(numel, dtype_size(info.dtype), bytes)) {
    throw format_error(path, "npy header", static_cast<uint64_t>(header_start), "shape ", info.shape,
                       " overflows 64-bit sizes");
  }
  if (bytes != file.size() - info.data_offset) {
    throw format_error(path, "npy data", static_cast<uint64_t>(info.data_offset), "shape ", info.shape,
                       " of ", dtype_name(info.dtype), " needs ", bytes, " bytes but the file holds ",
                       file.size() - info.data_offset, " after the header");
  }
  return info;
}

template <class T>
constexpr const char* npy_descr() {
  constexpr DType d = dtype_of<T>();
  if constexpr (d == DType::kF32)
    return "<f4";
  else if constexpr (d == DType::kF64)
    return "<f8";
  else if constexpr (d == DType::kI64)
    return "<i8";
  else if constexpr (d == DType::kU64)
    return "<u8";
  else if constexpr (d == DType::kI32)
    return "<i4";
  else if constexpr (d == DType::kU32)
    return "<u4";
  else if constexpr (d == DType::kI16)
    return "<i2";
  else if constexpr (d == DType::kU16)
    return "<u2";
  else if constexpr (d == DType::kI8)
    return "|i1";
  else
    return "|u1";
}

}  // namespace detail

/// The header of an .npy file (dtype, shape, order), every size checked against the file.
inline NpyInfo inspect_npy(const std::string& path) {
  return detail::read_npy_header(File::open(path));
}

/// Reads an .npy file into a contiguous Tensor<T, B>, converting elements to T (io/dtype.hpp policy:
/// e.g. <f2 -> float exactly, |b1 -> 0/1, <f4 -> int32 refused). Fortran-ordered arrays come back in
/// C order. Throws IoError (cannot read) or FormatError (malformed: file and byte offset named).
template <class T, class B = Cpu>
Tensor<T, B> read_npy(const std::string& path) {
  const File file = File::open(path);
  const NpyInfo info = detail::read_npy_header(file);
  // A Fortran array of shape (a, b, c) is laid out as the C array of shape (c, b, a).
  std::vector<int64_t> stored_dims = info.shape.dims();
  if (info.fortran_order) std::reverse(stored_dims.begin(), stored_dims.end());
  Tensor<T, B> tensor = Tensor<T, B>::empty(Shape(stored_dims));
  read_converted<T, B>(file, info.data_offset, info.dtype, tensor.numel(), tensor.data(), path);
  if (!info.fortran_order || info.shape.rank() < 2) return tensor.reshape(info.shape.dims());
  std::vector<int64_t> reverse_axes(stored_dims.size());
  for (size_t i = 0; i < reverse_axes.size(); ++i)
    reverse_axes[i] = static_cast<int64_t>(reverse_axes.size() - 1 - i);
  return tensor.permute(reverse_axes).contiguous();
}

/// Writes `tensor` (any layout, any backend) as a C-order .npy v1.0 file, atomically (temp file,
/// fsync, rename). T: float -> <f4, double -> <f8, int64_t -> <i8, uint8_t -> |u1, ...
template <class T, class B>
void write_npy(const std::string& path, const Tensor<T, B>& tensor) {
  BINDERY_CHECK(tensor.defined(), ValueError, "write_npy(", path, "): the tensor is undefined");
  std::string header = ::bindery::detail::concat("{'descr': '", detail::npy_descr<T>(),
                                                 "', 'fortran_order': False, 'shape': (");
  for (int64_t d = 0; d < tensor.rank(); ++d)
    header +=
        std::to_string(tensor.size(d)) + (tensor.rank() == 1 ? "," : (d + 1 < tensor.rank() ? ", " : ""));
  header += "), }";
  // numpy pads so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  BINDERY_CHECK(header.size() <= 65535, ValueError, "write_npy(", path, "): rank ", tensor.rank(),
                " header too long");
  unsigned char preamble[10] = {0x93,
                                'N',
                                'U',
                                'M',
                                'P',
                                'Y',
                                1,
                                0,
                                static_cast<unsigned char>(header.size() & 0xff),
                                static_cast<unsigned char>(header.size() >> 8)};
  const std::vector<T> values = tensor.to_vector();
  AtomicFileWriter out(path);
  out.write(preamble, sizeof(preamble));
  out.write(header.data(), static_cast<int64_t>(header.size()));
  out.write(values.data(), static_cast<int64_t>(values.size() * sizeof(T)));
  out.commit();
}

}  // namespace bindery::io
