// examples/07_few_shot — few-shot linear probes on frozen ImageBind embeddings (the paper's Figure 3).
//
// The model: the digits ImageBind that 02_imagebind_digits trained and saved (model.safetensors +
// config.json + vocab.txt). Its audio, depth, thermal and IMU encoders were bound to images only;
// here they are frozen, and a linear probe (multinomial logistic regression, Linear(out_dim, 10) on
// L2-normalized embeddings, cross-entropy, AdamW, full batch) is trained on k = 1, 2, 4, 8, 16
// labelled samples per class drawn from the training split, 10 draws each (Philox-seeded), and scored
// on the held-out test split (samples the model never saw). k = 0 is the emergent zero-shot accuracy
// from text prompts, as 02 measures it. Next to it, on the same draws: an encoder of the same
// EncoderSpec (config.json) with fresh random weights plus a Linear head, trained from scratch with
// labels on the same k samples per class — the paper's comparison with models without ImageBind's
// pretraining.
//
//   ./02_imagebind_digits --out runs/digits            # once: trains and saves the joint space
//   ./07_few_shot --run runs/digits [--out DIR] [--threads 2] [--modalities audio,depth,thermal,imu]
//   ./07_few_shot --run runs/digits --quick --require-gap 20   # the CTest: 2 draws, k in {1, 4}
//   ./07_few_shot --run runs/digits --probe-init text --probe-lr 0.001 --probe-steps 100
//       # the probe starts as the zero-shot classifier (scale x text prototypes) instead of at random
//   ./07_few_shot --run runs/digits --fsdd DIR/recordings [--held-out theo,yweweler]
//       # real speech: the k-shot sets are FSDD recordings of the training speakers, the test set the
//       # held-out speakers' recordings, in 02's --mnist/--fsdd features (split and inputs as there)
//
// Writes into --out (default <run>/few_shot): report.md, results.json, few_shot_<modality>.svg.
#include <CLI/CLI.hpp>

#include <bindery/bindery.hpp>
#include <bindery/datasets/fsdd.hpp>
#include <bindery/datasets/synth_digits.hpp>
#include <bindery/eval/zero_shot.hpp>
#include <bindery/models/imagebind/model.hpp>
#include <bindery/nn/linear.hpp>
#include <bindery/ops/index.hpp>
#include <bindery/plot/plot.hpp>
#include <bindery/plot/svg.hpp>
#include <bindery/train/trainer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "../common/digits_run.hpp"
#include "../common/fsdd_inputs.hpp"

using namespace bindery;
namespace ib = bindery::models::imagebind;
using ib::Modality;
using T = float;
using Device = Cpu;
using TensorT = Tensor<T, Device>;
using VarT = Var<T, Device>;
using Ids = Tensor<int64_t, Device>;
using Indices = std::vector<int64_t>;

