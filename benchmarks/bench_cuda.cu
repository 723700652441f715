// benchmarks/bench_cuda.cu — the CUDA backend's GEMM and fused attention (Google Benchmark, GPU time).
//
// Each iteration is timed with CUDA events on Cuda::stream() (manual time): the GPU time of the work
// plus whatever host overhead delays its launch, as a user sees it. Names carry the shapes, so
// benchmarks/compare_torch_cuda.py can time PyTorch on exactly the same problems and print the
// side-by-side table (scripts/gpu-check.sh runs both):
//   gemm_f32/<label>:<M>x<N>x<K>:<nn|nt>/<bindery|bindery_tf32>       C = A op(B), GFLOP/s = 2MNK/t
//   gemm_bf16/<label>:<M>x<N>x<K>:<nn|nt>/bindery                     the same on bfloat16 storage
//                                                                     (tensor cores, fp32 accumulation)
//   attention_f32/<label>:<B>x<H>x<L>x<D>/<forward|forward_backward>  softmax(q kᵀ/√D) v,
//       GFLOP/s counts 4·B·H·L²·D for the forward and 3.5× that for forward + backward (the
//       FlashAttention convention: backward = 2.5 forward).
//   encoder_vision_huge/b<N>:<N>x3x224x224:<fp32|bf16>/forward       ImageBind's huge vision encoder
//       (ViT-H/14, 632 M parameters, random weights), inference forward (eval, NoGrad); bf16 =
//       under Autocast(kBFloat16). GFLOP/s counts 2 × multiply-adds of the GEMMs and attention.
//   bench_cuda --benchmark_out=cuda.json --benchmark_out_format=json
#include <bindery/cuda.hpp>
#include <bindery/models/imagebind/all.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using bindery::Cuda;
using bindery::Philox;
using bindery::Shape;
using bindery::Tensor;
using bindery::Var;

/// GPU milliseconds of f() on Cuda::stream(), by CUDA events.
template <class F>
double time_ms(const F& f) {
  static cudaEvent_t start = nullptr, stop = nullptr;
  if (start == nullptr) {
    bindery::detail::cuda_check(cudaEventCreate(&start), "cudaEventCreate");
    bindery::detail::cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
  }
  bindery::detail::cuda_check(cudaEventRecord(start, Cuda::stream()), "cudaEventRecord");
  f();
  bindery::detail::cuda_check(cudaEventRecord(stop, Cuda::stream()), "cudaEventRecord");
  bindery::detail::cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0.f;
  bindery::detail::cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  return ms;
}

struct GemmShape {
  const char* label;
  int64_t m, n, k;
  bool trans_b;  // nn.Linear: y = x Wᵀ with W stored (out, in)
};

const std::vector<GemmShape> kGemmShapes = {
    {"square", 4096, 4096, 4096, false},
    {"vit_h_qkv", 8 * 257, 3840, 1280, true},  // ViT-H/14 at batch 8: 257 tokens, width 1280
    {"vit_h_fc1", 8 * 257, 5120, 1280, true},
    {"vit_h_fc2", 8 * 257, 1280, 5120, true},
    {"text_fc1", 32 * 77, 4096, 1024, true},  // the text encoder at batch 32: 77 tokens, width 1024
};

struct AttentionShape {
  const char* label;
  int64_t batch, heads, length, dim;
};

const std::vector<AttentionShape> kAttentionShapes = {
    {"vision_h", 8, 16, 257, 80},  // ViT-H/14: 16 heads of 80
    {"text", 32, 16, 77, 64},      // text encoder: 16 heads of 64
    {"audio", 8, 12, 229, 64},     // audio encoder: 12 heads of 64 over 229 tokens
};

