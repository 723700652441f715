// bindery/io/dtype.hpp — element types found in weight files, and their conversion to Tensor<T>.
//
// Files hold more element types than a Tensor<T, B> instantiates (float16, bfloat16, bool, ...).
// `DType` names them; `convert_elements` turns a little-endian buffer of one DType into T with one
// documented policy, shared by the .npy, safetensors and .pth readers:
//   - same type: a bit copy;
//   - any type -> float/double: value conversion (float16/bfloat16 exactly; double -> float rounds to
//     nearest; integers above 2^24 (float) or 2^53 (double) round to nearest);
//   - any type -> bfloat16/float16 (16-bit tensors): through float, rounded to nearest even (a double
//     is rounded to float first, as PyTorch's .to(torch.bfloat16) does);
//   - integer/bool -> integer T: exact, each value range-checked (ValueError when one does not fit);
//   - floating -> integer T: refused (ValueError): it would silently truncate.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "bindery/core/error.hpp"
#include "bindery/core/float16.hpp"

namespace bindery::io {

static_assert(
    std::endian::native == std::endian::little,
    "bindery/io reads little-endian files by reinterpreting bytes: big-endian hosts are not supported");

/// Element types of weight files. Names follow safetensors ("F32", "BF16", ...).
enum class DType {
  kBool,
  kU8,
  kI8,
  kI16,
  kU16,
  kI32,
  kU32,
  kI64,
  kU64,
  kF16,
  kBF16,
  kF32,
  kF64,
  kF8E4M3,
  kF8E5M2
};

/// Bytes per element.
inline int64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kBool:
    case DType::kU8:
    case DType::kI8:
    case DType::kF8E4M3:
    case DType::kF8E5M2:
      return 1;
    case DType::kI16:
    case DType::kU16:
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kI32:
    case DType::kU32:
    case DType::kF32:
      return 4;
    case DType::kI64:
    case DType::kU64:
    case DType::kF64:
      return 8;
  }
  return 1;
}

/// The safetensors spelling: "F32", "BF16", "BOOL", ...
inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kBool:
      return "BOOL";
    case DType::kU8:
      return "U8";
    case DType::kI8:
      return "I8";
    case DType::kI16:
      return "I16";
    case DType::kU16:
      return "U16";
    case DType::kI32:
      return "I32";
    case DType::kU32:
      return "U32";
    case DType::kI64:
      return "I64";
    case DType::kU64:
      return "U64";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kF32:
      return "F32";
    case DType::kF64:
      return "F64";
    case DType::kF8E4M3:
      return "F8_E4M3";
    case DType::kF8E5M2:
      return "F8_E5M2";
  }
  return "?";
}

