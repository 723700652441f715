// bindery/core/tensor.hpp — Tensor<T, Backend>: shared storage + shape + strides + offset.
//
// A Tensor is a cheap handle (like torch.Tensor): copying it shares the storage. Views (reshape of
// a contiguous tensor, permute, transpose, slice, select, expand) share the storage and change only
// shape/strides/offset; contiguous() and clone() copy. Memory lives on the backend B and is touched
// only through B's static functions, so this file works unchanged for Cpu and Cuda.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <memory>
#include <numeric>
#include <ostream>
#include <span>
#include <sstream>
#include <type_traits>
#include <vector>

#include "bindery/backend/backend.hpp"
#include "bindery/backend/cpu.hpp"  // the default backend: complete wherever Tensor<T> is named
#include "bindery/core/error.hpp"
#include "bindery/core/float16.hpp"
#include "bindery/core/indexer.hpp"
#include "bindery/core/philox.hpp"
#include "bindery/core/shape.hpp"

namespace bindery {

namespace detail {

// Element-wise functors used by Tensor itself. They live here (not in ops/) because creation and
// copies are part of the core; the ops layer has its own, richer set.

template <class T>
struct FillFunctor {
  T* out;
  T value;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = value; }
};

template <class T>
struct ArangeFunctor {
  T* out;
  double start, step;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    out[i] = static_cast<T>(start + step * static_cast<double>(i));
  }
};

template <class T>
struct StridedCopy1DFunctor {  // out[i * so] = in[i * si]
  T* out;
  const T* in;
  int64_t out_stride, in_stride;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i * out_stride] = in[i * in_stride]; }
};

template <class T>
struct StridedCopyRowsFunctor {  // row r of out (strided) <- row r of in (strided)
  T* out;
  const T* in;
  RowIndexer out_rows, in_rows;
  BINDERY_HOST_DEVICE void operator()(int64_t row) const {
    T* o = out + out_rows.outer(row);
    const T* x = in + in_rows.outer(row);
    const int64_t so = out_rows.inner_stride, si = in_rows.inner_stride;
    if (so == 1 && si == 1) {
      for (int64_t j = 0; j < out_rows.inner; ++j) o[j] = x[j];
    } else {
      for (int64_t j = 0; j < out_rows.inner; ++j) o[j * so] = x[j * si];
    }
  }
};

template <class To, class From>
struct CastFunctor {
  To* out;
  const From* in;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = static_cast<To>(in[i]); }
};

enum class RandomKind { kUniform, kNormal, kTruncatedNormal };

template <class T>
struct PhiloxFillFunctor {
  T* out;
  uint64_t seed, first_counter;
  RandomKind kind;
  double a, b;        // uniform: [a, b); normal: mean a, std b
  double lo_p, hi_p;  // truncated normal: erf-space bounds 2*Phi(lo)-1, 2*Phi(hi)-1
  double lo, hi;      // truncated normal: clamp bounds
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const PhiloxBlock block = philox4x32_10(first_counter + static_cast<uint64_t>(i), seed);
    if (kind == RandomKind::kUniform) {
      out[i] = static_cast<T>(a + (b - a) * static_cast<double>(philox_uniform01<T>(block)));
    } else if (kind == RandomKind::kNormal) {
      out[i] = static_cast<T>(a + b * philox_normal(block));
    } else {
      // Inverse-CDF sampling, as torch.nn.init.trunc_normal_: uniform in erf space, then erfinv.
      const double u = philox_uniform01<double>(block);
      const double p = lo_p + (hi_p - lo_p) * u;
      double x = a + b * 1.4142135623730951 * erfinv(p);
      x = x < lo ? lo : (x > hi ? hi : x);
      out[i] = static_cast<T>(x);
    }
  }
};

/// Thread-local switch read by Tensor's random constructors (see SkipRandomInit).
inline bool& skip_random_fill() {
  thread_local bool skip = false;
  return skip;
}

}  // namespace detail

/// RAII guard: inside its scope, Tensor::uniform / normal / truncated_normal allocate without
/// drawing (the values are left uninitialized; generators still advance). For building a model
/// whose every weight is about to be overwritten by a checkpoint: random init of the `huge`
/// ImageBind costs ~50 s on 2 cores, reading its weights ~3 s.
class SkipRandomInit {
 public:
  SkipRandomInit() : previous_(detail::skip_random_fill()) { detail::skip_random_fill() = true; }
  ~SkipRandomInit() { detail::skip_random_fill() = previous_; }
  SkipRandomInit(const SkipRandomInit&) = delete;
  SkipRandomInit& operator=(const SkipRandomInit&) = delete;

