// tests/dist/dist_test_util.hpp — the group every distributed test runs in, and the small two-tower
// training job the data-parallel tests and the scenarios (kill, resume on other rank counts) share.
#pragma once

#include <bindery/bindery.hpp>
#include <bindery/dist/all.hpp>
#include <bindery/train/trainer.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace bindery::testing {

/// This process's group (dist::init() in dist_main.cpp: MPI under mpirun, else single).
std::shared_ptr<dist::ProcessGroup>& dist_group();

/// Values drawn from Philox(seed): the same on every rank.
inline std::vector<float> same_everywhere(int64_t n, uint64_t seed, double scale = 1.0) {
  Philox rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>((rng.next_uniform() * 2.0 - 1.0) * scale);
  return v;
}

/// Linear -> GELU -> Linear.
template <class T = float>
class Tower : public nn::Module<T> {
 public:
  Tower(int64_t in, int64_t hidden, int64_t out, uint64_t seed) {
    fc1_ = this->register_module(
        "fc1", std::make_shared<nn::Linear<T>>(in, hidden, nn::LinearOptions{.seed = seed}));
    fc2_ = this->register_module(
        "fc2", std::make_shared<nn::Linear<T>>(hidden, out, nn::LinearOptions{.seed = seed + 1}));
  }
  Var<T> forward(const Var<T>& x) { return fc2_->forward(ops::gelu(fc1_->forward(x))); }

 private:
  std::shared_ptr<nn::Linear<T>> fc1_, fc2_;
};

/// Paired data of two "modalities" (a: 8 features, b: 6 features of the same latent) with a label.
struct PairData {
  int64_t n = 96;
  Tensor<float> a, b;
  std::vector<int64_t> label;
  PairData() {
    const std::vector<float> z = same_everywhere(n * 4, 11);
    const std::vector<float> wa = same_everywhere(4 * 8, 12), wb = same_everywhere(4 * 6, 13);
    const std::vector<float> na = same_everywhere(n * 8, 14, 0.1), nb = same_everywhere(n * 6, 15, 0.1);
    std::vector<float> va(static_cast<size_t>(n * 8)), vb(static_cast<size_t>(n * 6));
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < 8; ++j) {
        float s = na[static_cast<size_t>(i * 8 + j)];
        for (int64_t k = 0; k < 4; ++k)
          s += z[static_cast<size_t>(i * 4 + k)] * wa[static_cast<size_t>(k * 8 + j)];
        va[static_cast<size_t>(i * 8 + j)] = s;
      }
      for (int64_t j = 0; j < 6; ++j) {
        float s = nb[static_cast<size_t>(i * 6 + j)];
        for (int64_t k = 0; k < 4; ++k)
          s += z[static_cast<size_t>(i * 4 + k)] * wb[static_cast<size_t>(k * 6 + j)];
        vb[static_cast<size_t>(i * 6 + j)] = s;
      }
      label.push_back(z[static_cast<size_t>(i * 4)] > 0 ? 1 : 0);
    }
    a = Tensor<float>::from_vector(va, {n, 8});
    b = Tensor<float>::from_vector(vb, {n, 6});
  }
  static Tensor<float> rows(const Tensor<float>& x, const std::vector<int64_t>& idx) {
    const int64_t d = x.size(1);
    std::vector<float> out;
    const std::vector<float> all = x.to_vector();
    for (int64_t i : idx) out.insert(out.end(), all.begin() + i * d, all.begin() + (i + 1) * d);
    return Tensor<float>::from_vector(out, {static_cast<int64_t>(idx.size()), d});
  }
};

/// A two-tower job: a contrastive task (learnable scale, gathered across ranks) and a classifier
/// task on tower a. Small buckets, so that the gradients travel in several.
struct TwoTowerJob {
  PairData data;
  std::shared_ptr<Tower<>> tower_a = std::make_shared<Tower<>>(8, 16, 8, 100);
  std::shared_ptr<Tower<>> tower_b = std::make_shared<Tower<>>(6, 16, 8, 200);
  std::shared_ptr<nn::Linear<float>> head =
      std::make_shared<nn::Linear<float>>(8, 2, nn::LinearOptions{.seed = 300});
  std::unique_ptr<train::Trainer<float>> trainer;
  std::function<void(int64_t step)> on_step;  // called inside the first task, every step

  explicit TwoTowerJob(train::TrainerOptions options) {
    if (options.batch_size == train::TrainerOptions{}.batch_size) options.batch_size = 12;  // unless set
    options.lr = 5e-3;
    options.warmup_steps = 3;
    options.progress = false;
    options.log_every = 5;
    options.bucket_bytes = 512;  // a few buckets even for this small model
    auto clip = train::contrastive_task<float>(
        "pairs", data.n,
        [this](const std::vector<int64_t>& idx) {
          if (on_step) on_step(trainer->current_step());
          return tower_a->forward(Var<float>(PairData::rows(data.a, idx)));
        },
        [this](const std::vector<int64_t>& idx) {
          return tower_b->forward(Var<float>(PairData::rows(data.b, idx)));
        },
        {.init_scale = 10.0, .max_scale = 100.0, .learnable = true});
    auto cls = train::classification_task<float>(
        "label", data.n,
        [this](const std::vector<int64_t>& idx) {
          return head->forward(tower_a->forward(Var<float>(PairData::rows(data.a, idx))));
        },
        [this](int64_t i) { return data.label[static_cast<size_t>(i)]; }, 0.5);
    trainer = std::make_unique<train::Trainer<float>>(
        options, std::vector<train::Trainer<float>::Named>{{"a", tower_a}, {"b", tower_b}, {"head", head}},
        std::vector<train::Task<float>>{clip, cls});
  }
  /// Every trained value (model and task parameters), in state-dict order.
  std::vector<float> parameters() {
    std::vector<float> out;
    for (const auto& p : trainer->model().parameters()) {
      const std::vector<float> v = p.value().to_vector();
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  }
};

/// FNV-1a of the bytes of `values`.
inline uint64_t digest(const std::vector<float>& values) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size() * sizeof(float); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/// max |a - b| / max |b|.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a.at(i)) - static_cast<double>(b[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return a.size() == b.size() ? worst / std::max(scale, 1e-30) : INFINITY;
}

}  // namespace bindery::testing
