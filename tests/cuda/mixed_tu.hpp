// tests/cuda/mixed_tu.hpp — the computation run by both translation units of test_mixed_tu_* (one
// compiled by g++: mixed_tu_main.cpp, one by nvcc: mixed_tu_nvcc.cu).
//
// bindery's CPU headers compile different host SIMD code under g++ (AVX-512 x·Wᵀ GEMM, 16-lane
// GELU, AVX2 resampler) and under nvcc (portable code). If the two variants were one symbol with two
// bodies, the linker would keep one body for both translation units: e.g. g++'s "the AVX-512 GEMM
// is supported" with nvcc's empty GEMM, and every Linear would write nothing. The program links one
// translation unit of each kind and checks both results against double precision.
#pragma once

#include <bindery/bindery.hpp>
#include <bindery/data/resample.hpp>

#include <cstdint>
#include <vector>

namespace mixed_tu {

/// Shapes: K >= 128 (bindery::detail::kGemmNtMinK) so x·Wᵀ is eligible for the AVX-512 kernel;
/// M and N not multiples of its 3 x 8 tile, so the edge tiles run too.
inline constexpr int64_t kRows = 5, kIn = 160, kOut = 27;
/// 11025 -> 16000 Hz: 640 output phases after the gcd, so the 8-phase SIMD resampler is eligible.
inline constexpr int64_t kOrigRate = 11025, kNewRate = 16000, kSamples = 1500;

struct Inputs {
  std::vector<float> x, weight, bias;  // (kRows, kIn), (kOut, kIn), (kOut)
  std::vector<float> gelu_in;          // any length
  std::vector<float> waveform;         // kSamples
};

struct Outputs {
  std::vector<float> linear;     // (kRows, kOut)
  std::vector<float> gelu;       // as gelu_in
  std::vector<float> resampled;  // resampled_length(kSamples, kOrigRate, kNewRate)
};

/// Defined in mixed_tu_main.cpp (g++) and mixed_tu_nvcc.cu (nvcc) respectively.
Outputs compute_gpp(const Inputs& in);
Outputs compute_nvcc(const Inputs& in);

namespace {  // one copy per translation unit: each kind of compiler builds its own

/// ops::linear (Cpu::gemm's x·Wᵀ), ops::gelu and data::resample on the Cpu backend.
[[maybe_unused]] Outputs compute(const Inputs& in) {
  using bindery::Shape;
  using bindery::Tensor;
  using bindery::Var;
  const Var<float> x(Tensor<float>::from_vector(in.x, Shape{kRows, kIn}));
  const Var<float> w(Tensor<float>::from_vector(in.weight, Shape{kOut, kIn}));
  const Var<float> b(Tensor<float>::from_vector(in.bias, Shape{kOut}));
  Outputs out;
  out.linear = bindery::ops::linear(x, w, b).value().to_vector();
  out.gelu = bindery::ops::gelu(Var<float>(Tensor<float>::from_vector(in.gelu_in))).value().to_vector();
  out.resampled =
      bindery::data::resample(Tensor<float>::from_vector(in.waveform), kOrigRate, kNewRate).to_vector();
  return out;
}

}  // namespace

}  // namespace mixed_tu
