// examples/05_one_encoder — one ImageBind encoder, stage by stage, checked against PyTorch.
//
// Builds one modality's encoder from its spec (ImageBindConfig::tiny(): a small model with the
// reference's structure), loads its weights out of a whole-model checkpoint, runs one input through
// preprocessor -> trunk -> head -> postprocessor, prints every stage's shape, and compares each stage
// with what the PyTorch reference computed from the same weights and input
// (tests/reference/make_model_fixtures.py wrote both to tests/reference/model/). Exits 1 when a stage
// is further from the reference than the parity test allows (1e-5 of the stage's largest value).
//
//   ./05_one_encoder --modality audio --weights tests/reference/model/tiny.safetensors
//                    --fixtures tests/reference/model      (one command line)
#include <bindery/io/npy.hpp>
#include <bindery/io/pth.hpp>
#include <bindery/io/safetensors.hpp>
#include <bindery/models/imagebind/imagebind.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace bindery;
namespace ib = bindery::models::imagebind;

namespace {

constexpr double kTolerance = 1e-5;  // tests/models/test_imagebind_parity.cpp: max |a - b| / max |b|

std::string shape_of(const Shape& shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

/// What the stem does, in the reference's terms (docs/models.md maps them to bindery's classes).
const char* stem_story(ib::StemKind stem) {
  switch (stem) {
    case ib::StemKind::kVideoPatches:
      return "PadIm2Video (an image becomes a 2-frame clip) -> Conv3d patches -> cls token + position "
             "embedding";
    case ib::StemKind::kImagePatches:
      return "Conv2d patches -> LayerNorm -> cls token + position embedding";
    case ib::StemKind::kTokens:
      return "token embedding + position embedding, causal mask";
    case ib::StemKind::kImuPatches:
      return "time unfolded into patches -> Linear -> LayerNorm -> cls token + position embedding";
  }
  return "?";
}

/// Loads one modality's weights from a whole-model checkpoint into a standalone encoder.
// TUTORIAL: inside ImageBindModel a stage is registered as `modality_trunks.<m>` (the reference's
// key layout); a standalone encoder calls the same module `trunk`. So loading is a rename:
// "modality_trunks.audio.blocks.0.attn.in_proj_weight" -> "trunk.blocks.0.attn.in_proj_weight".
void load_weights(ib::Encoder<float>& encoder, const std::string& path, ib::Modality m) {
  const std::string name = ib::modality_name(m);
  const std::array<std::pair<std::string, std::string>, 4> renames = {{
      {"modality_preprocessors." + name + ".", "preprocessor."},
      {"modality_trunks." + name + ".", "trunk."},
      {"modality_heads." + name + ".", "head."},
      {"modality_postprocessors." + name + ".", "postprocessor."},
  }};
  auto renamed = [&renames](const std::string& key) {
    for (const auto& [from, to] : renames)
      if (key.rfind(from, 0) == 0) return to + key.substr(from.size());
    return std::string();
  };
  // Only this modality's tensors are read; the other encoders' storages stay on disk.
  const io::KeyFilter mine = [&renamed](const std::string& key) { return !renamed(key).empty(); };
  const bool safetensors = path.size() >= 12 && path.substr(path.size() - 12) == ".safetensors";
  io::PthOptions options;
  options.key_filter = mine;
  const auto tensors =
      safetensors ? io::load_safetensors<float>(path, mine) : io::load_pth<float>(path, options);
  nn::StateDict<float> dict;
  for (const auto& [key, tensor] : tensors) dict.insert(renamed(key), tensor);
  // TUTORIAL: strict: a missing, unexpected or mis-shaped key is a StateDictError listing them all,
  // and nothing is written. The checkpoint and the spec must describe the same encoder.
  encoder.load_state_dict(dict);
  std::printf("loaded %lld tensors (%lld parameters) from %s\n", static_cast<long long>(dict.size()),
              static_cast<long long>(encoder.num_parameters()), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string modality_name = "audio", weights, fixtures, case_name;
  int threads = 1;
  CLI::App app{"One ImageBind encoder stage by stage, compared with the PyTorch reference"};
  app.add_option("--modality", modality_name, "vision, text, audio, depth, thermal or imu")
      ->check(CLI::IsMember({"vision", "text", "audio", "depth", "thermal", "imu"}))
      ->capture_default_str();
  app.add_option("--weights", weights, "the tiny model: tiny.safetensors or tiny.pth")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--fixtures", fixtures, "folder of <case>_{input,pre,trunk,head,post,final}.npy")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--case", case_name, "fixture case (default: the modality's; vision: vision_224)");
  app.add_option("--threads", threads, "CPU threads")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  Cpu::set_num_threads(threads);
  const ib::Modality m = ib::modality_from_name(modality_name);
  if (case_name.empty()) case_name = m == ib::Modality::kVision ? "vision_224" : modality_name;
  auto fixture = [&](const std::string& what) { return fixtures + "/" + case_name + "_" + what + ".npy"; };

  try {
    // TUTORIAL: a config is a table of encoder specs, one per modality. The spec says everything
    // the encoder is made of: stem, trunk width and depth, head, output dimension, logit scale.
    const ib::EncoderConfig spec = ib::ImageBindConfig::tiny().at(m);
    std::ostringstream input_shape;
    input_shape << Shape(spec.input_shape);
    std::printf("spec: %s, input %s, width %lld, %lld blocks x %lld heads, output %lld, logit scale %g%s\n",
                modality_name.c_str(), input_shape.str().c_str(), static_cast<long long>(spec.embed_dim),
                static_cast<long long>(spec.num_blocks), static_cast<long long>(spec.num_heads),
                static_cast<long long>(spec.out_dim), spec.logit_scale,
                spec.learnable_logit_scale ? " (learnable)" : "");
    std::printf("stem: %s\n", stem_story(spec.stem));

    // TUTORIAL: make_encoder picks the typed stages the spec names (here a preprocessor, an
    // nn::Transformer trunk, a head, a postprocessor) and chains them; the result is an
    // ib::Encoder, an nn::Module like any other.
    const auto encoder = ib::make_encoder<float>(spec);
    for (const auto& [stage, module] : encoder->named_children()) {
      std::string children;
      for (const auto& [child, unused] : module->named_children())
        children += (children.empty() ? "" : ", ") + child;
      std::printf("  %-14s %8lld parameters  [%s]\n", stage.c_str(),
                  static_cast<long long>(module->num_parameters()),
                  children.empty() ? "no submodules" : children.c_str());
    }
    load_weights(*encoder, weights, m);
    encoder->eval();  // inference: no drop path (audio and IMU train with it)

    const ib::ModalityInput<float> input =
        m == ib::Modality::kText ? ib::ModalityInput<float>(io::read_npy<int64_t>(fixture("input")))
                                 : ib::ModalityInput<float>(io::read_npy<float>(fixture("input")));
    NoGrad no_grad;
    // TUTORIAL: encode_stages keeps every stage's output; encode() returns only the last. An input of
    // rank >= 5 holds several clips per sample: they are encoded as one batch and their embeddings
    // averaged (the "final" row).
    const ib::EncoderStages<float> s = encoder->encode_stages(input);
    std::printf("\ncase %s: input %s%s\n", case_name.c_str(), shape_of(input.shape()).c_str(),
                input.is_ids() ? " token ids" : "");
    if (s.preprocessed.attn_mask.defined())
      std::printf("  attention mask %s (additive, every block)\n",
                  shape_of(s.preprocessed.attn_mask.shape()).c_str());
    if (s.preprocessed.eos_index.defined())
      std::printf("  EOS positions  %s (the head pools these tokens)\n",
                  shape_of(s.preprocessed.eos_index.shape()).c_str());

    std::printf("\n%-14s %-16s %-28s %11s %11s\n", "stage", "output", "what it is", "max |a-b|", "relative");
    const std::array<std::tuple<const char*, const char*, Var<float>>, 5> stages = {{
        {"pre", "tokens (N, L, D)", s.preprocessed.tokens},
        {"trunk", "tokens (N, L, D)", s.trunk},
        {"head", "pooled, projected", s.head},
        {"post", "normalized [x scale]", s.postprocessed},
        {"final", "embedding [clips avg]", s.embedding},
    }};
    bool ok = true;
    for (const auto& [stage, what, value] : stages) {
      const Tensor<float> expected = io::read_npy<float>(fixture(stage));
      double diff = INFINITY, scale = 0;
      if (value.shape() == expected.shape()) {
        const std::vector<float> a = value.value().to_vector(), b = expected.to_vector();
        diff = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
          if (!(d <= diff)) diff = d;  // NaN wins
          scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
        }
      }
      const double relative = scale > 0 ? diff / scale : diff;
      const bool stage_ok = relative <= kTolerance;
      ok = ok && stage_ok;
      std::printf(
          "%-14s %-16s %-28s %11.2e %11.2e%s\n", stage, shape_of(value.shape()).c_str(), what, diff, relative,
          stage_ok                            ? ""
          : value.shape() == expected.shape() ? "  ABOVE TOLERANCE"
                                              : ("  SHAPE: reference " + shape_of(expected.shape())).c_str());
    }
    if (!ok) {
      std::printf("\nsome stage differs from the reference by more than %.0e of its scale\n", kTolerance);
      return 1;
    }
    std::printf("\nevery stage matches the reference (relative error <= %.0e)\n", kTolerance);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "05_one_encoder: %s\n", e.what());
    return 2;
  }
}
