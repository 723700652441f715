// examples/09_generation — images generated from sounds, depth, heat and motion (the ImageBind paper's
// Figure 1, where DALLE-2's image decoder was driven by audio embeddings), in miniature.
//
// The model: the digits ImageBind that 02_imagebind_digits trained and saved (model.safetensors +
// config.json + vocab.txt). Everything of it stays frozen. Three small networks are trained here, on
// the training split only:
//   decoder     normalized image embedding (64) -> MLP -> 3 x 32 x 32 image in [0, 1] (sigmoid), L2
//               to the real image: unCLIP's decoder in miniature. Its input embedding is noised and
//               renormalized in training (unCLIP's conditioning augmentation), so that it also draws
//               from embeddings near, not on, the image embeddings it saw — those of other modalities.
//   prior       normalized caption embedding -> MLP -> normalized image embedding, cosine loss on the
//               (caption, image) pairs: DALLE-2's prior in miniature, trained on text and images only.
//   classifier  a small CNN on real training images with a digit head and an ink-colour head: the
//               judge of what each generated image shows (its accuracy on real test images is
//               reported).
// Then the held-out samples of every bound modality (audio, depth, thermal, IMU — the decoder and the
// prior never saw these modalities) are embedded by their frozen encoders and drawn (a) by the decoder
// directly and (b) through the prior, fed the sample's embedding where it expects a caption's, as the
// paper fed sounds to DALLE-2. Captions and the test images' own embeddings are reference rows.
// Arithmetic: normalize(sound + text("written in <colour> ink")) drawn both ways: does the image show
// the sound's digit, the asked colour, both?
//
//   ./02_imagebind_digits --out runs/digits            # once: trains and saves the joint space
//   ./09_generation --run runs/digits [--out DIR] [--threads 2]
//   ./09_generation --run runs/digits --quick --require 0.8   # the CTest: smaller, exit 1 below 80%
//
// Writes into --out (default <run>/generation): report.md, results.json, contact_sheet.png.
#include <CLI/CLI.hpp>

#include <bindery/bindery.hpp>
#include <bindery/data/stb_image_write.hpp>
#include <bindery/datasets/synth_digits.hpp>
#include <bindery/eval/zero_shot.hpp>
#include <bindery/models/imagebind/model.hpp>
#include <bindery/nn/conv.hpp>
#include <bindery/nn/linear.hpp>
#include <bindery/ops/index.hpp>
#include <bindery/optim/adamw.hpp>
#include <bindery/train/trainer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <sstream>

#include "../common/digits_run.hpp"

using namespace bindery;
namespace ib = bindery::models::imagebind;
namespace synth = bindery::data::synth;
using ib::Modality;
using T = float;
using Device = Cpu;
using TensorT = Tensor<T, Device>;
using VarT = Var<T, Device>;
using Ids = Tensor<int64_t, Device>;
using Indices = std::vector<int64_t>;