 private:
  bool previous_;
};

/// An n-dimensional array of T on backend B. See the file comment for the view semantics.
/// B must satisfy `Backend` (backend/backend.hpp): a policy missing a function fails here.
template <class T, Backend B = Cpu>
class Tensor {
  static_assert(!std::is_same_v<T, bool>, "Tensor<bool> is not supported: use uint8_t for masks");

 public:
  using value_type = T;
  using backend_type = B;

  /// An undefined tensor (no storage). defined() is false; most operations throw on it.
  Tensor() = default;

  // ---- creation -------------------------------------------------------------------------------

  /// Uninitialized contiguous tensor of `shape`.
  static Tensor empty(const Shape& shape) {
    Tensor t;
    t.storage_ = make_storage(shape.numel());
    t.capacity_ = std::max<int64_t>(shape.numel(), 1);
    t.shape_ = shape;
    t.strides_ = contiguous_strides(shape);
    return t;
  }
  static Tensor full(const Shape& shape, T value) {
    Tensor t = empty(shape);
    t.fill_(value);
    return t;
  }
  static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  static Tensor scalar(T value) { return full(Shape{}, value); }
  static Tensor zeros_like(const Tensor& other) { return zeros(other.shape()); }

  /// [start, end) in steps of `step`, as a 1-D tensor: arange(0, 5) = {0, 1, 2, 3, 4}.
  static Tensor arange(double start, double end, double step = 1.0) {
    BINDERY_CHECK(step != 0.0, ValueError, "arange: step must be nonzero");
    const auto n = static_cast<int64_t>(std::max(0.0, std::ceil((end - start) / step)));
    Tensor t = empty(Shape{n});
    B::for_each(n, detail::ArangeFunctor<T>{t.data(), start, step});
    return t;
  }
  static Tensor arange(int64_t n) { return arange(0.0, static_cast<double>(n)); }