namespace {

struct Options {
  std::string run, out, modalities = "audio,depth,thermal,imu";
  int threads = 1;
  bool quick = false;
  int64_t draws = 10;
  std::vector<int64_t> shots = {1, 2, 4, 8, 16};
  int64_t n_train = 6000, n_test = 1000;  // 02's split: train = samples [0, n_train), test the next n_test
  int64_t pool = 6000;                    // the k-shot sets are drawn from the first `pool` training samples
  uint64_t seed = 1;                      // the data's seed (02's --seed) and the draws'
  int64_t probe_steps = 300, scratch_steps = 150;
  double probe_lr = 0.05, probe_wd = 1e-3, scratch_lr = 1e-3, scratch_wd = 0.05;
  double require_gap = -1;                       // points; < 0: no requirement
  std::string probe_init = "random";             // or "text": the probe starts as the zero-shot classifier
  double text_scale = 1.0 / 0.07;                // logit scale of that start
  std::string fsdd, held_out = "theo,yweweler";  // FSDD recordings folder; 02's held-out speakers
  std::string fsdd_features = "cmvn";            // 02's real-data inputs, or "builtin" (the generator's)
  double require_fsdd = -1;                      // %; < 0: no requirement
};

TensorT rows_of(const TensorT& x, const Indices& idx) {
  return ops::index_select_forward(x, 0, Ids::from_vector(idx));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// k samples per class from `pool` (without replacement), draw `draw`: a Philox stream keyed by
/// (seed, modality, k, draw). Partial Fisher-Yates per class.
Indices draw_shots(const std::vector<Indices>& by_class, int64_t k, uint64_t key, int64_t draw) {
  Philox rng(nn::init::derive_seed(key, static_cast<uint64_t>(k)), static_cast<uint64_t>(draw));
  Indices out;
  for (Indices c : by_class) {
    BINDERY_CHECK(static_cast<int64_t>(c.size()) >= k, ValueError, "the pool holds ", c.size(),
                  " samples of a class, fewer than k = ", k);
    for (int64_t j = 0; j < k; ++j) {
      const size_t pick = static_cast<size_t>(j) + rng.next_below(c.size() - static_cast<size_t>(j));
      std::swap(c[static_cast<size_t>(j)], c[pick]);
      out.push_back(c[static_cast<size_t>(j)]);
    }
  }
  return out;
}

/// Top-1 of logits (N, C) against labels.
double top1(const eval::Matrix& logits, const std::vector<int64_t>& labels) {
  int64_t hits = 0;
  for (int64_t i = 0; i < logits.rows; ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < logits.cols; ++c) best = logits(i, c) > logits(i, best) ? c : best;
    hits += best == labels[static_cast<size_t>(i)];
  }
  return static_cast<double>(hits) / static_cast<double>(std::max<int64_t>(logits.rows, 1));
}

TensorT to_tensor(const eval::Matrix& m) {
  return TensorT::from_vector(std::vector<T>(m.values.begin(), m.values.end()), {m.rows, m.cols});
}

/// Full-batch training: `steps` AdamW updates of `params` on cross-entropy of forward() vs labels.
template <class Forward>
void fit(const std::vector<VarT>& params, Forward forward, const std::vector<int64_t>& labels, int64_t steps,
         double lr, double weight_decay) {
  optim::AdamW<T, Device> opt(params, {.lr = lr, .weight_decay = weight_decay});
  const Ids targets = Ids::from_vector(labels);
  for (int64_t s = 0; s < steps; ++s) {
    opt.zero_grad();
    ops::cross_entropy(forward(), targets).backward();
    opt.step();
  }
}

/// The linear probe: multinomial logistic regression on frozen, normalized embeddings.
double probe(const eval::Matrix& train_x, const std::vector<int64_t>& train_y, const eval::Matrix& test_x,
             const std::vector<int64_t>& test_y, const eval::Matrix& prototypes, const Options& o,
             uint64_t seed) {
  nn::Linear<T, Device> head(train_x.cols, 10, nn::LinearOptions{.seed = seed});
  if (o.probe_init ==
      "text") {  // W = scale x text prototypes, b = 0: at step 0 it is the zero-shot classifier
    eval::Matrix w = prototypes;
    for (double& v : w.values) v *= o.text_scale;
    head.weight().assign(to_tensor(w));
    head.bias().assign(TensorT::zeros({10}));
  }
  const VarT x(to_tensor(train_x));
  fit(
      head.parameters(), [&] { return head.forward(x); }, train_y, o.probe_steps, o.probe_lr, o.probe_wd);
  NoGrad no_grad;
  return top1(eval::to_matrix(head.forward(VarT(to_tensor(test_x))).value()), test_y);
}

/// The baseline: the modality's encoder (same EncoderSpec, fresh weights) + Linear head, from scratch.
struct Scratch : nn::Module<T, Device> {
  Scratch(const ib::EncoderConfig& c, uint64_t seed) {
    encoder = register_module("encoder", ib::make_encoder<T, Device>(c, seed));
    head = register_module("classifier", std::make_shared<nn::Linear<T, Device>>(
                                             c.out_dim, 10, nn::LinearOptions{.seed = seed + 1}));
  }
  VarT forward(const TensorT& x) { return head->forward(encoder->encode_stages(x).head); }
  std::shared_ptr<ib::Encoder<T, Device>> encoder;
  std::shared_ptr<nn::Linear<T, Device>> head;
};

double from_scratch(const ib::EncoderConfig& config, const TensorT& train_x,
                    const std::vector<int64_t>& train_y, const TensorT& test_x,
                    const std::vector<int64_t>& test_y, const Options& o, uint64_t seed) {
  Scratch net(config, seed);
  net.train();
  fit(
      net.parameters(), [&] { return net.forward(train_x); }, train_y, o.scratch_steps, o.scratch_lr,
      o.scratch_wd);
  net.eval();
  NoGrad no_grad;
  const TensorT logits = train::cache_embeddings<T, Device>(
      test_x.shape()[0], 250, [&](const Indices& idx) { return net.forward(rows_of(test_x, idx)); });
  return top1(eval::to_matrix(logits), test_y);
}

struct Stat {
  double mean = 0, std = 0;
  std::vector<double> values;
};
Stat stat(std::vector<double> v) {
  Stat s;
  s.values = v;
  for (double x : v) s.mean += x / static_cast<double>(v.size());
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(s.std / static_cast<double>(v.size() - 1)) : 0.0;  // sample std
  return s;
}

struct ModalityResult {
  std::string name;  // the modality's name, or "fsdd"
  Modality modality = Modality::kAudio;
  double zero_shot = 0;
  std::map<int64_t, Stat> probe, scratch;
  double seconds = 0;
  int64_t params = 0;
};

std::string pm(const Stat& s) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f ± %.1f", 100 * s.mean, 100 * s.std);
  return buf;
}