/// Parses a safetensors dtype name; false when unknown.
inline bool parse_dtype_name(std::string_view name, DType& dtype) {
  for (int i = 0; i <= static_cast<int>(DType::kF8E5M2); ++i) {
    if (name == dtype_name(static_cast<DType>(i))) {
      dtype = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

inline bool is_floating(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF32 || dtype == DType::kF64 ||
         dtype == DType::kF8E4M3 || dtype == DType::kF8E5M2;
}

/// The DType of a Tensor element type T (float, double, or a fixed-width integer).
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::kF32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::kF64;
  else if constexpr (std::is_same_v<T, bfloat16>)
    return DType::kBF16;
  else if constexpr (std::is_same_v<T, float16>)
    return DType::kF16;
  else if constexpr (std::is_same_v<T, int64_t>)
    return DType::kI64;
  else if constexpr (std::is_same_v<T, uint64_t>)
    return DType::kU64;
  else if constexpr (std::is_same_v<T, int32_t>)
    return DType::kI32;
  else if constexpr (std::is_same_v<T, uint32_t>)
    return DType::kU32;
  else if constexpr (std::is_same_v<T, int16_t>)
    return DType::kI16;
  else if constexpr (std::is_same_v<T, uint16_t>)
    return DType::kU16;
  else if constexpr (std::is_same_v<T, int8_t>)
    return DType::kI8;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return DType::kU8;
  else
    static_assert(sizeof(T) == 0, "bindery::io: unsupported tensor element type");
}

namespace detail {

template <class Source>
Source load_unaligned(const unsigned char* p) {
  Source value;
  std::memcpy(&value, p, sizeof(Source));
  return value;
}

template <class T, class Source>
void convert_integers(const unsigned char* in, T* out, int64_t n, const std::string& what) {
  for (int64_t i = 0; i < n; ++i) {
    const Source v = load_unaligned<Source>(in + i * static_cast<int64_t>(sizeof(Source)));
    if constexpr (!std::is_integral_v<T>) {
      out[i] = static_cast<T>(static_cast<double>(v));
    } else {
      BINDERY_CHECK(std::in_range<T>(v), ValueError, what, ": element ", i, " = ", +v,
                    " does not fit the requested integer type");
      out[i] = static_cast<T>(v);
    }
  }
}

}  // namespace detail

/// Converts `n` little-endian elements of `source` at `in` (any alignment) into `out`, with the
/// policy in the file comment. `what` names the data in errors ("model.pth: tensor 'w'").
template <class T>
void convert_elements(DType source, const void* in, T* out, int64_t n, const std::string& what) {
  const auto* bytes = static_cast<const unsigned char*>(in);
  if (source == dtype_of<T>()) {
    if (n > 0) std::memcpy(out, bytes, static_cast<size_t>(n) * sizeof(T));
    return;
  }
  if constexpr (std::is_integral_v<T>) {
    BINDERY_CHECK(!is_floating(source), ValueError, what, ": cannot load ", dtype_name(source),
                  " values as the integer type ", dtype_name(dtype_of<T>()),
                  " without truncating them; load it as float or double");
  }
  switch (source) {
    case DType::kBool:
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(bytes[i] != 0);
      return;
    case DType::kU8:
      return detail::convert_integers<T, uint8_t>(bytes, out, n, what);
    case DType::kI8:
      return detail::convert_integers<T, int8_t>(bytes, out, n, what);
    case DType::kI16:
      return detail::convert_integers<T, int16_t>(bytes, out, n, what);
    case DType::kU16:
      return detail::convert_integers<T, uint16_t>(bytes, out, n, what);
    case DType::kI32:
      return detail::convert_integers<T, int32_t>(bytes, out, n, what);
    case DType::kU32:
      return detail::convert_integers<T, uint32_t>(bytes, out, n, what);
    case DType::kI64:
      return detail::convert_integers<T, int64_t>(bytes, out, n, what);
    case DType::kU64:
      return detail::convert_integers<T, uint64_t>(bytes, out, n, what);
    default:
      break;
  }
  if constexpr (!std::is_integral_v<T>) {
    switch (source) {
      case DType::kF16:
        for (int64_t i = 0; i < n; ++i)
          out[i] = static_cast<T>(
              ::bindery::detail::half_bits_to_float(detail::load_unaligned<uint16_t>(bytes + 2 * i)));
        return;
      case DType::kBF16:
        for (int64_t i = 0; i < n; ++i)
          out[i] = static_cast<T>(
              ::bindery::detail::bfloat16_bits_to_float(detail::load_unaligned<uint16_t>(bytes + 2 * i)));
        return;
      case DType::kF32:
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(detail::load_unaligned<float>(bytes + 4 * i));
        return;
      case DType::kF64:
        for (int64_t i = 0; i < n; ++i)
          out[i] = static_cast<T>(detail::load_unaligned<double>(bytes + 8 * i));
        return;
      default:
        break;
    }
  }
  throw ValueError(::bindery::detail::concat(what, ": loading ", dtype_name(source), " values as ",
                                             dtype_name(dtype_of<T>()), " is not supported"));
}

}  // namespace bindery::io
