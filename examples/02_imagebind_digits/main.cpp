// examples/02_imagebind_digits — train an ImageBind in C++ and watch zero-shot emerge.
//
// The built-in data (no download): a digit written by hand, seen by six sensors at once — image,
// depth, thermal, IMU, audio and a caption all come from one pen trajectory
// (include/bindery/datasets/synth_digits.hpp). Stage 1 aligns images with captions (CLIP); stage 2 binds
// audio, depth, thermal and IMU to the frozen image space, each with its own paired data only. Then
// each bound modality is classified from text prompts it never saw in training (chance 10%), next to
// a supervised classifier of the same size.
//
//   ./02_imagebind_digits [--out DIR] [--threads 2] [--seed 1] [--resume]
//   ./02_imagebind_digits --mnist DIR --fsdd DIR [--held-out theo,yweweler]   # real data
//   ./02_imagebind_digits --scaling                                              # Figure 6
//   mpirun -np 2 ./02_imagebind_digits --threads 1   # data-parallel over 2 processes (same global batch)
//
// Writes into the output folder: report.md (tables), results.json, metrics.jsonl, plots/*.svg,
// checkpoints/ (resumable), model.safetensors + config.json (an ImageBind checkpoint bindery-embed
// loads), and a contact sheet of the built-in data.
#include <CLI/CLI.hpp>

#include <bindery/datasets/fsdd.hpp>
#include <bindery/datasets/mnist.hpp>
#include <bindery/datasets/synth_digits.hpp>
#include <bindery/dist/init.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <set>
#include <sstream>

#include "../common/fsdd_inputs.hpp"
#include "recipe.hpp"
#include "report.hpp"

using namespace digits;
namespace fs = std::filesystem;

