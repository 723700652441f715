// examples/08_detection — audio-prompted open-vocabulary detection (the ImageBind paper's Figure 5),
// in miniature.
//
// The paper takes Detic, an open-vocabulary detector whose classifier is the CLIP text embedding of
// each class name, and swaps those text embeddings for ImageBind audio embeddings: the detector then
// finds objects named by a sound, without retraining. Here: the digits ImageBind that
// 02_imagebind_digits trained (model.safetensors + config.json + vocab.txt), frozen, and a small
// CenterNet-style detector trained on scenes of 1-4 digits (scenes.hpp). The detector's classifier is
// open-vocabulary the same way: a convolutional backbone gives, on a stride-8 grid, a unit embedding
// in the joint space; the score of class c at a cell is sigmoid(scale * cos(embedding, e_c) + bias)
// with e_c the class embedding, and a box head regresses the centre offset and log width / height.
// Training uses the text embeddings only (02's prompt ensemble). At test time e_c is replaced by the
// mean audio embedding of spoken digits — sounds of the generator's held-out split, and FSDD
// recordings of held-out speakers — and the same detector is scored with AP@0.5 per class and mAP.
//
//   ./02_imagebind_digits --out runs/digits            # once: trains and saves the joint space
//   ./08_detection --run runs/digits [--out DIR] [--threads 1] [--fsdd DIR] [--mnist DIR]
//   ./08_detection --run runs/digits --quick --require-ratio 0.8 --require-map 0.5   # the CTest
//
// Writes into --out (default <run>/detection): report.md, results.json, detections.png.
#include <CLI/CLI.hpp>

#include <bindery/bindery.hpp>
#include <bindery/data/stb_image_write.hpp>
#include <bindery/datasets/fsdd.hpp>
#include <bindery/datasets/mnist.hpp>
#include <bindery/datasets/synth_digits.hpp>
#include <bindery/eval/detection.hpp>
#include <bindery/eval/zero_shot.hpp>
#include <bindery/nn/conv.hpp>
#include <bindery/ops/index.hpp>
#include <bindery/ops/normalize.hpp>
#include <bindery/train/trainer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "../common/digits_run.hpp"
#include "../common/fsdd_inputs.hpp"
#include "scenes.hpp"

using namespace bindery;
namespace ib = bindery::models::imagebind;
using ib::Modality;
using T = float;
using Device = Cpu;
using TensorT = Tensor<T, Device>;
using VarT = Var<T, Device>;
using Ids = Tensor<int64_t, Device>;
using Indices = std::vector<int64_t>;
using digits_run::kClassNames;

