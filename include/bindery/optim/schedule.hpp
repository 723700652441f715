// bindery/optim/schedule.hpp — learning-rate schedules: linear warmup then cosine decay.
//
//   lr(step) = base_lr * step / warmup_steps                                   step < warmup_steps
//            = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2      warmup <= step < total
//              with progress = (step - warmup_steps) / (total_steps - warmup_steps)
//            = min_lr                                                          step >= total_steps
//
// `step` is the 0-based index of the update about to be made (Hugging Face's
// get_cosine_schedule_with_warmup convention: the update numbered 0 uses lr 0 when warming up).
//
//   optim::WarmupCosine schedule{.base_lr = 1e-3, .min_lr = 1e-5, .warmup_steps = 50, .total_steps = 1000};
//   for (int64_t step = 0; step < 1000; ++step) {
//     schedule.apply(optimizer, step);  // every group: lr = initial_lr * lr_at(step) / base_lr
//     ...; optimizer.step();
//   }
#pragma once

#include <cmath>
#include <numbers>
#include <vector>

#include "bindery/optim/param_group.hpp"

namespace bindery::optim {

struct WarmupCosine {
  double base_lr = 1e-3;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  /// The learning rate of update number `step` (see the file comment).
  double lr_at(int64_t step) const {
    validate();
    if (step < 0) return 0.0;
    if (step < warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
    if (step >= total_steps) return min_lr;
    const double progress =
        static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  /// lr_at(step) / base_lr: the multiplier applied to every group's initial lr.
  double factor_at(int64_t step) const { return lr_at(step) / base_lr; }

  /// Sets each group's lr to initial_lr * factor_at(step), keeping the groups' lr ratios. A group
  /// whose initial_lr is still unset (negative) first records its current lr as initial_lr.
  template <class T, class B>
  void apply(std::vector<ParamGroup<T, B>>& groups, int64_t step) const {
    const double factor = factor_at(step);
    for (auto& group : groups) {
      if (group.initial_lr < 0) group.initial_lr = group.lr;
      group.lr = group.initial_lr * factor;
    }
  }
  /// Same, for any optimizer exposing groups() (AdamW, Sgd).
  template <class Optimizer>
  requires requires(Optimizer& o) { o.groups(); }
  void apply(Optimizer& optimizer, int64_t step) const { apply(optimizer.groups(), step); }

 private:
  void validate() const {
    BINDERY_CHECK(base_lr > 0 && min_lr >= 0 && warmup_steps >= 0 && total_steps >= warmup_steps, ValueError,
                  "WarmupCosine: need base_lr > 0, min_lr >= 0 and 0 <= warmup_steps <= total_steps, got "
                  "base_lr ",
                  base_lr, ", min_lr ", min_lr, ", warmup_steps ", warmup_steps, ", total_steps ",
                  total_steps);
  }
};

}  // namespace bindery::optim
