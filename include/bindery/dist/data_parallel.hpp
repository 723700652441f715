// bindery/dist/data_parallel.hpp — data parallelism: replicas that stay identical, gradients averaged
// while backward still runs.
//
//   dist::DataParallel<float> dp(group, model);   // rank 0's parameters and buffers to every rank
//   for (...) {
//     optimizer.zero_grad();
//     loss_on_my_shard.backward();                // buckets all-reduce as their gradients become final
//     dp.finish();                                // waits; every grad is now the mean over the ranks
//     optimizer.step();                           // same gradients, same update: same parameters
//   }
//
// Buckets. The trainable parameters, in reverse registration order (backward produces the last
// layers' gradients first), are packed into buckets of about Options::bucket_bytes (25 MB, as
// PyTorch DDP). A gradient-ready hook on every parameter (Var::add_grad_ready_hook, called by the
// autograd engine when a leaf's gradient is final) marks it; when a bucket is complete and every
// earlier bucket has started, its gradients are copied into one flat buffer and an asynchronous
// all-reduce (average) starts — so communication overlaps the rest of backward. finish() starts the
// buckets that did not complete (parameters this step did not reach; their gradient counts as zero
// on this rank), waits for all, and writes the averages back. A parameter that no rank gave a
// gradient keeps none (so the optimizer skips it, as it would in one process). Buckets always
// start in the same order on every rank.
//
// Gradient accumulation: backward passes inside `auto guard = dp.no_sync();` only accumulate
// locally; the next backward outside it (then finish()) averages the sum.
//
// Frozen parameters (requires_grad false) are skipped. Parameters must be the same, in the same
// order and shapes, on every rank (the constructor checks).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bindery/autograd/var.hpp"
#include "bindery/dist/process_group.hpp"
#include "bindery/nn/module.hpp"

namespace bindery::dist {

struct DataParallelOptions {
  int64_t bucket_bytes = int64_t{25} << 20;  // about 25 MB per all-reduce, as PyTorch DDP
  bool broadcast_buffers = true;             // rank 0's buffers (running statistics) too, at start
};

template <class T, class B = Cpu>
class DataParallel {
 public:
  DataParallel(std::shared_ptr<ProcessGroup> group, nn::Module<T, B>& module,
               DataParallelOptions options = {})
      : DataParallel(std::move(group), module.named_parameters(), options) {
    if (options.broadcast_buffers && group_->size() > 1) {
      for (auto& [name, buffer] : module.named_buffers()) {
        Tensor<T, B> b = buffer;  // shares the storage: broadcast writes into the module's buffer
        BINDERY_CHECK(b.is_contiguous(), DistError, group_->where("DataParallel"), ": buffer '", name,
                      "' is not contiguous");
        group_->broadcast(b, 0).wait();
      }
    }
  }

  DataParallel(std::shared_ptr<ProcessGroup> group, std::vector<std::pair<std::string, Var<T, B>>> named,
               DataParallelOptions options = {})
      : group_(std::move(group)), options_(options) {
    BINDERY_CHECK(group_ != nullptr, DistError, "DataParallel: no process group");
    BINDERY_CHECK(options_.bucket_bytes > 0, ValueError, "DataParallel: bucket_bytes must be positive, got ",
                  options_.bucket_bytes);
    for (auto& [name, p] : named)
      if (p.requires_grad()) params_.push_back({name, p});
    check_same_parameters();
    broadcast_parameters();
    if (group_->size() == 1) return;
    // Buckets over the parameters in reverse order.
    const int64_t per_bucket = std::max<int64_t>(1, options_.bucket_bytes / static_cast<int64_t>(sizeof(T)));
    Bucket current;
    for (size_t k = params_.size(); k-- > 0;) {
      const int64_t n = params_[k].var.numel();
      if (!current.params.empty() && current.numel + n > per_bucket) {
        buckets_.push_back(std::move(current));
        current = Bucket{};
      }
      params_[k].bucket = buckets_.size();
      params_[k].offset = current.numel;
      current.params.push_back(k);
      current.numel += n;
    }
    if (!current.params.empty()) buckets_.push_back(std::move(current));
    for (auto& b : buckets_) b.pending = static_cast<int64_t>(b.params.size());
    for (size_t k = 0; k < params_.size(); ++k)
      params_[k].hook = params_[k].var.add_grad_ready_hook([this, k] { on_ready(k); });
  }
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;
  ~DataParallel() {
    for (auto& p : params_)
      if (p.hook) p.var.remove_grad_ready_hook(p.hook);
  }

  ProcessGroup& group() { return *group_; }
  const std::shared_ptr<ProcessGroup>& group_ptr() const { return group_; }
  size_t num_buckets() const { return buckets_.size(); }
  /// The bucket sizes in elements (for tests and the cost model).
  std::vector<int64_t> bucket_sizes() const {
    std::vector<int64_t> out;
    for (const auto& b : buckets_) out.push_back(b.numel);
    return out;
  }
  /// Buckets whose all-reduce started during the last backward, before finish() (overlap measure).
  int64_t started_during_backward() const { return started_early_; }

  /// Rank 0's parameter values copied to every rank (the constructor does it once).
  void broadcast_parameters() {
    if (group_->size() == 1) return;
    for (auto& p : params_) {
      Tensor<T, B> v = p.var.value();
      group_->broadcast(v, 0).wait();
    }
  }

