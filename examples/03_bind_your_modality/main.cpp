// examples/03_bind_your_modality — bind a NEW modality, with YOUR OWN encoder, to a frozen
// ImageBind image space, and classify it zero-shot from text. The worked example of docs/tutorial.md.
//
// The new modality: the pen trajectory itself — 64 (x, y, pressure) points of the stroke that drew
// each digit of the built-in data (data::synth::pen_trajectory). The encoder: a plain MLP written
// here (--encoder mlp, the default), or an ImageBind transformer described by a public EncoderSpec
// (--encoder spec). The frozen space: the image and text encoders that 02_imagebind_digits trained
// and saved (model.safetensors + config.json + vocab.txt). The new modality is a modality of the
// model — ib::Modality("trajectory") — saved with it under the reference's key layout
// (modality_trunks.trajectory...) into <run>/trajectory/, and reloaded to check.
//
//   ./02_imagebind_digits --out runs/digits             # once: trains and saves the joint space
//   ./03_bind_your_modality --run runs/digits [--steps 300] [--threads 1] [--encoder mlp|spec]
//   # --encoder spec: config.json describes the new encoder too, so bindery-embed embeds it:
//   bindery-embed --weights runs/digits/trajectory-spec/model.safetensors
//       --config runs/digits/trajectory-spec/config.json
//       --input trajectory=runs/digits/trajectory-spec/test_inputs.npy --out emb/
#include <CLI/CLI.hpp>

#include <bindery/bindery.hpp>
#include <bindery/datasets/synth_digits.hpp>
#include <bindery/eval/zero_shot.hpp>
#include <bindery/models/imagebind/model.hpp>
#include <bindery/nn/linear.hpp>
#include <bindery/ops/index.hpp>
#include <bindery/train/trainer.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "../02_imagebind_digits/vocab.hpp"

using namespace bindery;
namespace ib = bindery::models::imagebind;
using T = float;
using Device = Cpu;
using TensorT = Tensor<T, Device>;
using VarT = Var<T, Device>;
using Indices = std::vector<int64_t>;

constexpr int64_t kPoints = 64;
// TUTORIAL: a modality is a name; any lower-case identifier makes a modality of your own.
const ib::Modality kTrajectory("trajectory");

// ---- 1. the new modality's data: one (kPoints, 3) trajectory per sample ------------------------------
/// Resamples the pen trajectory of sample `index` to kPoints points, centred and scaled to unit RMS.
std::vector<T> trajectory_features(const data::synth::SynthConfig& config, int64_t index) {
  const std::vector<data::synth::PenPoint> pen = data::synth::pen_trajectory(config, index);
  std::vector<T> f(kPoints * 3);
  double mx = 0, my = 0;
  for (int64_t k = 0; k < kPoints; ++k) {
    const auto& p = pen[static_cast<size_t>(k * (static_cast<int64_t>(pen.size()) - 1) / (kPoints - 1))];
    f[static_cast<size_t>(3 * k)] = static_cast<T>(p.x);
    f[static_cast<size_t>(3 * k + 1)] = static_cast<T>(p.y);
    f[static_cast<size_t>(3 * k + 2)] = static_cast<T>(p.down ? p.z : 0.0);
    mx += p.x / kPoints;
    my += p.y / kPoints;
  }
  double rms = 0;
  for (int64_t k = 0; k < kPoints; ++k)
    rms += (std::pow(f[3 * k] - mx, 2) + std::pow(f[3 * k + 1] - my, 2)) / kPoints;
  rms = std::sqrt(rms) + 1e-9;
  for (int64_t k = 0; k < kPoints; ++k) {
    f[static_cast<size_t>(3 * k)] = static_cast<T>((f[3 * k] - mx) / rms);
    f[static_cast<size_t>(3 * k + 1)] = static_cast<T>((f[3 * k + 1] - my) / rms);
  }
  return f;
}

TensorT trajectories(const data::synth::SynthConfig& config, int64_t first, int64_t count) {
  std::vector<T> all;
  for (int64_t i = first; i < first + count; ++i) {
    const auto f = trajectory_features(config, i);
    all.insert(all.end(), f.begin(), f.end());
  }
  return TensorT::from_vector(all, {count, kPoints * 3});
}

// ---- 2. your encoder: any Module whose forward gives (N, joint dim) ----------------------------------
// TUTORIAL: register parameters and children in the constructor (their names become checkpoint keys);
// forward composes differentiable ops, so backward comes for free. ib::make_module_encoder turns it
// into a modality encoder (it adds ImageBind's L2-normalizing postprocessor).
class TrajectoryEncoder : public nn::Module<T, Device> {
 public:
  TrajectoryEncoder(int64_t in, int64_t hidden, int64_t out, uint64_t seed) {
    fc1_ = register_module(
        "fc1", std::make_shared<nn::Linear<T, Device>>(in, hidden, nn::LinearOptions{.seed = seed}));
    fc2_ = register_module(
        "fc2", std::make_shared<nn::Linear<T, Device>>(hidden, hidden, nn::LinearOptions{.seed = seed + 1}));
    proj_ = register_module("proj", std::make_shared<nn::Linear<T, Device>>(
                                        hidden, out, nn::LinearOptions{.bias = false, .seed = seed + 2}));
  }
  VarT forward(const TensorT& x) {
    const VarT h = ops::gelu(fc1_->forward(VarT(x)));
    return proj_->forward(ops::gelu(fc2_->forward(h)) + h);  // a residual MLP
  }

