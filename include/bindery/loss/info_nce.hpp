// bindery/loss/info_nce.hpp — symmetric InfoNCE, the contrastive loss of CLIP and ImageBind.
//
// Given N paired embeddings a (N, D) and b (N, D) — row i of a belongs with row i of b:
//   â, b̂    = a, b with each row L2-normalized                 (N, D)
//   logits  = scale · â b̂ᵀ                                      (N, N), logits[i, j] = scale cos(a_i, b_j)
//   loss    = (CE(logits, arange(N)) + CE(logitsᵀ, arange(N))) / 2                    ()
// i.e. each a_i must pick its own b_i among the N candidates, and each b_j its own a_j.
//
// The scale (the inverse temperature) is either a fixed number or learnable: LogitScale holds the
// parameter `log_logit_scale` and uses scale = min(exp(log_logit_scale), max_scale), as ImageBind's
// LearnableLogitScaling (init 1/0.07 as CLIP, clamped at 100). While the clamp is active
// (exp(log_logit_scale) > max_scale) the gradient with respect to log_logit_scale is exactly zero,
// as torch.clip's: the scale stops growing until the other parameters pull it back down.
//
// The loss is composed from differentiable ops (l2_normalize, matmul and the fused
// ops::symmetric_cross_entropy), so its backward is theirs; the fused op's hand-written backward is
// tested against the two-cross_entropy composite in tests/ops/test_symmetric_cross_entropy.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "bindery/dist/functional.hpp"
#include "bindery/nn/module.hpp"
#include "bindery/ops/cross_entropy.hpp"
#include "bindery/ops/matmul.hpp"
#include "bindery/ops/normalize.hpp"
#include "bindery/ops/pointwise.hpp"
#include "bindery/ops/shape.hpp"
#include "bindery/ops/symmetric_cross_entropy.hpp"

