// bindery/train/trainer.hpp — the training loop of multimodal contrastive learning, resumable.
//
//   train::Trainer<float> trainer(options, {{"audio", audio_encoder}}, {
//       train::contrastive_task<float>("audio", n_train,
//           [&](const auto& idx) { return cached_image_embeddings(idx); },   // frozen anchor side
//           [&](const auto& idx) { return audio_encoder->encode(audio(idx)); },
//           {.init_scale = 20.0, .learnable = false})});
//   trainer.set_evaluator([&](int64_t step) { return nlohmann::json{{"zero_shot", ...}}; });
//   train::TrainResult result = trainer.run();   // resumes from options.checkpoint_dir when asked
//
// A step: every task draws its batch of sample indices, computes its loss, and backpropagates it
// (gradients accumulate over tasks, so only one task's graph is alive at a time); then the
// gradients are clipped by global norm and the optimizer updates every trainable parameter: AdamW by
// default, SGD with options.optimizer = "sgd", or any optim::Optimizer a factory builds from the two
// parameter groups (see Trainer's constructors). The learning rate follows linear warmup + cosine
// decay. Parameter groups: weight decay on matrices (rank >= 2),
// none on vectors and scalars (biases, LayerNorm gains, logit scales).
//
// Determinism. Batches are a pure function of (seed, task, step): each task walks through epoch
// permutations of its dataset (Fisher-Yates on a Philox stream keyed by seed, task and epoch),
// drop-last. So the data cursor of a checkpoint is its step, and resuming replays exactly the
// batches an uninterrupted run would see. The other randomness lives in modules (Dropout, DropPath
// and attention dropout streams): their Philox states are saved with every checkpoint and restored.
// Together with the weights and the optimizer's full state, `resume` continues bit for bit (on the CPU).
//
// Mixed precision: options.precision = kBFloat16 or kFloat16 runs every task's forward under
// Autocast (core/autocast.hpp: the GEMMs on 16-bit operands, fp32 parameters as master weights);
// kFloat16 adds dynamic loss scaling (optim::GradScaler: a step whose gradients overflow is skipped
// and logged as "skipped"; the scale is saved with every checkpoint).
//
// Across ranks (options.group with size() > 1; docs/distributed.md): options.batch_size is the
// GLOBAL batch, and every rank computes batch_size / size() of its samples — the rank's slice of the
// same global batch the single-process run draws, so the data order does not depend on the number
// of ranks. The trained modules are wrapped in dist::DataParallel (rank 0's parameters broadcast at
// construction, gradients averaged in buckets during the last task's backward), every module that
// needs the group (the gathered InfoNCE of contrastive tasks) receives it, and the Dropout/DropPath
// streams of rank r > 0 are re-keyed by r so that ranks draw different masks. Losses are averaged
// over the ranks before they are checked and logged; rank 0 alone shows progress, writes the metrics
// log, runs the evaluator (the others wait at the next collective) and writes checkpoints, which
// hold every rank's random streams. Resuming on the same number of ranks continues bit for bit; on
// another number, parameters, optimizer state and data cursor carry over and the random streams of
// the ranks are derived from rank 0's.
//
// Frozen encoders are not the trainer's business: a task's embed function may read cached
// embeddings (see cache_embeddings) or run a frozen module under NoGrad.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bindery/autograd/grad_mode.hpp"
#include "bindery/core/autocast.hpp"
#include "bindery/core/philox.hpp"
#include "bindery/dist/data_parallel.hpp"
#include "bindery/dist/process_group.hpp"
#include "bindery/loss/info_nce.hpp"
#include "bindery/nn/activation.hpp"
#include "bindery/nn/attention.hpp"
#include "bindery/nn/init.hpp"
#include "bindery/nn/module.hpp"
#include "bindery/ops/cross_entropy.hpp"
#include "bindery/optim/adamw.hpp"
#include "bindery/optim/clip.hpp"
#include "bindery/optim/grad_scaler.hpp"
#include "bindery/optim/optimizer.hpp"
#include "bindery/optim/schedule.hpp"
#include "bindery/optim/sgd.hpp"
#include "bindery/train/checkpoint.hpp"
#include "bindery/train/progress.hpp"

