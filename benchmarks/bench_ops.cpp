// benchmarks/bench_ops.cpp — speed of the memory-bound ops (forward; GELU also backward) and of
// attention, fp32, Cpu.
//
// Shapes are ImageBind huge's: vision 257 tokens x 1280 (MLP 5120, 16 heads of 80), text 77 x 1024
// (16 heads of 64); b8 = a batch of 8 images. Counters: GB/s = bytes read + written once / wall time
// (the least traffic the op needs), GFLOP/s for attention = 4 B H L^2 d (Q K^T and P V) / wall time.
// GELU runs two ways: the Cpu kernel (ops/gelu.hpp) and the scalar functor path it replaced
// ("/reference"), side by side in one run. Attention runs two ways: the fused kernel
// (scaled_dot_product_attention_forward) and the composition matmul, softmax, matmul
// (attention_composite, under NoGrad). The symmetric (InfoNCE) cross-entropy of (N, N) logits runs
// two ways, forward alone and forward + backward: the fused op (ops/symmetric_cross_entropy.hpp) and
// the composite it replaced, cross_entropy(l, arange) + cross_entropy(contiguous(lᵀ), arange).
//
//   bench_ops --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/ops/elementwise.hpp"
#include "bindery/ops/functors.hpp"
#include "bindery/ops/gelu.hpp"
#include "bindery/ops/arithmetic.hpp"  // attention_composite uses Var operators
#include "bindery/ops/attention.hpp"
#include "bindery/autograd/engine.hpp"
#include "bindery/ops/cross_entropy.hpp"
#include "bindery/ops/shape.hpp"
#include "bindery/ops/symmetric_cross_entropy.hpp"
#include "bindery/ops/layer_norm.hpp"
#include "bindery/ops/softmax.hpp"