namespace bindery::loss {

namespace detail {

template <class T, class B>
void check_pair(const char* op, const Shape& a, const Shape& b) {
  BINDERY_CHECK(a.rank() == 2 && b.rank() == 2, ShapeError, op, ": a of shape ", a, " and b of shape ", b,
                " must both be (N, D)");
  BINDERY_CHECK(a[0] == b[0], ShapeError, op, ": a of shape ", a, " and b of shape ", b,
                " hold different numbers of pairs (N = ", a[0], " vs ", b[0], ")");
  BINDERY_CHECK(a[1] == b[1], ShapeError, op, ": a of shape ", a, " and b of shape ", b,
                " have different embedding sizes (D = ", a[1], " vs ", b[1], ")");
  BINDERY_CHECK(a[0] >= 1, ShapeError, op, ": a of shape ", a, " and b of shape ", b, " hold no pairs");
}

}  // namespace detail

/// scale = min(exp(log_scale), max_scale). log_scale: one element (usually shape ()) -> same shape.
/// The gradient with respect to log_scale is zero while the clamp is active.
template <class T, class B>
Var<T, B> clamped_logit_scale(const Var<T, B>& log_scale, double max_scale = 100.0) {
  BINDERY_CHECK(log_scale.numel() == 1, ShapeError, "clamped_logit_scale: log_scale of shape ",
                log_scale.shape(), " must hold one element");
  return ops::clamp(ops::exp(log_scale), std::numeric_limits<T>::lowest(), static_cast<T>(max_scale));
}

/// The (N, N) logits scale · a bᵀ of already normalized rows. scale: one element (shape () or (1,)).
template <class T, class B>
Var<T, B> info_nce_logits(const Var<T, B>& a_norm, const Var<T, B>& b_norm, const Var<T, B>& scale) {
  detail::check_pair<T, B>("info_nce", a_norm.shape(), b_norm.shape());
  BINDERY_CHECK(scale.numel() == 1, ShapeError, "info_nce: scale of shape ", scale.shape(),
                " must hold one element");
  const Var<T, B> s = scale.rank() == 0 ? scale : ops::reshape(scale, {});
  return ops::matmul(a_norm, b_norm, false, true) * s;  // (N, D)·(D, N) -> (N, N)
}

/// (CE(logits, arange(N)) + CE(logitsᵀ, arange(N))) / 2 for square logits (N, N) -> (), fused
/// (ops::symmetric_cross_entropy: no transposed copy, backward from saved row/column log-sum-exps).
template <class T, class B>
Var<T, B> symmetric_cross_entropy(const Var<T, B>& logits) {
  return ops::symmetric_cross_entropy(logits);
}

/// Symmetric InfoNCE of rows that are ALREADY L2-normalized (a_norm, b_norm: (N, D)) -> ().
/// scale: a one-element Var (learnable, e.g. LogitScale::scale()) or see the T overload.
template <class T, class B>
Var<T, B> info_nce_normalized(const Var<T, B>& a_norm, const Var<T, B>& b_norm, const Var<T, B>& scale) {
  return symmetric_cross_entropy(info_nce_logits(a_norm, b_norm, scale));
}
template <class T, class B>
Var<T, B> info_nce_normalized(const Var<T, B>& a_norm, const Var<T, B>& b_norm, T scale) {
  return info_nce_normalized(a_norm, b_norm, Var<T, B>(Tensor<T, B>::scalar(scale)));
}

/// Symmetric InfoNCE of raw embeddings a, b: (N, D) -> (): rows are L2-normalized first.
template <class T, class B>
Var<T, B> info_nce(const Var<T, B>& a, const Var<T, B>& b, const Var<T, B>& scale) {
  detail::check_pair<T, B>("info_nce", a.shape(), b.shape());
  return info_nce_normalized(ops::l2_normalize(a, -1), ops::l2_normalize(b, -1), scale);
}
template <class T, class B>
Var<T, B> info_nce(const Var<T, B>& a, const Var<T, B>& b, T scale) {
  return info_nce(a, b, Var<T, B>(Tensor<T, B>::scalar(scale)));
}

/// Top-1 retrieval accuracy read off (N, N) logits whose diagonal holds the true pairs:
/// a_to_b = fraction of rows i whose largest entry is at column i; b_to_a the same for columns.
/// Ties count as misses unless the diagonal entry comes first. Copies the logits to the host.
struct RetrievalAccuracy {
  double a_to_b = 0.0;
  double b_to_a = 0.0;
};
template <class T, class B>
RetrievalAccuracy retrieval_accuracy(const Tensor<T, B>& logits) {
  BINDERY_CHECK(logits.rank() == 2 && logits.size(0) == logits.size(1) && logits.size(0) > 0, ShapeError,
                "retrieval_accuracy: logits of shape ", logits.shape(), " must be square (N, N)");
  const int64_t n = logits.size(0);
  const std::vector<T> v = logits.to_vector();
  auto at = [&](int64_t i, int64_t j) { return v[static_cast<size_t>(i * n + j)]; };
  int64_t rows = 0, cols = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best_row = 0, best_col = 0;
    for (int64_t j = 1; j < n; ++j) {
      if (at(i, j) > at(i, best_row)) best_row = j;
      if (at(j, i) > at(best_col, i)) best_col = j;
    }
    rows += best_row == i;
    cols += best_col == i;
  }
  return {static_cast<double>(rows) / static_cast<double>(n),
          static_cast<double>(cols) / static_cast<double>(n)};
}

/// ImageBind's LearnableLogitScaling: holds `log_logit_scale` (shape (), init log(init_scale)) and
/// multiplies by min(exp(log_logit_scale), max_scale). When not learnable, log_logit_scale is a
/// buffer (saved and loaded, never trained), as in ImageBind.
template <class T, class B = Cpu>
class LogitScale : public nn::Module<T, B> {
 public:
  struct Options {
    double init_scale = 1.0 / 0.07;  // CLIP's initial temperature 0.07
    double max_scale = 100.0;
    bool learnable = true;
  };

