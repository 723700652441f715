// tests/cuda/test_models_cuda.cu — whole models on Cuda against the Cpu (needs a GPU).
//
// - ImageBind (tiny config, tests/reference/model fixtures): the weights load straight into device
//   memory from the .pth and from the .safetensors copy (bit-identical to the Cpu model's); every
//   modality's every stage equals the PyTorch reference within the CPU parity test's bounds, and
//   the Cpu model's; the gradient of a loss reaches every parameter with the Cpu's values.
// - Two transformer towers bound by InfoNCE (examples/01_two_towers in small): AdamW steps from the
//   same weights and data on Cpu and on Cuda lower the loss and agree step by step.
// Tag [cuda]; main (cuda_main.cpp) exits 77 (CTest: SKIPPED) where no GPU is usable.
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/imagebind_fixtures.hpp"

using namespace bindery;
using namespace bindery::testing;
namespace ib = bindery::models::imagebind;

namespace bindery::testing {
bool cuda_tests_need_device() {
  return true;
}
bool cuda_device_available() {
  return Cuda::is_available();
}
}  // namespace bindery::testing

namespace {

// The CPU parity test's bounds (tests/models/test_imagebind_parity.cpp), per stage.
constexpr double kMaxRelativeError = 1e-5;  // max |a - b| / max |b|
constexpr double kMinCosine = 0.999999;     // final embeddings, per row

template <class T>
Tensor<T, Cpu> on_host(const Tensor<T, Cuda>& t) {
  return t.template to<Cpu>();
}

ib::ModalityInput<float, Cuda> to_cuda(const ib::ModalityInput<float, Cpu>& input) {
  if (input.is_ids()) return ib::ModalityInput<float, Cuda>(input.ids.to<Cuda>());
  return ib::ModalityInput<float, Cuda>(input.values.value().to<Cuda>());
}

std::shared_ptr<ib::ImageBindModel<float, Cpu>> cpu_model() {
  return ib::ImageBindModel<float, Cpu>::from_checkpoint(model_fixture("tiny.pth"),
                                                         ib::ImageBindConfig::tiny());
}

/// Every stage of every fixture case on Cuda against the reference and against the Cpu model.
void check_stages(ib::ImageBindModel<float, Cuda>& gpu, ib::ImageBindModel<float, Cpu>& cpu) {
  NoGrad no_grad;
  size_t checked = 0;
  for (const FixtureCase& c : fixture_cases()) {
    INFO("case " << c.name);
    const ib::ModalityInput<float, Cpu> input = fixture_input<float>(c);
    const ib::EncoderStages<float, Cuda> g = gpu.encode_stages(c.modality, to_cuda(input));
    const ib::EncoderStages<float, Cpu> h = cpu.encode_stages(c.modality, input);
    const std::pair<const char*, std::pair<Var<float, Cuda>, Var<float, Cpu>>> stages[] = {
        {"pre", {g.preprocessed.tokens, h.preprocessed.tokens}},
        {"trunk", {g.trunk, h.trunk}},
        {"head", {g.head, h.head}},
        {"post", {g.postprocessed, h.postprocessed}},
        {"final", {g.embedding, h.embedding}}};
    for (const auto& [stage, values] : stages) {
      INFO("stage " << stage);
      const Tensor<float, Cpu> actual = on_host(values.first.value());
      const Tensor<float, Cpu> expected =
          io::read_npy<float>(model_fixture(c.name + "_" + std::string(stage) + ".npy"));
      const double vs_reference = relative_error(actual, expected);
      const double vs_cpu = relative_error(actual, values.second.value());
      INFO("max|a-b|/max|b|: vs the reference " << vs_reference << ", vs the Cpu model " << vs_cpu);
      CHECK(vs_reference <= kMaxRelativeError);
      CHECK(vs_cpu <= kMaxRelativeError);
    }
    CHECK(min_row_cosine(on_host(g.embedding.value()),
                         io::read_npy<float>(model_fixture(c.name + "_final.npy"))) >= kMinCosine);
    if (c.modality == ib::Modality::kText) {  // EOS positions, found on the device
      REQUIRE(g.preprocessed.eos_index.defined());
      CHECK(g.preprocessed.eos_index.to_vector() == h.preprocessed.eos_index.to_vector());
    }
    ++checked;
  }
  CHECK(checked == fixture_cases().size());
}

/// max over the parameters of max|a - b| / max|b| (the CPU parity test's measure, per tensor).
double worst_relative_error(const std::vector<std::pair<std::string, Tensor<float, Cpu>>>& actual,
                            const std::vector<std::pair<std::string, Tensor<float, Cpu>>>& expected) {
  double worst = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double e = relative_error(actual[i].second, expected[i].second);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

// ---- the two towers (examples/01_two_towers, smaller) ---------------------------------------------

constexpr int64_t kAttributes = 4, kValues = 8, kFillers = 16;
constexpr int64_t kVocab = kAttributes * kValues + kFillers;
constexpr int64_t kLengthA = 8, kLengthB = 6, kFeatures = 16;
constexpr int64_t kWidth = 32, kHeads = 4, kDepth = 2, kEmbed = 16, kPairs = 32;

/// Paired samples on the host: captions (kPairs, kLengthA) and sensor readings (kPairs, kLengthB,
/// kFeatures) that observe the same random attributes.
struct PairBatch {
  Tensor<int64_t, Cpu> ids;
  Tensor<float, Cpu> sensor;
};

PairBatch make_pairs(uint64_t seed) {
  Philox rng(seed);
  const std::vector<float> prototypes =
      Tensor<float, Cpu>::normal({kAttributes * kValues, kFeatures}, rng).to_vector();
  std::vector<float> sensor = Tensor<float, Cpu>::normal({kPairs, kLengthB, kFeatures}, rng).to_vector();
  std::vector<int64_t> ids(static_cast<size_t>(kPairs * kLengthA));
  for (int64_t i = 0; i < kPairs; ++i) {
    for (int64_t k = 0; k < kLengthA; ++k) {
      int64_t word = kAttributes * kValues + static_cast<int64_t>(rng.next_below(kFillers));  // filler
      if (k < kAttributes) {
        const int64_t value = static_cast<int64_t>(rng.next_below(kValues)), attribute = k * kValues + value;
        word = attribute;
        float* slot = sensor.data() + (i * kLengthB + k) * kFeatures;  // prototype + noise
        for (int64_t f = 0; f < kFeatures; ++f) {
          slot[f] = prototypes[static_cast<size_t>(attribute * kFeatures + f)] + 0.35f * slot[f];
        }
      }
      ids[static_cast<size_t>(i * kLengthA + k)] = word;
    }
  }
  return {Tensor<int64_t, Cpu>::from_vector(ids, {kPairs, kLengthA}),
          Tensor<float, Cpu>::from_vector(sensor, {kPairs, kLengthB, kFeatures})};
}

/// Both towers and the InfoNCE criterion (its learnable logit scale) in one module: one state dict.
template <class B>
class TwoTowers : public nn::Module<float, B> {
 public:
  using VarT = Var<float, B>;

  explicit TwoTowers(uint64_t seed) {
    embed_ =
        this->register_module("embed", std::make_shared<nn::Embedding<float, B>>(kVocab, kWidth, seed + 1));
    caption_trunk_ = this->register_module("caption_trunk", make_trunk(seed + 2));
    caption_norm_ =
        this->register_module("caption_norm", std::make_shared<nn::LayerNorm<float, B>>(kWidth, 1e-6));
    caption_head_ = this->register_module(
        "caption_head", std::make_shared<nn::Linear<float, B>>(kWidth, kEmbed, false, seed + 3));
    stem_ = this->register_module("stem",
                                  std::make_shared<nn::Linear<float, B>>(kFeatures, kWidth, true, seed + 4));
    sensor_trunk_ = this->register_module("sensor_trunk", make_trunk(seed + 5));
    sensor_norm_ =
        this->register_module("sensor_norm", std::make_shared<nn::LayerNorm<float, B>>(kWidth, 1e-6));
    sensor_head_ = this->register_module(
        "sensor_head", std::make_shared<nn::Linear<float, B>>(kWidth, kEmbed, false, seed + 6));
    criterion_ = this->register_module("criterion", std::make_shared<loss::InfoNCE<float, B>>());
  }

  /// ids (N, kLengthA), sensor (N, kLengthB, kFeatures) -> symmetric InfoNCE of the two embeddings.
  loss::InfoNCEOutput<float, B> forward(const Tensor<int64_t, B>& ids, const Tensor<float, B>& sensor) {
    const VarT a = caption_head_->forward(ops::mean(
        caption_norm_->forward(caption_trunk_->forward(embed_->forward(ids))), {1}));  // (N, kEmbed)
    const VarT b = sensor_head_->forward(
        ops::mean(sensor_norm_->forward(sensor_trunk_->forward(stem_->forward(VarT(sensor)))), {1}));
    return criterion_->forward(a, b);
  }

 private:
  static std::shared_ptr<nn::Transformer<float, B>> make_trunk(uint64_t seed) {
    return std::make_shared<nn::Transformer<float, B>>(nn::TransformerConfig{
        .embed_dim = kWidth, .num_blocks = kDepth, .num_heads = kHeads, .mlp_ratio = 2.0, .seed = seed});
  }

  std::shared_ptr<nn::Embedding<float, B>> embed_;
  std::shared_ptr<nn::Transformer<float, B>> caption_trunk_, sensor_trunk_;
  std::shared_ptr<nn::LayerNorm<float, B>> caption_norm_, sensor_norm_;
  std::shared_ptr<nn::Linear<float, B>> caption_head_, sensor_head_, stem_;
  std::shared_ptr<loss::InfoNCE<float, B>> criterion_;
};

/// The example's recipe for `steps` steps on the same batch: AdamW with decay on matrices only,
/// global-norm clipping at 1. Returns the loss of every step (before its update).
template <class B>
std::vector<double> train_two_towers(TwoTowers<B>& model, const PairBatch& batch, int steps) {
  std::vector<optim::ParamGroup<float, B>> groups(2);
  groups[0].lr = groups[1].lr = 2e-3;
  groups[0].weight_decay = 0.05;
  for (const Var<float, B>& p : model.parameters()) groups[p.rank() >= 2 ? 0 : 1].params.push_back(p);
  optim::AdamW<float, B> optimizer(groups, {.beta1 = 0.9, .beta2 = 0.98, .eps = 1e-6});
  const Tensor<int64_t, B> ids = batch.ids.to<B>();
  const Tensor<float, B> sensor = batch.sensor.to<B>();
  std::vector<double> losses;
  model.train();
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    const auto out = model.forward(ids, sensor);
    out.loss.backward();
    optim::clip_grad_norm(optimizer.groups(), 1.0);
    optimizer.step();
    losses.push_back(static_cast<double>(out.loss.item()));
  }
  return losses;
}

}  // namespace

