// Kaldi fbank (torchaudio.compliance.kaldi.fbank with the reference's arguments): the FFT, the mel
// filters, a pure tone, errors, and every fixture clip against torchaudio.
#include "audio_test_util.hpp"

#include <complex>

using bindery::Cpu;
using bindery::Shape;
using bindery::Tensor;
using bindery::data::FbankOptions;
using bindery::data::kaldi_fbank;
namespace audio = bindery::testing::audio;

TEST_CASE("fbank: Eigen's 512-point real FFT against a long-double DFT", "[data][fbank]") {
  bindery::Philox rng(7);
  const auto frame = Tensor<double, Cpu>::uniform(Shape{512}, rng, -1.0, 1.0).to_vector();
  Eigen::FFT<double> fft;
  fft.SetFlag(Eigen::FFT<double>::HalfSpectrum);
  std::vector<std::complex<double>> spectrum;
  fft.fwd(spectrum, frame);
  REQUIRE(spectrum.size() == 257);
  double worst = 0.0;
  for (int k = 0; k < 257; ++k) {
    long double re = 0, im = 0;
    for (int n = 0; n < 512; ++n) {
      const long double angle = -2.0L * 3.14159265358979323846264338327950288L * ((k * n) % 512) / 512.0L;
      re += frame[n] * std::cos(angle);
      im += frame[n] * std::sin(angle);
    }
    worst = std::max(worst, static_cast<double>(std::abs(std::complex<long double>(re, im) -
                                                         std::complex<long double>(spectrum[k]))));
  }
  WARN("FFT (Eigen/kissfft, double) max abs error vs long-double DFT: " << worst);
  CHECK(worst < 1e-12);
}

TEST_CASE("fbank: mel scale and triangular filters", "[data][fbank]") {
  CHECK(bindery::data::mel_scale(700.0) == Approx(1127.0 * std::log(2.0)).epsilon(1e-15));
  const FbankOptions options;
  const auto filters = bindery::data::mel_filterbank(options);
  REQUIRE(filters.size() == 128 * 257);
  // Filter 0 spans mel(20) .. mel(20) + 2 delta, delta = (mel(8000) - mel(20)) / 129; at bin k (31.25 k Hz)
  // its weight is min(up, down) clamped at 0. Checked by hand for bins 0..3.
  const double low = 1127.0 * std::log(1.0 + 20.0 / 700.0), high = 1127.0 * std::log(1.0 + 8000.0 / 700.0);
  const double delta = (high - low) / 129.0;
  for (int k = 0; k < 4; ++k) {
    const double mel = 1127.0 * std::log(1.0 + 31.25 * k / 700.0);
    const double expected = std::max(0.0, std::min((mel - low) / delta, (low + 2 * delta - mel) / delta));
    CHECK(filters[k] == Approx(expected).margin(1e-15));
  }
  CHECK(filters[0] == 0.0);  // 0 Hz is below 20 Hz
  for (int b = 0; b < 128; ++b) {
    CHECK(filters[static_cast<size_t>(b * 257 + 256)] == 0.0);  // Nyquist column padded with zeros
    double peak = 0.0;
    for (int k = 0; k < 257; ++k) peak = std::max(peak, filters[static_cast<size_t>(b * 257 + k)]);
    CHECK(peak <= 1.0);
  }
  // The lowest bands are narrower than the 31.25 Hz bin spacing: some catch no bin at all (all zero,
  // so their feature is the floor log(FLT_EPSILON), in torchaudio too); from band 10 up all do.
  for (int b = 10; b < 128; ++b) {
    double peak = 0.0;
    for (int k = 0; k < 257; ++k) peak = std::max(peak, filters[static_cast<size_t>(b * 257 + k)]);
    CHECK(peak > 0.0);
  }
}

TEST_CASE("fbank: a 1 kHz tone peaks in the band centred near 1 kHz", "[data][fbank]") {
  std::vector<float> x(16000);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = 0.5f * static_cast<float>(std::sin(2 * M_PI * 1000.0 * i / 16000.0));
  const auto features = kaldi_fbank(Tensor<float, Cpu>::from_vector(x, Shape{1, 16000}));
  REQUIRE(features.shape() == Shape{98, 128});  // 1 + (16000 - 400) / 160
  const auto row = features.select(0, 50).to_vector();
  const auto peak = std::max_element(row.begin(), row.end()) - row.begin();
  // Band b is centred at mel_low + (b + 1) delta; find the band whose centre is nearest 1 kHz.
  const double low = bindery::data::mel_scale(20.0), delta = (bindery::data::mel_scale(8000.0) - low) / 129.0;
  const auto expected = std::lround((bindery::data::mel_scale(1000.0) - low) / delta - 1.0);
  CHECK(std::abs(peak - expected) <= 1);
  // Digital silence sits on the floor log(FLT_EPSILON).
  const auto silent = kaldi_fbank(Tensor<double, Cpu>::zeros(Shape{400}));
  REQUIRE(silent.shape() == Shape{1, 128});
  for (double v : silent.to_vector())
    CHECK(v == std::log(static_cast<double>(std::numeric_limits<float>::epsilon())));
}