 private:
  std::shared_ptr<nn::Linear<T, Device>> fc1_, fc2_, proj_;
};

/// The same trajectories as channels x time, (N, 3, kPoints): the layout of an IMU-style stem.
TensorT as_channels(const TensorT& flat) {
  return flat.reshape({flat.size(0), kPoints, 3}).permute({0, 2, 1}).contiguous();
}

/// --encoder spec: an ImageBind transformer on time patches of 8 points (the IMU stem's family).
ib::EncoderSpec trajectory_spec(int64_t joint_dim) {
  return {.stem = ib::StemKind::kImuPatches,
          .stem_key = "imu_stem",
          .input_shape = {3, kPoints},
          .kernel = {8},
          .embed_dim = 64,
          .num_blocks = 2,
          .num_heads = 4,
          .add_bias_kv = true,
          .out_dim = joint_dim};
}

/// Adds the trajectory encoder of the kind asked to `model`.
void add_trajectory_encoder(ib::ImageBindModel<T, Device>& model, const std::string& kind, int64_t joint_dim,
                            uint64_t seed) {
  if (kind == "spec") {
    const ib::EncoderSpec spec = trajectory_spec(joint_dim);
    model.add_encoder(kTrajectory, ib::make_encoder<T, Device>(spec, seed),
                      spec);  // the spec enters config()
  } else {
    model.add_encoder(kTrajectory, ib::make_module_encoder(std::make_shared<TrajectoryEncoder>(
                                       kPoints * 3, 256, joint_dim, seed)));
  }
}

TensorT rows_of(const TensorT& x, const Indices& idx) {
  return ops::index_select_forward(x, 0, Tensor<int64_t, Device>::from_vector(idx));
}

