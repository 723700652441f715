// examples/02_imagebind_digits/recipe.hpp — the ImageBind recipe on a dataset of digits.
//
// Stage 1 (CLIP): image and text encoders trained together with symmetric InfoNCE on image-caption
// pairs (learnable temperature). Stage 2 (binding): image and text frozen, the image embeddings of
// the training set computed once and cached; each other modality's encoder is trained with InfoNCE
// against the image embeddings of its naturally paired samples only — it never sees text. Then each
// bound modality is classified zero-shot against text prompts (an emergent ability: that pairing was
// never trained), next to a supervised classifier of the same encoder size trained with labels.
//
// The model IS an ImageBind: ImageBindModel with a small config (same stems, trunks, heads and
// postprocessors, the reference's key layout), so the trained weights save as a checkpoint that
// bindery-embed loads with the saved config.json.
#pragma once

#include <bindery/bindery.hpp>
#include <bindery/dist/process_group.hpp>
#include <bindery/eval/zero_shot.hpp>
#include <bindery/io/safetensors.hpp>
#include <bindery/models/imagebind/model.hpp>
#include <bindery/nn/linear.hpp>
#include <bindery/ops/index.hpp>
#include <bindery/train/trainer.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "vocab.hpp"

namespace digits {

using namespace bindery;
namespace ib = bindery::models::imagebind;
using ib::Modality;
using T = float;
using Device = Cpu;  // the backend policy: every tensor, module and optimizer below takes it
using TensorT = Tensor<T, Device>;
using VarT = Var<T, Device>;
using Ids = Tensor<int64_t, Device>;
using Indices = std::vector<int64_t>;

inline const std::vector<std::string> kClassNames = {"zero", "one", "two",   "three", "four",
                                                     "five", "six", "seven", "eight", "nine"};
/// Zero-shot prompt ensemble ("{}" is the class name). Captions of the training data use other
/// phrasings too; these are the questions asked at test time.
inline const std::vector<std::string> kPromptTemplates = {
    "a handwritten {}", "the digit {}", "someone writes a {}", "a {} written by hand", "the number {}"};

/// One bound modality's samples.
struct BoundSet {
  TensorT values;                  // (N, ...) model inputs
  std::vector<int64_t> labels;     // (N) digit
  std::vector<int64_t> image_row;  // train: the row of Dataset::images each sample is paired with
  /// Pairing by event class instead of by row (real data: a spoken "seven" and a written 7 are the
  /// same event only as a class): each step pairs sample i with a different image of its label,
  /// drawn from a stream keyed by (seed, i, step) — resumable, and no fixed image to memorize.
  bool pair_by_label = false;
  /// Training augmentation of (N, 1, M, F) inputs: a random shift in time by up to this many frames
  /// (zeros fill in), keyed by (seed, i, step) like the re-pairing.
  int64_t max_time_shift = 0;
};

struct Dataset {
  std::string name;
  TensorT images;  // (N, 3, S, S): stage-1 pairs (with captions) and the anchors of stage 2
  std::vector<std::string> captions;
  std::vector<int64_t> image_labels;
  TensorT test_images;
  std::vector<int64_t> test_image_labels;
  std::map<Modality, BoundSet> train, test;  // the modalities bound in stage 2
  std::vector<int64_t> test_image_inks;      // built-in data: the ink colour of each test image
  std::vector<std::string> ink_names;        // empty for real data
};

struct EncoderSize {
  int64_t width = 64, blocks = 2, heads = 4;
};

struct RecipeOptions {
  uint64_t seed = 1;
  EncoderSize vision{}, text{}, other{};
  int64_t out_dim = 64, context = 16;
  std::vector<int64_t> audio_kernel;  // audio patch (mel bins, frames); empty: a quarter of each
  int64_t batch = 128;
  int64_t stage1_steps = 500, stage2_steps = 400, supervised_steps = 400;
  double lr = 2e-3;
  int64_t eval_every = 100;
  bool supervised = true;
  bool progress = true;
  std::string out_dir;  // checkpoints/ and metrics.jsonl go here when not empty
  bool resume = false;
  int64_t checkpoint_every = 100;
  Precision precision = Precision::kFloat32;  // GEMMs of every training step (autocast)
  /// The ranks training together (mpirun; dist::init()): every Trainer runs data-parallel over them,
  /// `batch` stays the global batch. Null: this process alone.
  std::shared_ptr<dist::ProcessGroup> group;
};

/// ImageBind's structure at digit scale: each encoder spec sized from the dataset's tensors.
inline ib::ImageBindConfig make_config(const Dataset& data, const RecipeOptions& o, int64_t vocab_size) {
  using S = ib::StemKind;
  using H = ib::HeadKind;
  std::vector<std::pair<Modality, ib::EncoderSpec>> specs;
  const int64_t side = data.images.shape()[2];
  // TUTORIAL: an encoder is a spec filled with designated initializers; fields left out keep their
  // defaults (ib::EncoderSpec in models/imagebind/config.hpp).
  specs.push_back({Modality::kVision,
                   {.stem = S::kVideoPatches,
                    .stem_key = "rgbt_stem",
                    .input_shape = {3, 2, side, side},
                    .kernel = {2, side / 4, side / 4},
                    .stem_norm = false,
                    .embed_dim = o.vision.width,
                    .num_blocks = o.vision.blocks,
                    .num_heads = o.vision.heads,
                    .pre_transformer_ln = true}});
  specs.push_back({Modality::kText,
                   {.stem = S::kTokens,
                    .stem_key = "",
                    .input_shape = {o.context},
                    .stem_norm = false,
                    .vocab_size = vocab_size,
                    .causal_mask = true,
                    .embed_dim = o.text.width,
                    .num_blocks = o.text.blocks,
                    .num_heads = o.text.heads,
                    .head = H::kEosToken,
                    .logit_scale = 1.0 / 0.07,
                    .learnable_logit_scale = true}});
  // The bound modalities share everything but the stem: bias_kv, no pre-LN, a class-token head and
  // ImageBind's fixed per-modality logit scale.
  auto bound = [&o](S stem, const char* key, std::vector<int64_t> shape, std::vector<int64_t> kernel,
                    double logit_scale) {
    return ib::EncoderSpec{.stem = stem,
                           .stem_key = key,
                           .input_shape = std::move(shape),
                           .kernel = std::move(kernel),
                           .embed_dim = o.other.width,
                           .num_blocks = o.other.blocks,
                           .num_heads = o.other.heads,
                           .add_bias_kv = true,
                           .logit_scale = logit_scale};
  };
  for (const auto& [m, set] : data.train) {
    const Shape& s = set.values.shape();
    if (m ==
        Modality::kAudio) {  // (1, mel, frames): 4 x 4 patches of 8 mel bins x 16 frames, or o.audio_kernel
      specs.push_back(
          {m,
           bound(S::kImagePatches, "rgbt_stem", {1, s[2], s[3]},
                 o.audio_kernel.empty() ? std::vector<int64_t>{s[2] / 4, s[3] / 4} : o.audio_kernel, 20.0)});
    } else if (m == Modality::kDepth) {  // (1, S, S): 4 x 4 patches
      specs.push_back({m, bound(S::kImagePatches, "depth_stem", {1, s[2], s[3]}, {s[2] / 4, s[3] / 4}, 5.0)});
    } else if (m == Modality::kThermal) {
      specs.push_back({m, bound(S::kImagePatches, "rgbt_stem", {1, s[2], s[3]}, {s[2] / 4, s[3] / 4}, 10.0)});
    } else if (m == Modality::kImu) {  // (6, T): 16 patches in time
      specs.push_back({m, bound(S::kImuPatches, "imu_stem", {s[1], s[2]}, {s[2] / 16}, 5.0)});
    } else {
      throw ValueError("make_config: stage 2 binds audio, depth, thermal or IMU");
    }
  }
  return ib::ImageBindConfig::from_specs(std::move(specs), o.out_dim);
}

/// Rows `idx` of x (a copy).
template <class X>
Tensor<X, Device> rows_of(const Tensor<X, Device>& x, const Indices& idx) {
  return ops::index_select_forward(x, 0, Ids::from_vector(idx));
}
inline Indices iota(int64_t n) {
  Indices idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  return idx;
}
template <class X>
std::vector<X> pick(const std::vector<X>& v, const Indices& idx) {
  std::vector<X> out;
  for (int64_t i : idx) out.push_back(v[static_cast<size_t>(i)]);
  return out;
}

/// Shifts each row of x (N, C, M, F) in time (the last axis) by a random number of frames in
/// [-max_shift, max_shift], filling with zeros; the shift of sample idx[r] at `step` is fixed.
inline void time_shift(TensorT& x, int64_t max_shift, uint64_t seed, const Indices& idx, int64_t step) {
  const int64_t n = x.shape()[0], frames = x.shape()[x.rank() - 1];
  const int64_t rows = x.numel() / (n * frames);
  T* v = x.data();
  std::vector<T> line(static_cast<size_t>(frames));
  for (int64_t r = 0; r < n; ++r) {
    Philox rng(nn::init::derive_seed(seed ^ 0x5817, static_cast<uint64_t>(idx[static_cast<size_t>(r)])),
               static_cast<uint64_t>(step));
    const int64_t shift =
        static_cast<int64_t>(rng.next_below(static_cast<uint64_t>(2 * max_shift + 1))) - max_shift;
    for (int64_t k = 0; k < rows; ++k) {
      T* u = v + (r * rows + k) * frames;
      for (int64_t f = 0; f < frames; ++f) {
        const int64_t from = f - shift;
        line[static_cast<size_t>(f)] = from >= 0 && from < frames ? u[from] : T(0);
      }
      std::copy(line.begin(), line.end(), u);
    }
  }
}

struct ModalityScores {
  double zero_shot = 0, zero_shot_top5 = 0, supervised = -1, recall1 = 0,
         recall5 = 0;  // recall: modality -> image
  std::vector<double> per_class;
};

/// Embedding arithmetic, ImageBind's "audio + text -> image": for test sounds of digit d and a colour
/// c, the nearest test image to normalize(audio + text("written in c ink")) — does it show digit d
/// written in c? Next to the nearest image to the sound alone (c then matches by chance).
struct ArithmeticScores {
  int64_t queries = 0;
  double audio_digit = 0, audio_colour = 0;            // nearest image to the sound alone
  double sum_digit = 0, sum_colour = 0, sum_both = 0;  // nearest image to sound + colour text
};

struct RecipeResult {
  ArithmeticScores arithmetic;
  std::map<Modality, ModalityScores> scores;  // vision: its own zero-shot (stage 1); others: emergent
  double seconds_stage1 = 0, seconds_stage2 = 0, seconds_supervised = 0;
  int64_t params_vision = 0, params_text = 0;
  std::map<Modality, int64_t> params;
  std::vector<nlohmann::json> history;
  // test embeddings for plots (normalized rows), per modality, and the text prototypes
  std::map<Modality, eval::Matrix> test_embeddings;
  std::map<Modality, std::vector<int64_t>> test_labels;
  eval::Matrix prototypes;
  std::shared_ptr<ib::ImageBindModel<T, Device>> model;
  ib::ImageBindConfig config;
};

/// Everything of one run of the recipe.
class Recipe {
 public:
  Recipe(const Dataset& data, RecipeOptions options)
      : data_(data), o_(std::move(options)), vocab_(corpus(data)) {
    config_ = make_config(data_, o_, vocab_.size());
    model_ = std::make_shared<ib::ImageBindModel<T, Device>>(config_, std::vector<Modality>{}, o_.seed);
    caption_ids_ = vocab_.encode(data_.captions, o_.context);
  }

