// bindery/dist/functional.hpp — collectives on Vars, with gradients; the gathered InfoNCE.
//
// all_gather(x, group) concatenates every rank's x along axis 0. Its backward is the one open_clip's
// "gather with gradient" uses: every rank computed a gradient for the whole gathered tensor; they are
// summed over the ranks and each rank keeps the rows of its own x:
//
//   forward   X = [x_0; x_1; ...; x_{P-1}]                      (sum n_r, D)
//   backward  dL/dx_r = ( sum_q dL_q/dX )[rows of rank r]        (a reduce-scatter of the sum)
//
// The gathered InfoNCE (local loss). With a global batch of N pairs spread over P ranks (n_r on rank
// r, starting at row o_r), rank r computes only its own rows of the logits against every rank's
// columns — O(n_r × N) memory instead of O(N²):
//
//   A = all_gather(â), B = all_gather(b̂)                       (N, D), with gradient
//   L_r = (P n_r / N) · ( CE(s â_r Bᵀ, o_r + i) + CE(s b̂_r Aᵀ, o_r + i) ) / 2      (means over rows)
//
// The factor P n_r / N (1 when every rank holds N/P rows) makes the mean of the L_r over the ranks
// the single-process loss on the concatenated global batch. Gradients then follow the convention of
// data parallelism (PyTorch DDP, open_clip): averaging every rank's parameter gradients over the
// ranks — which dist::DataParallel does — gives exactly the single-process gradient. (On its own, rank
// r's gradient of its local rows is P times the single-process gradient of those rows.)
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "bindery/autograd/var.hpp"
#include "bindery/dist/process_group.hpp"
#include "bindery/ops/cross_entropy.hpp"
#include "bindery/ops/matmul.hpp"
#include "bindery/ops/pointwise.hpp"
#include "bindery/ops/shape.hpp"

namespace bindery::dist {

/// Every rank's x (rows may differ between ranks, the rest of the shape may not), concatenated
/// along axis 0 in rank order, differentiable (see the file comment). Every rank must call it, and
/// every rank must later run backward through it (the backward is a collective too).
template <class T, class B>
Var<T, B> all_gather(const Var<T, B>& x, ProcessGroup& group, const std::vector<int64_t>& rows) {
  BINDERY_CHECK(x.rank() >= 1, ShapeError, group.where("all_gather"), ": a Var of shape ", x.shape(),
                " (need at least one axis to concatenate along)");
  if (group.size() == 1) return x;
  const Tensor<T, B> gathered = group.all_gather(x.value(), rows);
  const int64_t offset = std::accumulate(rows.begin(), rows.begin() + group.rank(), int64_t{0});
  const int64_t mine = rows[static_cast<size_t>(group.rank())];
  const bool equal = std::all_of(rows.begin(), rows.end(), [&](int64_t r) { return r == rows[0]; });
  ProcessGroup* g = &group;
  return make_result<T, B>(gathered, "all_gather", {x}, [g, offset, mine, equal](const Tensor<T, B>& dL_dX) {
    if (equal) return std::vector<Tensor<T, B>>{g->reduce_scatter(dL_dX, ReduceOp::kSum)};
    Tensor<T, B> sum = dL_dX.contiguous().clone();
    g->all_reduce(sum, ReduceOp::kSum).wait();
    return std::vector<Tensor<T, B>>{sum.slice(0, offset, offset + mine).contiguous()};
  });
}
template <class T, class B>
Var<T, B> all_gather(const Var<T, B>& x, ProcessGroup& group) {
  BINDERY_CHECK(x.rank() >= 1, ShapeError, group.where("all_gather"), ": a Var of shape ", x.shape(),
                " (need at least one axis to concatenate along)");
  if (group.size() == 1) return x;
  return all_gather(x, group, group.gather_rows(x.value()));
}

/// The gathered symmetric InfoNCE of already L2-normalized rows a_norm, b_norm (n_r, D on this
/// rank): the local loss of the file comment (scale: one element). Also returns this rank's
/// (n_r, N) logits of a against every b, for monitoring.
template <class T, class B>
struct GatheredInfoNCE {
  Var<T, B> loss;
  Var<T, B> logits_ab;
};
template <class T, class B>
GatheredInfoNCE<T, B> gathered_info_nce(const Var<T, B>& a_norm, const Var<T, B>& b_norm,
                                        const Var<T, B>& scale, ProcessGroup& group) {
  BINDERY_CHECK(a_norm.rank() == 2 && a_norm.shape() == b_norm.shape(), ShapeError, group.where("info_nce"),
                ": a of shape ", a_norm.shape(), " and b of shape ", b_norm.shape(), " must both be (n, D)");
  const int64_t n = a_norm.size(0);
  // Every rank's rows (and a check that the ranks agree on the row shape): one exchange for both gathers.
  const std::vector<int64_t> rows =
      group.size() == 1 ? std::vector<int64_t>{n} : group.gather_rows(a_norm.value());
  const Var<T, B> A = all_gather(a_norm, group, rows);
  const Var<T, B> Bg = all_gather(b_norm, group, rows);
  const int64_t offset = std::accumulate(rows.begin(), rows.begin() + group.rank(), int64_t{0});
  const int64_t total = std::accumulate(rows.begin(), rows.end(), int64_t{0});
  std::vector<int64_t> labels(static_cast<size_t>(n));
  std::iota(labels.begin(), labels.end(), offset);
  const Tensor<int64_t, B> target = Tensor<int64_t, B>::from_vector(labels);
  const Var<T, B> s = scale.rank() == 0 ? scale : ops::reshape(scale, {});
  const Var<T, B> logits_ab = ops::matmul(a_norm, Bg, false, true) * s;  // (n, N)
  const Var<T, B> logits_ba = ops::matmul(b_norm, A, false, true) * s;   // (n, N)
  const double share =
      static_cast<double>(group.size()) * static_cast<double>(n) / static_cast<double>(total);
  Var<T, B> loss = (ops::cross_entropy(logits_ab, target) + ops::cross_entropy(logits_ba, target)) *
                   static_cast<T>(0.5 * share);
  return {loss, logits_ab};
}

}  // namespace bindery::dist