namespace {

struct Options {
  std::string run, out;
  int threads = 1;
  bool quick = false;
  int64_t n_train = 6000, n_test = 1000;  // 02's split: train = samples [0, n_train), test the next n_test
  int64_t pool = 6000;                    // the networks here train on the first `pool` training samples
  uint64_t seed = 1;                      // 02's --seed (the data)
  uint64_t init_seed = 9;                 // the networks' initializations and minibatches
  int64_t batch = 128;
  int64_t decoder_steps = 1500, prior_steps = 600, classifier_steps = 500;
  double decoder_lr = 2e-3, prior_lr = 2e-3, classifier_lr = 3e-3;
  double augment = 0.5;         // conditioning augmentation: |noise| relative to the unit embedding
  bool compare_augment = true;  // also train a decoder without it and report both
  int64_t arithmetic = 600;     // test sounds asked with a colour
  double require = -1;          // share of audio images showing the sound's digit; < 0: no requirement
  bool progress = true;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class X>
Tensor<X, Device> rows_of(const Tensor<X, Device>& x, const Indices& idx) {
  return ops::index_select_forward(x, 0, Ids::from_vector(idx));
}

Indices iota(int64_t first, int64_t n) {
  Indices idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = first + i;
  return idx;
}

/// f(rows) over 0..n-1 in batches under NoGrad, stacked along axis 0 (any trailing shape).
template <class F>
TensorT batched(int64_t n, int64_t batch, F f) {
  NoGrad no_grad;
  std::vector<T> values;
  Shape shape;
  for (int64_t first = 0; first < n; first += batch) {
    const TensorT y = f(iota(first, std::min(batch, n - first))).contiguous();
    shape = y.shape();
    const std::vector<T> host = y.to_vector();
    values.insert(values.end(), host.begin(), host.end());
  }
  std::vector<int64_t> dims(shape.begin(), shape.end());
  if (dims.empty()) return TensorT::zeros({0});
  dims[0] = n;
  return TensorT::from_vector(values, Shape(dims));
}

/// Unit rows: x / |x| along the last axis.
TensorT unit(const TensorT& x) {
  return ops::l2_normalize_forward(x, -1);
}

/// The decoder: unit embedding -> image (N, 3, S, S) in [0, 1].
struct Decoder : nn::Module<T, Device> {
  Decoder(int64_t dim, int64_t side, uint64_t seed) : side_(side) {
    using L = nn::Linear<T, Device>;
    fc1 = register_module("fc1", std::make_shared<L>(dim, 512, nn::LinearOptions{.seed = seed}));
    fc2 = register_module("fc2", std::make_shared<L>(512, 1024, nn::LinearOptions{.seed = seed + 1}));
    fc3 = register_module("fc3",
                          std::make_shared<L>(1024, 3 * side * side, nn::LinearOptions{.seed = seed + 2}));
  }
  VarT forward(const VarT& e) {
    const VarT h = ops::gelu(fc2->forward(ops::gelu(fc1->forward(e))));
    return ops::reshape(ops::sigmoid(fc3->forward(h)), {e.shape()[0], 3, side_, side_});
  }
  int64_t side_;
  std::shared_ptr<nn::Linear<T, Device>> fc1, fc2, fc3;
};

/// The prior: unit text embedding -> unit image embedding.
struct Prior : nn::Module<T, Device> {
  Prior(int64_t dim, uint64_t seed) {
    using L = nn::Linear<T, Device>;
    fc1 = register_module("fc1", std::make_shared<L>(dim, 256, nn::LinearOptions{.seed = seed}));
    fc2 = register_module("fc2", std::make_shared<L>(256, 256, nn::LinearOptions{.seed = seed + 1}));
    fc3 = register_module("fc3", std::make_shared<L>(256, dim, nn::LinearOptions{.seed = seed + 2}));
  }
  VarT forward(const VarT& t) {
    return ops::l2_normalize(fc3->forward(ops::gelu(fc2->forward(ops::gelu(fc1->forward(t))))), -1);
  }
  std::shared_ptr<nn::Linear<T, Device>> fc1, fc2, fc3;
};

/// The judge: a small CNN on normalized images with a digit head and an ink-colour head.
struct Classifier : nn::Module<T, Device> {
  Classifier(int64_t side, int64_t inks, uint64_t seed) {
    using C = nn::Conv2d<T, Device>;
    using L = nn::Linear<T, Device>;
    conv1 = register_module(
        "conv1", std::make_shared<C>(3, 16, nn::ConvOptions<2>{{5, 5}, {2, 2}, {2, 2}, true, seed}));
    conv2 = register_module(
        "conv2", std::make_shared<C>(16, 32, nn::ConvOptions<2>{{3, 3}, {2, 2}, {1, 1}, true, seed + 1}));
    fc = register_module(
        "fc", std::make_shared<L>(32 * (side / 4) * (side / 4), 64, nn::LinearOptions{.seed = seed + 2}));
    digit = register_module("digit", std::make_shared<L>(64, 10, nn::LinearOptions{.seed = seed + 3}));
    ink = register_module("ink", std::make_shared<L>(64, inks, nn::LinearOptions{.seed = seed + 4}));
  }
  std::pair<VarT, VarT> forward(const VarT& x) {
    const VarT h = ops::gelu(conv2->forward(ops::gelu(conv1->forward(x))));
    const VarT f = ops::gelu(fc->forward(ops::flatten(h, 1)));
    return {digit->forward(f), ink->forward(f)};
  }
  std::shared_ptr<nn::Conv2d<T, Device>> conv1, conv2;
  std::shared_ptr<nn::Linear<T, Device>> fc, digit, ink;
};

/// Minibatch AdamW with linear warm-up and cosine decay: `loss(indices)` on `batch` rows drawn from
/// [0, n) (a Philox stream keyed by `seed`), `steps` times. Prints progress every tenth of the run.
template <class Loss>
double fit(const char* label, const std::vector<VarT>& params, int64_t n, int64_t steps, int64_t batch,
           double lr, double weight_decay, uint64_t seed, bool progress, Loss loss) {
  const auto t0 = std::chrono::steady_clock::now();
  optim::AdamW<T, Device> opt(params, {.lr = lr, .weight_decay = weight_decay});
  Philox rng(seed);
  const int64_t warmup = std::max<int64_t>(1, steps / 20);
  double last = 0, running = 0;
  for (int64_t s = 0; s < steps; ++s) {
    const double f = s < warmup
                         ? static_cast<double>(s + 1) / static_cast<double>(warmup)
                         : 0.5 * (1 + std::cos(std::numbers::pi * static_cast<double>(s - warmup) /
                                               static_cast<double>(std::max<int64_t>(1, steps - warmup))));
    opt.set_lr(lr * std::max(f, 0.02));
    Indices idx(static_cast<size_t>(std::min(batch, n)));
    for (int64_t& i : idx) i = static_cast<int64_t>(rng.next_below(static_cast<uint64_t>(n)));
    opt.zero_grad();
    VarT l = loss(idx, s);
    l.backward();
    opt.step();
    last = static_cast<double>(l.value().to_vector()[0]);
    running = s == 0 ? last : 0.95 * running + 0.05 * last;
    if (progress && ((s + 1) % std::max<int64_t>(1, steps / 10) == 0 || s + 1 == steps)) {
      std::fprintf(stderr, "  %s: step %lld/%lld, loss %.4f (%.1f s)\n", label, static_cast<long long>(s + 1),
                   static_cast<long long>(steps), running, seconds_since(t0));
    }
  }
  return running;
}

/// Images in [0, 1] -> the classifier's input normalization (the data's constants).
TensorT normalize_images(const TensorT& x01) {
  TensorT y = x01.contiguous().clone();
  const int64_t n = y.shape()[0], pixels = y.shape()[2] * y.shape()[3];
  T* v = y.data();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < pixels; ++p) {
        T& u = v[(i * 3 + c) * pixels + p];
        u = static_cast<T>((u - synth::kImageMean[static_cast<size_t>(c)]) /
                           synth::kImageStd[static_cast<size_t>(c)]);
      }
  return y;
}

/// Normalized data images -> [0, 1] (clamped): the decoder's targets.
TensorT unnormalize_images(const TensorT& x) {
  TensorT y = x.contiguous().clone();
  const int64_t n = y.shape()[0], pixels = y.shape()[2] * y.shape()[3];
  T* v = y.data();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < pixels; ++p) {
        T& u = v[(i * 3 + c) * pixels + p];
        u = std::clamp(static_cast<T>(u * synth::kImageStd[static_cast<size_t>(c)] +
                                      synth::kImageMean[static_cast<size_t>(c)]),
                       T(0), T(1));
      }
  return y;
}