void write_plot(const std::string& path, const std::string& name, const ModalityResult& r,
                const std::vector<int64_t>& shots, int64_t draws) {
  const std::string blue = "#1f77b4", orange = "#ff7f0e", grey = "#7f7f7f";
  std::vector<eval::Series> series;
  eval::Series p{"linear probe on ImageBind", {}, {}, blue}, s{"same encoder from scratch", {}, {}, orange};
  for (int64_t k : shots) {
    p.x.push_back(static_cast<double>(k));
    p.y.push_back(100 * r.probe.at(k).mean);
    s.x.push_back(static_cast<double>(k));
    s.y.push_back(100 * r.scratch.at(k).mean);
  }
  const double lo = static_cast<double>(shots.front()), hi = static_cast<double>(shots.back());
  series.push_back(p);
  series.push_back(s);
  series.push_back({"zero-shot, text (k = 0)", {lo, hi}, {100 * r.zero_shot, 100 * r.zero_shot}, grey, true});
  series.push_back({"chance", {lo, hi}, {10, 10}, "#bbbbbb", true});
  // Error bars: ± 1 std over the draws, one vertical segment per point (no legend entry).
  for (int64_t k : shots)
    for (const auto& [stats, colour] : {std::pair{&r.probe, blue}, std::pair{&r.scratch, orange}}) {
      const Stat& st = stats->at(k);
      series.push_back({"",
                        {static_cast<double>(k), static_cast<double>(k)},
                        {100 * (st.mean - st.std), 100 * (st.mean + st.std)},
                        colour});
    }
  eval::LineChartOptions o;
  o.title = name + ": few-shot top-1 on held-out samples (mean ± std, " + std::to_string(draws) + " draws)";
  o.x_label = "labelled samples per class (k)";
  o.y_label = "top-1 %";
  o.log_x = shots.size() > 1;
  o.y_min = 0;
  o.y_max = 100;
  eval::save_svg(path, eval::line_chart(series, o));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Few-shot linear probes on frozen ImageBind embeddings vs the same encoder from scratch"};
  app.add_option("--run", o.run,
                 "output folder of 02_imagebind_digits (model.safetensors, config.json, vocab.txt)")
      ->required();
  app.add_option("--out", o.out, "output folder (default <run>/few_shot)");
  app.add_option("--threads", o.threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--modalities", o.modalities, "comma-separated bound modalities")->capture_default_str();
  app.add_option("--draws", o.draws, "random k-shot sets per k")->check(CLI::PositiveNumber);
  app.add_option("--shots", o.shots, "k values (samples per class)")->check(CLI::PositiveNumber);
  app.add_option("--train", o.n_train, "02's training samples (the test split starts after them)");
  app.add_option("--test", o.n_test, "held-out test samples");
  app.add_option("--pool", o.pool, "draw the k-shot sets from the first POOL training samples");
  app.add_option("--seed", o.seed, "02's --seed (the data) and the draws' seed");
  app.add_option("--probe-steps", o.probe_steps, "full-batch AdamW steps of each probe");
  app.add_option("--scratch-steps", o.scratch_steps, "full-batch AdamW steps of each from-scratch encoder");
  app.add_option("--probe-lr", o.probe_lr, "probe learning rate");
  app.add_option("--scratch-lr", o.scratch_lr, "from-scratch learning rate");
  app.add_option("--probe-init", o.probe_init,
                 "the probe's start: random (nn::Linear's init) or text (the zero-shot classifier)")
      ->check(CLI::IsMember({"random", "text"}))
      ->capture_default_str();
  app.add_option("--text-scale", o.text_scale, "--probe-init text: the logit scale of the start");
  app.add_option("--fsdd", o.fsdd,
                 "FSDD recordings folder: probe the audio encoder with the training speakers' recordings, "
                 "test on the --held-out speakers' (alone unless --modalities is given too)");
  app.add_option("--held-out", o.held_out, "comma-separated FSDD speakers kept for the test (02's default)")
      ->capture_default_str();
  app.add_option("--fsdd-features", o.fsdd_features,
                 "FSDD inputs: cmvn (02's --mnist/--fsdd run) or builtin (the generator's audio format)")
      ->check(CLI::IsMember({"cmvn", "builtin"}))
      ->capture_default_str();
  app.add_option("--require-fsdd", o.require_fsdd,
                 "exit 1 unless the FSDD probe's mean top-1 at the largest k reaches this many %");
  app.add_flag("--quick", o.quick,
               "CTest size: 2 draws, k in {1, 4}, 300 test samples, fewer steps, 1 thread");
  app.add_option("--require-gap", o.require_gap,
                 "exit 1 unless at the smallest k the probe beats from-scratch by this many points on audio "
                 "and depth");
  CLI11_PARSE(app, argc, argv);
  // With --fsdd, the built-in modalities run only when asked for by name.
  const bool use_builtin = o.fsdd.empty() || app.count("--modalities") > 0;
  if (o.quick) {
    auto set = [&app](const char* name, auto& value, auto quick_value) {
      if (app.count(name) == 0) value = quick_value;
    };
    set("--draws", o.draws, int64_t{2});
    set("--shots", o.shots, std::vector<int64_t>{1, 4});
    set("--test", o.n_test, int64_t{300});
    set("--pool", o.pool, int64_t{600});
    set("--probe-steps", o.probe_steps, int64_t{200});
    set("--scratch-steps", o.scratch_steps, int64_t{60});
    set("--threads", o.threads, 1);
    set("--modalities", o.modalities, std::string("audio,depth"));
  }
  if (o.out.empty()) o.out = o.run + "/few_shot";
  std::sort(o.shots.begin(), o.shots.end());
  Cpu::set_num_threads(o.threads);
  const auto t_start = std::chrono::steady_clock::now();
  try {
    std::set<Modality> builtin;  // enum order: the report's order whatever the command line's
    std::stringstream ss(o.modalities);
    for (std::string s; std::getline(ss, s, ',');)
      if (!s.empty() && use_builtin) builtin.insert(ib::modality_from_name(s));
    BINDERY_CHECK(o.pool <= o.n_train, ValueError, "--pool ", o.pool, " exceeds --train ", o.n_train);
    std::vector<Modality> modalities(builtin.begin(), builtin.end());
    if (!o.fsdd.empty() && !builtin.count(Modality::kAudio)) modalities.push_back(Modality::kAudio);

    // ---- the frozen model ---------------------------------------------------------------------
    const digits_run::DigitsRun run = digits_run::load_digits_run(o.run, modalities);
    const ib::ImageBindConfig& config = run.config;
    auto& model = run.model;

    // ---- the data: 02's built-in split (same generator, seed and indices) -----------------------
    /// One labelled pool (the k-shot sets are drawn from it) and its held-out test set.
    struct ProbeSet {
      std::string name;
      Modality modality;
      uint64_t key;  // the draws' Philox key
      const TensorT *pool_x, *test_x;
      std::vector<int64_t> pool_y, test_y;
    };
    std::vector<ProbeSet> sets;
    data::synth::SynthConfig synth;
    synth.seed = o.seed;
    synth.noise = 1.0;
    const auto t_data = std::chrono::steady_clock::now();
    data::synth::DigitBatch pool, test;
    if (!builtin.empty()) {
      pool = data::synth::make_batch(synth, 0, o.pool);
      test = data::synth::make_batch(synth, o.n_train, o.n_test);
      std::fprintf(stderr, "data: %lld-sample pool (training split), %lld test samples (held out), %.1f s\n",
                   static_cast<long long>(o.pool), static_cast<long long>(o.n_test), seconds_since(t_data));
    }
    auto values = [](const data::synth::DigitBatch& b, Modality m) -> const TensorT* {
      if (m == Modality::kAudio) return &b.audio;
      if (m == Modality::kDepth) return &b.depth;
      if (m == Modality::kThermal) return &b.thermal;
      if (m == Modality::kImu) return &b.imu;
      throw ValueError("07_few_shot: the built-in data holds audio, depth, thermal and IMU");
    };
    for (const Modality m : builtin)
      sets.push_back({ib::modality_name(m), m,
                      nn::init::derive_seed(o.seed ^ 0xf3u, ib::modality_seed_index(m)), values(pool, m),
                      values(test, m), pool.labels.to_vector(), test.labels.to_vector()});
    // FSDD: 02's --mnist/--fsdd split (data::split_by_speaker with its --held-out speakers) and inputs
    // (digits_run::fsdd_cmvn_inputs), or the generator's audio format (data::fsdd_batch's defaults).
    TensorT fsdd_pool, fsdd_test;
    std::string fsdd_note;
    if (!o.fsdd.empty()) {
      std::vector<std::string> held;
      std::stringstream hs(o.held_out);
      for (std::string s; std::getline(hs, s, ',');)
        if (!s.empty()) held.push_back(s);
      const data::FsddSplit split = data::split_by_speaker(data::list_fsdd(o.fsdd), held);
      BINDERY_CHECK(!split.train.empty() && !split.test.empty(), ValueError, "--held-out ", o.held_out,
                    " leaves ", split.train.size(), " training and ", split.test.size(),
                    " test recordings in ", o.fsdd);
      auto inputs = [&](const std::vector<data::FsddRecording>& r) {
        return o.fsdd_features == "cmvn" ? digits_run::fsdd_cmvn_inputs(r) : data::fsdd_batch<T>(r);
      };
      fsdd_pool = inputs(split.train);
      fsdd_test = inputs(split.test);
      ProbeSet s{"fsdd",     Modality::kAudio, nn::init::derive_seed(o.seed ^ 0xf5ddu, 1),
                 &fsdd_pool, &fsdd_test,       {},
                 {}};
      std::set<std::string> train_speakers;
      for (const auto& r : split.train) s.pool_y.push_back(r.digit), train_speakers.insert(r.speaker);
      for (const auto& r : split.test) s.test_y.push_back(r.digit);
      std::string speakers;
      for (const auto& name : train_speakers) speakers += (speakers.empty() ? "" : ",") + name;
      fsdd_note = "FSDD (`" + o.fsdd_features + "` inputs): the k-shot sets are drawn from " +
                  std::to_string(split.train.size()) + " recordings of the training speakers (" + speakers +
                  "), the test set is all " + std::to_string(split.test.size()) +
                  " recordings of the held-out speakers (" + o.held_out + ").";
      std::fprintf(stderr, "data: FSDD %zu training-speaker recordings (%s), %zu held-out (%s), %.1f s\n",
                   split.train.size(), speakers.c_str(), split.test.size(), o.held_out.c_str(),
                   seconds_since(t_data));
      sets.push_back(std::move(s));
    }

    NoGrad no_grad_outer;  // embeddings are frozen; fit() re-enables what it needs below
    // 02's zero-shot prompt ensemble: k = 0 is measured exactly as there.
    const eval::Matrix prototypes = digits_run::text_prototypes(run);

    std::vector<ModalityResult> results;
    for (const ProbeSet& set : sets) {
      const auto t0 = std::chrono::steady_clock::now();
      const Modality m = set.modality;
      ModalityResult& r = results.emplace_back();
      r.name = set.name;
      r.modality = m;
      const uint64_t key = set.key;
      const std::vector<int64_t>&pool_y = set.pool_y, &test_y = set.test_y;
      std::vector<Indices> by_class(10);
      for (size_t i = 0; i < pool_y.size(); ++i)
        by_class[static_cast<size_t>(pool_y[i])].push_back(static_cast<int64_t>(i));
      auto& encoder = model->encoder(m);
      auto embed = [&](const TensorT& x) {
        const TensorT e = train::cache_embeddings<T, Device>(
            x.shape()[0], 250, [&](const Indices& idx) { return encoder.encode(rows_of(x, idx)); });
        return eval::normalize_rows(eval::to_matrix(e));
      };
      const eval::Matrix test_e = embed(*set.test_x);
      r.zero_shot = eval::zero_shot(test_e, prototypes, test_y).top1;
      // Every draw first; the pool samples any of them uses are embedded once.
      std::map<std::pair<int64_t, int64_t>, Indices> shots;
      std::set<int64_t> used;
      for (int64_t k : o.shots)
        for (int64_t d = 0; d < o.draws; ++d) {
          shots[{k, d}] = draw_shots(by_class, k, key, d);
          used.insert(shots[{k, d}].begin(), shots[{k, d}].end());
        }
      const Indices used_rows(used.begin(), used.end());
      const eval::Matrix used_e = embed(rows_of(*set.pool_x, used_rows));
      std::map<int64_t, int64_t> row_of;
      for (size_t i = 0; i < used_rows.size(); ++i) row_of[used_rows[i]] = static_cast<int64_t>(i);
      r.params = Scratch(config.at(m), 0).num_parameters();
      std::printf("%s: zero-shot (k = 0) %.1f%%\n", set.name.c_str(), 100 * r.zero_shot);
      for (int64_t k : o.shots) {
        const auto t_k = std::chrono::steady_clock::now();
        std::vector<double> p, s;
        for (int64_t d = 0; d < o.draws; ++d) {
          const Indices& idx = shots.at({k, d});
          eval::Matrix x(static_cast<int64_t>(idx.size()), used_e.cols);
          std::vector<int64_t> y;
          for (size_t i = 0; i < idx.size(); ++i) {
            std::copy(used_e.row(row_of.at(idx[i])), used_e.row(row_of.at(idx[i])) + used_e.cols,
                      x.row(static_cast<int64_t>(i)));
            y.push_back(pool_y[static_cast<size_t>(idx[i])]);
          }
          const uint64_t seed =
              nn::init::derive_seed(key + static_cast<uint64_t>(k), static_cast<uint64_t>(d));
          {
            EnableGrad enable;
            p.push_back(probe(x, y, test_e, test_y, prototypes, o, seed));
            s.push_back(
                from_scratch(config.at(m), rows_of(*set.pool_x, idx), y, *set.test_x, test_y, o, seed));
          }
        }
        r.probe[k] = stat(p);
        r.scratch[k] = stat(s);
        std::printf("  k = %2lld: probe %s%%, from scratch %s%% (%.1f s)\n", static_cast<long long>(k),
                    pm(r.probe[k]).c_str(), pm(r.scratch[k]).c_str(), seconds_since(t_k));
        std::fflush(stdout);
      }
      r.seconds = seconds_since(t0);
    }

    // ---- report ------------------------------------------------------------------------------
    std::filesystem::create_directories(o.out);
    const double total = seconds_since(t_start);
    nlohmann::json j;
    j["run"] = o.run;
    j["draws"] = o.draws;
    j["shots"] = o.shots;
    j["test_samples"] = o.n_test;
    j["pool"] = o.pool;
    j["threads"] = o.threads;
    j["probe"] = {{"steps", o.probe_steps},
                  {"lr", o.probe_lr},
                  {"weight_decay", o.probe_wd},
                  {"init", o.probe_init},
                  {"text_scale", o.text_scale}};
    j["scratch"] = {{"steps", o.scratch_steps}, {"lr", o.scratch_lr}, {"weight_decay", o.scratch_wd}};
    j["seconds"] = total;
    if (!o.fsdd.empty())
      j["fsdd"] = {{"recordings", o.fsdd},
                   {"held_out", o.held_out},
                   {"features", o.fsdd_features},
                   {"pool", sets.back().pool_y.size()},
                   {"test_samples", sets.back().test_y.size()}};
    std::ostringstream md;
    md << "# Few-shot probes on frozen ImageBind embeddings (paper Figure 3)\n\n"
       << "Model: `" << o.run
       << "`. Test: " << (builtin.empty() ? "" : std::to_string(o.n_test) + " held-out built-in samples; ")
       << fsdd_note << " Chance 10%. Top-1 %, mean ± std over " << o.draws
       << " draws of k labelled samples per class from the training split. Probe: Linear(out_dim, 10) on "
          "frozen L2-normalized embeddings, "
       << o.probe_steps << " full-batch AdamW steps (lr " << o.probe_lr << ", weight decay " << o.probe_wd
       << (o.probe_init == "text" ? ", started as the zero-shot classifier (text prototypes)" : "")
       << "). From scratch: the same encoder spec, fresh weights + Linear head, " << o.scratch_steps
       << " full-batch AdamW steps (lr " << o.scratch_lr << ", weight decay " << o.scratch_wd
       << ") on the same samples. k = 0: emergent zero-shot from text prompts.\n\n"
       << "| modality | k | probe on ImageBind | from scratch | gap (points) |\n|---|---|---|---|---|\n";
    bool ok = true;
    for (const ModalityResult& r : results) {
      const std::string& name = r.name;
      const Modality m = r.modality;
      char zs[32];
      std::snprintf(zs, sizeof(zs), "%.1f", 100 * r.zero_shot);
      md << "| " << name << " | 0 | " << zs << " (zero-shot, text) | — | — |\n";
      nlohmann::json jm;
      jm["zero_shot"] = r.zero_shot;
      jm["seconds"] = r.seconds;
      jm["scratch_parameters"] = r.params;
      for (int64_t k : o.shots) {
        const Stat &p = r.probe.at(k), &s = r.scratch.at(k);
        char gap[32];
        std::snprintf(gap, sizeof(gap), "%+.1f", 100 * (p.mean - s.mean));
        md << "| " << name << " | " << k << " | " << pm(p) << " | " << pm(s) << " | " << gap << " |\n";
        jm["k"][std::to_string(k)] = {{"probe", {{"mean", p.mean}, {"std", p.std}, {"draws", p.values}}},
                                      {"scratch", {{"mean", s.mean}, {"std", s.std}, {"draws", s.values}}}};
      }
      j["modalities"][name] = jm;
      write_plot(o.out + "/few_shot_" + name + ".svg",
                 name == "fsdd" ? "FSDD audio, held-out speakers" : name, r, o.shots, o.draws);
      if (o.require_fsdd >= 0 && name == "fsdd") {
        const int64_t k = o.shots.back();
        const bool pass = 100 * r.probe.at(k).mean >= o.require_fsdd;
        ok = ok && pass;
        std::printf("fsdd: k = %lld probe %.1f%% (required %.1f%%): %s\n", static_cast<long long>(k),
                    100 * r.probe.at(k).mean, o.require_fsdd, pass ? "ok" : "FAILED");
      }
      if (o.require_gap >= 0 && name != "fsdd" && (m == Modality::kAudio || m == Modality::kDepth)) {
        const int64_t k = o.shots.front();
        const double gap = 100 * (r.probe.at(k).mean - r.scratch.at(k).mean);
        const bool pass = gap >= o.require_gap;
        ok = ok && pass;
        std::printf("%s: k = %lld gap %.1f points (required %.1f): %s\n", name.c_str(),
                    static_cast<long long>(k), gap, o.require_gap, pass ? "ok" : "FAILED");
      }
    }
    if (o.require_fsdd >= 0 && o.fsdd.empty()) {
      std::printf("--require-fsdd: no --fsdd folder was given\n");
      ok = false;
    }
    if (o.require_gap >= 0)
      for (Modality m : {Modality::kAudio, Modality::kDepth})
        if (!builtin.count(m)) {
          std::printf("--require-gap: %s was not run\n", ib::modality_name(m));
          ok = false;
        }
    char secs[64];
    std::snprintf(secs, sizeof(secs), "%.0f s on %d thread%s", total, o.threads, o.threads == 1 ? "" : "s");
    md << "\nRun time: " << secs << ".\n\n";
    for (const ModalityResult& r : results) md << "![" << r.name << "](few_shot_" << r.name << ".svg)\n";
    std::ofstream(o.out + "/report.md") << md.str();
    std::ofstream(o.out + "/results.json") << j.dump(2) << "\n";
    std::printf("wrote %s/report.md, results.json, few_shot_*.svg (%s)\n", o.out.c_str(), secs);
    return ok ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "07_few_shot: %s\n", e.what());
    return 2;
  }
}
