// benchmarks/bench_encoders.cpp — the ImageBind `huge` encoders end to end, fp32, Cpu.
//
// One encoder at a time is built from ImageBindConfig::huge() with random weights, then timed:
//   encoder_fwd/<modality>/b<N>    forward in inference mode (eval(), NoGrad), batch 1 and 8;
//   encoder_train/<modality>/b8    a training step: forward (train mode) + loss + backward + AdamW.
// Cases marked /heavy (vision at batch 8, the vision training step: ~30 s and ~17 GB on this machine)
// run only when a --benchmark_filter selects them; the default run leaves them out.
//
// Counters:
//   samples/s   batch / wall time of one iteration;
//   GFLOP/s     encoder_flop() per iteration / wall time (the formula is documented there);
//   weights_MB  parameter and buffer bytes of the encoder;
//   peak_RSS_MB the process's resident high-water mark over this case (VmHWM, reset through
//               /proc/self/clear_refs at the start of the case, when the encoder is already built):
//               weights + activations + the process's own ~20 MB. Where the reset is refused it is
//               getrusage's ru_maxrss (the peak since the process started).
//
// Modes:
//   bench_encoders [--threads=N] [benchmark flags]        Google Benchmark (default: no /heavy case)
//   bench_encoders --serve                                 line protocol for benchmarks/compare/
//       stdin: "threads N" | "precision fp32|bf16|int8" | "run CASE ITERS" | "release" | "quit";
//       stdout: one JSON line per command. "precision" rebuilds the encoder; inference cases run it
//       frozen at that precision (nn::freeze: fp32 packed, bf16, int8), training cases the trainable
//       fp32 encoder (refused at bf16 / int8)
//   bench_encoders --chart RESULTS.csv OUT.svg             bar chart of the bindery/PyTorch ratios
//   bench_encoders --whole-model[=BATCH]                   all six encoders alive, one forward each,
//       peak RSS against the weights (the "weights + 15%" goal)
//   bench_encoders --write-checkpoint=PATH                 the six huge encoders with fill_parameters'
//       weights as one fp32 ImageBind safetensors file (4.8 GB), for the next mode
//   bench_encoders --load-checkpoint=PATH [--precision=P] [--whole-model=BATCH]
//       ImageBindModel::from_checkpoint(PATH, huge, all six, P) (fp32, then frozen as bindery-embed
//       does; bf16, int8: converted as the file streams in, or a bf16 / int8 file as stored), one
//       forward each, peak RSS of the whole process (loading included, never reset) against the
//       weight bytes of the precision in use
//       (the CSV that benchmarks/compare/compare_cpu.py writes: columns case, threads, ratio)
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bindery/autograd/engine.hpp"
#include "bindery/backend/cpu.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/plot/plot.hpp"
#include "bindery/models/imagebind/encoder.hpp"
#include "bindery/models/imagebind/model.hpp"
#include "bindery/nn/lowp_io.hpp"
#include "bindery/nn/quantize.hpp"
#include "bindery/ops/arithmetic.hpp"
#include "bindery/ops/reduce.hpp"
#include "bindery/optim/adamw.hpp"
#include "huge_encoders.hpp"  // fill_parameters, make_input

