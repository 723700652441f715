// benchmarks/bench_quantize.cpp — bf16 / int8 weights (nn::quantize) on the huge encoders: accuracy
// against fp32 and forward time, side by side in one run.
//
//   bench_quantize [--batch=N] [--threads=N] vision text audio ...   (default: every modality, batch 4)
//   bench_quantize --digits=RUN_DIR [--threads=N]    a trained model: 02_imagebind_digits' output
//       folder (its defaults: seed 1, 6,000 training + 1,000 test samples of the built-in data,
//       noise 1). The whole model is converted by nn::quantize, then each modality's test samples
//       (6,000–6,999) are classified against the text prompts' prototypes exactly as 02 does
//       (digits_run::text_prototypes, from the converted text encoder): the emergent zero-shot top-1
//       per modality and precision, the fp32 row equal to 02's report.
//
// Per modality: one encoder of ImageBindConfig::huge() with its constructor's random init (seeded,
// so each precision's copy starts from the same weights), inputs from bench_huge::make_input. The
// fp32 embeddings are the reference; then the encoder is rebuilt and quantized to bf16, then int8.
// Prints per modality and precision: the min and mean per-row cosine to fp32, the max relative error
// (max |a - b| / max |b|), and the forward wall time of one batch (one run after a warm-up: on a
// shared machine the times are noisy; the ratio to fp32 is what the table is for). Only one encoder
// is alive at a time (the vision encoder is ~2.5 GB in fp32).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bindery/autograd/grad_mode.hpp"
#include "bindery/models/imagebind/config.hpp"
#include "bindery/models/imagebind/encoder.hpp"
#include "bindery/nn/quantize.hpp"
#include "../examples/common/digits_run.hpp"
#include "bindery/datasets/synth_digits.hpp"
#include "huge_encoders.hpp"

namespace {

using bindery::Cpu;
using Tensor = bindery::Tensor<float, Cpu>;
namespace ib = bindery::models::imagebind;
namespace nn = bindery::nn;

struct Accuracy {
  double min_cosine = 1.0, mean_cosine = 0.0, max_relative = 0.0;
};

Accuracy compare(const Tensor& got_t, const Tensor& want_t) {
  const std::vector<float> got = got_t.contiguous().to_vector(), want = want_t.contiguous().to_vector();
  const int64_t rows = want_t.size(0), cols = want_t.numel() / rows;
  Accuracy a;
  double diff = 0, scale = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double x = got[size_t(r * cols + c)], y = want[size_t(r * cols + c)];
      ab += x * y, aa += x * x, bb += y * y;
      diff = std::max(diff, std::fabs(x - y));
      scale = std::max(scale, std::fabs(y));
    }
    const double cosine = ab / std::sqrt(aa * bb);
    a.min_cosine = std::min(a.min_cosine, cosine);
    a.mean_cosine += cosine / double(rows);
  }
  a.max_relative = diff / scale;
  return a;
}