namespace bindery::train {

/// One term of the training objective. `loss(indices)` returns a scalar loss for the samples at
/// `indices` (each in [0, dataset_size)). A task may own a module with parameters (an InfoNCE logit
/// scale, a classifier head): the trainer then trains and checkpoints it as "tasks.<name>".
/// A function of a batch of sample indices (an embedding, logits, a loss).
template <class T, class B>
using BatchFn = std::function<Var<T, B>(const std::vector<int64_t>& indices)>;

template <class T, class B = Cpu>
struct Task {
  std::string name;
  int64_t dataset_size = 0;
  std::function<Var<T, B>(const std::vector<int64_t>& indices)> loss;
  double weight = 1.0;
  std::shared_ptr<nn::Module<T, B>> owned;  // optional
};

/// The ImageBind objective between two sides of naturally paired samples: symmetric InfoNCE between
/// embed_a(indices) (the anchor, e.g. cached image embeddings) and embed_b(indices) (the modality
/// being bound). The logit scale is fixed (ImageBind's per-modality temperatures) or learnable
/// (clamped at max_scale).
template <class T, class B = Cpu>
Task<T, B> contrastive_task(std::string name, int64_t dataset_size,
                            std::type_identity_t<BatchFn<T, B>> embed_a,
                            std::type_identity_t<BatchFn<T, B>> embed_b,
                            typename loss::LogitScale<T, B>::Options scale = {}, double weight = 1.0) {
  auto criterion =
      std::make_shared<loss::InfoNCE<T, B>>(typename loss::InfoNCE<T, B>::Options{.scale = scale});
  Task<T, B> task{std::move(name), dataset_size, {}, weight, criterion};
  task.loss = [criterion, a = std::move(embed_a), b = std::move(embed_b)](const std::vector<int64_t>& idx) {
    return criterion->forward(a(idx), b(idx)).loss;
  };
  return task;
}

/// Supervised classification: cross-entropy of logits(indices) (N, C) against label(index).
template <class T, class B = Cpu>
Task<T, B> classification_task(std::string name, int64_t dataset_size,
                               std::type_identity_t<BatchFn<T, B>> logits,
                               std::function<int64_t(int64_t)> label, double weight = 1.0) {
  Task<T, B> task{std::move(name), dataset_size, {}, weight, nullptr};
  task.loss = [logits = std::move(logits), label = std::move(label)](const std::vector<int64_t>& idx) {
    std::vector<int64_t> y;
    y.reserve(idx.size());
    for (int64_t i : idx) y.push_back(label(i));
    return ops::cross_entropy(logits(idx), Tensor<int64_t, B>::from_vector(y));
  };
  return task;
}

struct TrainerOptions {
  std::string label = "train";  // progress-bar label and metrics "stage"
  int64_t steps = 1000;         // the length of the schedule
  int64_t stop_at = -1;         // >= 0: return after this many steps (a time-boxed run; resume later)
  int64_t batch_size = 128;
  double lr = 1e-3;
  double min_lr = 1e-5;
  int64_t warmup_steps = 50;
  double weight_decay = 0.05;
  /// "adamw" (optim::AdamW with beta1, beta2, eps) or "sgd" (optim::Sgd with momentum, nesterov).
  /// Ignored when the Trainer is given an optimizer factory.
  std::string optimizer = "adamw";
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-6;  // AdamW
  double momentum = 0.9;                         // SGD
  bool nesterov = false;                         // SGD
  double clip_norm = 1.0;                        // <= 0: no clipping
  Precision precision = Precision::kFloat32;     // of the forward GEMMs; kFloat16 adds loss scaling
  uint64_t seed = 0;
  int64_t log_every = 10;  // metrics log lines (losses, lr) every this many steps
  int64_t eval_every = 0;  // evaluator every this many steps (0: only at the end)
  // Checkpoints: none when checkpoint_dir is empty.
  std::string checkpoint_dir;
  int64_t checkpoint_every = 100;
  int keep_last = 3;
  bool resume = false;       // continue from the newest loadable checkpoint in checkpoint_dir
  std::string metrics_path;  // JSONL; empty: none
  bool progress = true;      // progress bar on stderr
  /// The ranks training together (dist::init()); null or size 1: this process alone.
  std::shared_ptr<dist::ProcessGroup> group;
  int64_t bucket_bytes = int64_t{25} << 20;  // gradient all-reduce bucket size (dist::DataParallel)
};

struct TrainResult {
  int64_t start_step = 0;  // > 0 after a resume
  int64_t steps = 0;
  double seconds = 0.0;
  std::map<std::string, double> final_loss;  // mean of the last log window, per task
  std::vector<nlohmann::json> history;       // every metrics record of this run
};

/// The batch of `step` for a dataset of n samples: epoch permutations, drop-last (see file comment).
class EpochSampler {
 public:
  EpochSampler(int64_t n, int64_t batch_size, uint64_t seed) : n_(n), batch_(batch_size), seed_(seed) {
    BINDERY_CHECK(n >= 1 && batch_size >= 1 && batch_size <= n, ValueError, "EpochSampler: batch size ",
                  batch_size, " for a dataset of ", n, " samples (need 1 <= batch <= n)");
  }
  int64_t batches_per_epoch() const { return n_ / batch_; }
  std::vector<int64_t> batch(int64_t step) {
    const int64_t epoch = step / batches_per_epoch();
    const int64_t first = (step % batches_per_epoch()) * batch_;
    if (epoch != epoch_) {
      perm_.resize(static_cast<size_t>(n_));
      std::iota(perm_.begin(), perm_.end(), int64_t{0});
      Philox rng(nn::init::derive_seed(seed_, static_cast<uint64_t>(epoch)));
      for (int64_t k = n_ - 1; k > 0; --k)
        std::swap(perm_[static_cast<size_t>(k)], perm_[rng.next_below(static_cast<uint64_t>(k + 1))]);
      epoch_ = epoch;
    }
    return {perm_.begin() + first, perm_.begin() + first + batch_};
  }

