// tests/cuda/mixed_tu_main.cpp — the g++ translation unit and main of test_mixed_tu_* (see
// mixed_tu.hpp). Both translation units compute Linear (x·Wᵀ, K >= 128), GELU and a resampling on
// the Cpu backend from the same inputs; main checks each result against double precision and the
// two against each other. Exit code 0 when all agree. Built twice, with the objects linked in both
// orders (the linker keeps the first definition of a duplicated inline function).
#include "mixed_tu.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace mixed_tu {
Outputs compute_gpp(const Inputs& in) {
  return compute(in);
}
}  // namespace mixed_tu

namespace {

using namespace mixed_tu;

/// Largest |a - b| / (1 + |b|) over two equally long vectors (infinity when the lengths differ).
double max_rel_diff(const std::vector<float>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - b[i]) / (1.0 + std::abs(b[i]));
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

int failures = 0;

void check(const char* what, double diff, double tolerance) {
  const bool ok = diff <= tolerance;
  std::printf("%-44s max diff %.3g (tolerance %.3g) %s\n", what, diff, tolerance, ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

}  // namespace

int main() {
  bindery::Philox rng(13);
  Inputs in;
  const auto uniform = [&](int64_t n, double scale) {
    return bindery::Tensor<float>::uniform({n}, rng, -scale, scale).to_vector();
  };
  in.x = uniform(kRows * kIn, 1.0);
  in.weight = uniform(kOut * kIn, 1.0 / std::sqrt(double(kIn)));
  in.bias = uniform(kOut, 0.5);
  in.gelu_in = uniform(200, 7.0);
  for (int64_t i = 0; i < kSamples; ++i)
    in.waveform.push_back(float(0.6 * std::sin(0.031 * i) + 0.3 * std::sin(0.47 * i + 1.0)));

  // Both variants on: the g++ unit turns bindery's own kernels on (they are on by default too).
  const bool gemm_nt = bindery::Cpu::set_gemm_nt_kernel(true);
  const bool wide = bindery::ops::simd::set_wide(true);
  std::printf("g++ unit: AVX-512 x*W^T kernel %s, 16-lane GELU %s\n", gemm_nt ? "on" : "off (CPU)",
              wide ? "on" : "off (CPU)");

  // References in double precision.
  std::vector<double> linear(static_cast<size_t>(kRows * kOut));
  for (int64_t i = 0; i < kRows; ++i)
    for (int64_t j = 0; j < kOut; ++j) {
      double sum = in.bias[j];
      for (int64_t p = 0; p < kIn; ++p) sum += double(in.x[i * kIn + p]) * double(in.weight[j * kIn + p]);
      linear[static_cast<size_t>(i * kOut + j)] = sum;
    }
  std::vector<double> gelu;
  for (float v : in.gelu_in) gelu.push_back(0.5 * v * std::erfc(-double(v) / std::sqrt(2.0)));
  const bindery::data::ResampleKernel<double> kernel =
      bindery::data::sinc_resample_kernel<double>(kOrigRate, kNewRate);
  std::vector<double> resampled(
      static_cast<size_t>(bindery::data::resampled_length(kSamples, kOrigRate, kNewRate)));
  const std::vector<double> wave = widen(in.waveform);
  bindery::data::detail::apply_resample_kernel(kernel, wave.data(), kSamples, resampled.data(),
                                               static_cast<int64_t>(resampled.size()));

  const Outputs gpp = compute_gpp(in), nvcc = compute_nvcc(in);
  check("linear (g++ unit) vs double", max_rel_diff(gpp.linear, linear), 1e-5);
  check("linear (nvcc unit) vs double", max_rel_diff(nvcc.linear, linear), 1e-5);
  check("linear: g++ unit vs nvcc unit", max_rel_diff(gpp.linear, widen(nvcc.linear)), 1e-5);
  check("gelu (g++ unit) vs double", max_rel_diff(gpp.gelu, gelu), 1e-6);
  check("gelu (nvcc unit) vs double", max_rel_diff(nvcc.gelu, gelu), 1e-6);
  check("gelu: g++ unit vs nvcc unit", max_rel_diff(gpp.gelu, widen(nvcc.gelu)), 1e-6);
  check("resample (g++ unit) vs double", max_rel_diff(gpp.resampled, resampled), 1e-4);
  check("resample (nvcc unit) vs double", max_rel_diff(nvcc.resampled, resampled), 1e-4);
  check("resample: g++ unit vs nvcc unit", max_rel_diff(gpp.resampled, widen(nvcc.resampled)), 1e-6);
  std::printf("%s\n", failures == 0 ? "both translation units agree" : "MISMATCH between translation units");
  return failures == 0 ? 0 : 1;
}