void bench_gemm(benchmark::State& state, GemmShape s, bool tf32) {
  Philox rng(1);
  const auto a = Tensor<float, Cuda>::normal({s.m, s.k}, rng);
  const auto b =
      s.trans_b ? Tensor<float, Cuda>::normal({s.n, s.k}, rng) : Tensor<float, Cuda>::normal({s.k, s.n}, rng);
  auto c = Tensor<float, Cuda>::empty({s.m, s.n});
  Cuda::allow_tf32(tf32);
  auto run = [&] {
    Cuda::gemm(false, s.trans_b, s.m, s.n, s.k, 1.f, a.data(), s.k, b.data(), s.trans_b ? s.k : s.n, 0.f,
               c.data(), s.n);
  };
  run();  // warm-up: cuBLAS heuristics and workspace
  for (auto _ : state) state.SetIterationTime(time_ms(run) / 1e3);
  Cuda::allow_tf32(false);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(s.m) * double(s.n) * double(s.k),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void bench_attention(benchmark::State& state, AttentionShape s, bool backward) {
  Philox rng(2);
  const Shape shape{s.batch, s.heads, s.length, s.dim};
  const Var<float, Cuda> q(Tensor<float, Cuda>::normal(shape, rng), backward);
  const Var<float, Cuda> k(Tensor<float, Cuda>::normal(shape, rng), backward);
  const Var<float, Cuda> v(Tensor<float, Cuda>::normal(shape, rng), backward);
  const auto dout = Tensor<float, Cuda>::normal(shape, rng);
  auto run = [&] {
    const Var<float, Cuda> out = bindery::ops::scaled_dot_product_attention(q, k, v);
    if (backward) out.backward(dout);
  };
  run();
  for (auto _ : state) state.SetIterationTime(time_ms(run) / 1e3);
  const double forward_flops = 4.0 * double(s.batch * s.heads) * double(s.length * s.length) * double(s.dim);
  state.counters["GFLOP/s"] = benchmark::Counter(backward ? 3.5 * forward_flops : forward_flops,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void bench_gemm_bf16(benchmark::State& state, GemmShape s) {
  Philox rng(1);
  const auto a = Tensor<float, Cuda>::normal({s.m, s.k}, rng).cast<bindery::bfloat16>();
  const auto b = (s.trans_b ? Tensor<float, Cuda>::normal({s.n, s.k}, rng)
                            : Tensor<float, Cuda>::normal({s.k, s.n}, rng))
                     .cast<bindery::bfloat16>();
  auto c = Tensor<bindery::bfloat16, Cuda>::empty({s.m, s.n});
  auto run = [&] {
    Cuda::gemm(false, s.trans_b, s.m, s.n, s.k, bindery::bfloat16(1.f), a.data(), s.k, b.data(),
               s.trans_b ? s.k : s.n, bindery::bfloat16(0.f), c.data(), s.n);
  };
  run();
  for (auto _ : state) state.SetIterationTime(time_ms(run) / 1e3);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(s.m) * double(s.n) * double(s.k),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

/// Multiply-adds × 2 of one image through the huge vision trunk + head: per block the qkv, proj, fc1
/// and fc2 GEMMs (24 D² per token) and attention (4 L D per token), plus the patch embedding.
double vision_huge_flop() {
  const double tokens = 257, width = 1280, blocks = 32, patch = 3.0 * 2 * 14 * 14;
  const double per_block = tokens * 24.0 * width * width + 4.0 * tokens * tokens * width;
  return blocks * per_block + 2.0 * 256 * patch * width + 2.0 * width * 1024;
}

void bench_vision_encoder(benchmark::State& state, int64_t batch, bool bf16) {
  namespace ib = bindery::models::imagebind;
  static std::shared_ptr<ib::Encoder<float, Cuda>> encoder;  // built once for every case
  if (!encoder) {
    encoder = ib::make_encoder<float, Cuda>(ib::ImageBindConfig::huge().at(ib::Modality::kVision), 1);
    encoder->eval();
  }
  Philox rng(3);
  const ib::ModalityInput<float, Cuda> input = Tensor<float, Cuda>::normal({batch, 3, 224, 224}, rng);
  auto run = [&] {
    const bindery::NoGrad no_grad;
    const bindery::Autocast autocast(bf16 ? bindery::Precision::kBFloat16 : bindery::Precision::kFloat32);
    benchmark::DoNotOptimize(encoder->encode(input));
  };
  run();
  for (auto _ : state) state.SetIterationTime(time_ms(run) / 1e3);
  state.counters["GFLOP/s"] =
      benchmark::Counter(double(batch) * vision_huge_flop(), benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  for (const GemmShape& s : kGemmShapes) {
    const std::string shape = std::string(s.label) + ":" + std::to_string(s.m) + "x" + std::to_string(s.n) +
                              "x" + std::to_string(s.k) + (s.trans_b ? ":nt" : ":nn");
    for (const bool tf32 : {false, true}) {
      benchmark::RegisterBenchmark(("gemm_f32/" + shape + (tf32 ? "/bindery_tf32" : "/bindery")).c_str(),
                                   bench_gemm, s, tf32)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.2);
    }
  }
  for (const GemmShape& s : kGemmShapes) {
    const std::string shape = std::string(s.label) + ":" + std::to_string(s.m) + "x" + std::to_string(s.n) +
                              "x" + std::to_string(s.k) + (s.trans_b ? ":nt" : ":nn");
    benchmark::RegisterBenchmark(("gemm_bf16/" + shape + "/bindery").c_str(), bench_gemm_bf16, s)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.2);
  }
  for (const int64_t batch : {1, 8}) {
    for (const bool bf16 : {false, true}) {
      const std::string name = "encoder_vision_huge/b" + std::to_string(batch) + ":" + std::to_string(batch) +
                               "x3x224x224:" + (bf16 ? "bf16" : "fp32") + "/forward";
      benchmark::RegisterBenchmark(name.c_str(), bench_vision_encoder, batch, bf16)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.5);
    }
  }
  for (const AttentionShape& s : kAttentionShapes) {
    const std::string shape = std::string(s.label) + ":" + std::to_string(s.batch) + "x" +
                              std::to_string(s.heads) + "x" + std::to_string(s.length) + "x" +
                              std::to_string(s.dim);
    for (const bool backward : {false, true}) {
      benchmark::RegisterBenchmark(
          ("attention_f32/" + shape + (backward ? "/forward_backward" : "/forward")).c_str(), bench_attention,
          s, backward)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.2);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!Cuda::is_available()) {
    std::fprintf(stderr, "bench_cuda: no usable CUDA device\n");
    return 77;
  }
  benchmark::AddCustomContext("device", Cuda::device_name());
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