  /// While the returned guard lives, backward only accumulates gradients locally.
  class NoSync {
   public:
    explicit NoSync(DataParallel* dp) : dp_(dp), previous_(dp->sync_) { dp_->sync_ = false; }
    NoSync(NoSync&& other) noexcept : dp_(other.dp_), previous_(other.previous_) { other.dp_ = nullptr; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;
    NoSync& operator=(NoSync&&) = delete;
    ~NoSync() {
      if (dp_) dp_->sync_ = previous_;
    }

   private:
    DataParallel* dp_;
    bool previous_;
  };
  [[nodiscard]] NoSync no_sync() { return NoSync(this); }

  /// Starts every bucket not started yet, waits for all, and writes the mean gradients back.
  void finish() {
    if (group_->size() == 1) return;
    BINDERY_CHECK(sync_, DistError, group_->where("DataParallel::finish"),
                  ": called inside no_sync() (finish the accumulation outside it)");
    started_early_ = static_cast<int64_t>(next_bucket_);
    for (size_t b = next_bucket_; b < buckets_.size(); ++b) start(b);
    next_bucket_ = buckets_.size();
    for (auto& bucket : buckets_) {
      bucket.work.wait();
      write_back(bucket);
    }
    for (auto& bucket : buckets_) {
      bucket.pending = static_cast<int64_t>(bucket.params.size());
    }
    for (auto& p : params_) p.ready = false;
    next_bucket_ = 0;
  }

 private:
  struct Param {
    std::string name;
    Var<T, B> var;
    size_t bucket = 0;
    int64_t offset = 0;  // in the bucket, elements
    uint64_t hook = 0;
    bool ready = false;
  };
  struct Bucket {
    std::vector<size_t> params;
    int64_t numel = 0;
    int64_t pending = 0;
    Tensor<T, B> buffer;  // numel gradient values, then one "had a gradient" flag per parameter
    Work work;
  };

  void on_ready(size_t k) {
    if (!sync_) return;
    Param& p = params_[k];
    BINDERY_CHECK(!p.ready, DistError, group_->where("DataParallel"), ": the gradient of '", p.name,
                  "' became final twice before finish() (run every backward but the last of a step inside "
                  "no_sync(), then call finish())");
    p.ready = true;
    Bucket& bucket = buckets_[p.bucket];
    if (--bucket.pending == 0) {
      while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].pending == 0) start(next_bucket_++);
    }
    group_->poll();
    for (size_t b = 0; b < next_bucket_; ++b) (void)buckets_[b].work.is_completed();
  }

  void start(size_t b) {
    Bucket& bucket = buckets_[b];
    const int64_t flags = static_cast<int64_t>(bucket.params.size());
    if (!bucket.buffer.defined()) bucket.buffer = Tensor<T, B>::zeros({bucket.numel + flags});
    for (size_t j = 0; j < bucket.params.size(); ++j) {
      const Param& p = params_[bucket.params[j]];
      Tensor<T, B> slot = bucket.buffer.slice(0, p.offset, p.offset + p.var.numel());
      Tensor<T, B> flag = bucket.buffer.slice(0, bucket.numel + static_cast<int64_t>(j),
                                              bucket.numel + static_cast<int64_t>(j) + 1);
      if (p.var.has_grad()) {
        slot.copy_(p.var.grad().reshape({p.var.numel()}));
        flag.fill_(T(1));
      } else {
        slot.fill_(T(0));
        flag.fill_(T(0));
      }
    }
    Work started = group_->all_reduce(bucket.buffer, ReduceOp::kAverage);
    bucket.work = std::move(started);
  }

  void write_back(Bucket& bucket) {
    const std::vector<T> flags =
        bucket.buffer.slice(0, bucket.numel, bucket.numel + static_cast<int64_t>(bucket.params.size()))
            .to_vector();
    for (size_t j = 0; j < bucket.params.size(); ++j) {
      Param& p = params_[bucket.params[j]];
      if (flags[j] == T(0)) {  // no rank had a gradient: keep none
        p.var.zero_grad();
        continue;
      }
      const Tensor<T, B> mean =
          bucket.buffer.slice(0, p.offset, p.offset + p.var.numel()).reshape(p.var.shape());
      if (p.var.has_grad() && p.var.grad().is_contiguous()) {
        Tensor<T, B> g = p.var.grad();
        g.copy_(mean);
      } else {
        p.var.set_grad(mean.clone());
      }
    }
  }

  void check_same_parameters() {
    if (group_->size() == 1) return;
    std::vector<int64_t> sig;
    for (const auto& p : params_) {
      sig.push_back(p.var.rank());
      for (int64_t d = 0; d < p.var.rank(); ++d) sig.push_back(p.var.size(d));
    }
    const auto all = group_->all_gather_values(sig);
    for (int r = 0; r < group_->size(); ++r)
      BINDERY_CHECK(all[static_cast<size_t>(r)] == sig, DistError, group_->where("DataParallel"), ": rank ",
                    r, " has other trainable parameters (number, order or shapes) than this rank's ",
                    params_.size());
  }

  std::shared_ptr<ProcessGroup> group_;
  DataParallelOptions options_;
  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  size_t next_bucket_ = 0;
  int64_t started_early_ = 0;
  bool sync_ = true;
};

}  // namespace bindery::dist