 private:
  int64_t n_, batch_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;
};

/// Rank `rank`'s share of the global batches of an EpochSampler: the same shuffled order on every
/// rank, each step's global batch cut into `size` disjoint slices of global_batch / size samples, in
/// rank order; drop-last, so every rank takes the same number of steps and the data order does not
/// depend on the number of ranks (concatenating the slices gives the single-process batch).
class DistributedSampler {
 public:
  DistributedSampler(int64_t n, int64_t global_batch, uint64_t seed, int rank, int size)
      : global_(n, global_batch, seed), rank_(rank), size_(size), local_(global_batch / std::max(size, 1)) {
    BINDERY_CHECK(size >= 1 && rank >= 0 && rank < size, ValueError, "DistributedSampler: rank ", rank,
                  " of ", size);
    BINDERY_CHECK(global_batch % size == 0, ValueError, "DistributedSampler: global batch ", global_batch,
                  " must be divisible by the ", size, " ranks");
  }
  int64_t local_batch() const { return local_; }
  int64_t batches_per_epoch() const { return global_.batches_per_epoch(); }
  /// This rank's sample indices of step `step`.
  std::vector<int64_t> batch(int64_t step) {
    const std::vector<int64_t> all = global_.batch(step);
    const int64_t per_rank = static_cast<int64_t>(all.size()) / size_;
    return {all.begin() + per_rank * rank_, all.begin() + per_rank * (rank_ + 1)};
  }

