// The whole audio pipeline (imagebind/data.py load_and_transform_audio_data): the clip sampler, the
// report, short files, and the (3, 1, 128, 204) model input against the reference on every fixture.
#include "audio_test_util.hpp"

using bindery::Cpu;
using bindery::Shape;
using bindery::Tensor;
using bindery::data::AudioReport;
using bindery::data::constant_clip_sample_spans;
using bindery::data::load_audio_clips;
namespace audio = bindery::testing::audio;

namespace {
std::vector<std::pair<int64_t, int64_t>> pairs(const std::vector<bindery::data::SampleSpan>& spans) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& s : spans) out.emplace_back(s.begin, s.end);
  return out;
}
}  // namespace

TEST_CASE("audio: ConstantClipsPerVideoSampler(2, 3) spans, by hand", "[data][audio]") {
  using P = std::vector<std::pair<int64_t, int64_t>>;
  // 5 s: max start 3 s, starts at 0, 1, 2 s (divisor 3 = clips_per_video, not 2).
  CHECK(pairs(constant_clip_sample_spans(80000, 16000, 2.0, 3)) ==
        P{{0, 32000}, {16000, 48000}, {32000, 64000}});
  // 2.3 s: max start 2.3 - 2 = 0.2999999999999998 in double -> floor(1599.99..) = 1599, floor(3199.99..) =
  // 3199.
  CHECK(pairs(constant_clip_sample_spans(36800, 16000, 2.0, 3)) ==
        P{{0, 32000}, {1599, 33599}, {3199, 35199}});
  // Shorter than a clip: three times the whole file.
  CHECK(pairs(constant_clip_sample_spans(2296, 16000, 2.0, 3)) == P{{0, 2296}, {0, 2296}, {0, 2296}});
  CHECK(pairs(constant_clip_sample_spans(32000, 16000, 2.0, 3)) == P{{0, 32000}, {0, 32000}, {0, 32000}});
  // Exactness: floor(x * k * rate / clips) computed without rounding.
  CHECK(bindery::data::detail::exact_floor_scaled(0.5, 16000, 3) == 2666);
  CHECK(bindery::data::detail::exact_floor_scaled(3.0, 32000, 3) == 32000);
  CHECK(bindery::data::detail::exact_floor_scaled(0.1, 30, 3) == 1);  // 0.1 is 0.1000000000000000055..
  CHECK(bindery::data::detail::exact_floor_scaled(std::nextafter(3.0, 0.0), 16000, 3) == 15999);
  BINDERY_REQUIRE_THROWS_WITH_ALL(constant_clip_sample_spans(100, 16000, 2.00001, 3), bindery::ValueError,
                                  "not a whole number of samples");
}

TEST_CASE("audio: clip spans of every fixture equal pytorchvideo's", "[data][audio][reference]") {
  for (const auto& c : audio::cases()) {
    INFO(c.name);
    CHECK(pairs(constant_clip_sample_spans(c.resampled_frames, 16000, 2.0, 3)) == pairs(c.clips));
  }
}