// ---- ImageBind -------------------------------------------------------------------------------------

TEST_CASE("imagebind tiny on Cuda: .pth and .safetensors load straight to the device, bit-exact",
          "[cuda][models][imagebind]") {
  const auto cpu = cpu_model();
  const nn::StateDict<float, Cpu> expected = cpu->state_dict();
  for (const char* file : {"tiny.pth", "tiny.safetensors"}) {
    INFO("weights from " << file);
    const auto gpu =
        ib::ImageBindModel<float, Cuda>::from_checkpoint(model_fixture(file), ib::ImageBindConfig::tiny());
    CHECK(!gpu->is_training());
    const nn::StateDict<float, Cuda> loaded = gpu->state_dict();
    REQUIRE(loaded.keys() == expected.keys());
    for (const auto& [key, value] : loaded) {
      INFO("key " << key);
      REQUIRE(value.shape() == expected.at(key).shape());
      CHECK(value.to_vector() == expected.at(key).to_vector());  // fp32 files: no rounding anywhere
    }
  }
}

TEST_CASE("imagebind tiny on Cuda: every modality and stage equals the reference and the Cpu model",
          "[cuda][models][imagebind][parity]") {
  const auto cpu = cpu_model();
  for (const char* file : {"tiny.pth", "tiny.safetensors"}) {
    INFO("weights from " << file);
    const auto gpu =
        ib::ImageBindModel<float, Cuda>::from_checkpoint(model_fixture(file), ib::ImageBindConfig::tiny());
    check_stages(*gpu, *cpu);
  }
}