namespace {

constexpr std::array<Modality, 4> kBound = {Modality::kAudio, Modality::kDepth, Modality::kThermal,
                                            Modality::kImu};

Dataset synthetic_dataset(const data::synth::SynthConfig& config, int64_t n_train, int64_t n_test) {
  Dataset d;
  d.name = "built-in six-sensor digits";
  const auto train = data::synth::make_batch(config, 0, n_train);
  const auto test = data::synth::make_batch(config, n_train, n_test);
  auto labels = [](const Tensor<int64_t>& l) { return l.to_vector(); };
  d.images = train.image;
  d.captions = train.captions;
  d.image_labels = labels(train.labels);
  d.test_images = test.image;
  d.test_image_labels = labels(test.labels);
  d.test_image_inks = test.inks;
  for (int64_t c = 0; c < data::synth::num_inks(); ++c) d.ink_names.push_back(data::synth::ink_name(c));
  auto add = [&](Modality m, const TensorT& tr, const TensorT& te) {
    d.train[m] = {tr, d.image_labels, iota(n_train)};
    d.test[m] = {te, d.test_image_labels, iota(n_test)};
  };
  add(Modality::kAudio, train.audio, test.audio);
  add(Modality::kDepth, train.depth, test.depth);
  add(Modality::kThermal, train.thermal, test.thermal);
  add(Modality::kImu, train.imu, test.imu);
  return d;
}

/// Captions for real images: a template per sample, chosen by a Philox stream.
std::vector<std::string> captions_for(const std::vector<int64_t>& labels, uint64_t seed) {
  static const std::vector<std::string> templates = {
      "a handwritten {}", "the digit {}",       "a scan of the number {}",        "a {} written with a pen",
      "the number {}",    "someone wrote a {}", "a black and white photo of a {}"};
  Philox rng(seed);
  std::vector<std::string> out;
  for (int64_t y : labels)
    out.push_back(eval::fill_template(templates[rng.next_below(templates.size())],
                                      kClassNames[static_cast<size_t>(y)]));
  return out;
}

Dataset real_dataset(const std::string& mnist_dir, const std::string& fsdd_dir,
                     const std::set<std::string>& held_out, uint64_t seed) {
  Dataset d;
  d.name = "MNIST + FSDD";
  // The training split when the folder has it, else the 10,000 test images (split 80/20 below).
  data::MnistSet mnist;
  try {
    mnist = data::load_mnist(mnist_dir, "train");
  } catch (const Error&) {
    mnist = data::load_mnist(mnist_dir, "t10k");
  }
  const int64_t n = mnist.size();
  const int64_t n_test = std::max<int64_t>(n / 5, 1), n_train = n - n_test;
  const TensorT images = data::mnist_images<T>(mnist.images, {.size = 32, .channels = 3});
  const std::vector<int64_t>& labels = mnist.labels;
  d.images = rows_of(images, iota(n_train));
  d.image_labels.assign(labels.begin(), labels.begin() + n_train);
  Indices test_idx(static_cast<size_t>(n_test));
  std::iota(test_idx.begin(), test_idx.end(), n_train);
  d.test_images = rows_of(images, test_idx);
  d.test_image_labels.assign(labels.begin() + n_train, labels.end());
  d.captions = captions_for(d.image_labels, seed);

  const auto recordings = data::list_fsdd(fsdd_dir);
  const data::FsddSplit split = data::split_by_speaker(recordings, {held_out.begin(), held_out.end()});
  const auto& train_rec = split.train;
  const auto& test_rec = split.test;
  BINDERY_CHECK(!train_rec.empty() && !test_rec.empty(), ValueError, "--held-out: ", held_out.size(),
                " speakers leave ", train_rec.size(), " training and ", test_rec.size(), " test recordings");
  // Each training recording is paired with a training image of the same digit: a fixed one in
  // image_row (for the record), a fresh one each step in training (pair_by_label).
  std::vector<std::vector<int64_t>> by_digit(10);
  for (int64_t i = 0; i < n_train; ++i)
    by_digit[static_cast<size_t>(d.image_labels[static_cast<size_t>(i)])].push_back(i);
  Philox rng(seed ^ 0xf5dd);
  BoundSet train, test;
  train.values = digits_run::fsdd_cmvn_inputs(train_rec);
  test.values = digits_run::fsdd_cmvn_inputs(test_rec);
  train.pair_by_label = true;
  train.max_time_shift = 8;
  for (const auto& r : train_rec) {
    train.labels.push_back(r.digit);
    const auto& pool = by_digit[static_cast<size_t>(r.digit)];
    train.image_row.push_back(pool[rng.next_below(pool.size())]);
  }
  for (const auto& r : test_rec) test.labels.push_back(r.digit);
  d.train[Modality::kAudio] = std::move(train);
  d.test[Modality::kAudio] = std::move(test);
  return d;
}

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", std::localtime(&now));
  return buf;
}

/// Everything the command line sets.
struct CommandLine {
  RecipeOptions o;
  std::string out_dir, mnist_dir, fsdd_dir, held_out_list = "theo,yweweler";
  int threads = 2;
  int64_t n_train = 6000, n_test = 1000;
  double noise = 1.0;
  bool scaling = false, quick = false;
  std::vector<int64_t> seeds;
  double require = 0.0;
};

