// Windowed-sinc resampling (torchaudio.functional.resample's algorithm): kernel against the formula,
// lengths, a band-limited sine, and the reference's resampled waveforms.
#include "audio_test_util.hpp"

#include <cmath>

using bindery::Cpu;
using bindery::Shape;
using bindery::Tensor;
using bindery::data::resample;
using bindery::data::resampled_length;
using bindery::data::sinc_resample_kernel;
namespace audio = bindery::testing::audio;

TEST_CASE("resample: kernel equals the windowed-sinc formula (double)", "[data][resample]") {
  // 3 -> 2 Hz: gcd 1, base = 2 * 0.99 = 1.98, width = ceil(6 * 3 / 1.98) = 10, taps = 2 * 10 + 3 = 23.
  const auto kernel = sinc_resample_kernel<double>(3, 2);
  REQUIRE(kernel.width == 10);
  REQUIRE(kernel.taps == 23);
  REQUIRE(kernel.weights.size() == 2 * 23);
  double worst = 0.0;
  for (int p = 0; p < 2; ++p)
    for (int k = 0; k < 23; ++k) {
      double t = ((k - 10) / 3.0 - p / 2.0) * 1.98;
      t = std::clamp(t, -6.0, 6.0);
      const double window = std::pow(std::cos(t * M_PI / 12.0), 2.0);
      const double sinc = t == 0.0 ? 1.0 : std::sin(M_PI * t) / (M_PI * t);
      worst = std::max(worst, std::fabs(kernel.weights[p * 23 + k] - sinc * window * 1.98 / 3.0));
    }
  CHECK(worst < 1e-15);
  // The rates are reduced by their gcd first: 44100 -> 16000 is 441 -> 160.
  const auto big = sinc_resample_kernel<float>(44100, 16000);
  CHECK(big.orig == 441);
  CHECK(big.new_rate == 160);
  CHECK(big.width == 17);  // ceil(6 * 441 / 158.4)
  CHECK(big.taps == 475);
}

TEST_CASE("resample: output length is ceil(new * n / orig)", "[data][resample]") {
  CHECK(resampled_length(10, 3, 2) == 7);
  CHECK(resampled_length(115110, 44100, 16000) == 41764);
  CHECK(resampled_length(1148, 8000, 16000) == 2296);
  CHECK(resampled_length(0, 8000, 16000) == 0);
  CHECK(resampled_length(5, 16000, 16000) == 5);
  bindery::Philox rng(3);
  const auto x = Tensor<float, Cpu>::uniform(Shape{2, 1001}, rng, -1.0, 1.0);
  CHECK(resample(x, 22050, 16000).shape() == Shape{2, 727});
  CHECK(resample(x.select(0, 1), 11025, 16000).shape() == Shape{1453});
  // Equal rates: the same tensor (torchaudio returns its input).
  CHECK(resample(x, 16000, 16000).data() == x.data());
}

TEST_CASE("resample: a band-limited sine stays a sine", "[data][resample]") {
  // 440 Hz at 8 kHz -> 16 kHz, and 1 kHz at 44.1 kHz -> 16 kHz; compare away from the edges.
  for (const auto& [orig, freq] :
       {std::pair{8000, 440.0}, std::pair{44100, 1000.0}, std::pair{22050, 3000.0}}) {
    const int64_t n = orig / 2;
    std::vector<double> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      x[static_cast<size_t>(i)] = std::sin(2 * M_PI * freq * static_cast<double>(i) / orig);
    const auto y = resample(Tensor<double, Cpu>::from_vector(x), orig, 16000).to_vector();
    double worst = 0.0;
    for (size_t j = 200; j + 200 < y.size(); ++j)
      worst = std::max(worst, std::fabs(y[j] - std::sin(2 * M_PI * freq * static_cast<double>(j) / 16000.0)));
    INFO(orig << " Hz, " << freq << " Hz sine: max error " << worst);
    CHECK(worst < 2e-3);  // the Hann-windowed sinc (width 6) passes the band with ~1e-3 ripple
  }
}

TEST_CASE("resample: bad shapes and rates", "[data][resample]") {
  const auto x = Tensor<float, Cpu>::zeros(Shape{2, 3, 4});
  BINDERY_REQUIRE_THROWS_WITH_ALL(resample(x, 8000, 16000), bindery::ShapeError, "(2, 3, 4)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(resample(Tensor<float, Cpu>::zeros(Shape{4}), 0, 16000),
                                  bindery::ValueError, "0 -> 16000");
}