 private:
  EpochSampler global_;
  int rank_, size_;
  int64_t local_;
};

/// Every Philox stream inside `module` (Dropout, DropPath, attention dropout), by module path.
template <class T, class B>
std::map<std::string, Philox*> module_generators(nn::Module<T, B>& module) {
  std::map<std::string, Philox*> out;
  for (auto& [path, m] : module.named_modules()) {
    if (auto* d = dynamic_cast<nn::Dropout<T, B>*>(m)) out[path] = &d->generator();
    if (auto* d = dynamic_cast<nn::DropPath<T, B>*>(m)) out[path] = &d->generator();
    if (auto* a = dynamic_cast<nn::MultiheadAttention<T, B>*>(m)) out[path] = &a->generator();
  }
  return out;
}

/// Runs `embed` over [0, n) in batches under NoGrad and returns the (n, D) embeddings: the cache of
/// a frozen encoder.
template <class T, class B>
Tensor<T, B> cache_embeddings(int64_t n, int64_t batch_size,
                              const std::function<Var<T, B>(const std::vector<int64_t>&)>& embed) {
  NoGrad no_grad;
  std::vector<T> values;
  int64_t dim = 0;
  for (int64_t first = 0; first < n; first += batch_size) {
    std::vector<int64_t> idx(static_cast<size_t>(std::min(batch_size, n - first)));
    std::iota(idx.begin(), idx.end(), first);
    const Tensor<T, B> e = embed(idx).value().contiguous();
    BINDERY_CHECK(e.rank() == 2 && e.shape()[0] == static_cast<int64_t>(idx.size()), ShapeError,
                  "cache_embeddings: embed returned shape ", e.shape(), " for ", idx.size(), " samples");
    dim = e.shape()[1];
    const std::vector<T> host = e.to_vector();
    values.insert(values.end(), host.begin(), host.end());
  }
  return Tensor<T, B>::from_vector(values, {n, dim});
}

/// Builds a Trainer's optimizer from its parameter groups (see Trainer's constructors).
template <class T, class B = Cpu>
using OptimizerFactory =
    std::function<std::unique_ptr<optim::Optimizer<T, B>>(std::vector<optim::ParamGroup<T, B>> groups)>;

/// The optimizer TrainerOptions names ("adamw" or "sgd") over `groups`; ValueError for another name.
template <class T, class B = Cpu>
std::unique_ptr<optim::Optimizer<T, B>> make_optimizer(const TrainerOptions& options,
                                                       std::vector<optim::ParamGroup<T, B>> groups) {
  if (options.optimizer == "adamw") {
    return std::make_unique<optim::AdamW<T, B>>(
        std::move(groups),
        optim::AdamWOptions{.beta1 = options.beta1, .beta2 = options.beta2, .eps = options.eps});
  }
  if (options.optimizer == "sgd") {
    return std::make_unique<optim::Sgd<T, B>>(
        std::move(groups), optim::SgdOptions{.momentum = options.momentum, .nesterov = options.nesterov});
  }
  throw ValueError(
      ::bindery::detail::concat("TrainerOptions::optimizer \"", options.optimizer,
                                "\" is not \"adamw\" or \"sgd\" (or pass an optimizer factory)"));
}

template <class T, class B = Cpu>
class Trainer {
 public:
  using Named = std::pair<std::string, std::shared_ptr<nn::Module<T, B>>>;

  /// `modules`: what is trained (and checkpointed), by name. Each task's owned module joins them.
  /// The optimizer is the one options.optimizer names (make_optimizer).
  Trainer(TrainerOptions options, const std::vector<Named>& modules, std::vector<Task<T, B>> tasks)
      : Trainer(std::move(options), modules, std::move(tasks), OptimizerFactory<T, B>()) {}

