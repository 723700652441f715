// bindery/optim/clip.hpp — gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_.
//
//   total_norm = sqrt(sum over every parameter's gradient of sum(g²))
//   if max_norm / (total_norm + 1e-6) < 1: every g *= max_norm / (total_norm + 1e-6)   (in place)
//
// Parameters without a gradient are ignored. A non-finite total norm is returned as is and (as in
// PyTorch with error_if_nonfinite=False) turns the gradients into NaN: check the return value.
#pragma once

#include <cmath>
#include <vector>

#include "bindery/ops/arithmetic.hpp"
#include "bindery/optim/param_group.hpp"

namespace bindery::optim {

namespace detail {

template <class T>
struct ScaleInPlace {
  T* data;
  T scale;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { data[i] *= scale; }
};

}  // namespace detail

/// Global L2 norm of the gradients of `params` (those that have one), in double.
template <class T, class B>
double grad_norm(const std::vector<Var<T, B>>& params) {
  double sum_squares = 0.0;
  for (const auto& p : params) {
    if (!p.defined() || !p.has_grad() || p.numel() == 0) continue;
    const Tensor<T, B>& g = p.grad();
    sum_squares += static_cast<double>(ops::sum_forward(ops::mul_forward(g, g)).item());
  }
  return std::sqrt(sum_squares);
}

/// Scales the gradients of `params` so that their global L2 norm is at most `max_norm`; returns the
/// norm BEFORE clipping. params: any shapes; only those with a gradient take part.
template <class T, class B>
double clip_grad_norm(const std::vector<Var<T, B>>& params, double max_norm) {
  BINDERY_CHECK(max_norm >= 0, ValueError, "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  const double total_norm = grad_norm(params);
  const double coefficient = max_norm / (total_norm + 1e-6);
  if (coefficient < 1.0 || std::isnan(coefficient)) {
    for (auto p : params) {
      if (!p.defined() || !p.has_grad() || p.numel() == 0) continue;
      if (p.grad().is_contiguous()) {
        B::for_each(p.numel(), detail::ScaleInPlace<T>{p.grad().data(), static_cast<T>(coefficient)});
      } else {
        p.set_grad(ops::scale_forward(p.grad(), static_cast<T>(coefficient)));
      }
    }
  }
  return total_norm;
}

/// Same over every parameter of every group (one global norm).
template <class T, class B>
double clip_grad_norm(const std::vector<ParamGroup<T, B>>& groups, double max_norm) {
  std::vector<Var<T, B>> params;
  for (const auto& group : groups) params.insert(params.end(), group.params.begin(), group.params.end());
  return clip_grad_norm(params, max_norm);
}

}  // namespace bindery::optim