int64_t argmax_row(const T* v, int64_t n) {
  return static_cast<int64_t>(std::max_element(v, v + n) - v);
}

/// What the classifier sees in each of a batch of normalized images: (digits, inks).
std::pair<Indices, Indices> judge(Classifier& c, const TensorT& images) {
  const int64_t n = images.shape()[0];
  Indices digits, inks;
  NoGrad no_grad;
  for (int64_t first = 0; first < n; first += 250) {
    const auto [d, k] = c.forward(VarT(rows_of(images, iota(first, std::min<int64_t>(250, n - first)))));
    const std::vector<T> dv = d.value().contiguous().to_vector(), kv = k.value().contiguous().to_vector();
    const int64_t rows = d.shape()[0], nd = d.shape()[1], nk = k.shape()[1];
    for (int64_t r = 0; r < rows; ++r) {
      digits.push_back(argmax_row(dv.data() + r * nd, nd));
      inks.push_back(argmax_row(kv.data() + r * nk, nk));
    }
  }
  return {digits, inks};
}

double share(const Indices& a, const Indices& b) {
  int64_t hits = 0;
  for (size_t i = 0; i < a.size(); ++i) hits += a[i] == b[i];
  return a.empty() ? 0.0 : static_cast<double>(hits) / static_cast<double>(a.size());
}

/// Mean cosine of matching rows of two unit-row tensors.
double mean_cosine(const TensorT& a, const TensorT& b) {
  const std::vector<T> av = a.contiguous().to_vector(), bv = b.contiguous().to_vector();
  const int64_t n = a.shape()[0], d = a.shape()[1];
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j)
      sum += static_cast<double>(av[static_cast<size_t>(i * d + j)]) * bv[static_cast<size_t>(i * d + j)];
  return sum / static_cast<double>(std::max<int64_t>(n, 1));
}

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100 * v);
  return buf;
}

// ---- the contact sheet ------------------------------------------------------------------------

struct Canvas {
  int64_t width, height;
  std::vector<uint8_t> rgb;
  Canvas(int64_t w, int64_t h) : width(w), height(h), rgb(static_cast<size_t>(w * h * 3), 40) {}
  void put(int64_t x, int64_t y, double r, double g, double b) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    uint8_t* p = rgb.data() + (y * width + x) * 3;
    p[0] = static_cast<uint8_t>(std::clamp(r, 0.0, 1.0) * 255.0 + 0.5);
    p[1] = static_cast<uint8_t>(std::clamp(g, 0.0, 1.0) * 255.0 + 0.5);
    p[2] = static_cast<uint8_t>(std::clamp(b, 0.0, 1.0) * 255.0 + 0.5);
  }
  /// `s` in light grey, or in dark grey over light pixels (`dark`).
  void text(int64_t x, int64_t y, const std::string& s, bool dark = false) {
    const uint8_t light[3] = {230, 230, 230}, grey[3] = {40, 40, 40};
    data::detail::draw_text_rgb(rgb, width, height, x, y, s, dark ? grey : light);
  }
  /// An RGB image (3, S, S) in [0, 1] scaled to `cell` pixels.
  void image(const T* v, int64_t side, int64_t x0, int64_t y0, int64_t cell) {
    for (int64_t y = 0; y < cell; ++y)
      for (int64_t x = 0; x < cell; ++x) {
        const int64_t p = (y * side / cell) * side + x * side / cell;
        put(x0 + x, y0 + y, v[p], v[side * side + p], v[2 * side * side + p]);
      }
  }
  /// A map (h, w), min-max scaled into a cell: grey (near = bright, `invert`) or hot colours.
  void map(const T* v, int64_t h, int64_t w, int64_t x0, int64_t y0, int64_t cell, bool hot, bool flip) {
    const auto [lo, hi] = std::minmax_element(v, v + h * w);
    const double range = std::max(1e-6, static_cast<double>(*hi - *lo));
    for (int64_t y = 0; y < cell; ++y)
      for (int64_t x = 0; x < cell; ++x) {
        const int64_t row = flip ? h - 1 - y * h / cell : y * h / cell;
        const double u = (v[row * w + x * w / cell] - *lo) / range;
        if (hot)
          put(x0 + x, y0 + y, std::clamp(3 * u, 0.0, 1.0), std::clamp(3 * u - 1, 0.0, 1.0),
              std::clamp(3 * u - 2, 0.0, 1.0));
        else
          put(x0 + x, y0 + y, 1 - u, 1 - u, 1 - u);
      }
  }
  /// Six IMU channels (6, steps) as lines on white, values clamped to [-4, 4].
  void imu(const T* v, int64_t steps, int64_t x0, int64_t y0, int64_t cell) {
    for (int64_t y = 0; y < cell; ++y)
      for (int64_t x = 0; x < cell; ++x) put(x0 + x, y0 + y, 1, 1, 1);
    static constexpr double kLine[6][3] = {{0.85, 0.1, 0.1}, {0.1, 0.6, 0.1}, {0.1, 0.2, 0.85},
                                           {0.95, 0.55, 0},  {0, 0.6, 0.6},   {0.55, 0.1, 0.75}};
    for (int64_t c = 0; c < 6; ++c)
      for (int64_t k = 0; k + 1 < steps; ++k) {
        auto to_y = [&](T u) {
          return (0.5 - std::clamp(static_cast<double>(u), -4.0, 4.0) / 8.0) * (cell - 1);
        };
        const double xa = static_cast<double>(k) * (cell - 1) / static_cast<double>(steps - 1),
                     xb = static_cast<double>(k + 1) * (cell - 1) / static_cast<double>(steps - 1);
        const double ya = to_y(v[c * steps + k]), yb = to_y(v[c * steps + k + 1]);
        const int64_t n = 1 + static_cast<int64_t>(std::max(std::fabs(xb - xa), std::fabs(yb - ya)));
        for (int64_t q = 0; q <= n; ++q) {
          const double u = static_cast<double>(q) / static_cast<double>(n);
          put(x0 + std::llround(xa + u * (xb - xa)), y0 + std::llround(ya + u * (yb - ya)), kLine[c][0],
              kLine[c][1], kLine[c][2]);
        }
      }
  }
};