namespace {

constexpr int64_t kClasses = 10, kStride = 8;

struct Options {
  std::string run, out, fsdd, mnist, held_out = "theo,yweweler";
  int threads = 1;
  bool quick = false;
  uint64_t seed = 1;            // 02's --seed (the generator's data) and the scenes' / detector's seed
  int64_t n_train = 6000;       // 02's split: the generator's test split starts at this index
  int64_t glyphs = 3000;        // built-in training glyphs: generator samples [0, glyphs)
  int64_t test_scenes = 500;    // per scene set
  int64_t prompt_sounds = 200;  // built-in sound prompts: test-split samples [n_train, + this)
  int64_t steps = 2000, batch = 16, width = 64;
  double lr = 3e-3, weight_decay = 1e-4;
  int64_t single_draws = 5;  // single-sound prompts: draws of one sound per class
  double require_ratio = -1, require_map = -1;
  std::string fsdd_features = "builtin";  // or "cmvn": 02's real-data features
  bool center = true;  // subtract each prompt set's mean over the classes before normalizing
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The detector: a small convolutional backbone (stride 8), an embedding head into the joint space
/// and a box head. Class scores come from the class embeddings it is given, not from weights of its own.
struct Detector : nn::Module<T, Device> {
  Detector(int64_t width, int64_t embed_dim, uint64_t seed) {
    auto conv = [&](const char* name, int64_t in, int64_t out, int64_t k, int64_t stride) {
      return register_module(
          name,
          std::make_shared<nn::Conv2d<T, Device>>(
              in, out,
              nn::ConvOptions<2>{
                  .kernel = {k, k}, .stride = {stride, stride}, .padding = {k / 2, k / 2}, .seed = seed++}));
    };
    // Receptive field 47 px at stride 8: the largest digits (44 px) are seen whole from their centre.
    backbone = {conv("conv1", 3, width / 2, 3, 2), conv("conv2", width / 2, width, 3, 2),
                conv("conv3", width, width, 3, 2), conv("conv4", width, width, 3, 1),
                conv("conv5", width, width, 3, 1)};
    embed = conv("embed", width, embed_dim, 1, 1);
    box = conv("box", width, 4, 1, 1);
    // Logit = scale * cosine + bias; the bias starts at a prior of 1% (focal-loss practice).
    log_scale = register_parameter("log_scale", TensorT::full({1}, static_cast<T>(std::log(10.0))));
    bias = register_parameter("bias", TensorT::full({1}, static_cast<T>(-std::log(99.0))));
  }
  struct Output {
    VarT embedding;  // (B * H * W, D) unit rows, cell-major per image
    VarT box;        // (B * H * W, 4): offset x, y in cells, log(width / stride), log(height / stride)
  };
  Output forward(const TensorT& images) {
    VarT x(images);
    for (auto& c : backbone) x = ops::gelu(c->forward(x));
    auto cells = [](const VarT& y) {
      const int64_t channels = y.shape()[1];
      return ops::reshape(ops::contiguous(ops::permute(y, {0, 2, 3, 1})), {-1, channels});
    };
    return {ops::l2_normalize(cells(embed->forward(x)), -1), cells(box->forward(x))};
  }
  /// (cells, classes) logits against class embeddings (classes, D), unit rows.
  VarT logits(const VarT& embedding, const TensorT& classes) {
    const VarT cos = ops::matmul(embedding, VarT(classes), false, true);
    return ops::add(ops::mul(cos, ops::exp(log_scale)), bias);
  }
  std::vector<std::shared_ptr<nn::Conv2d<T, Device>>> backbone;
  std::shared_ptr<nn::Conv2d<T, Device>> embed, box;
  VarT log_scale, bias;
};

struct SceneBatch {
  TensorT images;  // (N, 3, S, S)
  std::vector<std::vector<scenes::Object>> objects;
};

SceneBatch make_scenes(const std::vector<const std::vector<scenes::Glyph>*>& sources,
                       const scenes::SceneOptions& so, uint64_t seed, uint64_t first, int64_t count) {
  SceneBatch b;
  const int64_t numel = 3 * so.size * so.size;
  b.images = TensorT::empty({count, 3, so.size, so.size});
  b.objects.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t index = first + static_cast<uint64_t>(i);
    b.objects[static_cast<size_t>(i)] =
        scenes::draw_scene(*sources[index % sources.size()], so, seed, index, b.images.data() + i * numel);
  }
  return b;
}

/// CenterNet's targets on the (grid x grid) cells: per class a Gaussian peak at each object's centre
/// cell (sigma from the object's size), the centre cells' rows, and their box targets.
struct Targets {
  TensorT heat, positive;  // (B * cells, classes)
  Indices centre_rows;     // rows of the centre cells
  TensorT box;             // (centres, 4)
  int64_t positives = 0;
};

Targets make_targets(const SceneBatch& b, int64_t grid) {
  const int64_t n = static_cast<int64_t>(b.objects.size()), cells = grid * grid;
  Targets t;
  std::vector<T> heat(static_cast<size_t>(n * cells * kClasses), 0), pos(heat.size(), 0), box;
  for (int64_t i = 0; i < n; ++i)
    for (const scenes::Object& obj : b.objects[static_cast<size_t>(i)]) {
      const double cx = (obj.box.x0 + obj.box.x1) / 2 / kStride, cy = (obj.box.y0 + obj.box.y1) / 2 / kStride;
      const double w = (obj.box.x1 - obj.box.x0) / kStride, h = (obj.box.y1 - obj.box.y0) / kStride;
      const int64_t gx = std::clamp<int64_t>(static_cast<int64_t>(cx), 0, grid - 1);
      const int64_t gy = std::clamp<int64_t>(static_cast<int64_t>(cy), 0, grid - 1);
      const double sigma = std::max(0.5, std::min(w, h) / 4);
      for (int64_t y = 0; y < grid; ++y)
        for (int64_t x = 0; x < grid; ++x) {
          const double d2 = static_cast<double>((x - gx) * (x - gx) + (y - gy) * (y - gy));
          T& v = heat[static_cast<size_t>(((i * cells) + y * grid + x) * kClasses + obj.label)];
          v = std::max(v, static_cast<T>(std::exp(-d2 / (2 * sigma * sigma))));
        }
      const int64_t row = i * cells + gy * grid + gx;
      pos[static_cast<size_t>(row * kClasses + obj.label)] = 1;
      t.centre_rows.push_back(row);
      for (double v : {cx - static_cast<double>(gx), cy - static_cast<double>(gy), std::log(w), std::log(h)})
        box.push_back(static_cast<T>(v));
    }
  t.heat = TensorT::from_vector(heat, {n * cells, kClasses});
  t.positive = TensorT::from_vector(pos, {n * cells, kClasses});
  t.positives = static_cast<int64_t>(t.centre_rows.size());
  t.box = TensorT::from_vector(box, {t.positives, 4});
  return t;
}

/// CenterNet's focal loss on the heatmaps plus the squared error of the centres' box targets.
std::pair<VarT, VarT> detection_loss(Detector& net, const SceneBatch& b, const TensorT& classes,
                                     int64_t grid) {
  const Targets t = make_targets(b, grid);
  const auto out = net.forward(b.images);
  const VarT p = ops::clamp(ops::sigmoid(net.logits(out.embedding, classes)), T(1e-4), T(1 - 1e-4));
  std::vector<T> neg = t.heat.to_vector(), posv = t.positive.to_vector();
  for (size_t i = 0; i < neg.size(); ++i) neg[i] = posv[i] > 0 ? 0 : std::pow(1 - neg[i], 4.0f);
  const VarT pos_w(t.positive), neg_w(TensorT::from_vector(neg, t.heat.shape()));
  const VarT pos_term = ops::mul(pos_w, ops::mul(ops::pow(ops::rsub_scalar(p, T(1)), T(2)), ops::log(p)));
  const VarT neg_term = ops::mul(neg_w, ops::mul(ops::pow(p, T(2)), ops::log(ops::rsub_scalar(p, T(1)))));
  const T norm = static_cast<T>(std::max<int64_t>(t.positives, 1));
  const VarT focal = ops::mul_scalar(ops::add(ops::sum(pos_term), ops::sum(neg_term)), -1 / norm);
  VarT box_loss = VarT(TensorT::zeros({}));
  if (t.positives > 0) {
    const VarT pred = ops::index_select(out.box, 0, Ids::from_vector(t.centre_rows));
    const VarT diff = ops::sub(pred, VarT(t.box));
    box_loss = ops::mean(ops::mul(diff, diff));
  }
  return {focal, box_loss};
}

/// The detector's per-cell outputs on a scene set, computed once: every prompt set reuses them.
struct Cached {
  TensorT embedding, box;  // (N * cells, D), (N * cells, 4)
};

Cached run_detector(Detector& net, const TensorT& images) {
  NoGrad no_grad;
  const int64_t n = images.shape()[0];
  std::vector<TensorT> e, bx;
  for (int64_t i = 0; i < n; i += 50) {
    const int64_t m = std::min<int64_t>(50, n - i);
    Indices idx(static_cast<size_t>(m));
    std::iota(idx.begin(), idx.end(), i);
    const auto out = net.forward(ops::index_select_forward(images, 0, Ids::from_vector(idx)));
    e.push_back(out.embedding.value());
    bx.push_back(out.box.value());
  }
  return {ops::concat_forward(e, 0), ops::concat_forward(bx, 0)};
}

/// Detections: per class, the cells whose score is a 3 x 3 local maximum (CenterNet's max-pool peak
/// extraction in place of NMS), at most `top` per class and image, boxes from the box head.
std::vector<eval::Detection> decode(Detector& net, const Cached& c, const TensorT& classes, int64_t n,
                                    int64_t grid, int64_t top = 20) {
  NoGrad no_grad;
  const std::vector<T> logit = net.logits(VarT(c.embedding), classes).value().to_vector();
  const std::vector<T> box = c.box.to_vector();
  const int64_t cells = grid * grid;
  std::vector<eval::Detection> out;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < kClasses; ++k) {
      auto score = [&](int64_t y, int64_t x) {
        return logit[static_cast<size_t>((i * cells + y * grid + x) * kClasses + k)];
      };
      std::vector<eval::Detection> peaks;
      for (int64_t y = 0; y < grid; ++y)
        for (int64_t x = 0; x < grid; ++x) {
          const T s = score(y, x);
          bool peak = true;
          for (int64_t dy = -1; dy <= 1 && peak; ++dy)
            for (int64_t dx = -1; dx <= 1 && peak; ++dx) {
              const int64_t yy = y + dy, xx = x + dx;
              if ((dy || dx) && yy >= 0 && yy < grid && xx >= 0 && xx < grid) peak = score(yy, xx) <= s;
            }
          if (!peak) continue;
          const T* b = box.data() + (i * cells + y * grid + x) * 4;
          const double cx = (x + b[0]) * kStride, cy = (y + b[1]) * kStride;
          const double w = std::exp(b[2]) * kStride, h = std::exp(b[3]) * kStride;
          peaks.push_back({i,
                           k,
                           1 / (1 + std::exp(-static_cast<double>(s))),
                           {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}});
        }
      std::stable_sort(peaks.begin(), peaks.end(),
                       [](const auto& a, const auto& b) { return a.score > b.score; });
      peaks.resize(std::min<size_t>(peaks.size(), static_cast<size_t>(top)));
      out.insert(out.end(), peaks.begin(), peaks.end());
    }
  return out;
}