namespace {

namespace ib = bindery::models::imagebind;
using bindery::Cpu;
using bindery::Philox;
using bindery::Shape;
using Tensor = bindery::Tensor<float, Cpu>;
using Var = bindery::Var<float, Cpu>;
using Encoder = ib::Encoder<float, Cpu>;
using bench_huge::fill_parameters;
using bench_huge::make_input;

// ---- FLOPs ------------------------------------------------------------------------------------

/// Multiply-adds x 2 of one forward pass of one sample through an encoder (fp32 FLOP):
///   stem   2 * P * (values per patch) * D      P patches: Conv3d/Conv2d/Linear as a GEMM; text: 0
///   blocks num_blocks * 2 * L * (4 D^2 + 2 Lk D + 2 D H)
///            4 D^2: q, k, v and out projections; 2 Lk D: Q K^T and P V over Lk keys (Lk = L + 1 with
///            add_bias_kv: bias_k / bias_v append one key); 2 D H: fc1 and fc2 (H = int(mlp_ratio D))
///   head   2 * D * out                          the pooled token's projection
/// L = tokens (patches + 1 cls token; text: 77). LayerNorm, softmax, GELU, adds, the position
/// embedding and the normalization are left out (O(L D) each, < 1% here).
inline double encoder_flop(const ib::EncoderConfig& c) {
  const double d = double(c.embed_dim), tokens = double(c.num_tokens());
  const double keys = tokens + (c.add_bias_kv ? 1.0 : 0.0);
  const double hidden = std::floor(c.mlp_ratio * d);
  double per_patch = 0.0;  // input values per patch
  switch (c.stem) {
    case ib::StemKind::kTokens:
      per_patch = 0.0;
      break;
    case ib::StemKind::kImuPatches:
      per_patch = double(c.imu_patch_values());
      break;
    case ib::StemKind::kVideoPatches:
    case ib::StemKind::kImagePatches: {
      per_patch = double(c.in_channels());
      for (int64_t k : c.kernel) per_patch *= double(k);
      break;
    }
  }
  const double stem = 2.0 * double(c.num_patches()) * per_patch * d;
  const double blocks =
      double(c.num_blocks) * 2.0 * tokens * (4.0 * d * d + 2.0 * keys * d + 2.0 * d * hidden);
  const double head = 2.0 * d * double(c.out_dim);
  return stem + blocks + head;
}

/// A training step counts 3x the forward (backward: the gradients of the inputs and of the
/// weights, each as much as the forward); AdamW (O(parameters)) is left out.
constexpr double kTrainFlopFactor = 3.0;

// ---- memory -----------------------------------------------------------------------------------

/// Resets the process's resident high-water mark (Linux >= 4.0: "5" to /proc/self/clear_refs).
inline bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return f.good();
}

/// The resident high-water mark in bytes: VmHWM (since the last reset), else ru_maxrss.
inline double peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return 1024.0 * std::stod(line.substr(6));  // "VmHWM:  123 kB"
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return 1024.0 * double(usage.ru_maxrss);
}

/// The current resident set in bytes (VmRSS).
inline double current_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return 1024.0 * std::stod(line.substr(6));
  }
  return 0.0;
}

// ---- cases ------------------------------------------------------------------------------------

struct Case {
  std::string name;  // encoder_fwd/audio/b8
  ib::Modality modality;
  int64_t batch;
  bool train;
  bool heavy;
};

inline std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (ib::Modality m : ib::kModalities) {
    const std::string modality = ib::modality_name(m);
    const bool vision = m == ib::Modality::kVision;
    for (int64_t batch : {int64_t(1), int64_t(8)}) {
      const bool heavy = vision && batch == 8;
      cases.push_back({"encoder_fwd/" + modality + "/b" + std::to_string(batch) + (heavy ? "/heavy" : ""), m,
                       batch, false, heavy});
    }
    if (vision || m == ib::Modality::kAudio || m == ib::Modality::kDepth || m == ib::Modality::kImu) {
      cases.push_back({"encoder_train/" + modality + "/b8" + (vision ? "/heavy" : ""), m, 8, true, vision});
    }
  }
  return cases;
}

/// The registered cases (a static list: Google Benchmark keeps pointers to them).
inline const std::vector<Case>& cases() {
  static const std::vector<Case> list = all_cases();
  return list;
}