void add_options(CLI::App& app, CommandLine& c) {
  RecipeOptions& o = c.o;
  app.add_option("--out", c.out_dir, "output folder (default: runs/digits-<time>)");
  app.add_option("--threads", c.threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "seed of the data, the init and the batches");
  app.add_option("--seeds", c.seeds, "several seeds: run the recipe once per seed and report the spread");
  app.add_option("--train", c.n_train, "built-in data: training samples")->check(CLI::Range(256, 1000000));
  app.add_option("--test", c.n_test, "built-in data: test samples")->check(CLI::Range(10, 1000000));
  app.add_option("--noise", c.noise, "built-in data: nuisance noise scale");
  app.add_option("--stage1-steps", o.stage1_steps, "steps of stage 1 (image-text)")
      ->check(CLI::PositiveNumber);
  app.add_option("--stage2-steps", o.stage2_steps, "steps of stage 2 (binding)")->check(CLI::PositiveNumber);
  app.add_option("--supervised-steps", o.supervised_steps, "steps of the supervised references")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch", o.batch, "pairs per step and task")->check(CLI::Range(2, 4096));
  app.add_option("--lr", o.lr, "peak learning rate")->check(CLI::PositiveNumber);
  app.add_option("--width", o.other.width, "width of the encoders (vision: --vision-width)");
  app.add_option("--vision-width", o.vision.width, "width of the image encoder");
  app.add_option("--vision-blocks", o.vision.blocks, "blocks of the image encoder");
  app.add_option("--audio-kernel", o.audio_kernel,
                 "audio patch size: mel bins, frames (default: a quarter of each)")
      ->expected(2);
  app.add_option("--eval-every", o.eval_every, "steps between evaluations")->check(CLI::PositiveNumber);
  app.add_option("--checkpoint-every", o.checkpoint_every, "steps between checkpoints")
      ->check(CLI::PositiveNumber);
  app.add_option("--precision", o.precision,
                 "GEMM precision of training: fp32, bf16 (autocast) or fp16 (autocast + loss scaling)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, Precision>{
          {"fp32", Precision::kFloat32}, {"bf16", Precision::kBFloat16}, {"fp16", Precision::kFloat16}}));
  app.add_flag("--resume", o.resume, "continue from the checkpoints in --out");
  app.add_flag("!--no-supervised", o.supervised, "skip the supervised references");
  app.add_flag("!--no-progress", o.progress, "no progress bars");
  app.add_option("--mnist", c.mnist_dir, "real data: folder with MNIST IDX files (train-* or t10k-*)");
  app.add_option("--fsdd", c.fsdd_dir, "real data: the Free Spoken Digit Dataset's recordings folder");
  app.add_option("--held-out", c.held_out_list, "real data: comma-separated FSDD speakers kept for the test");
  app.add_flag("--scaling", c.scaling, "repeat stages 1+2 with image encoders of growing size (Figure 6)");
  app.add_flag("--quick", c.quick, "a small, fast run (tests)");
  app.add_option("--require", c.require, "exit 1 unless every bound modality's zero-shot top-1 reaches this");
}

/// --quick's small defaults (options given explicitly win), real data's audio patches, the output
/// folder and the seed list.
void settle_defaults(const CLI::App& app, CommandLine& c) {
  RecipeOptions& o = c.o;
  if (c.quick) {
    auto set = [&app](const char* name, auto& value, auto quick_value) {
      if (app.count(name) == 0) value = quick_value;
    };
    set("--train", c.n_train, 1024);
    set("--test", c.n_test, 200);
    set("--stage1-steps", o.stage1_steps, 40);
    set("--stage2-steps", o.stage2_steps, 40);
    set("--supervised-steps", o.supervised_steps, 40);
    set("--batch", o.batch, 64);
    set("--eval-every", o.eval_every, 20);
  }
  // Real speech: full-band patches of 4 frames (16 time tokens) generalize across speakers far
  // better than 8 x 16 tiles (held-out zero-shot 83% vs 57% in our runs; docs/training.md).
  if (!c.mnist_dir.empty() && o.audio_kernel.empty()) o.audio_kernel = {32, 4};
  if (c.out_dir.empty()) c.out_dir = "runs/digits-" + timestamp();
  o.out_dir = c.out_dir;
  if (c.seeds.empty()) c.seeds.push_back(static_cast<int64_t>(o.seed));
}

/// The built-in six-sensor data, or MNIST + FSDD; writes the built-in data's contact sheet.
Dataset load_dataset(const CommandLine& c) {
  std::set<std::string> held_out;
  std::stringstream ss(c.held_out_list);
  for (std::string s; std::getline(ss, s, ',');)
    if (!s.empty()) held_out.insert(s);
  data::synth::SynthConfig synth;
  synth.seed = c.o.seed;
  synth.noise = c.noise;
  std::fprintf(stderr, "generating data...\n");
  Dataset data = c.mnist_dir.empty() ? synthetic_dataset(synth, c.n_train, c.n_test)
                                     : real_dataset(c.mnist_dir, c.fsdd_dir, held_out, c.o.seed);
  if (c.mnist_dir.empty() && c.o.group->rank() == 0)
    data::synth::write_contact_sheet(c.out_dir + "/plots/data.png", synth, c.n_train, 8);
  return data;
}