std::vector<eval::GroundTruth> truth_of(const SceneBatch& b) {
  std::vector<eval::GroundTruth> t;
  for (size_t i = 0; i < b.objects.size(); ++i)
    for (const auto& o : b.objects[i]) t.push_back({static_cast<int64_t>(i), o.label, o.box});
  return t;
}

bool g_center = false;  // Options::center, for the helpers below

/// Class embeddings (classes, D) as a unit-row tensor; with --center-prompts the set's mean over the
/// classes is subtracted first (what all ten prompts of one modality share: the modality gap).
TensorT to_classes(eval::Matrix m) {
  if (g_center) {
    std::vector<double> mean(static_cast<size_t>(m.cols), 0.0);
    for (int64_t k = 0; k < m.rows; ++k)
      for (int64_t d = 0; d < m.cols; ++d)
        mean[static_cast<size_t>(d)] += m(k, d) / static_cast<double>(m.rows);
    for (int64_t k = 0; k < m.rows; ++k)
      for (int64_t d = 0; d < m.cols; ++d) m(k, d) -= mean[static_cast<size_t>(d)];
  }
  m = eval::normalize_rows(m);
  return TensorT::from_vector(std::vector<T>(m.values.begin(), m.values.end()), {m.rows, m.cols});
}

/// Per class the normalized mean of the given unit rows.
TensorT class_means(const eval::Matrix& unit_rows, const std::vector<int64_t>& labels) {
  eval::Matrix m(kClasses, unit_rows.cols);
  for (int64_t i = 0; i < unit_rows.rows; ++i)
    for (int64_t d = 0; d < unit_rows.cols; ++d) m(labels[static_cast<size_t>(i)], d) += unit_rows(i, d);
  return to_classes(eval::normalize_rows(m));
}