TEST_CASE("resample: the reference's resampled waveforms (torchaudio, float32)",
          "[data][resample][reference]") {
  double overall = 0.0;
  for (const auto& c : audio::cases()) {
    const auto wave = bindery::data::read_wav<float>(c.path);
    const auto ours = resample(wave.samples, wave.sample_rate, 16000);
    REQUIRE(ours.shape() == Shape{c.channels, c.resampled_frames});
    const double error = audio::strided_max_error(ours.contiguous().to_vector(), c.resampled_step,
                                                  audio::reference(c.name, "resampled"));
    INFO(c.name << ": max |ours - torchaudio| = " << error);
    CHECK(error <= 2e-6);
    overall = std::max(overall, error);
  }
  WARN("resample vs torchaudio: max abs error " << overall << " over the fixtures");
}

TEST_CASE("resample: the 8-phase SIMD path equals the scalar loop bit for bit", "[data][resample]") {
  if (!bindery::data::detail::resample_simd_supported()) {
    WARN("SKIPPED: this CPU has no AVX2+FMA; only the scalar loop runs");
    return;
  }
  for (const auto& [from, to] : {std::pair<int64_t, int64_t>{44100, 16000}, {11025, 16000}, {22050, 16000}}) {
    const auto kernel = bindery::data::sinc_resample_kernel<float>(from, to);
    REQUIRE(kernel.new_rate >= 8);
    std::vector<float> transposed(kernel.weights.size());
    for (int64_t p = 0; p < kernel.new_rate; ++p)
      for (int64_t k = 0; k < kernel.taps; ++k)
        transposed[static_cast<size_t>(k * kernel.new_rate + p)] =
            kernel.weights[static_cast<size_t>(p * kernel.taps + k)];
    const int64_t n = 5003;  // the last block is partial: its phases take the scalar loop
    std::vector<float> x(static_cast<size_t>(n));
    uint32_t state = 7;
    for (auto& v : x) {
      state = state * 1664525u + 1013904223u;
      v = static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
    }
    const int64_t out_length = bindery::data::resampled_length(n, from, to);
    std::vector<float> scalar(static_cast<size_t>(out_length)), simd(static_cast<size_t>(out_length));
    bindery::data::detail::apply_resample_kernel(kernel, x.data(), n, scalar.data(), out_length);
    bindery::data::detail::apply_resample_kernel(kernel, x.data(), n, simd.data(), out_length, transposed);
    INFO(from << " -> " << to);
    REQUIRE(std::memcmp(scalar.data(), simd.data(), scalar.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("resample: filter bank and output size are bounded before allocating (issue 18, 7)",
          "[data][resample][hardening]") {
  const auto x = Tensor<float, Cpu>::zeros(Shape{1, 40});
  // 16,001 -> 16,000 Hz share no divisor: 16,000 phases x 16,015 taps (1 GB) used to be built.
  BINDERY_REQUIRE_THROWS_WITH_ALL(resample(x, 16001, 16000), bindery::ValueError, "16001 -> 16000",
                                  "256240000 coefficients",
                                  "16777216 (ResampleOptions::max_kernel_coefficients)");
  // 999,983 Hz (prime): 16 billion coefficients, std::bad_alloc before.
  BINDERY_REQUIRE_THROWS_WITH_ALL(resample(x, 999983, 16000), bindery::ValueError,
                                  "ResampleOptions::max_kernel_coefficients");
  BINDERY_REQUIRE_THROWS_WITH_ALL(bindery::data::sinc_resample_kernel<float>(999983, 16000),
                                  bindery::ValueError, "max_kernel_coefficients");
  // The limit is configurable: 401 -> 400 Hz needs 400 x 415 = 166,000 coefficients.
  REQUIRE(bindery::data::sinc_resample_kernel<double>(401, 400).taps == 2 * 7 + 401);
  bindery::data::ResampleOptions small_bank;
  small_bank.max_kernel_coefficients = 100000;
  BINDERY_REQUIRE_THROWS_WITH_ALL(bindery::data::sinc_resample_kernel<double>(401, 400, small_bank),
                                  bindery::ValueError, "166000 coefficients", "100000");
  // 1 Hz -> 16 kHz: a short input becomes 16,000 times longer; bounded by max_output_samples.
  bindery::data::ResampleOptions tight;
  tight.max_output_samples = 1000;
  BINDERY_REQUIRE_THROWS_WITH_ALL(resample(x, 1, 16000, tight), bindery::ValueError, "1 x 640000 samples",
                                  "1000 (ResampleOptions::max_output_samples)");
  // The common rates stay far below both limits.
  for (const int64_t rate : {8000, 11025, 22050, 32000, 44100, 48000, 88200, 96000}) {
    const auto k = bindery::data::sinc_resample_kernel<float>(rate, 16000);
    CHECK(k.new_rate * k.taps <= 300000);
  }
}