  /// Same, with the optimizer built by `factory` from two parameter groups: [0] every trainable
  /// parameter of rank >= 2 (lr options.lr, weight decay options.weight_decay), [1] the others (lr
  /// options.lr, no weight decay); both with initial_lr = lr, which the schedule scales.
  Trainer(TrainerOptions options, const std::vector<Named>& modules, std::vector<Task<T, B>> tasks,
          OptimizerFactory<T, B> factory)
      : options_(std::move(options)), tasks_(std::move(tasks)), root_(std::make_shared<Root>()) {
    BINDERY_CHECK(!tasks_.empty(), ValueError, "Trainer: no tasks");
    BINDERY_CHECK(options_.steps >= 1 && options_.batch_size >= 1, ValueError, "Trainer: steps ",
                  options_.steps, " and batch_size ", options_.batch_size, " must be positive");
    BINDERY_CHECK(!options_.group || options_.batch_size % options_.group->size() == 0, ValueError,
                  "Trainer: batch_size ", options_.batch_size,
                  " (the global batch) must be divisible by the ", options_.group->size(), " ranks");
    for (const auto& [name, module] : modules) root_->register_module(name, module);
    auto owned = std::make_shared<Root>();
    bool any_owned = false;
    for (size_t k = 0; k < tasks_.size(); ++k) {
      const Task<T, B>& task = tasks_[k];
      BINDERY_CHECK(static_cast<bool>(task.loss), ValueError, "Trainer: task '", task.name, "' has no loss");
      samplers_.emplace_back(
          task.dataset_size, options_.batch_size, nn::init::derive_seed(options_.seed, 1000 + k),
          options_.group ? options_.group->rank() : 0, options_.group ? options_.group->size() : 1);
      if (task.owned) {
        owned->register_module(task.name, task.owned);
        any_owned = true;
      }
    }
    if (any_owned) root_->register_module("tasks", owned);
    std::vector<optim::ParamGroup<T, B>> groups(2);
    groups[0].lr = groups[1].lr = options_.lr;
    groups[0].weight_decay = options_.weight_decay;
    for (const Var<T, B>& p : root_->parameters())
      if (p.requires_grad()) groups[p.rank() >= 2 ? 0 : 1].params.push_back(p);
    for (auto& g : groups) g.initial_lr = g.lr;  // the schedule scales from here, also after a resume
    optimizer_ = factory ? factory(std::move(groups)) : make_optimizer<T, B>(options_, std::move(groups));
    BINDERY_CHECK(optimizer_ != nullptr, ValueError, "Trainer: the optimizer factory returned null");
    if (options_.group && options_.group->size() > 1) {
      dist::ProcessGroup& g = *options_.group;
      for (auto& [path, m] : root_->named_modules())
        if (auto* aware = dynamic_cast<dist::GroupAware*>(m)) aware->set_process_group(options_.group);
      rekey_generators(g.rank());
      dp_ = std::make_unique<dist::DataParallel<T, B>>(
          options_.group, *root_, dist::DataParallelOptions{.bucket_bytes = options_.bucket_bytes});
    }
    schedule_ = optim::WarmupCosine{.base_lr = options_.lr,
                                    .min_lr = options_.min_lr,
                                    .warmup_steps = std::min(options_.warmup_steps, options_.steps - 1),
                                    .total_steps = options_.steps};
  }

  /// Called every eval_every steps and at the end, with every trained module in eval mode and no
  /// gradient recording; its JSON goes to the metrics log and is printed.
  void set_evaluator(std::function<nlohmann::json(int64_t step)> evaluator) {
    evaluator_ = std::move(evaluator);
  }

  /// The module holding everything trained (its state_dict is what checkpoints store as model.*).
  nn::Module<T, B>& model() { return *root_; }
  optim::Optimizer<T, B>& optimizer() { return *optimizer_; }
  const TrainerOptions& options() const { return options_; }
  /// The step being computed (0-based) while run() is inside a step: tasks may key their own
  /// per-step randomness (augmentation, re-pairing) on it and stay resumable.
  int64_t current_step() const { return step_; }