/// A prompt set's scores: AP per class and mAP; for single-sound prompts, the mean over draws.
struct PromptResult {
  std::string name;
  std::vector<double> ap = std::vector<double>(kClasses, 0.0);
  double map = 0, map_std = 0;
  int64_t draws = 1;
};

/// The mean of sound embeddings per class, and `draws` sets of one sound per class.
struct SoundPrompts {
  TensorT mean;                  // (10, D)
  std::vector<TensorT> singles;  // draws x (10, D)
  std::vector<Indices> single_rows;
  double zero_shot = 0;  // top-1 of the sounds against the text prototypes
};

SoundPrompts sound_prompts(const eval::Matrix& unit_rows, const std::vector<int64_t>& labels,
                           const eval::Matrix& text, int64_t draws, uint64_t seed) {
  SoundPrompts p;
  p.mean = class_means(unit_rows, labels);
  p.zero_shot = eval::zero_shot(unit_rows, text, labels).top1;
  std::vector<Indices> by_class(kClasses);
  for (size_t i = 0; i < labels.size(); ++i)
    by_class[static_cast<size_t>(labels[i])].push_back(static_cast<int64_t>(i));
  for (const Indices& c : by_class)
    BINDERY_CHECK(!c.empty(), ValueError, "08_detection: a digit has no sound to prompt with");
  Philox rng(seed, 0x50u);
  for (int64_t d = 0; d < draws; ++d) {
    Indices rows;
    for (const Indices& c : by_class) rows.push_back(c[rng.next_below(c.size())]);
    eval::Matrix m(kClasses, unit_rows.cols);
    for (int64_t k = 0; k < kClasses; ++k)
      std::copy(unit_rows.row(rows[static_cast<size_t>(k)]),
                unit_rows.row(rows[static_cast<size_t>(k)]) + m.cols, m.row(k));
    p.singles.push_back(to_classes(m));
    p.single_rows.push_back(rows);
  }
  return p;
}

// ---- the picture ----------------------------------------------------------------------------------

/// 3 x 5 pixel numerals (rows top to bottom, 3 bits each, most significant = left).
constexpr int kDigitFont[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7},
                                   {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 2, 2, 2},
                                   {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

struct Canvas {
  int64_t w, h;
  std::vector<uint8_t> rgb;
  Canvas(int64_t w_, int64_t h_) : w(w_), h(h_), rgb(static_cast<size_t>(w_ * h_ * 3), 255) {}
  void set(int64_t x, int64_t y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    for (int k = 0; k < 3; ++k) rgb[static_cast<size_t>((y * w + x) * 3 + k)] = c[k];
  }
  void rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, const uint8_t c[3]) {
    for (int64_t x = x0; x <= x1; ++x) set(x, y0, c), set(x, y1, c);
    for (int64_t y = y0; y <= y1; ++y) set(x0, y, c), set(x1, y, c);
  }
  void fill(int64_t x0, int64_t y0, int64_t x1, int64_t y1, const uint8_t c[3]) {
    for (int64_t y = y0; y <= y1; ++y)
      for (int64_t x = x0; x <= x1; ++x) set(x, y, c);
  }
  void numeral(int64_t x0, int64_t y0, int64_t digit, int64_t zoom, const uint8_t c[3]) {
    for (int r = 0; r < 5; ++r)
      for (int b = 0; b < 3; ++b)
        if (kDigitFont[digit][r] & (4 >> b))
          fill(x0 + b * zoom, y0 + r * zoom, x0 + (b + 1) * zoom - 1, y0 + (r + 1) * zoom - 1, c);
  }
};