TEST_CASE("fbank: errors name the sizes", "[data][fbank]") {
  BINDERY_REQUIRE_THROWS_WITH_ALL(kaldi_fbank(Tensor<float, Cpu>::zeros(Shape{1, 399})), bindery::ValueError,
                                  "399", "400");
  BINDERY_REQUIRE_THROWS_WITH_ALL(kaldi_fbank(Tensor<float, Cpu>::zeros(Shape{2, 2, 500})),
                                  bindery::ShapeError, "(2, 2, 500)");
  FbankOptions options;
  options.channel = 2;
  BINDERY_REQUIRE_THROWS_WITH_ALL(kaldi_fbank(Tensor<float, Cpu>::zeros(Shape{2, 500}), options),
                                  bindery::IndexError, "(2, 500)");
  options = {};
  options.num_mel_bins = 3;
  BINDERY_REQUIRE_THROWS_WITH_ALL(kaldi_fbank(Tensor<float, Cpu>::zeros(Shape{500}), options),
                                  bindery::ValueError, "num_mel_bins 3");
}

// torchaudio computes in float32. In near-silent mel bands (log energy ~ -15, just above the floor
// log(FLT_EPSILON) = -15.9) one rounding anywhere in a frame moves the feature by up to ~2e-3: the
// reference itself, run on the same clip in float64, differs from its float32 run by that much
// (manifest: fbank_float32_vs_float64; 2.1e-3 on bird_audio). Its float32 FFT (MKL) alone accounts for
// up to 1.9e-3 and cannot be reproduced without MKL's exact kernel, so 1e-3 on every value is out of
// reach for any re-implementation (fbank.hpp's header has the measurements). We compute in double, from
// a resampled waveform that may differ from torchaudio's by an ulp here and there (resample.hpp). The
// bound per file is therefore 1e-3 plus the reference's own float32-vs-float64 difference on that
// file, and 1e-3 flat where the reference is above -13 or against its float64 run; the plain maximum
// and the count of values beyond 1e-3 are reported.
TEST_CASE("fbank: every fixture clip against torchaudio's kaldi.fbank", "[data][fbank][reference]") {
  double worst32 = 0.0, worst64 = 0.0, worst_excess = 0.0, worst_loud = 0.0;
  size_t values = 0, beyond = 0;
  for (const auto& c : audio::cases()) {
    const auto wave = bindery::data::read_wav<float>(c.path);
    bindery::data::AudioReport report;
    const auto clips =
        bindery::data::detail::audio_clip_fbanks(wave.samples, wave.sample_rate, {}, report, c.name);
    std::vector<float> all;
    for (const auto& clip : clips) all.insert(all.end(), clip.begin(), clip.end());
    CHECK(report.clip_frames == c.clip_frames);
    const auto ref32 = audio::reference(c.name, "fbank"), ref64 = audio::reference(c.name, "fbank64");
    REQUIRE(audio::strided_max_error(all, c.fbank_step, ref32) < INFINITY);
    double case32 = 0.0, case64 = 0.0;
    for (size_t i = 0; i < ref32.size(); ++i) {
      const double ours = all[i * static_cast<size_t>(c.fbank_step)];
      const double e32 = std::fabs(ours - ref32[i]), e64 = std::fabs(ours - ref64[i]);
      const double noise = std::fabs(static_cast<double>(ref32[i]) - ref64[i]);
      case32 = std::max(case32, e32);
      case64 = std::max(case64, e64);
      worst_excess = std::max(worst_excess, e32 - noise);
      beyond += e32 > 1e-3;
      if (ref32[i] > -13.0f) worst_loud = std::max(worst_loud, e32);
      ++values;
    }
    INFO(c.name << ": max |ours - torchaudio fp32| = " << case32
                << ", max |ours - torchaudio fp64| = " << case64);
    CHECK(case32 <= 1e-3 + c.reference_noise);
    CHECK(case64 <= 1e-3);  // against the reference's float64 run, 1e-3 holds on every value
    worst32 = std::max(worst32, case32);
    worst64 = std::max(worst64, case64);
  }
  WARN("fbank vs torchaudio over " << values << " stored values of " << audio::cases().size()
                                   << " files: max abs error " << worst32 << " (float32 reference), "
                                   << worst64 << " (the reference in float64); " << beyond
                                   << " values beyond 1e-3; max (error - reference's own fp32 noise) "
                                   << worst_excess
                                   << "; where the reference is above -13 (energy > 2e-6): " << worst_loud);
  CHECK(worst_loud <= 1e-3);
}