TEST_CASE("imagebind tiny on Cuda: one modality alone, the others never allocated",
          "[cuda][models][imagebind]") {
  const auto gpu = ib::ImageBindModel<float, Cuda>::from_checkpoint(
      model_fixture("tiny.safetensors"), ib::ImageBindConfig::tiny(), {ib::Modality::kText});
  const auto cpu = ib::ImageBindModel<float, Cpu>::from_checkpoint(
      model_fixture("tiny.pth"), ib::ImageBindConfig::tiny(), {ib::Modality::kText});
  CHECK(gpu->has(ib::Modality::kText));
  CHECK(!gpu->has(ib::Modality::kVision));
  CHECK(gpu->num_parameters() == cpu->num_parameters());
  NoGrad no_grad;
  for (const FixtureCase& c : fixture_cases()) {
    if (c.modality != ib::Modality::kText) continue;
    const ib::ModalityInput<float, Cpu> input = fixture_input<float>(c);
    CHECK(relative_error(on_host(gpu->encode(c.modality, to_cuda(input)).value()),
                         io::read_npy<float>(model_fixture(c.name + "_final.npy"))) <= kMaxRelativeError);
  }
  BINDERY_REQUIRE_THROWS_WITH_ALL(gpu->encoder(ib::Modality::kVision), ValueError, "vision", "not loaded");
}