inline const Case* find_case(const std::string& name) {
  for (const Case& c : cases()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// ---- the encoder under test -------------------------------------------------------------------

/// One encoder alive at a time: built on first use, kept for the following cases of the same
/// modality and kind (inference or training), dropped before another one is built. Inference cases
/// run it frozen at the precision asked (nn::freeze: fp32 packed, bf16 or int8), as bindery-embed
/// does; training cases run the trainable fp32 encoder.
struct Bench {
  ib::Modality modality = ib::Modality::kVision;
  bindery::nn::WeightPrecision precision = bindery::nn::WeightPrecision::kFloat32;
  std::shared_ptr<Encoder> encoder;
  bool frozen = false;
  double weight_bytes = 0.0;

  /// The weights of the encoders built from now on (the current one is dropped when it differs).
  void set_precision(bindery::nn::WeightPrecision p) {
    if (p != precision) encoder.reset();
    precision = p;
  }

  Encoder& get(ib::Modality m, bool train) {
    if (encoder && modality == m && frozen == !train) return *encoder;
    encoder.reset();
    {
      bindery::SkipRandomInit no_init;  // fill_parameters writes every parameter below
      encoder = ib::make_encoder<float, Cpu>(ib::ImageBindConfig::huge().at(m), 1);
    }
    fill_parameters(*encoder);
    modality = m;
    frozen = !train;
    weight_bytes = 0.0;
    for (const auto& [name, p] : encoder->named_parameters()) weight_bytes += 4.0 * double(p.numel());
    for (const auto& [name, b] : encoder->named_buffers()) weight_bytes += 4.0 * double(b.numel());
    if (frozen) {
      const bindery::nn::QuantizeReport q = bindery::nn::freeze(*encoder, precision);
      weight_bytes += double(q.bytes) - 4.0 * double(q.weights);
    }
    return *encoder;
  }
  void release() { encoder.reset(); }
};

inline Bench& bench() {
  static Bench b;
  return b;
}

/// Runs a case: `iterations` timed iterations after one untimed warm-up when `warm_up`. Returns
/// the seconds of each timed iteration.
class Runner {
 public:
  explicit Runner(const Case& c) : case_(c), config_(ib::ImageBindConfig::huge().at(c.modality)) {
    BINDERY_CHECK(!c.train || bench().precision == bindery::nn::WeightPrecision::kFloat32, ValueError,
                  "case '", c.name, "' trains: its weights must be fp32, not ", to_string(bench().precision));
    encoder_ = &bench().get(c.modality, c.train);
    input_ = make_input(config_, c.batch);
    if (c.train) {
      encoder_->train();
      Philox rng(13);
      target_ = Var(Tensor::normal({c.batch, config_.out_dim}, rng));
      optimizer_ = std::make_unique<bindery::optim::AdamW<float, Cpu>>(
          encoder_->parameters(), bindery::optim::AdamWOptions{.lr = 1e-5});
    } else {
      encoder_->eval();
    }
  }
  ~Runner() {
    if (case_.train) {
      encoder_->zero_grad();
      encoder_->eval();
    }
  }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// One iteration.
  void step() {
    if (!case_.train) {
      const bindery::NoGrad no_grad;
      const Var embedding = encoder_->encode(input_);  // (B, out)
      benchmark::DoNotOptimize(embedding.value().data());
      return;
    }
    optimizer_->zero_grad();
    const Var embedding = encoder_->encode(input_);           // (B, out)
    const Var loss = bindery::ops::sum(embedding * target_);  // ()
    loss.backward();
    optimizer_->step();
    benchmark::DoNotOptimize(loss.value().data());
  }

  double flop_per_iteration() const {
    return encoder_flop(config_) * double(case_.batch) * (case_.train ? kTrainFlopFactor : 1.0);
  }

 private:
  const Case& case_;
  ib::EncoderConfig config_;
  Encoder* encoder_ = nullptr;
  ib::ModalityInput<float, Cpu> input_;
  Var target_;
  std::unique_ptr<bindery::optim::AdamW<float, Cpu>> optimizer_;
};

void bm_encoder(benchmark::State& state, const Case* c) {
  Runner runner(*c);
  reset_peak_rss();
  runner.step();  // warm-up: first touch of the activation memory, AdamW's state
  for (auto _ : state) runner.step();
  state.counters["samples/s"] =
      benchmark::Counter(double(c->batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(runner.flop_per_iteration() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weights_MB"] = bench().weight_bytes / 1e6;
  state.counters["peak_RSS_MB"] = peak_rss_bytes() / 1e6;
}

// ---- --serve ------------------------------------------------------------------------------------

/// `text` as the contents of a JSON string.
inline std::string json_escape(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += (ch == '\n' || ch == '\t') ? ' ' : ch;
  }
  return out;
}

/// The line protocol of benchmarks/compare/compare_cpu.py: each command gets one JSON line.
inline int serve() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    try {
      if (command == "quit") {
        std::cout << "{\"ok\": true}" << std::endl;
        return 0;
      } else if (command == "threads") {
        int n = 1;
        in >> n;
        Cpu::set_num_threads(n);
        std::cout << "{\"ok\": true, \"threads\": " << Cpu::num_threads()
                  << ", \"rss_mb\": " << current_rss_bytes() / 1e6 << "}" << std::endl;
      } else if (command == "precision") {
        std::string name;
        in >> name;
        bench().set_precision(bindery::nn::parse_weight_precision(name));
        std::cout << "{\"ok\": true, \"precision\": \"" << to_string(bench().precision) << "\"}" << std::endl;
      } else if (command == "release") {
        bench().release();
        std::cout << "{\"ok\": true, \"rss_mb\": " << current_rss_bytes() / 1e6 << "}" << std::endl;
      } else if (command == "run") {
        std::string name;
        int iterations = 1;
        in >> name >> iterations;
        const Case* c = find_case(name);
        BINDERY_CHECK(c != nullptr, ValueError, "unknown case '", name, "'");
        Runner runner(*c);
        reset_peak_rss();
        std::ostringstream seconds;
        for (int i = 0; i < iterations; ++i) {
          const auto start = std::chrono::steady_clock::now();
          runner.step();
          const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
          seconds << (i ? ", " : "") << elapsed.count();
        }
        std::cout << "{\"ok\": true, \"case\": \"" << name << "\", \"seconds\": [" << seconds.str()
                  << "], \"gflop\": " << runner.flop_per_iteration() * 1e-9
                  << ", \"weights_mb\": " << bench().weight_bytes / 1e6
                  << ", \"peak_rss_mb\": " << peak_rss_bytes() / 1e6
                  << ", \"threads\": " << Cpu::num_threads() << "}" << std::endl;
      } else {
        std::cout << "{\"ok\": false, \"error\": \"unknown command '" << command << "'\"}" << std::endl;
      }
    } catch (const std::exception& e) {
      std::cout << "{\"ok\": false, \"error\": \"" << json_escape(e.what()) << "\"}" << std::endl;
    }
  }
  return 0;
}

// ---- --chart ------------------------------------------------------------------------------------

inline std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  return cells;
}

/// Reads compare_cpu.py's CSV (case, threads, ..., ratio, ...) and draws one group of bars per case,
/// one bar per thread count, with reference lines at parity (1.0) and the goal (1.3).
inline int chart(const std::string& csv_path, const std::string& svg_path) {
  std::ifstream csv(csv_path);
  BINDERY_CHECK(csv.good(), IoError, "bench_encoders --chart: cannot open '", csv_path, "'");
  std::string line;
  std::getline(csv, line);
  const std::vector<std::string> header = split_csv(line);
  auto column = [&](const std::string& name) {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return i;
    }
    throw bindery::ValueError(
        bindery::detail::concat("bench_encoders --chart: '", csv_path, "' has no column '", name, "'"));
  };
  const size_t case_col = column("case"), threads_col = column("threads"), ratio_col = column("ratio");
  std::vector<std::string> categories, thread_counts;
  std::map<std::pair<std::string, std::string>, double> ratios;
  while (std::getline(csv, line)) {
    const std::vector<std::string> cells = split_csv(line);
    if (cells.size() < header.size()) continue;
    // encoder_fwd/audio/b8 -> "audio b8"; encoder_train/audio/b8 -> "audio train b8"
    std::string label = cells[case_col];
    const bool train = label.rfind("encoder_train/", 0) == 0;
    label = label.substr(label.find('/') + 1);
    const size_t slash = label.find('/');
    label = label.substr(0, slash) + (train ? " train " : " ") + label.substr(slash + 1);
    if (const size_t heavy = label.find("/heavy"); heavy != std::string::npos) label.erase(heavy);
    if (std::find(categories.begin(), categories.end(), label) == categories.end())
      categories.push_back(label);
    const std::string& threads = cells[threads_col];
    if (std::find(thread_counts.begin(), thread_counts.end(), threads) == thread_counts.end())
      thread_counts.push_back(threads);
    ratios[{label, threads}] = std::stod(cells[ratio_col]);
  }
  std::vector<bindery::eval::BarSeries> series;
  for (const std::string& t : thread_counts) {
    bindery::eval::BarSeries s{.name = t + (t == "1" ? " thread" : " threads")};
    for (const std::string& c : categories) {
      const auto it = ratios.find({c, t});
      s.values.push_back(it == ratios.end() ? std::numeric_limits<double>::quiet_NaN() : it->second);
    }
    series.push_back(std::move(s));
  }
  const std::string svg = bindery::eval::bar_chart(
      categories, series, {{.label = "parity", .value = 1.0}, {.label = "goal 1.3", .value = 1.3}},
      {.title = "ImageBind huge encoders on the CPU: bindery / PyTorch speed (> 1: bindery faster)",
       .x_label = "encoder, batch",
       .y_label = "PyTorch time / bindery time",
       .width = 960.0});
  bindery::eval::save_svg(svg_path, svg);
  std::cout << "wrote " << svg_path << " (" << categories.size() << " cases, " << thread_counts.size()
            << " thread counts)\n";
  return 0;
}

}  // namespace

