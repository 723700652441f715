// bindery/interop/borrow.hpp — a Tensor that views memory it does not own (users' arrays).
//
// The shared part of interop/eigen.hpp and interop/xtensor.hpp: a non-owning view of host memory
// given as a data pointer, a shape and element strides (any sign), and the host-side checks of the
// opposite direction. Lifetime rule: the user's array must outlive every Tensor (and every view,
// op input or saved autograd value) made from it; bindery never frees borrowed memory.
#pragma once

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>

#include "bindery/core/tensor.hpp"

namespace bindery::interop {

namespace detail {

/// Stops a host view of memory the host cannot read (Cuda tensors) at compile time.
template <Backend B>
constexpr void require_host_backend() {
  static_assert(
      B::kHostAccessible,
      "bindery::interop: this tensor lives on a backend the host cannot read (e.g. Cuda); copy it to "
      "the host first with tensor.template to<bindery::Cpu>()");
}

/// "(a, b, c)" for messages.
inline std::string format_strides(const Strides& strides) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < strides.size(); ++i) os << (i ? ", " : "") << strides[i];
  os << ')';
  return os.str();
}

}  // namespace detail

/// A Tensor<T, B> viewing `data` (host memory) with `shape` and element `strides` (negative and zero
/// strides allowed), without copying. The storage handle's deleter does nothing: the memory stays
/// the caller's, and it must outlive the tensor and everything that shares its storage.
template <class T, Backend B = Cpu>
Tensor<T, B> borrow(T* data, const Shape& shape, Strides strides) {
  detail::require_host_backend<B>();
  BINDERY_CHECK(static_cast<int64_t>(strides.size()) == shape.rank(), ShapeError, "interop::borrow: shape ",
                shape, " and strides ", detail::format_strides(strides), " differ in rank");
  BINDERY_CHECK(data != nullptr || shape.numel() == 0, ValueError, "interop::borrow: null data for shape ",
                shape);
  if (data == nullptr) {  // an empty array (Eigen's has no buffer): any valid address, never read
    static T no_elements{};
    data = &no_elements;
  }
  // The storage starts at the lowest element the view reaches; the view's offset leads back to `data`.
  int64_t lowest = 0, highest = 0;
  for (int64_t d = 0; d < shape.rank(); ++d) {
    const int64_t reach = (shape[d] > 0 ? shape[d] - 1 : 0) * strides[static_cast<size_t>(d)];
    (reach < 0 ? lowest : highest) += reach;
  }
  T* base = data + lowest;
  std::shared_ptr<T> borrowed(base, [](T*) {});
  return Tensor<T, B>::from_external(std::move(borrowed), highest - lowest + 1, shape, std::move(strides),
                                     -lowest);
}

}  // namespace bindery::interop
