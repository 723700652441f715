// bindery/core/shape.hpp — tensor shapes, strides and broadcasting rules.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "bindery/core/error.hpp"

namespace bindery {

namespace detail {

/// The element count of `dims` and the span of their row-major strides, both overflow-checked:
/// `numel` is the product of the extents and `span` the product of max(extent, 1) (what
/// contiguous_strides multiplies; it is the one that overflows for (0, 2^62, 4), whose numel is 0).
/// False on a negative extent or when `span` leaves int64 (then numel and span are unspecified).
template <class Range>
bool checked_extents(const Range& dims, int64_t& numel, int64_t& span) {
  numel = 1;
  span = 1;
  bool zero = false;
  for (const auto extent : dims) {
    const auto d = static_cast<int64_t>(extent);
    if (d < 0) return false;
    if (d == 0) zero = true;
    if (__builtin_mul_overflow(span, d > 0 ? d : int64_t{1}, &span)) return false;
  }
  numel = zero ? 0 : span;
  return true;
}

}  // namespace detail

/// The extents of a tensor, outermost first: Shape{2, 3} is 2 rows of 3 elements.
/// A rank-0 shape (Shape{}) describes a scalar with one element.
/// Invariant (checked on construction, throws ShapeError): no extent is negative and the product
/// of the extents, zero extents counted as 1, fits int64 — so numel() and contiguous_strides()
/// never overflow, even for a shape with zero elements such as (0, 2^62, 4).
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) { validate(); }
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) { validate(); }

  int64_t rank() const { return static_cast<int64_t>(dims_.size()); }
  int64_t operator[](int64_t axis) const { return dims_[static_cast<size_t>(axis)]; }
  int64_t& operator[](int64_t axis) { return dims_[static_cast<size_t>(axis)]; }
  /// Extent of `axis`, where a negative axis counts from the end (-1 is the last one).
  int64_t at(int64_t axis) const { return dims_[static_cast<size_t>(normalize_axis(axis))]; }
  int64_t back() const { return dims_.back(); }

  /// Number of elements: the product of the extents (1 for a scalar). Overflow-checked (an extent
  /// written through operator[] is not validated until here): throws ShapeError.
  int64_t numel() const {
    int64_t count = 1, span = 1;
    if (!detail::checked_extents(dims_, count, span)) throw_invalid();
    return count;
  }

  /// Maps a possibly negative axis into [0, rank); throws IndexError naming the shape otherwise.
  int64_t normalize_axis(int64_t axis) const { return normalize_axis(axis, rank()); }
  int64_t normalize_axis(int64_t axis, int64_t rank_for_axis) const {
    const int64_t normalized = axis < 0 ? axis + rank_for_axis : axis;
    BINDERY_CHECK(normalized >= 0 && normalized < rank_for_axis, IndexError, "axis ", axis,
                  " is out of range for shape ", to_string(), " (rank ", rank(), ")");
    return normalized;
  }

  const std::vector<int64_t>& dims() const { return dims_; }
  /// A Shape converts to its extents, so it can be passed wherever a list of extents is expected.
  operator const std::vector<int64_t>&() const { return dims_; }
  auto begin() const { return dims_.begin(); }
  auto end() const { return dims_.end(); }
  void push_back(int64_t d) {
    BINDERY_CHECK(d >= 0, ShapeError, "negative extent ", d, " appended to shape ", to_string());
    dims_.push_back(d);
  }
  void insert(int64_t axis, int64_t d) {
    dims_.insert(dims_.begin() + axis, d);
    validate();
  }
  void erase(int64_t axis) { dims_.erase(dims_.begin() + axis); }

  friend bool operator==(const Shape& a, const Shape& b) = default;

  /// "(2, 3)" — the form every error message uses.
  std::string to_string() const {
    std::string s = "(";
    for (size_t i = 0; i < dims_.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    if (dims_.size() == 1) s += ",";
    return s + ")";
  }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.to_string(); }

 private:
  void validate() const {
    int64_t count = 1, span = 1;
    if (!detail::checked_extents(dims_, count, span)) throw_invalid();
  }
  [[noreturn]] void throw_invalid() const {
    for (int64_t d : dims_) {
      BINDERY_CHECK(d >= 0, ShapeError, "shape ", to_string(), " has a negative extent");
    }
    throw ShapeError(detail::concat("shape ", to_string(),
                                    " is too large: the product of its extents (zero extents counted as 1, "
                                    "as its strides are) overflows int64"));
  }
  std::vector<int64_t> dims_;
};

/// Element strides of a tensor, in elements (not bytes), one per axis.
using Strides = std::vector<int64_t>;

/// Row-major (C order) strides of a shape: the last axis has stride 1.
/// A zero extent counts as 1 (as in PyTorch): (2, 0) has strides (1, 1). Tensor::is_contiguous
/// agrees: every tensor with zero elements is contiguous. Throws ShapeError on int64 overflow.
inline Strides contiguous_strides(const Shape& shape) {
  Strides strides(static_cast<size_t>(shape.rank()));
  int64_t stride = 1;
  for (int64_t i = shape.rank() - 1; i >= 0; --i) {
    strides[static_cast<size_t>(i)] = stride;
    BINDERY_CHECK(!__builtin_mul_overflow(stride, shape[i] > 0 ? shape[i] : int64_t{1}, &stride), ShapeError,
                  "contiguous_strides: the strides of shape ", shape, " overflow int64");
  }
  return strides;
}

/// NumPy broadcasting: align the shapes at the right, extents must be equal or 1.
/// broadcast_shapes((4, 1, 3), (5, 1)) -> (4, 5, 3).
inline Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const int64_t rank = a.rank() > b.rank() ? a.rank() : b.rank();
  std::vector<int64_t> out(static_cast<size_t>(rank));
  for (int64_t i = 0; i < rank; ++i) {
    const int64_t ai = i - (rank - a.rank());
    const int64_t bi = i - (rank - b.rank());
    const int64_t da = ai >= 0 ? a[ai] : 1;
    const int64_t db = bi >= 0 ? b[bi] : 1;
    BINDERY_CHECK(da == db || da == 1 || db == 1, ShapeError, "shapes ", a, " and ", b,
                  " cannot be broadcast together (axis ", i, ": ", da, " vs ", db, ")");
    out[static_cast<size_t>(i)] = da == 1 ? db : da;
  }
  return Shape(std::move(out));
}

}  // namespace bindery