/// --scaling: stages 1 + 2 with image encoders of growing size (the paper's Figure 6).
void run_scaling(const Dataset& data, const CommandLine& c, Report& report) {
  const std::vector<EncoderSize> sizes = {{16, 1, 2}, {32, 1, 2}, {64, 2, 4}, {96, 3, 4}};
  for (const EncoderSize& size : sizes) {
    RecipeOptions so = c.o;
    so.vision = size;
    so.supervised = false;
    so.out_dir = c.out_dir + "/scaling-w" + std::to_string(size.width) + "-d" + std::to_string(size.blocks);
    fs::create_directories(so.out_dir);
    std::fprintf(stderr, "== image encoder width %lld, %lld blocks\n", static_cast<long long>(size.width),
                 static_cast<long long>(size.blocks));
    Recipe recipe(data, so);
    const RecipeResult result = recipe.run();
    if (c.o.group->rank() == 0) report.add_scaling_point(size, result);
  }
  if (c.o.group->rank() == 0) report.write_scaling();
}

/// The recipe once per seed; the first run's model is saved.
std::vector<RecipeResult> run_seeds(const Dataset& data, const CommandLine& c, Report& report) {
  std::vector<RecipeResult> runs;
  for (int64_t seed : c.seeds) {
    RecipeOptions so = c.o;
    so.seed = static_cast<uint64_t>(seed);
    if (c.seeds.size() > 1) so.out_dir = c.out_dir + "/seed-" + std::to_string(seed);
    fs::create_directories(so.out_dir);
    Recipe recipe(data, so);
    runs.push_back(recipe.run());
    if (runs.size() == 1 && c.o.group->rank() == 0) report.save_model(recipe, runs.back());
  }
  return runs;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CommandLine c;
  CLI::App app{"Train an ImageBind on digits seen by six sensors; measure emergent zero-shot"};
  add_options(app, c);
  CLI11_PARSE(app, argc, argv);
  if (c.mnist_dir.empty() != c.fsdd_dir.empty()) {
    std::fprintf(stderr, "02_imagebind_digits: --mnist and --fsdd go together\n");
    return 2;
  }
  settle_defaults(app, c);
  Cpu::set_num_threads(c.threads);
  fs::create_directories(c.out_dir + "/plots");
  try {
    // Under mpirun: one process per rank, every stage data-parallel at the same global batch;
    // rank 0 writes the report, the model and the checkpoints (docs/distributed.md).
    c.o.group = dist::init();
    const bool lead = c.o.group->rank() == 0;
    if (c.o.group->size() > 1 && lead)
      std::fprintf(stderr, "%d ranks (%s), global batch %lld (%lld per rank)\n", c.o.group->size(),
                   c.o.group->engine(), static_cast<long long>(c.o.batch),
                   static_cast<long long>(c.o.batch / c.o.group->size()));
    if (!lead) c.o.progress = false;
    const auto t0 = std::chrono::steady_clock::now();
    const Dataset data = load_dataset(c);
    const double data_seconds = seconds_since(t0);
    std::fprintf(stderr, "%s: %lld image-caption pairs, %lld test images, %.1f s\n", data.name.c_str(),
                 static_cast<long long>(data.images.shape()[0]),
                 static_cast<long long>(data.test_images.shape()[0]), data_seconds);
    Report report(c.out_dir, data, c.threads, data_seconds);
    if (c.scaling) {
      run_scaling(data, c, report);
      return 0;
    }
    const std::vector<RecipeResult> runs = run_seeds(data, c, report);
    if (!lead) return 0;  // the same numbers as rank 0's: the replicas are identical
    const bool ok = report.write(runs, seconds_since(t0), c.require);
    std::printf("\nwrote %s/report.md, results.json, plots/*.svg, model.safetensors\n", c.out_dir.c_str());
    return ok ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "02_imagebind_digits: %s\n", e.what());
    return 2;
  }
}
