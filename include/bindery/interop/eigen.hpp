// bindery/interop/eigen.hpp — zero-copy views between bindery tensors and Eigen matrices.
//
//   Eigen::MatrixXf m(3, 4);                        // column-major, as Eigen's default
//   auto x = bindery::interop::from_eigen(m);       // Tensor<float> (3, 4), strides (1, 3): no copy
//   auto y = bindery::ops::gelu_forward(x);         // a new (contiguous) tensor
//   auto ym = bindery::interop::to_eigen(y);        // Eigen::Map over y's memory: no copy
//
// from_eigen views any Eigen object with direct memory access (Matrix, Array, Map, Ref, Block) in
// place: rows and columns become the tensor's two axes with the object's own inner and outer
// strides, so a column-major matrix is a transposed-strides view, never a copy. Vectors become 1-D
// tensors. to_eigen maps a 2-D host tensor as a row-major Eigen::Map with runtime strides (any
// non-negative strides: row-major, transposed, sliced, broadcast); to_eigen_contiguous gives the
// plain unstrided Map that Eigen's fastest kernels want and refuses other layouts with a ValueError.
// Lifetime rule (both directions): the array that owns the memory — the Eigen matrix, or the
// tensor's storage — must outlive the view. Device tensors (Cuda) do not compile here.
#pragma once

#include <type_traits>

#include <Eigen/Core>

#include "bindery/interop/borrow.hpp"

namespace bindery::interop {

/// A row-major Eigen matrix map with runtime strides: what to_eigen returns.
template <class T>
using EigenStridedMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                                   Eigen::Unaligned, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
/// A contiguous row-major Eigen matrix map: what to_eigen_contiguous returns.
template <class T>
using EigenMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
/// A strided Eigen vector map: what to_eigen_vector returns.
template <class T>
using EigenVectorMap =
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Unaligned, Eigen::InnerStride<Eigen::Dynamic>>;

/// Eigen objects whose coefficients sit in memory at data() + i·stride: Matrix, Array, Map, Ref,
/// and blocks of those.
template <class E>
concept EigenDirectAccess = requires(E& e) {
  e.data();
  e.innerStride();
  e.outerStride();
}
&&(int(std::remove_cvref_t<E>::Flags) & int(Eigen::DirectAccessBit)) != 0;

/// A Tensor<Scalar, B> over the coefficients of `m`, no copy: (rows, cols) with m's strides, or
/// (size) for a compile-time vector. A const `m` is viewed too; bindery's ops never write their
/// inputs, but in-place tensor methods (fill_, copy_) on such a view would write the caller's const
/// data: don't. `m` must outlive the tensor.
template <Backend B = Cpu, EigenDirectAccess E>
auto from_eigen(E& m) {
  using Expr = std::remove_cvref_t<E>;
  using T = typename Expr::Scalar;
  T* data = const_cast<T*>(m.data());
  const int64_t rows = m.rows(), cols = m.cols();
  const int64_t inner = m.innerStride(), outer = m.outerStride();
  if constexpr (Expr::IsVectorAtCompileTime) {
    return borrow<T, B>(data, Shape{rows * cols}, Strides{inner});
  } else if constexpr (Expr::IsRowMajor) {
    return borrow<T, B>(data, Shape{rows, cols}, Strides{outer, inner});
  } else {
    return borrow<T, B>(data, Shape{rows, cols}, Strides{inner, outer});
  }
}

/// An Eigen map over a 2-D host tensor, no copy: row-major with the tensor's own strides, so
/// transposed and sliced views map in place. Throws ShapeError unless the tensor is 2-D and
/// ValueError for a negative stride (Eigen's strides are non-negative). `t`'s storage must outlive
/// the map (keep the tensor, or any view of it, alive).
template <class T, Backend B>
EigenStridedMap<T> to_eigen(const Tensor<T, B>& t) {
  detail::require_host_backend<B>();
  BINDERY_CHECK(t.defined(), ValueError, "interop::to_eigen: the tensor is undefined");
  BINDERY_CHECK(
      t.rank() == 2, ShapeError, "interop::to_eigen: tensor of shape ", t.shape(),
      " is not 2-D; an Eigen matrix has rows and columns (use to_eigen_vector for 1-D, reshape others)");
  BINDERY_CHECK(t.stride(0) >= 0 && t.stride(1) >= 0, ValueError, "interop::to_eigen: tensor of shape ",
                t.shape(), " has strides ", detail::format_strides(t.strides()),
                ", and Eigen cannot express a negative stride: call .contiguous() first");
  return EigenStridedMap<T>(t.data(), t.size(0), t.size(1),
                            Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(t.stride(0), t.stride(1)));
}

/// A plain (unstrided) row-major Eigen map over a contiguous 2-D host tensor, no copy. Throws
/// ShapeError unless 2-D, and ValueError for any other layout (a transposed or sliced view): call
/// .contiguous() first, or use to_eigen.
template <class T, Backend B>
EigenMap<T> to_eigen_contiguous(const Tensor<T, B>& t) {
  detail::require_host_backend<B>();
  BINDERY_CHECK(t.defined(), ValueError, "interop::to_eigen_contiguous: the tensor is undefined");
  BINDERY_CHECK(t.rank() == 2, ShapeError, "interop::to_eigen_contiguous: tensor of shape ", t.shape(),
                " is not 2-D");
  BINDERY_CHECK(t.is_contiguous(), ValueError, "interop::to_eigen_contiguous: tensor of shape ", t.shape(),
                " with strides ", detail::format_strides(t.strides()),
                " is not row-major contiguous (needs strides (", t.size(1),
                ", 1)): call .contiguous() first, or map it with to_eigen");
  return EigenMap<T>(t.data(), t.size(0), t.size(1));
}

/// An Eigen column-vector map over a 1-D host tensor with its stride, no copy. Throws ShapeError
/// unless 1-D and ValueError for a negative stride.
template <class T, Backend B>
EigenVectorMap<T> to_eigen_vector(const Tensor<T, B>& t) {
  detail::require_host_backend<B>();
  BINDERY_CHECK(t.defined(), ValueError, "interop::to_eigen_vector: the tensor is undefined");
  BINDERY_CHECK(t.rank() == 1, ShapeError, "interop::to_eigen_vector: tensor of shape ", t.shape(),
                " is not 1-D");
  BINDERY_CHECK(t.stride(0) >= 0, ValueError, "interop::to_eigen_vector: tensor of shape ", t.shape(),
                " has stride ", t.stride(0), ", and Eigen cannot express a negative stride");
  return EigenVectorMap<T>(t.data(), t.size(0), Eigen::InnerStride<Eigen::Dynamic>(t.stride(0)));
}

}  // namespace bindery::interop