  /// Copies host values (row-major) into a new tensor; `values.size()` must equal shape.numel().
  static Tensor from_host(std::span<const T> values, const Shape& shape) {
    BINDERY_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), ShapeError,
                  "from_host: ", values.size(), " values cannot fill shape ", shape, " (", shape.numel(),
                  " elements)");
    Tensor t = empty(shape);
    B::copy_from_host(t.data(), values.data(), shape.numel());
    return t;
  }
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
    return from_host(std::span<const T>(values.data(), values.size()), shape);
  }
  static Tensor from_vector(const std::vector<T>& values) {
    return from_vector(values, Shape{static_cast<int64_t>(values.size())});
  }

  /// Wraps existing backend memory (an mmap'ed file, a user buffer) without copying. `owner`
  /// keeps that memory alive for as long as any view of this tensor lives.
  static Tensor from_external(std::shared_ptr<T> owner, int64_t capacity, const Shape& shape,
                              Strides strides = {}, int64_t offset = 0) {
    Tensor t;
    t.storage_ = std::move(owner);
    t.capacity_ = capacity;
    t.shape_ = shape;
    t.strides_ = strides.empty() ? contiguous_strides(shape) : std::move(strides);
    t.offset_ = offset;
    t.check_within_storage();
    return t;
  }

  /// Uniform in [low, high) from `rng`, which advances by numel() counters.
  static Tensor uniform(const Shape& shape, Philox& rng, double low = 0.0, double high = 1.0) {
    return random(shape, rng, detail::RandomKind::kUniform, low, high);
  }
  /// Normal(mean, std) from `rng`.
  static Tensor normal(const Shape& shape, Philox& rng, double mean = 0.0, double std = 1.0) {
    BINDERY_CHECK(std >= 0, ValueError, "normal: std must be >= 0, got ", std);
    return random(shape, rng, detail::RandomKind::kNormal, mean, std);
  }
  /// Normal(mean, std) truncated to [low, high] (torch.nn.init.trunc_normal_; ViT/CLIP init).
  static Tensor truncated_normal(const Shape& shape, Philox& rng, double mean = 0.0, double std = 1.0,
                                 double low = -2.0, double high = 2.0) {
    BINDERY_CHECK(std > 0 && low < high, ValueError,
                  "truncated_normal: need std > 0 and low < high, got std ", std, ", [", low, ", ", high,
                  "]");
    return random(shape, rng, detail::RandomKind::kTruncatedNormal, mean, std, low, high);
  }

  // ---- inspection -----------------------------------------------------------------------------

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return shape_.rank(); }
  /// Extent of `axis` (negative counts from the end).
  int64_t size(int64_t axis) const { return shape_.at(axis); }
  int64_t numel() const { return shape_.numel(); }
  const Strides& strides() const { return strides_; }
  int64_t stride(int64_t axis) const { return strides_[static_cast<size_t>(shape_.normalize_axis(axis))]; }
  int64_t offset() const { return offset_; }
  /// Elements the storage holds (>= what this view can reach).
  int64_t storage_capacity() const { return capacity_; }
  /// Row-major with no gaps. A tensor with zero elements is always contiguous (as in PyTorch): its
  /// strides are never used, and reshape/contiguous rely on it — (2, 0) with strides (1, 1) from
  /// contiguous_strides must not look non-contiguous, or reshape -> contiguous -> clone recurse.
  bool is_contiguous() const {
    if (numel() == 0) return true;
    int64_t expected = 1;
    for (int64_t d = rank() - 1; d >= 0; --d) {
      if (shape_[d] != 1 && strides_[static_cast<size_t>(d)] != expected) return false;
      expected *= shape_[d];
    }
    return true;
  }
  /// Pointer (backend memory) to the element at index (0, ..., 0).
  T* data() const {
    require_defined("data");
    return storage_.get() + offset_;
  }
  /// True when both tensors view the same storage.
  bool shares_storage_with(const Tensor& other) const { return storage_ == other.storage_; }
  long storage_use_count() const { return storage_.use_count(); }

  // ---- views (share storage) ------------------------------------------------------------------

  /// Same elements in a new shape. A view when the layout allows it, else a contiguous copy.
  /// One extent may be -1: it is inferred from the others.
  Tensor reshape(std::vector<int64_t> dims) const {
    const Shape target = infer_shape(std::move(dims));
    if (is_contiguous()) return as_strided(target, contiguous_strides(target), offset_);
    return contiguous().reshape(target.dims());
  }
  /// Like reshape but never copies: throws if this tensor is not contiguous.
  Tensor view(const Shape& shape) const {
    BINDERY_CHECK(is_contiguous(), ShapeError, "view: tensor of shape ", shape_,
                  " is not contiguous; use reshape() or contiguous()");
    return reshape(shape);
  }
  /// Reorders axes: permute({0, 2, 1}) swaps the last two axes of a rank-3 tensor.
  Tensor permute(const std::vector<int64_t>& order) const {
    BINDERY_CHECK(static_cast<int64_t>(order.size()) == rank(), ShapeError, "permute: order of ",
                  order.size(), " axes for shape ", shape_);
    std::vector<int64_t> dims(order.size());
    Strides strides(order.size());
    std::vector<bool> seen(order.size(), false);
    for (size_t i = 0; i < order.size(); ++i) {
      const int64_t axis = shape_.normalize_axis(order[i]);
      BINDERY_CHECK(!seen[static_cast<size_t>(axis)], ShapeError, "permute: axis ", axis,
                    " repeated for shape ", shape_);
      seen[static_cast<size_t>(axis)] = true;
      dims[i] = shape_[axis];
      strides[i] = strides_[static_cast<size_t>(axis)];
    }
    return as_strided(Shape(std::move(dims)), std::move(strides), offset_);
  }
  /// Swaps two axes.
  Tensor transpose(int64_t axis_a, int64_t axis_b) const {
    std::vector<int64_t> order(static_cast<size_t>(rank()));
    std::iota(order.begin(), order.end(), 0);
    std::swap(order[static_cast<size_t>(shape_.normalize_axis(axis_a))],
              order[static_cast<size_t>(shape_.normalize_axis(axis_b))]);
    return permute(order);
  }
  /// Elements start, start+step, ... < end along `axis` (negative start/end count from the end,
  /// and are clamped to the extent, as Python slicing).
  Tensor slice(int64_t axis, int64_t start, int64_t end, int64_t step = 1) const {
    axis = shape_.normalize_axis(axis);
    BINDERY_CHECK(step >= 1, ValueError, "slice: step must be >= 1, got ", step);
    const int64_t extent = shape_[axis];
    auto clamp_index = [extent](int64_t i) {
      if (i < 0) i += extent;
      return std::clamp<int64_t>(i, 0, extent);
    };
    start = clamp_index(start);
    end = std::max(start, clamp_index(end));
    Shape shape = shape_;
    shape[axis] = (end - start + step - 1) / step;
    Strides strides = strides_;
    strides[static_cast<size_t>(axis)] *= step;
    return as_strided(shape, strides, offset_ + start * strides_[static_cast<size_t>(axis)]);
  }
  /// The sub-tensor at `index` along `axis`; that axis disappears (x.select(0, i) is x[i]).
  Tensor select(int64_t axis, int64_t index) const {
    axis = shape_.normalize_axis(axis);
    const int64_t extent = shape_[axis];
    const int64_t i = index < 0 ? index + extent : index;
    BINDERY_CHECK(i >= 0 && i < extent, IndexError, "select: index ", index, " out of range for axis ", axis,
                  " of shape ", shape_);
    Shape shape = shape_;
    shape.erase(axis);
    Strides strides = strides_;
    strides.erase(strides.begin() + axis);
    return as_strided(shape, strides, offset_ + i * strides_[static_cast<size_t>(axis)]);
  }
  /// Broadcasts to `shape` with stride-0 axes (NumPy rules; new axes are added on the left).
  Tensor expand(const Shape& shape) const {
    BINDERY_CHECK(shape.rank() >= rank(), ShapeError, "expand: cannot expand shape ", shape_, " to ", shape);
    Strides strides(static_cast<size_t>(shape.rank()), 0);
    const int64_t lead = shape.rank() - rank();
    for (int64_t d = 0; d < rank(); ++d) {
      if (shape_[d] == shape[d + lead]) {
        strides[static_cast<size_t>(d + lead)] = strides_[static_cast<size_t>(d)];
      } else {
        BINDERY_CHECK(shape_[d] == 1, ShapeError, "expand: cannot expand shape ", shape_, " to ", shape,
                      " (axis ", d, " has extent ", shape_[d], ", not 1)");
      }
    }
    return as_strided(shape, strides, offset_);
  }
  /// Inserts an axis of extent 1 at `axis` (in [-rank-1, rank]).
  Tensor unsqueeze(int64_t axis) const {
    axis = shape_.normalize_axis(axis, rank() + 1);
    Shape shape = shape_;
    shape.insert(axis, 1);
    Strides strides = strides_;
    const int64_t stride = axis < rank() ? strides_[static_cast<size_t>(axis)] * shape_[axis] : 1;
    strides.insert(strides.begin() + axis, stride);
    return as_strided(shape, strides, offset_);
  }
  /// Removes `axis`, which must have extent 1.
  Tensor squeeze(int64_t axis) const {
    axis = shape_.normalize_axis(axis);
    BINDERY_CHECK(shape_[axis] == 1, ShapeError, "squeeze: axis ", axis, " of shape ", shape_, " has extent ",
                  shape_[axis], ", not 1");
    return select(axis, 0);
  }
  /// Merges axes [start, end] into one.
  Tensor flatten(int64_t start = 0, int64_t end = -1) const {
    if (rank() == 0) return reshape(std::vector<int64_t>{1});
    start = shape_.normalize_axis(start);
    end = shape_.normalize_axis(end);
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < start; ++d) dims.push_back(shape_[d]);
    int64_t merged = 1;
    for (int64_t d = start; d <= end; ++d) merged *= shape_[d];
    dims.push_back(merged);
    for (int64_t d = end + 1; d < rank(); ++d) dims.push_back(shape_[d]);
    return reshape(dims);
  }
  /// A view with explicit shape, strides and offset; checked against the storage bounds.
  Tensor as_strided(const Shape& shape, Strides strides, int64_t offset) const {
    require_defined("as_strided");
    Tensor t;
    t.storage_ = storage_;
    t.capacity_ = capacity_;
    t.shape_ = shape;
    t.strides_ = std::move(strides);
    t.offset_ = offset;
    t.check_within_storage();
    return t;
  }

  // ---- copies ---------------------------------------------------------------------------------

  /// This tensor if already contiguous, else a contiguous copy.
  Tensor contiguous() const {
    require_defined("contiguous");
    if (is_contiguous()) return *this;
    return clone();
  }
  /// A contiguous copy that shares nothing with this tensor.
  Tensor clone() const {
    Tensor out = empty(shape_);
    out.copy_(*this);
    return out;
  }
  /// Copies the values of `src` (same shape, any strides, may be broadcastable) into this tensor's
  /// elements, in place: works on views, which is how slices of a larger tensor are written.
  void copy_(const Tensor& src) {
    require_defined("copy_");
    src.require_defined("copy_ (source)");
    const Tensor source = src.shape() == shape_ ? src : src.expand(shape_);
    if (is_contiguous() && source.is_contiguous()) {
      B::copy(data(), source.data(), numel());
      return;
    }
    const Strides* strides[2] = {&strides_, &source.strides_};
    Indexer idx[2];
    make_indexers(shape_, strides, idx);
    if (idx[0].rank <= 1) {  // one merged axis: element-parallel
      const int64_t so = idx[0].rank == 1 ? idx[0].strides[0] : 0;
      const int64_t si = idx[1].rank == 1 ? idx[1].strides[0] : 0;
      B::for_each(numel(), detail::StridedCopy1DFunctor<T>{data(), source.data(), so, si});
      return;
    }
    const RowIndexer out_rows = split_rows(idx[0]), in_rows = split_rows(idx[1]);
    const int64_t rows = numel() / std::max<int64_t>(out_rows.inner, 1);
    B::for_each(rows, detail::StridedCopyRowsFunctor<T>{data(), source.data(), out_rows, in_rows},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(out_rows.inner, 1)));
  }
  /// Sets every element to `value`.
  void fill_(T value) {
    if (is_contiguous()) {
      B::for_each(numel(), detail::FillFunctor<T>{data(), value});
    } else {
      copy_(full(Shape{}, value));
    }
  }

  /// A copy on another backend (or the same tensor when OtherB is B).
  template <class OtherB>
  Tensor<T, OtherB> to() const {
    if constexpr (std::is_same_v<OtherB, B>) {
      return *this;
    } else {
      const std::vector<T> host = to_vector();
      return Tensor<T, OtherB>::from_vector(host, shape_);
    }
  }
  /// A copy with elements converted to U.
  template <class U>
  Tensor<U, B> cast() const {
    const Tensor source = contiguous();
    Tensor<U, B> out = Tensor<U, B>::empty(shape_);
    B::for_each(numel(), detail::CastFunctor<U, T>{out.data(), source.data()});
    return out;
  }

  /// The elements in row-major order, copied to the host.
  std::vector<T> to_vector() const {
    const Tensor source = contiguous();
    std::vector<T> host(static_cast<size_t>(numel()));
    B::copy_to_host(host.data(), source.data(), numel());
    return host;
  }
  /// The single element of a one-element tensor.
  T item() const {
    BINDERY_CHECK(numel() == 1, ShapeError, "item: tensor of shape ", shape_, " has ", numel(),
                  " elements, not 1");
    T value;
    B::copy_to_host(&value, data(), 1);
    return value;
  }
  /// One element by index (host read; slow on device backends: for tests and printing).
  T at(std::initializer_list<int64_t> index) const {
    BINDERY_CHECK(static_cast<int64_t>(index.size()) == rank(), IndexError, "at: ", index.size(),
                  " indices for shape ", shape_);
    int64_t offset = 0, d = 0;
    for (int64_t i : index) {
      const int64_t extent = shape_[d];
      const int64_t j = i < 0 ? i + extent : i;
      BINDERY_CHECK(j >= 0 && j < extent, IndexError, "at: index ", i, " out of range for axis ", d,
                    " of shape ", shape_);
      offset += j * strides_[static_cast<size_t>(d++)];
    }
    T value;
    B::copy_to_host(&value, data() + offset, 1);
    return value;
  }

  /// Prints like PyTorch: values (edges only for large tensors), then shape and backend.
  friend std::ostream& operator<<(std::ostream& os, const Tensor& t) {
    if (!t.defined()) return os << "Tensor(undefined)";
    const std::vector<T> values = t.to_vector();
    os << "tensor(";
    print_recursive(os, values, t.shape_, 0, 0, 8);
    return os << ", shape=" << t.shape_ << ", backend=" << B::kName << ")";
  }

 private:
  template <class, Backend>
  friend class Tensor;

  static std::shared_ptr<T> make_storage(int64_t n) {
    return std::shared_ptr<T>(B::template allocate<T>(n), [](T* p) { B::deallocate(p); });
  }

  static Tensor random(const Shape& shape, Philox& rng, detail::RandomKind kind, double a, double b,
                       double lo = 0.0, double hi = 0.0) {
    Tensor t = empty(shape);
    const uint64_t first = rng.advance(static_cast<uint64_t>(shape.numel()));
    if (detail::skip_random_fill()) return t;
    double lo_p = 0.0, hi_p = 0.0;
    if (kind == detail::RandomKind::kTruncatedNormal) {
      lo_p = std::erf((lo - a) / (b * 1.4142135623730951));
      hi_p = std::erf((hi - a) / (b * 1.4142135623730951));
    }
    B::for_each(shape.numel(),
                detail::PhiloxFillFunctor<T>{t.data(), rng.seed(), first, kind, a, b, lo_p, hi_p, lo, hi});
    return t;
  }

  void require_defined(const char* what) const {
    BINDERY_CHECK(defined(), ValueError, what, ": the tensor is undefined (default-constructed)");
  }

  Shape infer_shape(std::vector<int64_t> dims) const {
    int64_t known = 1, inferred = -1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == -1) {
        BINDERY_CHECK(inferred < 0, ShapeError, "reshape: more than one -1 in the target for shape ", shape_);
        inferred = static_cast<int64_t>(i);
      } else {
        BINDERY_CHECK(dims[i] >= 0, ShapeError, "reshape: negative extent ", dims[i], " in the target");
        BINDERY_CHECK(!__builtin_mul_overflow(known, dims[i], &known), ShapeError,
                      "reshape: the product of the target's extents overflows int64 (reshaping ", shape_,
                      ")");
      }
    }
    if (inferred >= 0) {
      BINDERY_CHECK(known > 0 && numel() % known == 0, ShapeError, "reshape: cannot infer -1 reshaping ",
                    shape_, " (", numel(), " elements) with the other extents' product ", known);
      dims[static_cast<size_t>(inferred)] = numel() / known;
    }
    Shape target(std::move(dims));
    BINDERY_CHECK(target.numel() == numel(), ShapeError, "reshape: cannot reshape ", shape_, " (", numel(),
                  " elements) to ", target, " (", target.numel(), " elements)");
    return target;
  }

  void check_within_storage() const {
    BINDERY_CHECK(static_cast<int64_t>(strides_.size()) == shape_.rank(), ShapeError, "strides of rank ",
                  strides_.size(), " for shape ", shape_);
    if (shape_.numel() == 0) return;
    int64_t lowest = offset_, highest = offset_;
    bool overflow = false;
    for (int64_t d = 0; d < shape_.rank() && !overflow; ++d) {
      int64_t reach = 0;
      overflow = __builtin_mul_overflow(shape_[d] - 1, strides_[static_cast<size_t>(d)], &reach) ||
                 __builtin_add_overflow(reach < 0 ? lowest : highest, reach, reach < 0 ? &lowest : &highest);
    }
    BINDERY_CHECK(!overflow, IndexError, "view of shape ", shape_, " with offset ", offset_,
                  ": the reach of its strides overflows int64");
    BINDERY_CHECK(lowest >= 0 && highest < capacity_, IndexError, "view of shape ", shape_, " with offset ",
                  offset_, " reaches elements [", lowest, ", ", highest, "] outside its storage of ",
                  capacity_, " elements");
  }

  static void print_recursive(std::ostream& os, const std::vector<T>& v, const Shape& shape, int64_t axis,
                              int64_t base, int64_t edge) {
    if (shape.rank() == 0) {
      os << v[0];
      return;
    }
    const int64_t extent = shape[axis];
    int64_t inner = 1;
    for (int64_t d = axis + 1; d < shape.rank(); ++d) inner *= shape[d];
    os << "[";
    for (int64_t i = 0; i < extent; ++i) {
      if (extent > 2 * edge && i == edge) {
        os << "..., ";
        i = extent - edge;
      }
      if (axis + 1 == shape.rank()) {
        os << std::setprecision(6) << v[static_cast<size_t>(base + i)];
      } else {
        print_recursive(os, v, shape, axis + 1, base + i * inner, edge);
      }
      if (i + 1 < extent) os << (axis + 1 == shape.rank() ? ", " : ",\n ");
    }
    os << "]";
  }

  std::shared_ptr<T> storage_;
  int64_t capacity_ = 0;
  Shape shape_;
  Strides strides_;
  int64_t offset_ = 0;
};

}  // namespace bindery
