// bindery/interop/xtensor.hpp — zero-copy views between bindery tensors and xtensor arrays.
//
//   xt::xtensor<float, 2> a = xt::ones<float>({3, 4});
//   auto x = bindery::interop::from_xtensor(a);     // Tensor<float> (3, 4) over a's buffer: no copy
//   auto y = bindery::ops::gelu_forward(x);
//   auto ya = bindery::interop::to_xtensor(y);      // xt::xarray_adaptor over y's memory: no copy
//
// xtensor describes memory exactly as bindery does — a data pointer, a shape and strides counted
// in elements — so both directions keep the layout: row-major, column-major and strided containers
// and adaptors view in place. from_xtensor takes any xtensor expression with a data interface
// (xarray, xtensor, xtensor_fixed, xt::adapt adaptors, strided views), negative strides included.
// to_xtensor maps any host tensor whose strides are non-negative (xtensor's adaptors start at the
// buffer's first element) and throws ValueError otherwise.
// Lifetime rule (both directions): the owner of the memory — the xtensor container, or the
// tensor's storage — must outlive the view. Device tensors (Cuda) do not compile here.
// Needs xtensor (header-only; Debian's xtensor-dev): link bindery::xtensor, or put xtensor's
// include directory on the path. bindery's other headers never include it.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xutils.hpp>

#include "bindery/interop/borrow.hpp"

namespace bindery::interop {

/// xtensor expressions whose elements sit at data() + data_offset() + Σ index·stride.
template <class E>
concept XtensorDirectAccess = requires(E& e) {
  e.data();
  e.data_offset();
  e.shape();
  e.strides();
}
&&xt::has_data_interface<std::remove_cvref_t<E>>::value;

/// A Tensor<value_type, B> over the elements of `e`, no copy, with e's shape and strides. A const
/// `e` is viewed too (bindery's ops never write their inputs; in-place tensor methods would).
/// `e` must outlive the tensor.
template <Backend B = Cpu, XtensorDirectAccess E>
auto from_xtensor(E& e) {
  using T = std::remove_cv_t<std::remove_pointer_t<decltype(e.data())>>;
  T* data = const_cast<T*>(e.data()) + e.data_offset();
  const auto& shape = e.shape();
  const auto& strides = e.strides();
  std::vector<int64_t> dims;
  Strides element_strides;
  for (size_t d = 0; d < std::size(shape); ++d) {
    dims.push_back(static_cast<int64_t>(shape[d]));
    element_strides.push_back(static_cast<int64_t>(strides[d]));
  }
  return borrow<T, B>(data, Shape(dims), std::move(element_strides));
}

/// An xtensor adaptor (xt::xarray_adaptor, no ownership) over a host tensor's elements with its
/// shape and strides, no copy. Throws ValueError for a negative stride. `t`'s storage must outlive
/// the adaptor.
template <class T, Backend B>
auto to_xtensor(const Tensor<T, B>& t) {
  detail::require_host_backend<B>();
  BINDERY_CHECK(t.defined(), ValueError, "interop::to_xtensor: the tensor is undefined");
  std::vector<size_t> shape;
  std::vector<std::ptrdiff_t> strides;
  for (int64_t d = 0; d < t.rank(); ++d) {
    BINDERY_CHECK(t.stride(d) >= 0, ValueError, "interop::to_xtensor: tensor of shape ", t.shape(),
                  " has strides ", detail::format_strides(t.strides()),
                  ": an xtensor adaptor cannot reach before its first element; call .contiguous() first");
    shape.push_back(static_cast<size_t>(t.size(d)));
    // xtensor's own convention: an axis of extent 1 has stride 0 (its layout checks rely on it)
    strides.push_back(t.size(d) == 1 ? 0 : static_cast<std::ptrdiff_t>(t.stride(d)));
  }
  // The buffer size xtensor wants is the element count (a strided adaptor checks size == Π shape;
  // elements are reached through the strides).
  const auto size = static_cast<size_t>(t.numel());
  return xt::adapt(t.data(), size, xt::no_ownership(), shape, strides);
}

}  // namespace bindery::interop