/// One modality's generated images, direct and through the prior, (N, 3, S, S) in [0, 1].
struct Generated {
  TensorT direct, prior;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "Images generated from sounds, depth, heat and motion through a decoder of ImageBind's image space"};
  app.add_option("--run", o.run,
                 "output folder of 02_imagebind_digits (model.safetensors, config.json, vocab.txt)")
      ->required();
  app.add_option("--out", o.out, "output folder (default <run>/generation)");
  app.add_option("--threads", o.threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--train", o.n_train, "02's training samples (the test split starts after them)");
  app.add_option("--test", o.n_test, "held-out test samples");
  app.add_option("--pool", o.pool, "train the decoder, prior and judge on the first POOL training samples");
  app.add_option("--seed", o.seed, "02's --seed (the data)");
  app.add_option("--init-seed", o.init_seed, "seed of the networks trained here (init, minibatches, noise)");
  app.add_option("--batch", o.batch, "minibatch of every network trained here")->check(CLI::PositiveNumber);
  app.add_option("--decoder-steps", o.decoder_steps, "AdamW steps of the decoder")
      ->check(CLI::PositiveNumber);
  app.add_option("--prior-steps", o.prior_steps, "AdamW steps of the prior")->check(CLI::PositiveNumber);
  app.add_option("--classifier-steps", o.classifier_steps, "AdamW steps of the judging classifier")
      ->check(CLI::PositiveNumber);
  app.add_option(
         "--augment", o.augment,
         "conditioning augmentation of the decoder: noise norm relative to the unit embedding (0: off)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--compare-augment", o.compare_augment,
                 "also train a decoder without conditioning augmentation and report both (true/false)");
  app.add_option("--arithmetic", o.arithmetic, "test sounds asked with a colour (sound + colour text)");
  app.add_flag("--quick", o.quick,
               "CTest size: 3000 training samples, 300 test samples, fewer steps, 1 thread");
  app.add_option("--require", o.require,
                 "exit 1 unless this share of the images drawn from test sounds (directly and through the "
                 "prior) shows the sound's digit");
  app.add_flag("!--no-progress", o.progress, "no training progress on stderr");
  CLI11_PARSE(app, argc, argv);
  if (o.quick) {
    auto set = [&app](const char* name, auto& value, auto quick_value) {
      if (app.count(name) == 0) value = quick_value;
    };
    set("--pool", o.pool, int64_t{3000});
    set("--test", o.n_test, int64_t{300});
    set("--decoder-steps", o.decoder_steps, int64_t{300});
    set("--prior-steps", o.prior_steps, int64_t{300});
    set("--classifier-steps", o.classifier_steps, int64_t{200});
    set("--compare-augment", o.compare_augment, false);
    set("--arithmetic", o.arithmetic, int64_t{300});
    set("--threads", o.threads, 1);
  }
  if (o.out.empty()) o.out = o.run + "/generation";
  Cpu::set_num_threads(o.threads);
  const auto t_start = std::chrono::steady_clock::now();
  try {
    BINDERY_CHECK(o.n_test >= 10 && o.pool >= 100 && o.pool <= o.n_train, ValueError, "--pool ", o.pool,
                  " / --train ", o.n_train, " / --test ", o.n_test,
                  ": need 100 <= pool <= train and >= 10 test samples");
    const std::vector<Modality> bound = {Modality::kAudio, Modality::kDepth, Modality::kThermal,
                                         Modality::kImu};

    // ---- the frozen model ---------------------------------------------------------------------
    std::vector<Modality> load = {Modality::kVision};
    load.insert(load.end(), bound.begin(), bound.end());
    const digits_run::DigitsRun run = digits_run::load_digits_run(o.run, load);  // + text, frozen
    const auto& model = run.model;
    model->eval();
    const digits::WordVocab& vocab = run.vocab;
    const int64_t context = run.context;

    // ---- the data: 02's built-in split (same generator, seed and indices) -----------------------
    synth::SynthConfig sc;
    sc.seed = o.seed;
    sc.noise = 1.0;
    const auto t_data = std::chrono::steady_clock::now();
    const synth::DigitBatch train = synth::make_batch(sc, 0, o.pool);
    const synth::DigitBatch test = synth::make_batch(sc, o.n_train, o.n_test);
    const Indices train_y = train.labels.to_vector(), test_y = test.labels.to_vector();
    const int64_t side = sc.image_size, inks = synth::num_inks();
    std::fprintf(stderr, "data: %lld training and %lld test samples, %.1f s\n",
                 static_cast<long long>(o.pool), static_cast<long long>(o.n_test), seconds_since(t_data));

    // ---- frozen embeddings (unit rows) ----------------------------------------------------------
    const auto t_embed = std::chrono::steady_clock::now();
    auto embed = [&](Modality m, const TensorT& x) {
      return unit(batched(x.shape()[0], 250, [&](const Indices& idx) {
        return model->encoder(m).encode(rows_of(x, idx)).value();
      }));
    };
    auto embed_text = [&](const std::vector<std::string>& texts) {
      const Ids ids = vocab.encode(texts, context);
      return unit(batched(static_cast<int64_t>(texts.size()), 250, [&](const Indices& idx) {
        return model->encoder(Modality::kText).encode(rows_of(ids, idx)).value();
      }));
    };
    const TensorT train_image_e = embed(Modality::kVision, train.image);
    const TensorT train_caption_e = embed_text(train.captions);
    const TensorT test_image_e = embed(Modality::kVision, test.image);
    const TensorT test_caption_e = embed_text(test.captions);
    std::map<Modality, TensorT> test_e;
    auto values = [](const synth::DigitBatch& b, Modality m) -> const TensorT& {
      if (m == Modality::kAudio) return b.audio;
      if (m == Modality::kDepth) return b.depth;
      if (m == Modality::kThermal) return b.thermal;
      return b.imu;
    };
    for (Modality m : bound) test_e[m] = embed(m, values(test, m));
    const double seconds_embed = seconds_since(t_embed);
    std::fprintf(stderr, "embeddings: %.1f s\n", seconds_embed);

    // ---- the judge: a CNN on real training images ------------------------------------------------
    const auto t_classifier = std::chrono::steady_clock::now();
    Classifier classifier(side, inks, nn::init::derive_seed(o.init_seed, 0x0c1a));
    classifier.train();
    const Ids train_inks = Ids::from_vector(train.inks);
    fit("classifier", classifier.parameters(), o.pool, o.classifier_steps, o.batch, o.classifier_lr, 1e-4,
        nn::init::derive_seed(o.init_seed, 0x0c1b), o.progress, [&](const Indices& idx, int64_t) {
          const auto [d, k] = classifier.forward(VarT(rows_of(train.image, idx)));
          return ops::add(ops::cross_entropy(d, rows_of(train.labels, idx)),
                          ops::cross_entropy(k, rows_of(train_inks, idx)));
        });
    classifier.eval();
    const auto [real_digits, real_inks] = judge(classifier, test.image);
    const double classifier_digit = share(real_digits, test_y), classifier_ink = share(real_inks, test.inks);
    const double seconds_classifier = seconds_since(t_classifier);
    std::printf("classifier on real test images: digit %s, ink %s (%.1f s)\n",
                percent(classifier_digit).c_str(), percent(classifier_ink).c_str(), seconds_classifier);

    // ---- the decoder(s): unit image embedding -> image -----------------------------------------
    const TensorT train_targets = unnormalize_images(train.image);
    const int64_t dim = train_image_e.shape()[1];
    auto train_decoder = [&](double augment, uint64_t salt) {
      auto decoder = std::make_shared<Decoder>(dim, side, nn::init::derive_seed(o.init_seed, salt));
      decoder->train();
      Philox noise_rng(nn::init::derive_seed(o.init_seed, salt + 1));
      const std::string label = augment > 0 ? "decoder" : "decoder (no augmentation)";
      fit(label.c_str(), decoder->parameters(), o.pool, o.decoder_steps, o.batch, o.decoder_lr, 1e-4,
          nn::init::derive_seed(o.init_seed, salt + 2), o.progress, [&](const Indices& idx, int64_t) {
            TensorT e = rows_of(train_image_e, idx);
            if (augment > 0) {  // unit e + noise of norm ~augment, renormalized
              const TensorT n =
                  TensorT::normal(e.shape(), noise_rng, 0.0, augment / std::sqrt(static_cast<double>(dim)));
              e = unit(ops::add_forward(e, n));
            }
            const VarT diff = ops::sub(decoder->forward(VarT(e)), VarT(rows_of(train_targets, idx)));
            return ops::mean(ops::mul(diff, diff));
          });
      decoder->eval();
      return decoder;
    };
    const auto t_decoder = std::chrono::steady_clock::now();
    std::shared_ptr<Decoder> decoder = train_decoder(o.augment, 0xdec0);
    const double seconds_decoder = seconds_since(t_decoder);
    std::shared_ptr<Decoder> plain;  // without conditioning augmentation, for the comparison
    double seconds_plain = 0;
    if (o.compare_augment && o.augment > 0) {
      const auto t_plain = std::chrono::steady_clock::now();
      plain = train_decoder(0.0, 0xdec8);
      seconds_plain = seconds_since(t_plain);
    }

    // ---- the prior: unit caption embedding -> unit image embedding ------------------------------
    const auto t_prior = std::chrono::steady_clock::now();
    Prior prior(dim, nn::init::derive_seed(o.init_seed, 0x9410));
    prior.train();
    fit("prior", prior.parameters(), o.pool, o.prior_steps, o.batch, o.prior_lr, 1e-4,
        nn::init::derive_seed(o.init_seed, 0x9411), o.progress, [&](const Indices& idx, int64_t) {
          const VarT p = prior.forward(VarT(rows_of(train_caption_e, idx)));
          return ops::rsub_scalar(ops::mean(ops::sum(ops::mul(p, VarT(rows_of(train_image_e, idx))), {1})),
                                  T(1));
        });
    prior.eval();
    const double seconds_prior = seconds_since(t_prior);
    auto through_prior = [&](const TensorT& e) {
      return batched(e.shape()[0], 500,
                     [&](const Indices& idx) { return prior.forward(VarT(rows_of(e, idx))).value(); });
    };
    const double prior_test_cosine = mean_cosine(through_prior(test_caption_e), test_image_e);

    // ---- generate and judge ---------------------------------------------------------------------
    auto draw = [&](Decoder& d, const TensorT& e) {
      return batched(e.shape()[0], 250,
                     [&](const Indices& idx) { return d.forward(VarT(rows_of(e, idx))).value(); });
    };
    auto generate = [&](Decoder& d, const TensorT& e) {
      return Generated{draw(d, e), draw(d, through_prior(e))};
    };
    struct Row {
      std::string name;
      double cosine_to_image = 0;  // mean cosine of the sample's embedding to its own image's
      double direct = 0, prior = 0, direct_plain = -1, prior_plain = -1;
    };
    std::vector<Row> rows;
    std::map<std::string, Generated> shown;  // for the contact sheet
    auto measure = [&](const std::string& name, const TensorT& e) {
      Row r;
      r.name = name;
      r.cosine_to_image = mean_cosine(e, test_image_e);
      const Generated g = generate(*decoder, e);
      r.direct = share(judge(classifier, normalize_images(g.direct)).first, test_y);
      r.prior = share(judge(classifier, normalize_images(g.prior)).first, test_y);
      if (plain) {
        const Generated gp = generate(*plain, e);
        r.direct_plain = share(judge(classifier, normalize_images(gp.direct)).first, test_y);
        r.prior_plain = share(judge(classifier, normalize_images(gp.prior)).first, test_y);
      }
      std::printf("%-8s -> image: digit shown %s directly, %s through the prior (cosine to its image %.2f)\n",
                  name.c_str(), percent(r.direct).c_str(), percent(r.prior).c_str(), r.cosine_to_image);
      std::fflush(stdout);
      shown[name] = g;
      rows.push_back(r);
    };
    const auto t_generate = std::chrono::steady_clock::now();
    measure("image", test_image_e);
    measure("caption", test_caption_e);
    for (Modality m : bound) measure(ib::modality_name(m), test_e.at(m));

    // Arithmetic: sound + "written in <colour> ink", colour i % inks for test sound i.
    std::vector<std::string> colour_prompts;
    for (int64_t c = 0; c < inks; ++c)
      colour_prompts.push_back(std::string("written in ") + synth::ink_name(c) + " ink");
    const TensorT colours = embed_text(colour_prompts);
    const int64_t n_arith = std::min(o.arithmetic, o.n_test);
    const Indices arith_rows = iota(0, n_arith);
    Indices asked, arith_digits;
    for (int64_t i = 0; i < n_arith; ++i) {
      asked.push_back(i % inks);
      arith_digits.push_back(test_y[static_cast<size_t>(i)]);
    }
    const TensorT sound = rows_of(test_e.at(Modality::kAudio), arith_rows);
    const TensorT query = unit(ops::add_forward(sound, rows_of(colours, asked)));
    struct Arith {
      double digit = 0, colour = 0, both = 0;
    };
    auto score = [&](const TensorT& images) {
      const auto [d, k] = judge(classifier, normalize_images(images));
      Arith a;
      for (size_t i = 0; i < d.size(); ++i) {
        a.digit += d[i] == arith_digits[i];
        a.colour += k[i] == asked[i];
        a.both += d[i] == arith_digits[i] && k[i] == asked[i];
      }
      for (double* v : {&a.digit, &a.colour, &a.both})
        *v /= static_cast<double>(std::max<size_t>(d.size(), 1));
      return a;
    };
    const Generated alone = generate(*decoder, sound), summed = generate(*decoder, query);
    struct ArithRow {
      std::string key, query, path;
      Arith a;
    };
    const std::string sum_text = "normalize(sound + text(\"written in <colour> ink\"))";
    const std::vector<ArithRow> arith = {
        {"sound_alone_direct", "the sound alone", "decoder", score(alone.direct)},
        {"sound_alone_prior", "the sound alone", "prior -> decoder", score(alone.prior)},
        {"sum_direct", sum_text, "decoder", score(summed.direct)},
        {"sum_prior", sum_text, "prior -> decoder", score(summed.prior)}};
    for (const ArithRow& r : arith)
      std::printf("arithmetic %-19s digit %s, asked colour %s, both %s\n", r.key.c_str(),
                  percent(r.a.digit).c_str(), percent(r.a.colour).c_str(), percent(r.a.both).c_str());
    const double seconds_generate = seconds_since(t_generate);

    // ---- the contact sheet: the first test event of each digit -----------------------------------
    std::filesystem::create_directories(o.out);
    Indices events(10, -1);
    for (int64_t i = 0; i < o.n_test; ++i)
      if (events[static_cast<size_t>(test_y[static_cast<size_t>(i)])] < 0)
        events[static_cast<size_t>(test_y[static_cast<size_t>(i)])] = i;
    {
      const int64_t cell = 2 * side, gap = 4, label_w = 150, header = 18;
      const int64_t n_rows = 1 + 4 * 3 + 2;
      Canvas sheet(label_w + 10 * (cell + gap) + gap, header + n_rows * (cell + gap) + gap);
      for (int64_t d = 0; d < 10; ++d)
        sheet.text(label_w + d * (cell + gap) + cell / 2 - 3, 5, std::to_string(d));
      int64_t row = 0;
      auto y_of = [&](int64_t r) { return header + r * (cell + gap); };
      const TensorT real01 = unnormalize_images(test.image);
      const int64_t pixels = side * side;
      auto draw_images = [&](const TensorT& images01, const Indices& which) {  // row `row`, one per digit
        for (int64_t d = 0; d < 10; ++d) {
          const int64_t i = which[static_cast<size_t>(d)];
          if (i < 0) continue;
          sheet.image(images01.data() + i * 3 * pixels, side, label_w + d * (cell + gap), y_of(row), cell);
        }
      };
      sheet.text(gap, y_of(row) + cell / 2 - 4, "the event's photo");
      draw_images(real01, events);
      ++row;
      for (Modality m : bound) {
        const std::string name = ib::modality_name(m);
        const TensorT& x = values(test, m);
        const int64_t per = x.numel() / x.shape()[0];
        sheet.text(gap, y_of(row) + cell / 2 - 4, name + " (input)");
        for (int64_t d = 0; d < 10; ++d) {
          const int64_t i = events[static_cast<size_t>(d)];
          if (i < 0) continue;
          const T* v = x.data() + i * per;
          const int64_t x0 = label_w + d * (cell + gap), y0 = y_of(row);
          if (m == Modality::kAudio)
            sheet.map(v, x.shape()[2], x.shape()[3], x0, y0, cell, true, true);
          else if (m == Modality::kDepth)
            sheet.map(v, side, side, x0, y0, cell, false, false);
          else if (m == Modality::kThermal)
            sheet.map(v, side, side, x0, y0, cell, true, false);
          else
            sheet.imu(v, x.shape()[2], x0, y0, cell);
        }
        ++row;
        const TensorT direct = shown.at(name).direct.contiguous(), via = shown.at(name).prior.contiguous();
        sheet.text(gap, y_of(row) + cell / 2 - 4, "-> decoder");
        draw_images(direct, events);
        ++row;
        sheet.text(gap, y_of(row) + cell / 2 - 4, "-> prior -> decoder");
        draw_images(via, events);
        ++row;
      }
      // Arithmetic: the same sounds, each asked with colour d % inks (within the first n_arith).
      Indices arith_events(10, -1);
      for (int64_t d = 0; d < 10; ++d)
        if (events[static_cast<size_t>(d)] >= 0 && events[static_cast<size_t>(d)] < n_arith)
          arith_events[static_cast<size_t>(d)] = events[static_cast<size_t>(d)];
      for (const auto& [label, images] :
           {std::pair{std::string("sound+colour->decoder"), summed.direct.contiguous()},
            std::pair{std::string("sound+colour->prior->dec."), summed.prior.contiguous()}}) {
        sheet.text(gap, y_of(row) + cell / 2 - 10, label);
        draw_images(images, arith_events);
        for (int64_t d = 0; d < 10; ++d)
          if (arith_events[static_cast<size_t>(d)] >= 0)
            sheet.text(label_w + d * (cell + gap) + 2, y_of(row) + cell - 10,
                       synth::ink_name(asked[static_cast<size_t>(arith_events[static_cast<size_t>(d)])]),
                       true);
        ++row;
      }
      data::write_png(o.out + "/contact_sheet.png", sheet.rgb.data(), sheet.width, sheet.height, 3);
    }

    // ---- report ------------------------------------------------------------------------------------
    const double total = seconds_since(t_start);
    nlohmann::json j;
    j["run"] = o.run;
    j["train_samples"] = o.pool;
    j["test_first"] = o.n_train;
    j["init_seed"] = o.init_seed;
    j["test_samples"] = o.n_test;
    j["threads"] = o.threads;
    j["steps"] = {{"decoder", o.decoder_steps}, {"prior", o.prior_steps}, {"classifier", o.classifier_steps}};
    j["batch"] = o.batch;
    j["augment"] = o.augment;
    j["classifier_real_test"] = {{"digit", classifier_digit}, {"ink", classifier_ink}};
    j["prior_test_cosine"] = prior_test_cosine;
    j["parameters"] = {{"decoder", decoder->num_parameters()},
                       {"prior", prior.num_parameters()},
                       {"classifier", classifier.num_parameters()}};
    for (const Row& r : rows) {
      j["generated"][r.name] = {
          {"direct", r.direct}, {"prior", r.prior}, {"cosine_to_image", r.cosine_to_image}};
      if (plain) {
        j["generated"][r.name]["direct_no_augment"] = r.direct_plain;
        j["generated"][r.name]["prior_no_augment"] = r.prior_plain;
      }
    }
    for (const ArithRow& r : arith)
      j["arithmetic"][r.key] = {{"query", r.query},
                                {"path", r.path},
                                {"digit", r.a.digit},
                                {"colour", r.a.colour},
                                {"both", r.a.both}};
    j["arithmetic_queries"] = n_arith;
    j["seconds"] = {{"data_and_embeddings", seconds_since(t_data) - seconds_since(t_embed) + seconds_embed},
                    {"classifier", seconds_classifier},
                    {"decoder", seconds_decoder},
                    {"decoder_no_augment", seconds_plain},
                    {"prior", seconds_prior},
                    {"generate_and_judge", seconds_generate},
                    {"total", total}};
    std::ostringstream md;
    md << "# Images generated from other modalities' embeddings (paper Figure 1, in miniature)\n\n"
       << "Model: `" << o.run << "` (frozen). Trained here on the first " << o.pool
       << " training samples: a decoder (unit image embedding -> 3 x " << side << " x " << side << ", "
       << decoder->num_parameters() << " parameters, " << o.decoder_steps
       << " steps, conditioning augmentation " << o.augment
       << "), a prior (caption embedding -> image embedding, " << prior.num_parameters() << " parameters, "
       << o.prior_steps << " steps; mean cosine to the true image embedding on test captions "
       << fixed2(prior_test_cosine) << ") and a judging CNN (" << classifier.num_parameters()
       << " parameters, " << o.classifier_steps << " steps: digit " << percent(classifier_digit)
       << ", ink colour " << percent(classifier_ink) << " on the " << o.n_test << " real test images).\n\n"
       << "Share of the " << o.n_test
       << " generated test images in which the judge sees the driving sample's digit (chance 10%):\n\n";
    md << "| driven by | cosine to its photo's embedding | decoder | prior -> decoder |"
       << (plain ? " decoder, no augmentation | prior -> decoder, no augmentation |" : "")
       << "\n|---|---|---|---|" << (plain ? "---|---|" : "") << "\n";
    for (const Row& r : rows) {
      md << "| " << r.name << (r.name == "image" ? " (its own embedding)" : "") << " | "
         << fixed2(r.cosine_to_image) << " | " << percent(r.direct) << " | " << percent(r.prior) << " |";
      if (plain) md << " " << percent(r.direct_plain) << " | " << percent(r.prior_plain) << " |";
      md << "\n";
    }
    md << "\nArithmetic: " << n_arith << " test sounds, sound i asked with ink colour i mod " << inks
       << " (chance: digit 10%, colour " << percent(1.0 / static_cast<double>(inks)) << "):\n\n"
       << "| query | path | shows the digit | shows the asked colour | both |\n|---|---|---|---|---|\n";
    for (const ArithRow& r : arith)
      md << "| " << r.query << " | " << r.path << " | " << percent(r.a.digit) << " | " << percent(r.a.colour)
         << " | " << percent(r.a.both) << " |\n";
    char secs[64];
    std::snprintf(secs, sizeof(secs), "%.0f s on %d thread%s", total, o.threads, o.threads == 1 ? "" : "s");
    md << "\nRun time: " << secs << " (classifier " << static_cast<int>(seconds_classifier + 0.5)
       << " s, decoder " << static_cast<int>(seconds_decoder + 0.5) << " s"
       << (plain ? ", decoder without augmentation " + std::to_string(static_cast<int>(seconds_plain + 0.5)) +
                       " s"
                 : "")
       << ", prior " << static_cast<int>(seconds_prior + 0.5)
       << " s).\n\n![contact sheet](contact_sheet.png)\n";
    std::ofstream(o.out + "/report.md") << md.str();
    std::ofstream(o.out + "/results.json") << j.dump(2) << "\n";
    bool ok = true;
    if (o.require >= 0) {
      const Row& audio =
          *std::find_if(rows.begin(), rows.end(), [](const Row& r) { return r.name == "audio"; });
      ok = audio.direct >= o.require && audio.prior >= o.require;
      std::printf("audio -> image: %s directly, %s through the prior (required %s): %s\n",
                  percent(audio.direct).c_str(), percent(audio.prior).c_str(), percent(o.require).c_str(),
                  ok ? "ok" : "FAILED");
    }
    std::printf("wrote %s/report.md, results.json, contact_sheet.png (%s)\n", o.out.c_str(), secs);
    return ok ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "09_generation: %s\n", e.what());
    return 2;
  }
}
