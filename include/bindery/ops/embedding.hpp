// bindery/ops/embedding.hpp — embedding lookup: one weight row per integer id.
//
// embedding(ids, W) is index_select(W, 0, ids.flatten()) reshaped to (ids..., D), so it reuses the
// row-gather and scatter-add kernels of ops/index.hpp: the backward sums the gradients of repeated
// ids into their row, race-free (each thread owns whole rows of dL/dW) and deterministic.
#pragma once

#include <vector>

#include "bindery/ops/index.hpp"

namespace bindery::ops {

namespace detail {

template <class T, class B>
void check_embedding(const Tensor<int64_t, B>& ids, const Tensor<T, B>& weight) {
  BINDERY_CHECK(weight.rank() == 2, ShapeError, "embedding: weight of shape ", weight.shape(),
                " must be (V, D) (ids of shape ", ids.shape(), ")");
  const std::vector<int64_t> host = ids.to_vector();
  const int64_t vocab = weight.shape()[0];
  for (size_t j = 0; j < host.size(); ++j) {
    BINDERY_CHECK(host[j] >= 0 && host[j] < vocab, IndexError, "embedding: id ", host[j],
                  " at flat position ", j, " of ids of shape ", ids.shape(), " is out of range [0, ", vocab,
                  ") for weight of shape ", weight.shape());
  }
}

inline Shape embedding_shape(const Shape& ids, int64_t dim) {
  Shape out = ids;
  out.push_back(dim);
  return out;
}

}  // namespace detail

/// ids: any shape (int64 in [0, V)), weight: (V, D) -> (ids..., D); y[i..., :] = weight[ids[i...], :].
template <class T, class B>
Tensor<T, B> embedding_forward(const Tensor<int64_t, B>& ids, const Tensor<T, B>& weight) {
  detail::check_embedding(ids, weight);
  const int64_t vocab = weight.shape()[0], dim = weight.shape()[1];
  Tensor<T, B> out = Tensor<T, B>::empty(detail::embedding_shape(ids.shape(), dim));
  const Tensor<T, B> wc = weight.contiguous();
  const Tensor<int64_t, B> ic = ids.contiguous();
  IndexSelectKernel<B>::gather(wc.data(), ic.data(), ids.numel(), out.data(), 1, vocab, dim);
  return out;
}

/// The weight gradient of an embedding: dL/dy (ids..., D) -> dL/dW (V, D), zeros except the rows
/// of the ids, which receive the sum of their dL/dy rows.
template <class T, class B>
Tensor<T, B> embedding_backward(const Tensor<T, B>& dL_dy, const Tensor<int64_t, B>& ids,
                                const Shape& weight_shape) {
  Tensor<T, B> dL_dw = Tensor<T, B>::zeros(weight_shape);
  const Tensor<T, B> g = dL_dy.contiguous();
  const Tensor<int64_t, B> ic = ids.contiguous();
  IndexSelectKernel<B>::scatter_add(ic.data(), ids.numel(), g.data(), dL_dw.data(), 1, weight_shape[0],
                                    weight_shape[1]);
  return dL_dw;
}

/// ids: any shape (int64), weight: (V, D) -> (ids..., D). An id outside [0, V) throws IndexError.
/// dL/dW: the dL/dy rows scatter-added into their ids' rows (repeated ids accumulate).
template <class T, class B>
Var<T, B> embedding(const Tensor<int64_t, B>& ids, const Var<T, B>& weight) {
  Tensor<T, B> y = embedding_forward(ids, weight.value());
  const Tensor<int64_t, B> saved_ids = needs_grad(weight) ? ids.contiguous() : Tensor<int64_t, B>();
  return make_result<T, B>(y, "embedding", {weight},
                           [saved_ids, weight_shape = weight.shape()](const Tensor<T, B>& dL_dy) {
                             return std::vector{embedding_backward(dL_dy, saved_ids, weight_shape)};
                           });
}

}  // namespace bindery::ops
