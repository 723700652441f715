// bindery/ops/concat.hpp — concat (join along an existing axis) and stack (join along a new axis).
//
// Forward: every input is copied into its slab of one new contiguous tensor; a contiguous input is
// copied as `outer` blocks of (extent × inner) elements (one division per element, no Indexer).
// Backward: input i receives the slab of dL/dy it was copied to (a view; no arithmetic).
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "bindery/ops/shape.hpp"

namespace bindery::ops {

namespace detail {

/// out viewed as (outer, out_row) <- in viewed as (outer, block), at column `offset` of each row.
template <class T>
struct ConcatBlockCopy {
  T* out;
  const T* in;
  int64_t block, out_row, offset;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t row = i / block;
    out[row * out_row + offset + (i - row * block)] = in[i];
  }
};

/// "(2, 3), (2, 4), (5,)" — every shape of a list, for error messages.
template <class Range>
std::string join_shapes(const Range& items) {
  std::string s;
  for (const auto& item : items) {
    if (!s.empty()) s += ", ";
    s += item.shape().to_string();
  }
  return s;
}

/// Checks that `shapes` agree except on `axis` (normalized against the first one); returns it.
template <class Range>
int64_t check_concat_shapes(const char* op, const Range& items, int64_t axis) {
  BINDERY_CHECK(!items.empty(), ValueError, op, ": needs at least one input");
  const Shape& first = items.front().shape();
  const int64_t rank = first.rank();
  BINDERY_CHECK(rank > 0, ShapeError, op, ": cannot concatenate rank-0 tensors (shapes ", join_shapes(items),
                "); use stack");
  const int64_t a = first.normalize_axis(axis);
  for (const auto& item : items) {
    const Shape& s = item.shape();
    bool ok = s.rank() == rank;
    for (int64_t d = 0; ok && d < rank; ++d) ok = d == a || s[d] == first[d];
    BINDERY_CHECK(ok, ShapeError, op, ": shapes ", join_shapes(items), " must agree on every axis except ",
                  axis);
  }
  return a;
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// Joins tensors along an existing `axis` (negative counts from the end).
/// xs[i]: (d0, ..., n_i, ..., dk) -> (d0, ..., sum n_i, ..., dk). Shapes agree except on `axis`.
template <class T, class B>
Tensor<T, B> concat_forward(const std::vector<Tensor<T, B>>& xs, int64_t axis) {
  const int64_t a = detail::check_concat_shapes("concat", xs, axis);
  Shape out_shape = xs.front().shape();
  int64_t total = 0;
  for (const auto& x : xs) {  // zero-size inputs can carry huge extents: the sum is checked
    BINDERY_CHECK(!__builtin_add_overflow(total, x.shape()[a], &total), ShapeError,
                  "concat: the extents along axis ", a, " of ", detail::join_shapes(xs), " overflow int64");
  }
  out_shape[a] = total;
  Tensor<T, B> out = Tensor<T, B>::empty(out_shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < a; ++d) outer *= out_shape[d];
  for (int64_t d = a + 1; d < out_shape.rank(); ++d) inner *= out_shape[d];
  int64_t start = 0;
  for (const auto& x : xs) {
    const int64_t extent = x.shape()[a];
    if (x.numel() > 0) {
      if (!x.is_contiguous()) {
        out.slice(a, start, start + extent).copy_(x);
      } else if (outer == 1) {
        B::copy(out.data() + start * inner, x.data(), x.numel());
      } else {
        B::for_each(x.numel(), detail::ConcatBlockCopy<T>{out.data(), x.data(), extent * inner, total * inner,
                                                          start * inner});
      }
    }
    start += extent;
  }
  return out;
}

/// Joins equally shaped tensors along a new `axis` (in [-rank-1, rank]).
/// xs[i]: (d0, ..., dk) -> (d0, ..., len(xs), ..., dk) with the new axis at `axis`.
template <class T, class B>
Tensor<T, B> stack_forward(const std::vector<Tensor<T, B>>& xs, int64_t axis) {
  BINDERY_CHECK(!xs.empty(), ValueError, "stack: needs at least one input");
  const Shape& first = xs.front().shape();
  for (const auto& x : xs) {
    BINDERY_CHECK(x.shape() == first, ShapeError, "stack: shapes ", detail::join_shapes(xs),
                  " must all be equal");
  }
  const int64_t a = first.normalize_axis(axis, first.rank() + 1);
  std::vector<Tensor<T, B>> expanded;
  expanded.reserve(xs.size());
  for (const auto& x : xs) expanded.push_back(x.unsqueeze(a));
  return concat_forward(expanded, a);
}

// ---- differentiable ----------------------------------------------------------------------------

/// Joins Vars along an existing `axis`: xs[i] (.., n_i, ..) -> (.., sum n_i, ..).
/// dL/dxs[i] = the slab [start_i, start_i + n_i) of dL/dy along `axis`.
template <class T, class B>
Var<T, B> concat(const std::vector<Var<T, B>>& xs, int64_t axis) {
  for (const auto& x : xs) BINDERY_CHECK(x.defined(), ValueError, "concat: an input Var is undefined");
  const int64_t a = detail::check_concat_shapes("concat", xs, axis);
  std::vector<Tensor<T, B>> values;
  std::vector<int64_t> starts;  // starts[i]..starts[i+1] is input i's slab
  std::vector<bool> wanted;
  values.reserve(xs.size());
  starts.push_back(0);
  for (const auto& x : xs) {
    values.push_back(x.value());
    starts.push_back(starts.back() + x.shape()[a]);
    wanted.push_back(needs_grad(x));
  }
  return make_result<T, B>(concat_forward(values, a), "concat", xs,
                           [a, starts, wanted](const Tensor<T, B>& dL_dy) {
                             std::vector<Tensor<T, B>> dL_dxs(wanted.size());
                             for (size_t i = 0; i < wanted.size(); ++i) {
                               if (wanted[i]) dL_dxs[i] = dL_dy.slice(a, starts[i], starts[i + 1]);
                             }
                             return dL_dxs;
                           });
}

/// Joins equally shaped Vars along a new `axis`: xs[i] (d0, .., dk) -> (.., len(xs), ..).
/// dL/dxs[i] = dL/dy selected at i along `axis`.
template <class T, class B>
Var<T, B> stack(const std::vector<Var<T, B>>& xs, int64_t axis) {
  for (const auto& x : xs) BINDERY_CHECK(x.defined(), ValueError, "stack: an input Var is undefined");
  std::vector<Tensor<T, B>> values;
  std::vector<bool> wanted;
  for (const auto& x : xs) {
    values.push_back(x.value());
    wanted.push_back(needs_grad(x));
  }
  Tensor<T, B> y = stack_forward(values, axis);
  const int64_t a = xs.front().shape().normalize_axis(axis, xs.front().rank() + 1);
  return make_result<T, B>(y, "stack", xs, [a, wanted](const Tensor<T, B>& dL_dy) {
    std::vector<Tensor<T, B>> dL_dxs(wanted.size());
    for (size_t i = 0; i < wanted.size(); ++i) {
      if (wanted[i]) dL_dxs[i] = dL_dy.select(a, static_cast<int64_t>(i));
    }
    return dL_dxs;
  });
}

/// concat({a, b, c}, axis) without spelling the vector type.
template <class T, class B>
Var<T, B> concat(std::initializer_list<Var<T, B>> xs, int64_t axis) {
  return concat(std::vector<Var<T, B>>(xs), axis);
}
/// stack({a, b, c}, axis) without spelling the vector type.
template <class T, class B>
Var<T, B> stack(std::initializer_list<Var<T, B>> xs, int64_t axis) {
  return stack(std::vector<Var<T, B>>(xs), axis);
}

}  // namespace bindery::ops