// Tolerance of the gradients: every parameter's gradient on Cuda is within 1e-4 max|g_cpu| of the
// Cpu's (the CPU parity test's per-tensor measure, 10x looser than its forward bound). Both backends
// run fp32 with different summation orders (cuBLAS and warp-reduction trees vs Eigen and sequential
// loops); each op of the chain (two pre-norm blocks with attention, LayerNorms, L2 normalization,
// the logit scale) rounds at about K 2^-24 of the magnitudes it sums (K <= 224 in the tiny model),
// and backward runs the chain twice over. Measured on the Cpu with these inputs and weights, fp32
// gradients differ from fp64 ones by at most 1.5e-6 max|g| (thermal bias_k, vision norm_1.weight);
// two fp32 evaluations differ by at most about twice that, so 1e-4 leaves a margin of 30 while any
// kernel or indexing error (an O(1) relative error) still fails.
constexpr double kGradientRelativeError = 1e-4;

TEST_CASE("imagebind tiny on Cuda: forward + backward, every parameter's gradient equals the Cpu's",
          "[cuda][models][imagebind][grad]") {
  const auto cpu = cpu_model();
  const auto gpu = ib::ImageBindModel<float, Cuda>::from_checkpoint(model_fixture("tiny.pth"),
                                                                    ib::ImageBindConfig::tiny());
  // Eval mode (as from_checkpoint leaves it): no dropout or drop path, so both backends compute the
  // same function; gradients are still recorded (no NoGrad here).
  const auto cpu_params = cpu->named_parameters();
  const auto gpu_params = gpu->named_parameters();
  REQUIRE(cpu_params.size() == gpu_params.size());
  uint64_t seed = 700;
  for (const FixtureCase& c : fixture_cases()) {
    INFO("case " << c.name);
    cpu->zero_grad();
    gpu->zero_grad();
    const ib::ModalityInput<float, Cpu> input = fixture_input<float>(c);
    const Var<float, Cpu> e_cpu = cpu->encode(c.modality, input);
    const Var<float, Cuda> e_gpu = gpu->encode(c.modality, to_cuda(input));
    Philox rng(++seed);
    const Tensor<float, Cpu> weights = Tensor<float, Cpu>::uniform(e_cpu.shape(), rng, -1, 1);
    const Var<float, Cpu> loss_cpu = ops::sum(ops::mul(e_cpu, Var<float, Cpu>(weights)));  // ()
    const Var<float, Cuda> loss_gpu = ops::sum(ops::mul(e_gpu, Var<float, Cuda>(weights.to<Cuda>())));
    {  // the stage bound carried through the weighted sum: |error| <= 1e-5 max|e| sum|w|
      double max_e = 0.0, sum_w = 0.0;
      for (const float v : e_cpu.value().to_vector()) max_e = std::max(max_e, std::fabs(double(v)));
      for (const float v : weights.to_vector()) sum_w += std::fabs(double(v));
      INFO("loss " << loss_gpu.item() << " on Cuda, " << loss_cpu.item() << " on Cpu");
      CHECK(std::fabs(double(loss_gpu.item()) - double(loss_cpu.item())) <=
            kMaxRelativeError * max_e * sum_w);
    }
    loss_cpu.backward();
    loss_gpu.backward();
    std::vector<std::pair<std::string, Tensor<float, Cpu>>> g_cpu, g_gpu;
    for (size_t i = 0; i < cpu_params.size(); ++i) {
      const auto& [name, p] = cpu_params[i];
      INFO("parameter " << name);
      REQUIRE(gpu_params[i].first == name);
      REQUIRE(gpu_params[i].second.has_grad() == p.has_grad());
      if (!p.has_grad()) continue;
      // the encoded modality's parameters, and only them
      CHECK(ib::key_modality(name) == std::optional<ib::Modality>(c.modality));
      g_cpu.emplace_back(name, p.grad());
      g_gpu.emplace_back(name, on_host(gpu_params[i].second.grad()));
      const double error = relative_error(g_gpu.back().second, g_cpu.back().second);
      INFO("max|g_cuda - g_cpu| / max|g_cpu| = " << error);
      CHECK(error <= kGradientRelativeError);
    }
    CHECK(!g_cpu.empty());
    INFO("worst parameter: " << worst_relative_error(g_gpu, g_cpu));
    CHECK(worst_relative_error(g_gpu, g_cpu) <= kGradientRelativeError);
  }
}