  RecipeResult run() {
    RecipeResult r;
    r.config = config_;
    r.model = model_;
    r.params_vision = model_->num_parameters(Modality::kVision);
    r.params_text = model_->num_parameters(Modality::kText);
    for (const auto& [m, set] : data_.train) r.params[m] = model_->num_parameters(m);

    // ---- stage 1: image <-> text, both trained (the CLIP stage) ----------------------------------
    const int64_t n_images = data_.images.shape()[0];
    auto vision = encoder_ptr(Modality::kVision);
    auto text = encoder_ptr(Modality::kText);
    train::Task<T, Device> clip = train::contrastive_task<T, Device>(
        "image-text", n_images,
        [&](const Indices& idx) { return vision->encode(rows_of(data_.images, idx)); },
        [&](const Indices& idx) { return text->encode(rows_of(caption_ids_, idx)); },
        {.init_scale = 1.0 / 0.07, .max_scale = 100.0, .learnable = true});
    train::Trainer<T, Device> stage1(trainer_options("stage 1", o_.stage1_steps, "stage1"),
                                     {{"vision", vision}, {"text", text}}, {clip});
    stage1.set_evaluator([&](int64_t) {
      const ZeroShot z = zero_shot(Modality::kVision, data_.test_images, data_.test_image_labels);
      return nlohmann::json{{"zero_shot", {{"vision", z.result.top1}}}};
    });
    const train::TrainResult t1 = stage1.run();
    r.seconds_stage1 = t1.seconds;
    append(r.history, t1.history);

    // ---- freeze image and text; cache the image embeddings of the training set -------------------
    vision->set_requires_grad(false).eval();
    text->set_requires_grad(false).eval();
    prototypes_ = prompt_prototypes();
    const TensorT image_cache = train::cache_embeddings<T, Device>(
        n_images, 256, [&](const Indices& idx) { return vision->encode(rows_of(data_.images, idx)); });

    // ---- stage 2: bind each other modality to the frozen image space ----------------------------
    std::vector<train::Trainer<T, Device>::Named> bound;
    std::vector<train::Task<T, Device>> tasks;
    std::vector<std::vector<int64_t>> by_label(10);
    for (int64_t i = 0; i < n_images; ++i)
      by_label[static_cast<size_t>(data_.image_labels[static_cast<size_t>(i)])].push_back(i);
    const train::Trainer<T, Device>* running = nullptr;  // set below: the step keys the re-pairing
    for (const auto& [m, set] : data_.train) {
      auto encoder = encoder_ptr(m);
      bound.emplace_back(ib::modality_name(m), encoder);
      const BoundSet* s = &set;
      auto anchor_rows = [s, &by_label, &running, seed = o_.seed](const Indices& idx) {
        if (!s->pair_by_label) return pick(s->image_row, idx);
        Indices rows;
        for (int64_t i : idx) {
          const auto& pool = by_label[static_cast<size_t>(s->labels[static_cast<size_t>(i)])];
          Philox rng(nn::init::derive_seed(seed, static_cast<uint64_t>(i)),
                     static_cast<uint64_t>(running->current_step()));
          rows.push_back(pool[rng.next_below(pool.size())]);
        }
        return rows;
      };
      tasks.push_back(train::contrastive_task<T, Device>(
          ib::modality_name(m), set.values.shape()[0],
          [anchor_rows, &image_cache](const Indices& idx) {
            return VarT(rows_of(image_cache, anchor_rows(idx)));
          },
          [s, encoder, &running, seed = o_.seed](const Indices& idx) {
            TensorT x = rows_of(s->values, idx);
            if (s->max_time_shift > 0) time_shift(x, s->max_time_shift, seed, idx, running->current_step());
            return encoder->encode(x);
          },
          {.init_scale = 1.0 / 0.07, .max_scale = 100.0, .learnable = true}));
    }
    train::Trainer<T, Device> stage2(trainer_options("stage 2", o_.stage2_steps, "stage2"), bound, tasks);
    running = &stage2;
    stage2.set_evaluator([&](int64_t) {
      nlohmann::json z;
      for (const auto& [m, set] : data_.test)
        z[ib::modality_name(m)] = zero_shot(m, set.values, set.labels).result.top1;
      return nlohmann::json{{"zero_shot", z}};
    });
    const train::TrainResult t2 = stage2.run();
    r.seconds_stage2 = t2.seconds;
    append(r.history, t2.history);

    // ---- measure ---------------------------------------------------------------------------------
    {
      NoGrad no_grad;
      model_->eval();
      const ZeroShot zv = zero_shot(Modality::kVision, data_.test_images, data_.test_image_labels);
      r.scores[Modality::kVision] = {zv.result.top1, zv.result.top5, -1, 1, 1, zv.result.per_class};
      r.test_embeddings[Modality::kVision] = zv.embeddings;
      r.test_labels[Modality::kVision] = data_.test_image_labels;
      for (const auto& [m, set] : data_.test) {
        const ZeroShot z = zero_shot(m, set.values, set.labels);
        ModalityScores& s = r.scores[m];
        s.zero_shot = z.result.top1;
        s.zero_shot_top5 = z.result.top5;
        s.per_class = z.result.per_class;
        r.test_embeddings[m] = z.embeddings;
        r.test_labels[m] = set.labels;
        if (!set.image_row.empty()) {  // instance retrieval modality -> its paired test image
          eval::Matrix images(static_cast<int64_t>(set.image_row.size()),
                              zv.embeddings.cols);  // rows of zv's
          for (size_t i = 0; i < set.image_row.size(); ++i)
            std::copy(zv.embeddings.row(set.image_row[i]), zv.embeddings.row(set.image_row[i]) + images.cols,
                      images.row(static_cast<int64_t>(i)));
          const eval::RecallResult recall = eval::retrieval_recall(z.embeddings, images, {1, 5});
          s.recall1 = recall.a_to_b[0];
          s.recall5 = recall.a_to_b[1];
        }
      }
      r.prototypes = prototypes_;
      if (!data_.ink_names.empty() && r.test_embeddings.count(Modality::kAudio))
        r.arithmetic = arithmetic(r.test_embeddings.at(Modality::kVision),
                                  r.test_embeddings.at(Modality::kAudio), r.test_labels.at(Modality::kAudio));
    }

    // ---- the supervised reference: same encoder size, trained with labels -----------------------
    if (o_.supervised) {
      const auto t0 = std::chrono::steady_clock::now();
      supervised(r);
      r.seconds_supervised = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    return r;
  }

  const WordVocab& vocab() const { return vocab_; }

  /// Normalized embeddings of a batch of inputs of modality m (N, out), in batches of 256.
  eval::Matrix embed(Modality m, const TensorT& values) {
    auto& encoder = model_->encoder(m);
    const TensorT e = train::cache_embeddings<T, Device>(
        values.shape()[0], 256, [&](const Indices& idx) { return encoder.encode(rows_of(values, idx)); });
    return eval::normalize_rows(eval::to_matrix(e));
  }
  /// Normalized text embeddings of strings.
  eval::Matrix embed_text(const std::vector<std::string>& texts) {
    NoGrad no_grad;
    return eval::normalize_rows(
        eval::to_matrix(model_->encoder(Modality::kText).encode(vocab_.encode(texts, o_.context)).value()));
  }

 private:
  struct ZeroShot {
    eval::ZeroShotResult result;
    eval::Matrix embeddings;
  };

  ArithmeticScores arithmetic(const eval::Matrix& images, const eval::Matrix& sounds,
                              const std::vector<int64_t>& sound_labels) {
    std::vector<std::string> colour_prompts;
    for (const auto& name : data_.ink_names) colour_prompts.push_back("written in " + name + " ink");
    const eval::Matrix colours = embed_text(colour_prompts);
    ArithmeticScores a;
    const int64_t n = std::min<int64_t>(sounds.rows, 600), inks = colours.rows;
    auto row = [](const eval::Matrix& m, int64_t i) {
      return std::vector<double>(m.row(i), m.row(i) + m.cols);
    };
    for (int64_t i = 0; i < n; ++i) {
      const int64_t digit = sound_labels[static_cast<size_t>(i)], colour = i % inks;
      const int64_t alone = eval::nearest(row(sounds, i), images, 1)[0].index;
      const int64_t both =
          eval::nearest(eval::combine({row(sounds, i), row(colours, colour)}, {1.0, 1.0}), images, 1)[0]
              .index;
      auto digit_of = [&](int64_t j) { return data_.test_image_labels[static_cast<size_t>(j)]; };
      auto ink_of = [&](int64_t j) { return data_.test_image_inks[static_cast<size_t>(j)]; };
      a.audio_digit += digit_of(alone) == digit;
      a.audio_colour += ink_of(alone) == colour;
      a.sum_digit += digit_of(both) == digit;
      a.sum_colour += ink_of(both) == colour;
      a.sum_both += digit_of(both) == digit && ink_of(both) == colour;
    }
    a.queries = n;
    for (double* v : {&a.audio_digit, &a.audio_colour, &a.sum_digit, &a.sum_colour, &a.sum_both})
      *v /= static_cast<double>(std::max<int64_t>(n, 1));
    return a;
  }

  static std::vector<std::string> corpus(const Dataset& data) {
    std::vector<std::string> texts = data.captions;
    for (const auto& name : kClassNames)
      for (const auto& t : kPromptTemplates) texts.push_back(eval::fill_template(t, name));
    for (const auto& ink : data.ink_names) texts.push_back("written in " + ink + " ink");
    return texts;
  }

  std::shared_ptr<ib::Encoder<T, Device>> encoder_ptr(Modality m) {
    return std::shared_ptr<ib::Encoder<T, Device>>(model_,
                                                   &model_->encoder(m));  // aliasing: owned by the model
  }

  eval::Matrix prompt_prototypes() {
    return eval::prompt_prototypes([&](const std::vector<std::string>& p) { return embed_text(p); },
                                   kClassNames, kPromptTemplates);
  }

  ZeroShot zero_shot(Modality m, const TensorT& values, const std::vector<int64_t>& labels) {
    if (m == Modality::kVision || prototypes_.rows == 0) prototypes_ = prompt_prototypes();
    ZeroShot z;
    z.embeddings = embed(m, values);
    z.result = eval::zero_shot(z.embeddings, prototypes_, labels);
    return z;
  }

  train::TrainerOptions trainer_options(const std::string& label, int64_t steps,
                                        const std::string& dir) const {
    train::TrainerOptions t;
    t.label = label;
    t.steps = steps;
    t.batch_size = o_.batch;
    t.lr = o_.lr;
    t.min_lr = o_.lr * 0.02;
    t.warmup_steps = std::max<int64_t>(1, steps / 10);
    t.weight_decay = 0.05;
    t.seed = nn::init::derive_seed(o_.seed, std::hash<std::string>{}(dir));
    t.eval_every = o_.eval_every;
    t.progress = o_.progress;
    t.precision = o_.precision;
    t.group = o_.group;
    if (!o_.out_dir.empty()) {
      t.checkpoint_dir = o_.out_dir + "/checkpoints/" + dir;
      t.checkpoint_every = o_.checkpoint_every;
      t.keep_last = 2;
      t.resume = o_.resume;
      t.metrics_path = o_.out_dir + "/metrics.jsonl";
    }
    return t;
  }

  /// Per bound modality: a fresh encoder of the same config + Linear(out_dim, 10), cross-entropy.
  void supervised(RecipeResult& r) {
    struct Classifier : nn::Module<T, Device> {
      Classifier(const ib::EncoderConfig& c, int64_t classes, uint64_t seed) {
        encoder = register_module("encoder", ib::make_encoder<T, Device>(c, seed));
        head = register_module("classifier",
                               std::make_shared<nn::Linear<T, Device>>(c.out_dim, classes, true, seed + 1));
      }
      VarT forward(const TensorT& x) { return head->forward(encoder->encode_stages(x).head); }
      std::shared_ptr<ib::Encoder<T, Device>> encoder;
      std::shared_ptr<nn::Linear<T, Device>> head;
    };
    std::map<Modality, std::shared_ptr<Classifier>> classifiers;
    std::vector<train::Trainer<T, Device>::Named> modules;
    std::vector<train::Task<T, Device>> tasks;
    const train::Trainer<T, Device>* running = nullptr;  // set below
    for (const auto& [m, set] : data_.train) {
      auto c = std::make_shared<Classifier>(config_.at(m), 10,
                                            nn::init::derive_seed(o_.seed + 7, ib::modality_seed_index(m)));
      classifiers[m] = c;
      modules.emplace_back(ib::modality_name(m), c);
      const BoundSet* s = &set;
      tasks.push_back(train::classification_task<T, Device>(
          ib::modality_name(m), set.values.shape()[0],
          [s, c, &running, seed = o_.seed](const Indices& idx) {  // the same augmentation as stage 2
            TensorT x = rows_of(s->values, idx);
            if (s->max_time_shift > 0) time_shift(x, s->max_time_shift, seed, idx, running->current_step());
            return c->forward(x);
          },
          [s](int64_t i) { return s->labels[static_cast<size_t>(i)]; }));
    }
    train::Trainer<T, Device> trainer(trainer_options("supervised", o_.supervised_steps, "supervised"),
                                      modules, tasks);
    running = &trainer;
    const train::TrainResult t = trainer.run();
    append(r.history, t.history);
    NoGrad no_grad;
    for (const auto& [m, c] : classifiers) {
      c->eval();
      const BoundSet& test = data_.test.at(m);
      const TensorT logits = train::cache_embeddings<T, Device>(
          test.values.shape()[0], 256,
          [&](const Indices& idx) { return c->forward(rows_of(test.values, idx)); });
      const eval::Matrix l = eval::to_matrix(logits);
      int64_t hits = 0;
      for (int64_t i = 0; i < l.rows; ++i) {
        int64_t best = 0;
        for (int64_t k = 1; k < l.cols; ++k) best = l(i, k) > l(i, best) ? k : best;
        hits += best == test.labels[static_cast<size_t>(i)];
      }
      r.scores[m].supervised = static_cast<double>(hits) / static_cast<double>(std::max<int64_t>(l.rows, 1));
    }
  }

  static void append(std::vector<nlohmann::json>& to, const std::vector<nlohmann::json>& from) {
    to.insert(to.end(), from.begin(), from.end());
  }

  const Dataset& data_;
  RecipeOptions o_;
  WordVocab vocab_;
  ib::ImageBindConfig config_;
  std::shared_ptr<ib::ImageBindModel<T, Device>> model_;
  Ids caption_ids_;
  eval::Matrix prototypes_;
};

}  // namespace digits