// Bound: 1e-3 in log-mel units plus the reference's own float32 noise on the file (see
// test_audio_fbank.cpp); the maximum and the count beyond 1e-3 are reported.
TEST_CASE("audio: (3, 1, 128, 204) inputs equal the reference on every fixture", "[data][audio][reference]") {
  double overall = 0.0;
  size_t values = 0, beyond = 0;
  for (const auto& c : audio::cases()) {
    AudioReport report;
    const auto input = load_audio_clips<float>(c.path, {}, &report);
    REQUIRE(input.shape() == Shape{3, 1, 128, 204});
    CHECK(report.source_rate == c.source_rate);
    CHECK(report.channels == c.channels);
    CHECK(report.source_frames == c.source_frames);
    CHECK(report.resampled_frames == c.resampled_frames);
    CHECK(pairs(report.clips) == pairs(c.clips));
    CHECK(report.clip_frames == c.clip_frames);
    CHECK(report.shorter_than_clip == (c.resampled_frames < 32000));
    // In normalized units; * std (9.138) gives log-mel units, the scale of the 1e-3 bound.
    const auto ours = input.to_vector();
    const auto stored = audio::reference(c.name, "input");
    const double error = audio::strided_max_error(ours, c.input_step, stored) * 9.138;
    for (size_t i = 0; i < stored.size(); ++i, ++values)
      beyond += std::fabs(ours[i * static_cast<size_t>(c.input_step)] - stored[i]) * 9.138 > 1e-3;
    INFO(c.name << ": max |ours - reference| = " << error << " (log-mel units); reference's own fp32 noise "
                << c.reference_noise);
    CHECK(error <= 1e-3 + c.reference_noise);
    overall = std::max(overall, error);
  }
  WARN("audio input vs reference: max abs error " << overall << " (log-mel units) over " << values
                                                  << " stored values of all fixtures; " << beyond
                                                  << " beyond 1e-3");
}

TEST_CASE("audio: short files are padded like the reference and reported", "[data][audio]") {
  AudioReport report;
  const auto input = load_audio_clips<float>(audio::fixture("wav/s32_48k_mono_0p3s.wav"), {}, &report);
  CHECK(report.shorter_than_clip);
  CHECK(report.clip_frames == std::vector<int64_t>{28, 28, 28});
  REQUIRE(report.warnings.size() == 4);  // the short file, then the reference's "large gap" per clip
  CHECK(report.warnings[0].find("shorter than one 2 s clip") != std::string::npos);
  CHECK(report.warnings[1].find("large gap between audio n_frames (28) and target_length (204)") !=
        std::string::npos);
  // Columns 28.. are zero-padded before normalization: (0 + 4.268) / 9.138.
  const float padded = (0.0f - -4.268f) / 9.138f;
  for (int64_t t = 28; t < 204; ++t) CHECK(input.at({2, 0, 77, t}) == padded);
  // A 2 s-or-longer file has no warning.
  load_audio_clips<float>(audio::fixture("wav/u8_8k_mono_7s.wav"), {}, &report);
  CHECK(report.warnings.empty());
}

TEST_CASE("audio: fewer samples than one fbank window -> ValueError naming the file", "[data][audio]") {
  using audio::WavBuilder;
  const std::string bytes = WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 1, 16000, 16)) +
                                             WavBuilder::chunk("data", std::string(2 * 399, '\1')));
  const auto wave = bindery::data::read_wav_bytes<float>(WavBuilder::span(bytes), "tiny.wav");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      bindery::data::audio_clips_from_waveform(wave.samples, 16000, {}, nullptr, "tiny.wav"),
      bindery::ValueError, "tiny.wav", "399 samples");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      bindery::data::audio_clips_from_waveform(Tensor<float, Cpu>::zeros(Shape{2, 3, 400}), 16000),
      bindery::ShapeError, "(2, 3, 400)");
}

TEST_CASE("audio: double and float pipelines agree; batches stack", "[data][audio]") {
  const std::string dog = std::string(BINDERY_SHARED_DATA) + "/imagebind_assets/dog_audio.wav";
  const auto f = load_audio_clips<float>(dog).to_vector();
  const auto d = load_audio_clips<double>(dog).to_vector();
  // Near-silent bands move with the float32 rounding of the resampler (see resample.hpp): 0.05 at most.
  CHECK(bindery::testing::max_abs_diff(std::vector<double>(f.begin(), f.end()), d) * 9.138 < 0.05);
  const auto batch = bindery::data::load_audio_batch<float>({dog, audio::fixture("wav/u8_8k_mono_7s.wav")});
  CHECK(batch.shape() == Shape{2, 3, 1, 128, 204});
  CHECK(batch.select(0, 0).contiguous().to_vector() == f);
}