  LogitScale() : LogitScale(Options{}) {}
  explicit LogitScale(Options options) : options_(options) {
    BINDERY_CHECK(options.init_scale > 0 && options.max_scale > 0, ValueError, "LogitScale: init_scale ",
                  options.init_scale, " and max_scale ", options.max_scale, " must be positive");
    const Tensor<T, B> init = Tensor<T, B>::scalar(static_cast<T>(std::log(options.init_scale)));
    if (options.learnable) {
      log_scale_ = this->register_parameter("log_logit_scale", init);
    } else {
      log_scale_ = Var<T, B>(this->register_buffer("log_logit_scale", init), false);
    }
  }

  /// The clamped scale, shape () (differentiable w.r.t. log_logit_scale when learnable).
  Var<T, B> scale() const { return clamped_logit_scale(log_scale_, options_.max_scale); }
  /// x * scale: any shape -> same shape (ImageBind's postprocessor step).
  Var<T, B> forward(const Var<T, B>& x) const { return x * scale(); }
  /// The parameter (or, when not learnable, a constant Var over the buffer).
  Var<T, B> log_logit_scale() const { return log_scale_; }
  const Options& options() const { return options_; }

 private:
  Options options_;
  Var<T, B> log_scale_;
};

/// Output of InfoNCE::forward: the scalar loss, the detached (N, N) logits for monitoring
/// (retrieval_accuracy(out.logits)), and the scale used.
template <class T, class B = Cpu>
struct InfoNCEOutput {
  Var<T, B> loss;
  Tensor<T, B> logits;
  double scale = 0.0;
};

/// Symmetric InfoNCE as a module: its only parameter is `log_logit_scale` (see LogitScale).
///
///   loss::InfoNCE<float> criterion;              // learnable, init 1/0.07, clamp 100
///   auto out = criterion.forward(za, zb);        // za, zb: (N, D) raw embeddings
///   out.loss.backward();
///
/// Across ranks: after set_process_group(group) with group->size() > 1, forward takes this rank's
/// rows of the global batch and computes the gathered local loss (dist/functional.hpp): every rank's
/// embeddings are the negatives, memory is O(n × N), and averaging the ranks' gradients (as
/// dist::DataParallel does) gives the single-process gradient of the global batch. out.logits is
/// then this rank's (n, N) block, whose true pairs sit at columns offset + i.
template <class T, class B = Cpu>
class InfoNCE : public LogitScale<T, B>, public dist::GroupAware {
 public:
  struct Options {
    typename LogitScale<T, B>::Options scale{};
    bool normalize = true;  // false: a and b are already L2-normalized
  };
  InfoNCE() : InfoNCE(Options{}) {}
  explicit InfoNCE(Options options) : LogitScale<T, B>(options.scale), normalize_(options.normalize) {}

  /// a, b: (N, D) -> loss () plus monitoring values.
  InfoNCEOutput<T, B> forward(const Var<T, B>& a, const Var<T, B>& b) const {
    detail::check_pair<T, B>("InfoNCE", a.shape(), b.shape());
    const Var<T, B> a_norm = normalize_ ? ops::l2_normalize(a, -1) : a;
    const Var<T, B> b_norm = normalize_ ? ops::l2_normalize(b, -1) : b;
    const Var<T, B> scale = this->scale();
    if (group_ && group_->size() > 1) {
      const auto out = dist::gathered_info_nce(a_norm, b_norm, scale, *group_);
      return {out.loss, out.logits_ab.value(), static_cast<double>(scale.item())};
    }
    const Var<T, B> logits = info_nce_logits(a_norm, b_norm, scale);  // (N, N)
    return {symmetric_cross_entropy(logits), logits.value(), static_cast<double>(scale.item())};
  }

  /// Computes the gathered loss across `group`'s ranks (null or size 1: the single-process loss).
  void set_process_group(std::shared_ptr<dist::ProcessGroup> group) override { group_ = std::move(group); }
  const std::shared_ptr<dist::ProcessGroup>& process_group() const { return group_; }

 private:
  bool normalize_;
  std::shared_ptr<dist::ProcessGroup> group_;
};

}  // namespace bindery::loss