// ---- training two towers ---------------------------------------------------------------------------

TEST_CASE("two towers + InfoNCE + AdamW: training steps on Cuda follow the Cpu's and lower the loss",
          "[cuda][models][train]") {
  constexpr int kSteps = 8;
  TwoTowers<Cpu> cpu(11);
  TwoTowers<Cuda> gpu(11);
  // The same starting weights: Philox init agrees across backends only to the last bit of its
  // normals, so copy the Cpu's state exactly.
  nn::StateDict<float, Cuda> start;
  for (const auto& [key, value] : cpu.state_dict()) start.insert(key, value.to<Cuda>());
  gpu.load_state_dict(start);
  const PairBatch batch = make_pairs(5);
  const std::vector<double> cpu_losses = train_two_towers(cpu, batch, kSteps);
  const std::vector<double> gpu_losses = train_two_towers(gpu, batch, kSteps);
  REQUIRE(gpu_losses.size() == cpu_losses.size());
  for (size_t step = 0; step < cpu_losses.size(); ++step) {
    INFO("step " << step << ": loss " << gpu_losses[step] << " on Cuda, " << cpu_losses[step] << " on Cpu");
    // Per-step loss tolerance 1e-4 relative. Each step's loss carries the forward's fp32 rounding
    // and the drift of the weights, whose updates differ by what AdamW's m / sqrt(v) amplifies of
    // the gradients' rounding. Measured on the Cpu, fp32 training against fp64 training from the
    // same weights: losses within 1.2e-6 relative over these 8 steps, weights within 4.5e-5 max|w|
    // (an attention in_proj bias): margins of about 40 and 10 for two fp32 runs.
    CHECK(std::fabs(gpu_losses[step] - cpu_losses[step]) <= 1e-4 * std::fabs(cpu_losses[step]));
  }
  CHECK(cpu_losses.back() < 0.8 * cpu_losses.front());
  CHECK(gpu_losses.back() < 0.8 * gpu_losses.front());
  // The trained weights agree too (looser: they integrate every step's update; see above).
  const nn::StateDict<float, Cpu> trained = cpu.state_dict();
  for (const auto& [key, value] : gpu.state_dict()) {
    INFO("weight " << key);
    CHECK(relative_error(on_host(value), trained.at(key)) <= 1e-3);
  }
}