int main(int argc, char** argv) {
  std::string run;
  int64_t steps = 300, n_train = 6000, n_test = 1000;
  int threads = 1;
  double require = 0.0;
  std::string kind = "mlp";
  std::string out;
  CLI::App app{"Bind a new modality (pen trajectories) with your own encoder to a frozen ImageBind space"};
  app.add_option("--run", run,
                 "output folder of 02_imagebind_digits (model.safetensors, config.json, vocab.txt)")
      ->required();
  app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--require", require, "exit 1 below this zero-shot top-1");
  app.add_option("--encoder", kind,
                 "the trajectory encoder: mlp (a module written here) or spec (an EncoderSpec)")
      ->check(CLI::IsMember({"mlp", "spec"}))
      ->capture_default_str();
  app.add_option("--out", out,
                 "where the model with the new modality goes (default <run>/trajectory-<encoder>)");
  CLI11_PARSE(app, argc, argv);
  if (out.empty()) out = run + "/trajectory-" + kind;
  Cpu::set_num_threads(threads);
  try {
    // ---- 3. the frozen joint space: image and text encoders of a trained ImageBind ----------------
    const ib::ImageBindConfig config = ib::load_config(run + "/config.json");
    auto model = ib::ImageBindModel<T, Device>::from_checkpoint(
        run + "/model.safetensors", config, {ib::Modality::kVision, ib::Modality::kText});  // eval mode
    model->set_requires_grad(false);
    const digits::WordVocab vocab = digits::WordVocab::load(run + "/vocab.txt");
    const int64_t joint_dim = config.at(ib::Modality::kVision).out_dim;
    const int64_t context = config.at(ib::Modality::kText).context_length();

    // ---- 4. naturally paired data: (trajectory, image) of the same written digit ------------------
    const data::synth::SynthConfig synth;  // the built-in data's defaults (seed 1), as the demo
    const auto images = data::synth::make_batch(synth, 0, n_train);
    const TensorT train_flat = trajectories(synth, 0, n_train);
    const auto test_batch = data::synth::make_batch(synth, n_train, n_test);
    const TensorT test_flat = trajectories(synth, n_train, n_test);
    // The MLP takes flat (N, 192) vectors; the spec's stem (N, 3, 64) channels x time.
    const TensorT train_x = kind == "spec" ? as_channels(train_flat) : train_flat;
    const TensorT test_x = kind == "spec" ? as_channels(test_flat) : test_flat;
    const std::vector<int64_t> test_labels = test_batch.labels.to_vector();

    // TUTORIAL: the frozen anchor is embedded once; training reads the cache (no image encoder work).
    auto& vision = model->encoder(ib::Modality::kVision);
    const TensorT image_cache = train::cache_embeddings<T, Device>(
        n_train, 256, [&](const Indices& idx) { return vision.encode(rows_of(images.image, idx)); });

    // ---- 5. your modality joins the model; train it against the frozen images with InfoNCE ----------
    // TUTORIAL: add_encoder registers it as the reference registers its own (modality_trunks.trajectory...),
    // so the model saves, loads and encodes it like vision or text.
    add_trajectory_encoder(*model, kind, joint_dim, 42);
    model->encoder(kTrajectory).train();
    train::TrainerOptions options;
    options.label = "trajectory";
    options.steps = steps;
    options.batch_size = 128;
    options.lr = 2e-3;
    options.warmup_steps = steps / 10;
    options.checkpoint_dir = out + "/checkpoints";  // resumable: a killed run continues, bit for bit
    options.checkpoint_every = 100;
    options.resume = true;
    train::Trainer<T, Device> trainer(
        options, {{"trajectory", model->encoder_ptr(kTrajectory)}},
        {train::contrastive_task<T, Device>(
            "trajectory", n_train, [&](const Indices& idx) { return VarT(rows_of(image_cache, idx)); },
            [&](const Indices& idx) { return model->encode(kTrajectory, rows_of(train_x, idx)); })});
    const train::TrainResult result = trainer.run();
    model->eval();

    // Saved with the model: weights (vision, text and trajectory) and, for a spec, the config.
    std::filesystem::create_directories(out);
    model->save(out + "/model.safetensors");
    ib::save_config(model->config(), out + "/config.json");
    io::write_npy(out + "/test_inputs.npy", test_x);

    // ---- 6. emergent zero-shot: trajectories vs text prompts, a pairing never trained ---------------
    NoGrad no_grad;
    auto embed_text = [&](const std::vector<std::string>& prompts) {
      return eval::to_matrix(model->encode(ib::Modality::kText, vocab.encode(prompts, context)).value());
    };
    const eval::Matrix prototypes = eval::prompt_prototypes(
        embed_text, {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"},
        {"a handwritten {}", "the digit {}", "someone writes a {}", "a {} written by hand", "the number {}"});
    const TensorT test_embeddings = model->encode(kTrajectory, test_x).value();  // (n_test, joint_dim)
    const eval::ZeroShotResult z = eval::zero_shot(eval::to_matrix(test_embeddings), prototypes, test_labels);
    // The frozen space itself, for reference: its images against the same prompts.
    const eval::ZeroShotResult zi =
        eval::zero_shot(eval::to_matrix(vision.encode(test_batch.image).value()), prototypes, test_labels);
    std::printf("the frozen space: image zero-shot top-1 %.1f%%\n", 100 * zi.top1);
    std::printf("trajectory encoder (%s): %lld parameters, %lld steps in %.1f s; final InfoNCE %.3f\n",
                kind.c_str(), static_cast<long long>(model->num_parameters(kTrajectory)),
                static_cast<long long>(result.steps), result.seconds,
                result.final_loss.count("trajectory") ? result.final_loss.at("trajectory") : NAN);
    std::printf(
        "emergent zero-shot top-1 of pen trajectories against text prompts: %.1f%% (top-5 %.1f%%, chance "
        "10%%)\n",
        100 * z.top1, 100 * z.top5);

    // ---- 7. reload: a model built from the saved files gives the same embeddings ------------------
    // TUTORIAL: a spec-built modality comes back from config.json alone; a module of your own is added
    // to the fresh model (same class, any seed) before load() overwrites its weights.
    const ib::ImageBindConfig saved = ib::load_config(out + "/config.json");
    std::shared_ptr<ib::ImageBindModel<T, Device>> reloaded;
    if (saved.has(kTrajectory)) {
      reloaded = ib::ImageBindModel<T, Device>::from_checkpoint(out + "/model.safetensors", saved);
    } else {
      reloaded = std::make_shared<ib::ImageBindModel<T, Device>>(saved);
      add_trajectory_encoder(*reloaded, kind, joint_dim, 0);
      reloaded->load(out + "/model.safetensors");
      reloaded->eval();
    }
    const bool same =
        reloaded->encode(kTrajectory, test_x).value().to_vector() == test_embeddings.to_vector();
    // What bindery-embed computes from these files: the model frozen for inference (nn::freeze: the
    // fp32 weights packed for the inference kernel; the same values, summed in another order).
    nn::freeze(*reloaded, nn::WeightPrecision::kFloat32);
    io::write_npy(out + "/test_embeddings.npy", reloaded->encode(kTrajectory, test_x).value());
    std::printf("saved to %s/ (model.safetensors, config.json%s); reloaded: %s embeddings\n", out.c_str(),
                saved.has(kTrajectory) ? " with the trajectory spec" : "", same ? "identical" : "DIFFERENT");
    return z.top1 >= require && same ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "03_bind_your_modality: %s\n", e.what());
    return 2;
  }
}