namespace {

using bindery::Cpu;
using bindery::Philox;
using bindery::Shape;
using Tensor = bindery::Tensor<float, Cpu>;

Tensor random_tensor(const Shape& shape, uint64_t seed = 1) {
  Philox rng(seed);
  return Tensor::normal(shape, rng);
}

/// Sets the GB/s counter for `bytes` of traffic per iteration.
void set_bandwidth(benchmark::State& state, double bytes) {
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// y = gelu(x) (exact erf form), x: (rows, cols): the Cpu kernel (ops/gelu.hpp, vectorized Φ) or,
/// as the reference, the scalar functor path it replaced (ops::map with functors::Gelu, std::erf).
void bm_gelu(benchmark::State& state, bool reference, int64_t rows, int64_t cols) {
  const Tensor x = random_tensor({rows, cols});
  for (auto _ : state) {
    Tensor y = reference ? bindery::ops::map(x, bindery::functors::Gelu{}) : bindery::ops::gelu_forward(x);
    benchmark::DoNotOptimize(y.data());
  }
  set_bandwidth(state, 2.0 * 4.0 * double(x.numel()));
}

/// dL/dx = dL/dy gelu'(x), the kernel or the functor reference (ops::zip with functors::GeluGrad).
void bm_gelu_backward(benchmark::State& state, bool reference, int64_t rows, int64_t cols) {
  const Tensor x = random_tensor({rows, cols}, 1), g = random_tensor({rows, cols}, 2);
  for (auto _ : state) {
    Tensor dx = reference ? bindery::ops::zip(g, x, bindery::functors::GeluGrad{})
                          : bindery::ops::gelu_backward(g, x);
    benchmark::DoNotOptimize(dx.data());
  }
  set_bandwidth(state, 3.0 * 4.0 * double(x.numel()));
}

/// y = gelu(x + bias), bias (cols): the fused kernel or the composite add + gelu kernel.
void bm_bias_gelu(benchmark::State& state, bool composite, int64_t rows, int64_t cols) {
  const Tensor x = random_tensor({rows, cols}, 1), bias = random_tensor({cols}, 2);
  for (auto _ : state) {
    Tensor y = composite ? bindery::ops::gelu_forward(bindery::ops::add_forward(x, bias))
                         : bindery::ops::bias_gelu_forward(x, bias);
    benchmark::DoNotOptimize(y.data());
  }
  set_bandwidth(state, 2.0 * 4.0 * double(x.numel()));
}

/// Softmax over the last axis of (rows, cols): attention probabilities, rows = B * heads * L.
void bm_softmax(benchmark::State& state, int64_t rows, int64_t cols) {
  const Tensor x = random_tensor({rows, cols});
  for (auto _ : state) {
    Tensor y = bindery::ops::softmax_forward(x, -1);
    benchmark::DoNotOptimize(y.data());
  }
  set_bandwidth(state, 2.0 * 4.0 * double(x.numel()));
}

/// LayerNorm over the last axis of (rows, dim) with weight and bias.
void bm_layer_norm(benchmark::State& state, int64_t rows, int64_t dim) {
  const Tensor x = random_tensor({rows, dim}, 1), weight = random_tensor({dim}, 2),
               bias = random_tensor({dim}, 3);
  for (auto _ : state) {
    Tensor y = bindery::ops::layer_norm_forward(x, weight, bias, 1e-6);
    benchmark::DoNotOptimize(y.data());
  }
  set_bandwidth(state, 2.0 * 4.0 * double(x.numel()));
}

/// softmax(q k^T / sqrt(d)) v on contiguous (batch, heads, len, dim) q, k, v, no mask: the fused
/// kernel (fused) or the matmul + softmax + matmul composition under NoGrad (composite).
void bm_attention(benchmark::State& state, bool fused, int64_t batch, int64_t heads, int64_t len,
                  int64_t dim) {
  const Shape shape{batch, heads, len, dim};
  const Tensor q = random_tensor(shape, 1), k = random_tensor(shape, 2), v = random_tensor(shape, 3);
  const bindery::Var<float> qv(q), kv(k), vv(v);
  const bindery::NoGrad no_grad;
  for (auto _ : state) {
    Tensor y = fused ? bindery::ops::scaled_dot_product_attention_forward(q, k, v)
                     : bindery::ops::attention_composite(qv, kv, vv).value();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(4e-9 * double(batch * heads) * double(len * len) * double(dim),
                         benchmark::Counter::kIsIterationInvariantRate);
}

/// (CE(l, arange N) + CE(lᵀ, arange N)) / 2 of logits l (N, N) in [-20, 20) (InfoNCE's range):
/// fused or composite, forward only (tensor level) or forward + backward (the loss's share of a
/// training step). GB/s counts the least traffic: N² read (forward), 2 N² read + N² written (both).
void bm_symmetric_cross_entropy(benchmark::State& state, bool fused, bool with_backward, int64_t n) {
  Philox rng(1);
  const Tensor logits = Tensor::uniform({n, n}, rng, -20, 20);
  const auto targets = bindery::Tensor<int64_t, Cpu>::arange(n);
  for (auto _ : state) {
    if (!with_backward) {
      Tensor loss = fused ? bindery::ops::symmetric_cross_entropy_forward(logits)
                          : bindery::ops::add_forward(bindery::ops::cross_entropy_forward(logits, targets),
                                                      bindery::ops::cross_entropy_forward(
                                                          logits.transpose(0, 1).contiguous(), targets));
      benchmark::DoNotOptimize(loss.data());
      continue;
    }
    const bindery::Var<float> x(logits, true);
    const bindery::Var<float> loss =
        fused ? bindery::ops::symmetric_cross_entropy(x)
              : (bindery::ops::cross_entropy(x, targets) +
                 bindery::ops::cross_entropy(bindery::ops::contiguous(bindery::ops::transpose(x, 0, 1)),
                                             targets)) *
                    0.5f;
    loss.backward();
    benchmark::DoNotOptimize(x.grad().data());
  }
  set_bandwidth(state, (with_backward ? 3.0 : 1.0) * 4.0 * double(n * n));
}

template <class F, class... Args>
void add(const std::string& name, F f, Args... args) {
  benchmark::RegisterBenchmark(name.c_str(), f, args...)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  for (const bool reference : {false, true}) {
    const std::string impl = reference ? "/reference" : "";
    add("gelu_f32/vision_mlp_257x5120" + impl, bm_gelu, reference, int64_t(257), int64_t(5120));
    add("gelu_f32/vision_b8_mlp_2056x5120" + impl, bm_gelu, reference, int64_t(2056), int64_t(5120));
    add("gelu_backward_f32/vision_mlp_257x5120" + impl, bm_gelu_backward, reference, int64_t(257),
        int64_t(5120));
  }
  add("bias_gelu_f32/vision_mlp_257x5120", bm_bias_gelu, false, int64_t(257), int64_t(5120));
  add("bias_gelu_f32/vision_mlp_257x5120/composite", bm_bias_gelu, true, int64_t(257), int64_t(5120));
  add("softmax_f32/vision_scores_16x257x257", bm_softmax, int64_t(16 * 257), int64_t(257));
  add("softmax_f32/vision_b8_scores_128x257x257", bm_softmax, int64_t(128 * 257), int64_t(257));
  add("softmax_f32/text_scores_16x77x77", bm_softmax, int64_t(16 * 77), int64_t(77));

  add("layer_norm_f32/vision_257x1280", bm_layer_norm, int64_t(257), int64_t(1280));
  add("layer_norm_f32/vision_b8_2056x1280", bm_layer_norm, int64_t(2056), int64_t(1280));
  add("layer_norm_f32/text_77x1024", bm_layer_norm, int64_t(77), int64_t(1024));
  for (const bool fused : {true, false}) {
    const std::string impl = fused ? "/fused" : "/composite";
    for (const int64_t batch : {int64_t(1), int64_t(2), int64_t(4), int64_t(8)}) {
      add("attention_f32/vision_b" + std::to_string(batch) + "_h16_L257_d80" + impl, bm_attention, fused,
          batch, int64_t(16), int64_t(257), int64_t(80));
    }
    add("attention_f32/text_b1_h16_L77_d64" + impl, bm_attention, fused, int64_t(1), int64_t(16), int64_t(77),
        int64_t(64));
  }

  for (const bool with_backward : {false, true}) {
    for (const int64_t n : {int64_t(256), int64_t(1024), int64_t(4096)}) {
      for (const bool fused : {true, false}) {
        add(std::string("symmetric_cross_entropy_f32/") + (with_backward ? "fwd_bwd" : "fwd") + "_N" +
                std::to_string(n) + (fused ? "/fused" : "/composite"),
            bm_symmetric_cross_entropy, fused, with_backward, n);
      }
    }
  }

  benchmark::AddCustomContext("openmp_threads", std::to_string(Cpu::num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