  /// Trains to options.steps (from the newest checkpoint when options.resume). Returns what happened.
  TrainResult run() {
    TrainResult result;
    int64_t& step = step_;
    step = 0;
    if (options_.resume && !options_.checkpoint_dir.empty()) step = resume();
    result.start_step = step;
    const bool lead = rank() == 0;
    MetricsLog log(lead ? options_.metrics_path : std::string());
    root_->train();
    const auto start = std::chrono::steady_clock::now();
    ProgressBar bar(options_.label, options_.steps, "samples");
    std::map<std::string, std::pair<double, int64_t>> window;  // task -> (sum, count) since the last log
    auto record = [&](nlohmann::json r) {
      r["stage"] = options_.label;
      r["time"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      log.write(r);
      result.history.push_back(std::move(r));
    };
    const int64_t end = options_.stop_at >= 0 ? std::min(options_.stop_at, options_.steps) : options_.steps;
    for (; step < end; ++step) {
      schedule_.apply(optimizer_->groups(), step);
      optimizer_->zero_grad();
      ProgressBar::Values shown;
      std::vector<double> values(tasks_.size());
      for (size_t k = 0; k < tasks_.size(); ++k) {
        const std::vector<int64_t> idx = samplers_[k].batch(step);  // this rank's share
        Var<T, B> loss;
        {
          const Autocast autocast(options_.precision);
          loss = tasks_[k].loss(idx);
        }
        BINDERY_CHECK(loss.numel() == 1, ShapeError, "Trainer: task '", tasks_[k].name,
                      "' returned a loss of shape ", loss.shape(), " (need a scalar)");
        const double value = static_cast<double>(loss.item());
        if (!dp_) check_finite(k, value, step);  // across ranks: after the mean, on every rank alike
        values[k] = value;
        if (tasks_[k].weight != 1.0) loss = loss * static_cast<T>(tasks_[k].weight);
        if (dp_ && k + 1 < tasks_.size()) {
          auto local_only = dp_->no_sync();  // the last task's backward starts the all-reduce
          scaler_.scale(loss).backward();
        } else {
          scaler_.scale(loss).backward();
        }
      }
      if (dp_) {
        dp_->finish();  // every gradient is now the mean over the ranks
        values = options_.group->all_reduce_values(values, dist::ReduceOp::kAverage);
        for (size_t k = 0; k < tasks_.size(); ++k) check_finite(k, values[k], step);
      }
      for (size_t k = 0; k < tasks_.size(); ++k) {
        auto& w = window[tasks_[k].name];
        w.first += values[k];
        w.second += 1;
        shown.emplace_back(tasks_.size() == 1 ? "loss" : tasks_[k].name, values[k]);
      }
      double grad_norm = 0.0;
      scaler_.unscale(*optimizer_);  // (no-op unless fp16) clipping sees the true gradients
      if (options_.clip_norm > 0 && !scaler_.found_inf())
        grad_norm = optim::clip_grad_norm(optimizer_->groups(), options_.clip_norm);
      const bool stepped = scaler_.step(*optimizer_);
      scaler_.update();
      if (!stepped) ++skipped_;
      const int64_t done = step + 1;
      if (options_.progress && lead)
        bar.update(done, shown, options_.batch_size * static_cast<int64_t>(tasks_.size()));
      if (done % options_.log_every == 0 || done == options_.steps) {
        nlohmann::json r{{"step", done}, {"lr", optimizer_->groups()[0].lr}, {"grad_norm", grad_norm}};
        if (scaler_.enabled()) {
          r["loss_scale"] = scaler_.get_scale();
          r["skipped"] = skipped_;  // steps skipped for inf/NaN gradients, since the start of run()
        }
        for (auto& [name, w] : window) {
          const double mean = w.first / static_cast<double>(std::max<int64_t>(w.second, 1));
          r["loss"][name] = mean;
          result.final_loss[name] = mean;
          w = {0.0, 0};
        }
        record(std::move(r));
      }
      if (evaluator_ && lead &&
          ((options_.eval_every > 0 && done % options_.eval_every == 0) || done == options_.steps)) {
        nlohmann::json e = evaluate(done);
        if (options_.progress)
          bar.message(options_.label + " step " + std::to_string(done) + ": " + e.dump());
        record(nlohmann::json{{"step", done}, {"eval", e}});
      }
      if (!options_.checkpoint_dir.empty() &&
          ((options_.checkpoint_every > 0 && done % options_.checkpoint_every == 0) || done == end))
        save(done);
    }
    if (lead) bar.finish();
    result.steps = std::max<int64_t>(end - result.start_step, 0);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  }

  /// Writes a checkpoint of the state after `step` steps into options.checkpoint_dir. Across ranks,
  /// every rank must call it; rank 0 writes (with every rank's random streams) and returns the path,
  /// the others return "".
  std::string save(int64_t step) {
    std::map<std::string, Philox> rngs;
    for (const auto& [name, g] : module_generators(*root_)) rngs[name] = *g;
    nlohmann::json user{
        {"label", options_.label}, {"steps", options_.steps}, {"seed", std::to_string(options_.seed)}};
    if (dp_) {
      std::vector<uint64_t> mine;
      for (const auto& [name, g] : rngs) mine.insert(mine.end(), {g.seed(), g.offset()});
      const auto all = options_.group->all_gather_values(mine);
      if (rank() != 0) return {};
      nlohmann::json ranks = nlohmann::json::array();
      for (const auto& theirs : all) {
        nlohmann::json streams = nlohmann::json::object();
        size_t at = 0;
        for (const auto& entry : rngs) {
          streams[entry.first] = {std::to_string(theirs.at(at)), std::to_string(theirs.at(at + 1))};
          at += 2;
        }
        ranks.push_back(std::move(streams));
      }
      user["dist"] = {{"world_size", options_.group->size()}, {"rngs", std::move(ranks)}};
    }
    if (scaler_.enabled()) {
      user["grad_scaler"] = {{"scale", scaler_.state().scale},
                             {"growth_tracker", scaler_.state().growth_tracker}};
    }
    return save_checkpoint(options_.checkpoint_dir, step, *root_, *optimizer_, rngs,
                           step * options_.batch_size, user, options_.keep_last);
  }

  /// Loads the newest loadable checkpoint of options.checkpoint_dir; returns its step (0 if none).
  /// Across ranks, rank 0 picks the checkpoint and every rank loads that file (a shared folder).
  int64_t resume() {
    if (dp_) return resume_distributed();
    std::filesystem::create_directories(options_.checkpoint_dir);
    const auto latest = latest_valid_checkpoint(options_.checkpoint_dir);
    for (const auto& skipped : latest.skipped)
      std::fprintf(stderr, "%s: skipped checkpoint %s: %s\n", options_.label.c_str(), skipped.path.c_str(),
                   skipped.reason.c_str());
    // Every checkpoint damaged: starting over would write low-step files that keep-last pruning
    // deletes before the damaged high-step ones. Stop and let the user decide.
    BINDERY_CHECK(latest.path || latest.skipped.empty(), FormatError, "Trainer::resume: every checkpoint in ",
                  options_.checkpoint_dir, " is damaged (newest: ", latest.skipped.front().path, ": ",
                  latest.skipped.front().reason, "); move them away to start over");
    if (!latest.path) return 0;
    std::map<std::string, Philox> rngs;
    const CheckpointInfo info = load_checkpoint(*latest.path, *root_, *optimizer_, rngs);
    for (const auto& [name, g] : module_generators(*root_)) {
      const auto it = rngs.find(name);
      BINDERY_CHECK(it != rngs.end(), FormatError, "Trainer::resume: ", *latest.path,
                    " holds no random stream for module '", name, "'");
      *g = it->second;
    }
    restore_grad_scaler(info, *latest.path);
    std::fprintf(stderr, "%s: resumed from %s (step %lld)\n", options_.label.c_str(), latest.path->c_str(),
                 static_cast<long long>(info.step));
    return info.step;
  }

 private:
  class Root : public nn::Module<T, B> {};

  int rank() const { return options_.group ? options_.group->rank() : 0; }

  void check_finite(size_t k, double value, int64_t step) const {
    BINDERY_CHECK(std::isfinite(value), ValueError, "Trainer: task '", tasks_[k].name, "' loss is ", value,
                  " at step ", step, dp_ ? " (mean over the ranks)" : "", " (lower the learning rate?)");
  }

  /// Rank r > 0 draws its own dropout masks: its streams are keyed by r (rank 0's stay as they are,
  /// so a one-rank run equals the single-process one).
  void rekey_generators(int r) {
    if (r == 0) return;
    for (auto& [name, g] : module_generators(*root_))
      *g = Philox(nn::init::derive_seed(g->seed(), 0x5eed0000u + static_cast<uint64_t>(r)), g->offset());
  }

  /// The fp16 loss scale saved with a checkpoint (user.grad_scaler), when loss scaling is on.
  void restore_grad_scaler(const CheckpointInfo& info, const std::string& path) {
    if (scaler_.enabled() && info.user.contains("grad_scaler")) {
      const nlohmann::json& saved = info.user.at("grad_scaler");
      BINDERY_CHECK(saved.is_object() && saved.contains("scale") && saved.at("scale").is_number() &&
                        saved.contains("growth_tracker") && saved.at("growth_tracker").is_number_integer(),
                    FormatError, "Trainer::resume: ", path,
                    ": user.grad_scaler must be {\"scale\": number, \"growth_tracker\": integer}, got ",
                    saved.dump());
      scaler_.load_state(
          optim::GradScalerState{saved.at("scale").get<double>(), saved.at("growth_tracker").get<int64_t>()});
    }
  }

  int64_t resume_distributed() {
    dist::ProcessGroup& g = *options_.group;
    std::string chosen;  // rank 0: the path, "" for none, or "!" + the reason nothing can be loaded
    if (g.rank() == 0) {
      std::filesystem::create_directories(options_.checkpoint_dir);
      const auto latest = latest_valid_checkpoint(options_.checkpoint_dir);
      for (const auto& skipped : latest.skipped)
        std::fprintf(stderr, "%s: skipped checkpoint %s: %s\n", options_.label.c_str(), skipped.path.c_str(),
                     skipped.reason.c_str());
      if (latest.path)
        chosen = *latest.path;
      else if (!latest.skipped.empty())
        chosen = ::bindery::detail::concat("!every checkpoint in ", options_.checkpoint_dir,
                                           " is damaged (newest: ", latest.skipped.front().path, ": ",
                                           latest.skipped.front().reason, "); move them away to start over");
    }
    chosen = g.broadcast_string(chosen, 0);
    BINDERY_CHECK(chosen.empty() || chosen[0] != '!', FormatError, "Trainer::resume: ", chosen.substr(1));
    if (chosen.empty()) return 0;
    std::map<std::string, Philox> rngs;
    const CheckpointInfo info = load_checkpoint(chosen, *root_, *optimizer_, rngs);
    // This rank's saved streams, when the checkpoint was written by as many ranks: user.dist.rngs[rank]
    // maps module paths to ["seed", "offset"] (decimal strings: JSON numbers cannot hold every uint64).
    std::map<std::string, Philox> mine;
    bool saved = false;
    try {
      const nlohmann::json& user = info.user;
      if (user.contains("dist") && user.at("dist").value("world_size", 0) == g.size()) {
        for (const auto& [name, pair] : user.at("dist").at("rngs").at(static_cast<size_t>(g.rank())).items())
          mine[name] = Philox(std::stoull(pair.at(0).template get<std::string>()),
                              std::stoull(pair.at(1).template get<std::string>()));
        saved = true;
      }
    } catch (const std::exception& e) {  // nlohmann's type/range errors, std::stoull's
      throw FormatError(::bindery::detail::concat("Trainer::resume: ", chosen, ": user.dist.rngs of rank ",
                                                  g.rank(), " is malformed (", e.what(), ")"));
    }
    for (const auto& [name, gen] : module_generators(*root_)) {
      const std::map<std::string, Philox>& from = saved ? mine : rngs;
      const auto it = from.find(name);
      BINDERY_CHECK(it != from.end(), FormatError, "Trainer::resume: ", chosen, " holds no random stream",
                    saved ? ::bindery::detail::concat(" of rank ", g.rank()) : std::string(), " for module '",
                    name, "'");
      *gen = it->second;
    }
    if (!saved) rekey_generators(g.rank());  // another number of ranks: derived from rank 0's
    restore_grad_scaler(info, chosen);
    if (g.rank() == 0)
      std::fprintf(stderr, "%s: resumed from %s (step %lld, %d ranks%s)\n", options_.label.c_str(),
                   chosen.c_str(), static_cast<long long>(info.step), g.size(),
                   saved ? "" : "; saved with another number of ranks");
    return info.step;
  }

  nlohmann::json evaluate(int64_t step) {
    root_->eval();
    nlohmann::json e;
    {
      NoGrad no_grad;
      e = evaluator_(step);
    }
    root_->train();
    return e;
  }

  TrainerOptions options_;
  std::vector<Task<T, B>> tasks_;
  std::shared_ptr<Root> root_;
  std::vector<DistributedSampler> samplers_;
  std::unique_ptr<optim::Optimizer<T, B>> optimizer_;
  optim::GradScaler<T, B> scaler_{
      optim::GradScalerOptions{.enabled = options_.precision == Precision::kFloat16}};
  int64_t skipped_ = 0;
  optim::WarmupCosine schedule_;
  std::function<nlohmann::json(int64_t)> evaluator_;
  int64_t step_ = 0;
  std::unique_ptr<dist::DataParallel<T, B>> dp_;  // across ranks only
};

}  // namespace bindery::train