/// Builds the encoder, converts it, runs a warm-up and a timed forward; returns the embeddings.
Tensor run(ib::Modality m, nn::WeightPrecision precision, const ib::ModalityInput<float, Cpu>& input,
           double* seconds, double* weight_mb) {
  auto encoder = ib::make_encoder<float, Cpu>(ib::ImageBindConfig::huge().at(m), 1);
  encoder->eval();
  encoder->set_requires_grad(false);
  const nn::QuantizeReport report = nn::quantize(*encoder, precision);
  *weight_mb = precision == nn::WeightPrecision::kFloat32 ? 0.0 : double(report.bytes) * 1e-6;
  bindery::NoGrad no_grad;
  encoder->encode(input);  // warm-up
  const auto start = std::chrono::steady_clock::now();
  Tensor out = encoder->encode(input).value().clone();
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

/// --digits: the emergent zero-shot of 02's trained digits model at fp32, bf16 and int8.
int digits_zero_shot(const std::string& dir) {
  using ib::Modality;
  const std::vector<Modality> modalities = {Modality::kVision, Modality::kAudio, Modality::kDepth,
                                            Modality::kThermal, Modality::kImu};
  bindery::data::synth::SynthConfig synth;  // 02's defaults
  synth.seed = 1;
  synth.noise = 1.0;
  const auto test = bindery::data::synth::make_batch(synth, 6000, 1000);
  const std::vector<int64_t> labels = test.labels.to_vector();
  auto values = [&](Modality m) -> const Tensor& {
    if (m == Modality::kVision) return test.image;
    if (m == Modality::kAudio) return test.audio;
    if (m == Modality::kDepth) return test.depth;
    if (m == Modality::kThermal) return test.thermal;
    return test.imu;
  };
  std::printf("emergent zero-shot top-1 of %s (1,000 test samples)\n%-6s", dir.c_str(), "prec");
  for (const Modality m : modalities) std::printf(" %8s", std::string(m.name()).c_str());
  std::printf("\n");
  for (const auto precision :
       {nn::WeightPrecision::kFloat32, nn::WeightPrecision::kBFloat16, nn::WeightPrecision::kInt8}) {
    digits_run::DigitsRun run = digits_run::load_digits_run(dir, modalities);
    run.model->eval();
    if (precision != nn::WeightPrecision::kFloat32) nn::quantize(*run.model, precision);
    bindery::NoGrad no_grad;
    const bindery::eval::Matrix prototypes = digits_run::text_prototypes(run);
    std::printf("%-6s", nn::to_string(precision));
    for (const Modality m : modalities) {
      const Tensor& x = values(m);
      std::vector<float> rows;  // in chunks of 250 samples, as 07 embeds them
      int64_t width = 0;
      for (int64_t i = 0; i < x.size(0); i += 250) {
        const Tensor chunk = x.slice(0, i, std::min<int64_t>(x.size(0), i + 250)).contiguous();
        const Tensor e = run.model->encoder(m).encode(chunk).value().contiguous();
        width = e.size(1);
        const std::vector<float> v = e.to_vector();
        rows.insert(rows.end(), v.begin(), v.end());
      }
      const Tensor e = Tensor::from_vector(rows, bindery::Shape{x.size(0), width});
      const auto z = bindery::eval::zero_shot(bindery::eval::normalize_rows(bindery::eval::to_matrix(e)),
                                              prototypes, labels);
      std::printf(" %7.1f%%", 100.0 * z.top1);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 4;
  std::string digits_dir;
  std::vector<ib::Modality> modalities;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--batch=", 0) == 0) {
      batch = std::stoll(arg.substr(8));
    } else if (arg.rfind("--threads=", 0) == 0) {
      Cpu::set_num_threads(std::stoi(arg.substr(10)));
    } else if (arg.rfind("--digits=", 0) == 0) {
      digits_dir = arg.substr(9);
    } else {
      modalities.push_back(ib::modality_from_name(arg));
    }
  }
  if (!digits_dir.empty()) return digits_zero_shot(digits_dir);
  if (modalities.empty()) modalities = ib::ImageBindConfig::huge().modalities();
  std::printf("%-8s %-5s %11s %12s %12s %9s %8s %10s\n", "modality", "prec", "min cosine", "mean cosine",
              "max rel err", "fwd s", "speedup", "weights MB");
  for (const ib::Modality m : modalities) {
    const auto input = bench_huge::make_input(ib::ImageBindConfig::huge().at(m), batch);
    double fp32_seconds = 0, mb = 0;
    const Tensor reference = run(m, nn::WeightPrecision::kFloat32, input, &fp32_seconds, &mb);
    std::printf("%-8s %-5s %11s %12s %12s %9.3f %8s %10s\n", std::string(m.name()).c_str(), "fp32", "1", "1",
                "0", fp32_seconds, "1.00", "-");
    for (const auto precision : {nn::WeightPrecision::kBFloat16, nn::WeightPrecision::kInt8}) {
      double seconds = 0;
      const Accuracy a = compare(run(m, precision, input, &seconds, &mb), reference);
      std::printf("%-8s %-5s %11.6f %12.6f %12.2e %9.3f %8.2f %10.1f\n", std::string(m.name()).c_str(),
                  nn::to_string(precision), a.min_cosine, a.mean_cosine, a.max_relative, seconds,
                  fp32_seconds / seconds, mb);
      std::fflush(stdout);
    }
  }
  return 0;
}
