// bindery/optim/param_group.hpp — parameter groups: parameters that share a learning rate and a
// weight decay (as torch.optim's param_groups), and the helpers every optimizer uses.
//
//   std::vector<optim::ParamGroup<float>> groups = {
//       {encoder.parameters(), /*lr=*/1e-4, /*weight_decay=*/0.05},
//       {head.parameters(), /*lr=*/1e-3, /*weight_decay=*/0.0},
//   };
//   optim::AdamW<float> optimizer(groups);
#pragma once

#include <cstdint>
#include <vector>

#include "bindery/autograd/var.hpp"

namespace bindery::optim {

/// Parameters updated with the same learning rate and weight decay.
///
/// A parameter whose requires_grad is false, or that received no gradient since the last
/// zero_grad(), is skipped by every optimizer step: it is neither updated nor decayed, and its
/// optimizer state is neither created nor advanced (as PyTorch skips `p.grad is None`).
template <class T, class B = Cpu>
struct ParamGroup {
  std::vector<Var<T, B>> params;
  double lr = 1e-3;
  double weight_decay = 0.0;
  /// The learning rate a schedule scales (PyTorch's 'initial_lr'). Negative until a schedule is
  /// first applied, which then copies `lr` here; schedules set lr = initial_lr * factor(step), so
  /// groups keep their lr ratios.
  double initial_lr = -1.0;
};

namespace detail {

/// True when the optimizer has work to do for `p` (a trainable parameter with a gradient).
template <class T, class B>
bool has_update(const Var<T, B>& p) {
  return p.defined() && p.requires_grad() && p.has_grad() && p.numel() > 0;
}

/// Checks the layouts a fused update relies on: contiguous value and a gradient of its shape.
template <class T, class B>
void check_updatable(const Var<T, B>& p, const char* optimizer) {
  BINDERY_CHECK(p.value().is_contiguous(), ValueError, optimizer, ": parameter of shape ", p.shape(),
                " is a non-contiguous view; optimizers update contiguous parameters in place");
  BINDERY_CHECK(p.grad().shape() == p.shape(), ShapeError, optimizer, ": gradient of shape ",
                p.grad().shape(), " for a parameter of shape ", p.shape());
}

/// Sets every parameter's gradient to undefined (PyTorch's zero_grad(set_to_none=True)).
template <class T, class B>
void zero_grad(std::vector<ParamGroup<T, B>>& groups) {
  for (auto& group : groups) {
    for (auto& p : group.params) {
      if (p.defined()) p.zero_grad();
    }
  }
}

/// Rejects a negative learning rate or weight decay, naming the optimizer.
template <class T, class B>
void check_group(const ParamGroup<T, B>& group, const char* optimizer) {
  BINDERY_CHECK(group.lr >= 0, ValueError, optimizer, ": learning rate must be >= 0, got ", group.lr);
  BINDERY_CHECK(group.weight_decay >= 0, ValueError, optimizer, ": weight decay must be >= 0, got ",
                group.weight_decay);
}

/// Number of parameters over all groups (the length of an optimizer's state list).
template <class T, class B>
size_t count_params(const std::vector<ParamGroup<T, B>>& groups) {
  size_t n = 0;
  for (const auto& group : groups) n += group.params.size();
  return n;
}

/// One group holding `params` with the given defaults.
template <class T, class B>
std::vector<ParamGroup<T, B>> single_group(std::vector<Var<T, B>> params, double lr, double weight_decay) {
  std::vector<ParamGroup<T, B>> groups(1);
  groups[0].params = std::move(params);
  groups[0].lr = lr;
  groups[0].weight_decay = weight_decay;
  return groups;
}

}  // namespace detail
}  // namespace bindery::optim