/// Test scenes (zoomed), each detection above a score threshold boxed (green: a true positive at IoU
/// 0.5, red: not) and labelled with the prompting sound: its log-mel spectrogram and its digit.
void write_picture(const std::string& path, const SceneBatch& b, int64_t count,
                   const std::vector<eval::Detection>& dets, const TensorT& sound_inputs,
                   const Indices& sound_rows, double threshold) {
  const int64_t cols = 4, rows = (count + cols - 1) / cols, zoom = 2, size = b.images.shape()[2];
  const int64_t tile = size * zoom, gap = 8;
  Canvas canvas(cols * (tile + gap) + gap, rows * (tile + gap) + gap);
  const int64_t mels = sound_inputs.shape()[2], frames = sound_inputs.shape()[3];
  const std::vector<T> pix = b.images.to_vector(), sounds = sound_inputs.to_vector();
  const uint8_t green[3] = {20, 160, 40}, red[3] = {220, 30, 30}, white[3] = {255, 255, 255};
  for (int64_t i = 0; i < count; ++i) {
    const int64_t ox = gap + (i % cols) * (tile + gap), oy = gap + (i / cols) * (tile + gap);
    for (int64_t y = 0; y < tile; ++y)
      for (int64_t x = 0; x < tile; ++x) {
        uint8_t c[3];
        for (int64_t k = 0; k < 3; ++k) {
          const double v = pix[static_cast<size_t>(((i * 3 + k) * size + y / zoom) * size + x / zoom)] *
                               scenes::synth::kImageStd[static_cast<size_t>(k)] +
                           scenes::synth::kImageMean[static_cast<size_t>(k)];
          c[k] = static_cast<uint8_t>(std::clamp(v, 0.0, 1.0) * 255);
        }
        canvas.set(ox + x, oy + y, c);
      }
    std::vector<eval::GroundTruth> truth;
    for (const auto& o : b.objects[static_cast<size_t>(i)]) truth.push_back({0, o.label, o.box});
    for (const eval::Detection& d : dets) {
      if (d.image != i || d.score < threshold) continue;
      bool hit = false;
      for (const auto& g : truth) hit = hit || (g.label == d.label && eval::iou(g.box, d.box) >= 0.5);
      const uint8_t* colour = hit ? green : red;
      const int64_t x0 = ox + static_cast<int64_t>(std::max(0.0, d.box.x0) * zoom);
      const int64_t y0 = oy + static_cast<int64_t>(std::max(0.0, d.box.y0) * zoom);
      const int64_t x1 = ox + static_cast<int64_t>(std::min<double>(size, d.box.x1) * zoom) - 1;
      const int64_t y1 = oy + static_cast<int64_t>(std::min<double>(size, d.box.y1) * zoom) - 1;
      canvas.rect(x0, y0, x1, y1, colour);
      canvas.rect(x0 + 1, y0 + 1, x1 - 1, y1 - 1, colour);
      // The label: the sound's spectrogram (mels / 2 x frames / 2, low frequencies at the bottom)
      // and its digit, on the box's top-left corner.
      const int64_t sw = frames / 2, sh = mels / 2, lx = x0;
      const int64_t ly = y0 - sh - 2 >= oy ? y0 - sh - 2 : y0 + 2;  // above the box where it fits
      const T* s = sounds.data() + sound_rows[static_cast<size_t>(d.label)] * mels * frames;
      canvas.fill(lx, ly, lx + sw + 12, ly + sh + 1, colour);
      for (int64_t y = 0; y < sh; ++y)
        for (int64_t x = 0; x < sw; ++x) {
          double v = 0;
          for (int64_t dy = 0; dy < 2; ++dy)
            for (int64_t dx = 0; dx < 2; ++dx) v += s[(mels - 1 - (2 * y + dy)) * frames + 2 * x + dx] / 4;
          const uint8_t g = static_cast<uint8_t>(std::clamp(0.5 + 0.25 * v, 0.0, 1.0) * 255);
          const uint8_t c[3] = {g, g, g};
          canvas.set(lx + 1 + x, ly + 1 + y, c);
        }
      canvas.numeral(lx + sw + 3, ly + (sh - 10) / 2 + 1, d.label, 2, white);
    }
  }
  data::write_png(path, canvas.rgb.data(), canvas.w, canvas.h, 3);
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", 100 * v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "Audio-prompted open-vocabulary detection: a detector trained with text class embeddings, "
      "prompted with sounds"};
  app.add_option("--run", o.run,
                 "output folder of 02_imagebind_digits (model.safetensors, config.json, vocab.txt)")
      ->required();
  app.add_option("--out", o.out, "output folder (default <run>/detection)");
  app.add_option("--threads", o.threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--fsdd", o.fsdd,
                 "FSDD recordings folder: prompts from the --held-out speakers' recordings");
  app.add_option("--held-out", o.held_out, "comma-separated FSDD speakers whose recordings prompt")
      ->capture_default_str();
  app.add_option("--mnist", o.mnist, "MNIST folder: a second scene set of recoloured MNIST digits");
  app.add_option("--train", o.n_train,
                 "02's training samples (the generator's test split starts after them)");
  app.add_option("--seed", o.seed, "02's --seed (the generator's data), the scenes' and the detector's seed");
  app.add_option("--steps", o.steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--batch", o.batch, "scenes per step")->check(CLI::PositiveNumber);
  app.add_option("--width", o.width, "backbone channels")->check(CLI::PositiveNumber);
  app.add_option("--lr", o.lr, "AdamW peak learning rate (warmup, cosine decay)");
  app.add_option("--glyphs", o.glyphs, "built-in training glyphs (generator samples [0, GLYPHS))");
  app.add_option("--test-scenes", o.test_scenes, "test scenes per scene set")->check(CLI::PositiveNumber);
  app.add_option("--prompt-sounds", o.prompt_sounds,
                 "built-in prompting sounds (from the generator's test split)");
  app.add_option("--single-draws", o.single_draws, "draws of one sound per class (single-sound prompts)");
  app.add_option("--fsdd-features", o.fsdd_features,
                 "FSDD inputs: builtin (the generator's audio format) or cmvn (02's --mnist/--fsdd run)")
      ->check(CLI::IsMember({"builtin", "cmvn"}))
      ->capture_default_str();
  app.add_flag("--center-prompts,!--no-center-prompts", o.center,
               "subtract each prompt set's mean over the ten classes before normalizing, in training and "
               "test (default on)");
  app.add_flag("--quick", o.quick, "CTest size: fewer steps, scenes and glyphs");
  app.add_option("--require-ratio", o.require_ratio,
                 "exit 1 unless the built-in sound-prompted mAP >= this x the text-prompted mAP");
  app.add_option("--require-map", o.require_map, "exit 1 unless the text-prompted mAP >= this");
  CLI11_PARSE(app, argc, argv);
  if (o.quick) {
    auto set = [&app](const char* name, auto& value, auto quick_value) {
      if (app.count(name) == 0) value = quick_value;
    };
    set("--steps", o.steps, int64_t{250});
    set("--glyphs", o.glyphs, int64_t{1000});
    set("--test-scenes", o.test_scenes, int64_t{100});
    set("--prompt-sounds", o.prompt_sounds, int64_t{100});
  }
  if (o.out.empty()) o.out = o.run + "/detection";
  g_center = o.center;
  Cpu::set_num_threads(o.threads);
  const auto t_start = std::chrono::steady_clock::now();
  try {
    // ---- the frozen model and the class embeddings ------------------------------------------------
    const digits_run::DigitsRun run = digits_run::load_digits_run(o.run, {Modality::kAudio});
    NoGrad no_grad_outer;
    const eval::Matrix text = digits_run::text_prototypes(run);
    const TensorT text_classes = to_classes(text);
    auto embed_audio = [&](const TensorT& x) {
      auto& encoder = run.model->encoder(Modality::kAudio);
      const TensorT e = train::cache_embeddings<T, Device>(x.shape()[0], 250, [&](const Indices& idx) {
        return encoder.encode(ops::index_select_forward(x, 0, Ids::from_vector(idx)));
      });
      return eval::normalize_rows(eval::to_matrix(e));
    };

    // ---- data: glyphs, scenes, sounds --------------------------------------------------------------
    const auto t_data = std::chrono::steady_clock::now();
    data::synth::SynthConfig synth;
    synth.seed = o.seed;
    synth.noise = 1.0;
    const data::synth::DigitBatch train_src = data::synth::make_batch(synth, 0, o.glyphs);
    const int64_t test_glyphs = std::max<int64_t>(200, o.test_scenes);
    const data::synth::DigitBatch prompt_src = data::synth::make_batch(synth, o.n_train, o.prompt_sounds);
    const data::synth::DigitBatch test_src =
        data::synth::make_batch(synth, o.n_train + o.prompt_sounds, test_glyphs);
    const auto train_glyphs = scenes::synth_glyphs(train_src.image, train_src.labels.to_vector());
    const auto test_glyphs_b = scenes::synth_glyphs(test_src.image, test_src.labels.to_vector());
    std::vector<scenes::Glyph> mnist_train, mnist_test;
    if (!o.mnist.empty()) {  // t10k: the first 8000 images train, the last 2000 test
      const data::MnistSet m = data::load_mnist(o.mnist, "t10k");
      const int64_t split = m.size() * 4 / 5;
      mnist_train = scenes::mnist_glyphs(m, 0, std::min(split, o.glyphs));
      mnist_test = scenes::mnist_glyphs(m, split, m.size() - split);
    }
    std::vector<const std::vector<scenes::Glyph>*> train_sources = {&train_glyphs};
    if (!mnist_train.empty()) train_sources.push_back(&mnist_train);
    const scenes::SceneOptions so;
    const int64_t grid = so.size / kStride;
    const uint64_t train_seed = nn::init::derive_seed(o.seed, 0x8a1u),
                   test_seed = nn::init::derive_seed(o.seed, 0x8a2u);
    std::map<std::string, SceneBatch> test_sets;
    test_sets["built-in"] = make_scenes({&test_glyphs_b}, so, test_seed, 0, o.test_scenes);
    if (!mnist_test.empty())
      test_sets["MNIST"] = make_scenes({&mnist_test}, so, test_seed + 1, 0, o.test_scenes);

    std::map<std::string, SoundPrompts> prompts;
    prompts["built-in sounds"] = sound_prompts(embed_audio(prompt_src.audio), prompt_src.labels.to_vector(),
                                               text, o.single_draws, o.seed);
    TensorT fsdd_inputs;
    std::string fsdd_note;
    if (!o.fsdd.empty()) {
      std::vector<std::string> held;
      std::stringstream ss(o.held_out);
      for (std::string s; std::getline(ss, s, ',');)
        if (!s.empty()) held.push_back(s);
      const auto recordings = data::list_fsdd(o.fsdd);
      const data::FsddSplit split = data::split_by_speaker(recordings, {held.begin(), held.end()});
      // builtin: the generator's audio format (16 kHz, 32 mel bands from 20 Hz to 8 kHz, 64 frames:
      // FsddOptions' defaults), normalized with the FSDD constants; cmvn: the features 02's real-data
      // run trained its audio encoder on.
      fsdd_inputs = o.fsdd_features == "cmvn" ? digits_run::fsdd_cmvn_inputs(split.test)
                                              : data::fsdd_batch<T>(split.test);
      std::vector<int64_t> labels;
      for (const auto& r : split.test) labels.push_back(r.digit);
      prompts["FSDD held-out speakers"] =
          sound_prompts(embed_audio(fsdd_inputs), labels, text, o.single_draws, o.seed);
      fsdd_note = std::to_string(split.test.size()) + " recordings of " + o.held_out;
    }
    std::fprintf(stderr, "data: %lld training glyphs%s, %lld test scenes per set, %.1f s\n",
                 static_cast<long long>(o.glyphs), mnist_train.empty() ? "" : " (+ as many MNIST)",
                 static_cast<long long>(o.test_scenes), seconds_since(t_data));
    for (const auto& [name, p] : prompts) {
      // How the sound prompts sit against the text prompts the detector learned: cosine of the same
      // digit's prompts, and of different digits' (on the class embeddings actually used).
      const std::vector<T> a = p.mean.to_vector(), t = text_classes.to_vector();
      const int64_t dim = text.cols;
      double same = 0, other = 0;
      for (int64_t k = 0; k < kClasses; ++k)
        for (int64_t l = 0; l < kClasses; ++l) {
          double c = 0;
          for (int64_t d = 0; d < dim; ++d)
            c += a[static_cast<size_t>(k * dim + d)] * t[static_cast<size_t>(l * dim + d)];
          (k == l ? same : other) += c / (k == l ? kClasses : kClasses * (kClasses - 1));
        }
      std::printf(
          "%s: zero-shot top-1 against the text prompts %.1f%%; cosine to the text prompt of the same "
          "digit %.3f, of other digits %.3f\n",
          name.c_str(), 100 * p.zero_shot, same, other);
    }

    // ---- training with the text class embeddings only ---------------------------------------------
    const auto t_train = std::chrono::steady_clock::now();
    Detector net(o.width, text.cols, nn::init::derive_seed(o.seed, 0x8a3u));
    net.train();
    optim::AdamW<T, Device> opt(net.parameters(), {.lr = o.lr, .weight_decay = o.weight_decay});
    const int64_t warmup = std::max<int64_t>(1, o.steps / 20);
    double avg_focal = 0, avg_box = 0;
    for (int64_t step = 0; step < o.steps; ++step) {
      const double progress = static_cast<double>(step) / static_cast<double>(o.steps);
      opt.set_lr(step < warmup ? o.lr * static_cast<double>(step + 1) / static_cast<double>(warmup)
                               : o.lr * 0.5 * (1 + std::cos(3.141592653589793 * progress)));
      const SceneBatch b =
          make_scenes(train_sources, so, train_seed, static_cast<uint64_t>(step * o.batch), o.batch);
      EnableGrad enable;
      opt.zero_grad();
      const auto [focal, box] = detection_loss(net, b, text_classes, grid);
      ops::add(focal, box).backward();
      opt.step();
      avg_focal = step == 0 ? focal.value().item() : 0.95 * avg_focal + 0.05 * focal.value().item();
      avg_box = step == 0 ? box.value().item() : 0.95 * avg_box + 0.05 * box.value().item();
      if ((step + 1) % 50 == 0 || step + 1 == o.steps) {
        std::fprintf(stderr, "step %lld/%lld  focal %.3f  box %.3f  %.1f s\n",
                     static_cast<long long>(step + 1), static_cast<long long>(o.steps), avg_focal, avg_box,
                     seconds_since(t_train));
      }
    }
    net.eval();
    const double train_seconds = seconds_since(t_train);

    // ---- evaluation: the same detector, the class embeddings swapped ------------------------------
    const auto t_eval = std::chrono::steady_clock::now();
    nlohmann::json j;
    std::map<std::string, std::vector<PromptResult>> results;  // scene set -> prompt sets
    std::vector<eval::Detection> picture_dets;
    for (const auto& [set_name, scenes_b] : test_sets) {
      const Cached cached = run_detector(net, scenes_b.images);
      const auto truth = truth_of(scenes_b);
      const int64_t n = scenes_b.images.shape()[0];
      auto score = [&](const TensorT& classes) {
        return eval::detection_ap(decode(net, cached, classes, n, grid), truth, kClasses, 0.5);
      };
      auto fill = [](PromptResult& r, const eval::DetectionResult& d) {
        for (int64_t k = 0; k < kClasses; ++k)
          r.ap[static_cast<size_t>(k)] = d.per_class[static_cast<size_t>(k)].ap;
        r.map = d.map;
      };
      std::vector<PromptResult>& rs = results[set_name];
      PromptResult t{"text"};
      fill(t, score(text_classes));
      rs.push_back(t);
      for (const auto& [pname, p] : prompts) {
        PromptResult r{pname + " (class mean)"};
        fill(r, score(p.mean));
        rs.push_back(r);
        PromptResult single{pname + " (one sound)"};
        std::vector<double> maps;
        for (const TensorT& classes : p.singles) {
          const eval::DetectionResult d = score(classes);
          maps.push_back(d.map);
          for (int64_t k = 0; k < kClasses; ++k)
            single.ap[static_cast<size_t>(k)] +=
                d.per_class[static_cast<size_t>(k)].ap / static_cast<double>(p.singles.size());
        }
        for (double m : maps) single.map += m / static_cast<double>(maps.size());
        for (double m : maps) single.map_std += (m - single.map) * (m - single.map);
        single.map_std =
            maps.size() > 1 ? std::sqrt(single.map_std / static_cast<double>(maps.size() - 1)) : 0.0;
        single.draws = static_cast<int64_t>(maps.size());
        rs.push_back(single);
      }
      if (set_name == "built-in")
        picture_dets = decode(net, cached, prompts.at("built-in sounds").singles.front(), n, grid);
      for (const PromptResult& r : rs) {
        std::printf("%s scenes, %s prompts: mAP@0.5 %.1f%%", set_name.c_str(), r.name.c_str(), 100 * r.map);
        if (r.draws > 1)
          std::printf(" ± %.1f (%lld draws)", 100 * r.map_std, static_cast<long long>(r.draws));
        std::printf("\n");
      }
    }
    const double eval_seconds = seconds_since(t_eval);

    // ---- report -----------------------------------------------------------------------------------
    std::filesystem::create_directories(o.out);
    const SceneBatch& shown = test_sets.at("built-in");
    write_picture(o.out + "/detections.png", shown, std::min<int64_t>(12, o.test_scenes), picture_dets,
                  prompt_src.audio, prompts.at("built-in sounds").single_rows.front(), 0.3);
    const double total = seconds_since(t_start);
    const auto& builtin = results.at("built-in");
    auto map_of = [&builtin](const std::string& name) {
      for (const PromptResult& r : builtin)
        if (r.name == name) return r.map;
      throw ValueError("08_detection: no result for " + name);
    };
    const double text_map = map_of("text"), sound_map = map_of("built-in sounds (class mean)");
    const double ratio = text_map > 0 ? sound_map / text_map : 0.0;
    j["run"] = o.run;
    j["threads"] = o.threads;
    j["steps"] = o.steps;
    j["batch"] = o.batch;
    j["width"] = o.width;
    j["lr"] = o.lr;
    j["test_scenes"] = o.test_scenes;
    j["parameters"] = net.num_parameters();
    j["seconds"] = {{"total", total}, {"train", train_seconds}, {"eval", eval_seconds}};
    j["ratio_builtin_sound_to_text"] = ratio;
    j["center_prompts"] = o.center;
    for (const auto& [name, p] : prompts) j["sound_zero_shot"][name] = p.zero_shot;
    for (const auto& [set_name, rs] : results)
      for (const PromptResult& r : rs)
        j["scenes"][set_name][r.name] = {
            {"map", r.map}, {"map_std", r.map_std}, {"draws", r.draws}, {"ap", r.ap}};
    std::ostringstream md;
    md << "# Audio-prompted detection (paper Figure 5, in miniature)\n\n"
       << "Model: `" << o.run << "` (frozen). Detector: " << net.num_parameters() << " parameters, trained "
       << o.steps << " steps of " << o.batch
       << " fresh scenes with the text class embeddings only; tested on " << o.test_scenes
       << " held-out scenes per set with the class embeddings replaced. AP@0.5 (all-point interpolation) "
          "%.\n\n";
    for (const auto& [set_name, rs] : results) {
      md << "## " << set_name << " scenes\n\n| digit |";
      for (const PromptResult& r : rs) md << " " << r.name << " |";
      md << "\n|---|";
      for (size_t i = 0; i < rs.size(); ++i) md << "---|";
      md << "\n";
      for (int64_t k = 0; k < kClasses; ++k) {
        md << "| " << kClassNames[static_cast<size_t>(k)] << " |";
        for (const PromptResult& r : rs) md << " " << percent(r.ap[static_cast<size_t>(k)]) << " |";
        md << "\n";
      }
      md << "| **mAP** |";
      for (const PromptResult& r : rs)
        md << " **" << percent(r.map) << "**" << (r.draws > 1 ? " ± " + percent(r.map_std) : "") << " |";
      md << "\n\n";
    }
    char line[256];
    std::snprintf(line, sizeof(line),
                  "Built-in scenes: sound-prompted (class mean) mAP / text-prompted mAP = %.3f.\n\n", ratio);
    md << line << "Sound prompts' zero-shot top-1 against the text prompts:";
    for (const auto& [name, p] : prompts) md << " " << name << " " << percent(p.zero_shot) << "%;";
    if (!fsdd_note.empty()) md << " FSDD: " << fsdd_note << ".";
    std::snprintf(line, sizeof(line),
                  "\n\nRun time: %.0f s on %d thread%s (training %.0f s, evaluation %.0f s).\n\n", total,
                  o.threads, o.threads == 1 ? "" : "s", train_seconds, eval_seconds);
    md << line << "![detections prompted by one sound per digit](detections.png)\n";
    std::ofstream(o.out + "/report.md") << md.str();
    std::ofstream(o.out + "/results.json") << j.dump(2) << "\n";
    std::printf("built-in scenes: sound/text mAP ratio %.3f\n", ratio);
    bool ok = true;
    if (o.require_ratio >= 0) {
      const bool pass = ratio >= o.require_ratio;
      std::printf("ratio %.3f (required %.3f): %s\n", ratio, o.require_ratio, pass ? "ok" : "FAILED");
      ok = ok && pass;
    }
    if (o.require_map >= 0) {
      const bool pass = text_map >= o.require_map;
      std::printf("text mAP %.3f (required %.3f): %s\n", text_map, o.require_map, pass ? "ok" : "FAILED");
      ok = ok && pass;
    }
    std::printf("wrote %s/report.md, results.json, detections.png (%.0f s)\n", o.out.c_str(), total);
    return ok ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "08_detection: %s\n", e.what());
    return 2;
  }
}