// ---- --whole-model -----------------------------------------------------------------------------

/// The memory goal on the whole model: all six huge encoders alive at once (4.8 GB of fp32
/// weights), one inference forward of each at `batch`, then the process's peak RSS against the
/// weights. Prints one line per modality and a summary; exit 0.
inline int whole_model(int64_t batch) {
  const double baseline = current_rss_bytes();
  std::vector<std::shared_ptr<Encoder>> encoders;
  double weight_bytes = 0.0;
  for (ib::Modality m : ib::kModalities) {
    {
      bindery::SkipRandomInit no_init;
      encoders.push_back(ib::make_encoder<float, Cpu>(ib::ImageBindConfig::huge().at(m), 1));
    }
    fill_parameters(*encoders.back());
    encoders.back()->eval();
    for (const auto& [name, p] : encoders.back()->named_parameters()) weight_bytes += 4.0 * double(p.numel());
    for (const auto& [name, b] : encoders.back()->named_buffers()) weight_bytes += 4.0 * double(b.numel());
  }
  reset_peak_rss();
  const double loaded = current_rss_bytes();
  std::cout << std::fixed << std::setprecision(1) << "whole model: weights " << weight_bytes / 1e6
            << " MB, process before building " << baseline / 1e6 << " MB, after " << loaded / 1e6 << " MB\n";
  for (size_t i = 0; i < encoders.size(); ++i) {
    const ib::EncoderConfig config = ib::ImageBindConfig::huge().at(ib::kModalities[i]);
    const auto input = make_input(config, batch);
    const auto start = std::chrono::steady_clock::now();
    {
      const bindery::NoGrad no_grad;
      const Var embedding = encoders[i]->encode(input);
      benchmark::DoNotOptimize(embedding.value().data());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "  " << ib::modality_name(ib::kModalities[i]) << " b" << batch << ": "
              << std::setprecision(2) << seconds << " s, peak RSS so far " << std::setprecision(1)
              << peak_rss_bytes() / 1e6 << " MB\n";
  }
  const double peak = peak_rss_bytes();
  std::cout << "peak RSS " << peak / 1e6 << " MB = weights + " << std::setprecision(2)
            << 100.0 * (peak - weight_bytes) / weight_bytes << "% (the whole process, libraries included)\n";
  return 0;
}

/// --write-checkpoint: the whole huge model with fill_parameters' weights, saved as safetensors.
inline int write_checkpoint(const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  std::shared_ptr<ib::ImageBindModel<float>> model;
  {
    bindery::SkipRandomInit no_init;
    model = std::make_shared<ib::ImageBindModel<float>>(ib::ImageBindConfig::huge());
  }
  for (ib::Modality m : ib::kModalities) fill_parameters(model->encoder(m));
  model->save(path);
  std::cout << "wrote " << path << " (" << model->num_parameters() << " parameters) in "
            << std::setprecision(3)
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
  return 0;
}

/// --load-checkpoint: loading included, the memory goal of issue 16 at each precision.
inline int load_checkpoint(const std::string& path, bindery::nn::WeightPrecision precision, int64_t batch) {
  const double baseline = current_rss_bytes();
  const auto start = std::chrono::steady_clock::now();
  const auto model =
      ib::ImageBindModel<float>::from_checkpoint(path, ib::ImageBindConfig::huge(), {}, precision);
  // As bindery-embed: a model loaded as fp32 is frozen for inference (its weights packed).
  if (!bindery::nn::has_frozen_weights(*model))
    bindery::nn::freeze(*model, bindery::nn::WeightPrecision::kFloat32);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Weight bytes as held: converted weights at their precision, every other tensor fp32.
  double weight_bytes = 0.0;
  std::string held = "fp32";
  for (const auto& [key, tensor] : model->state_dict()) weight_bytes += 4.0 * double(tensor.numel());
  for (const auto& [key, slot] : bindery::nn::lowp_slots(*model)) {
    for (const auto& block : slot.current()) {
      weight_bytes += double(block->bytes());
      held = bindery::nn::to_string(block->precision());
    }
  }
  const double loaded_peak = peak_rss_bytes();
  std::cout << std::fixed << std::setprecision(1) << "loaded " << path << " as " << held << " in "
            << std::setprecision(2) << load_seconds << " s: weights " << std::setprecision(1)
            << weight_bytes / 1e6 << " MB, process before loading " << baseline / 1e6
            << " MB, peak RSS after loading " << loaded_peak / 1e6 << " MB (" << std::setprecision(3)
            << loaded_peak / weight_bytes << "x the weights)\n";
  for (ib::Modality m : ib::kModalities) {
    const auto input = make_input(ib::ImageBindConfig::huge().at(m), batch);
    const auto t0 = std::chrono::steady_clock::now();
    {
      const bindery::NoGrad no_grad;
      const Var embedding = model->encode(m, input);
      benchmark::DoNotOptimize(embedding.value().data());
    }
    std::cout << "  " << ib::modality_name(m) << " b" << batch << ": " << std::setprecision(2)
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
              << " s, peak RSS so far " << std::setprecision(1) << peak_rss_bytes() / 1e6 << " MB\n";
  }
  const double peak = peak_rss_bytes();
  std::cout << "peak RSS " << peak / 1e6 << " MB = " << std::setprecision(3) << peak / weight_bytes
            << "x the " << held << " weights (the whole process since it started: loading, libraries, "
            << "one forward of each encoder)\n";
  return 0;
}

int main(int argc, char** argv) {
  // Own flags first (Google Benchmark rejects flags it does not know).
  std::vector<char*> args{argv[0]};
  bool has_filter = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--serve") return serve();
    if (arg.rfind("--write-checkpoint=", 0) == 0) return write_checkpoint(arg.substr(19));
    if (arg.rfind("--load-checkpoint=", 0) == 0) {
      bindery::nn::WeightPrecision precision = bindery::nn::WeightPrecision::kFloat32;
      int64_t batch = 1;
      for (int j = 1; j < argc; ++j) {
        const std::string other = argv[j];
        if (other.rfind("--precision=", 0) == 0)
          precision = bindery::nn::parse_weight_precision(other.substr(12));
        if (other.rfind("--whole-model=", 0) == 0) batch = std::stoll(other.substr(14));
        if (other.rfind("--threads=", 0) == 0) Cpu::set_num_threads(std::stoi(other.substr(10)));
      }
      return load_checkpoint(arg.substr(18), precision, batch);
    }
    if (arg.rfind("--whole-model", 0) == 0) {  // --whole-model or --whole-model=BATCH
      return whole_model(arg.size() > 14 ? std::stoll(arg.substr(14)) : 1);
    }
    if (arg == "--chart") {
      if (i + 2 >= argc) {
        std::cerr << "usage: bench_encoders --chart RESULTS.csv OUT.svg\n";
        return 2;
      }
      return chart(argv[i + 1], argv[i + 2]);
    }
    if (arg.rfind("--threads=", 0) == 0) {
      Cpu::set_num_threads(std::stoi(arg.substr(10)));
      continue;
    }
    has_filter = has_filter || arg.rfind("--benchmark_filter", 0) == 0;
    args.push_back(argv[i]);
  }
  static char default_filter[] = "--benchmark_filter=-/heavy";  // heavy cases are opt-in
  if (!has_filter) args.push_back(default_filter);
  int count = static_cast<int>(args.size());

  for (const Case& c : cases()) {
    benchmark::RegisterBenchmark(c.name.c_str(), bm_encoder, &c)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond)
        ->MinTime(c.train || c.batch > 1 ? 0.01 : 0.5);  // one iteration is enough above ~1 s
  }
  benchmark::AddCustomContext("openmp_threads", std::to_string(Cpu::num_threads()));
  benchmark::AddCustomContext("rss_baseline_MB", std::to_string(current_rss_bytes() / 1e6));
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
