// FSDD: listing and speaker splits of the shared recordings, the (1, 32, 64) log-mel inputs against
// the same steps composed by hand from the public pieces (wav, resample, kaldi_fbank), thread-count
// independence, the normalization constants, and generated WAVs in a temp folder (names, errors).
#include "../audio_test_util.hpp"

#include <bindery/datasets/fsdd.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

using namespace std::string_literals;
using bindery::Cpu;
using bindery::Shape;
using bindery::Tensor;
using bindery::data::fsdd_batch;
using bindery::data::fsdd_features;
using bindery::data::FsddOptions;
using bindery::data::FsddRecording;
using bindery::data::list_fsdd;
using WavBuilder = bindery::testing::audio::WavBuilder;

namespace {

using bindery::testing::TempDir;

/// The shared FSDD folder, or "" (with a warning: the test then skips) when it is absent.
std::string shared_fsdd() {
  const std::string dir = std::string(BINDERY_SHARED_DATA) + "/fsdd";
  if (!std::filesystem::is_directory(dir + "/recordings")) {
    WARN("SKIPPED: " << dir << "/recordings not found (configure with -DBINDERY_SHARED_DATA=...)");
    return "";
  }
  return dir;
}

/// Restores the thread count at scope exit.
struct ThreadGuard {
  int saved = Cpu::num_threads();
  ~ThreadGuard() { Cpu::set_num_threads(saved); }
};

/// A mono 16-bit WAV of `n` samples at `rate`: two tones and a slow envelope (deterministic).
std::string write_wav(const std::string& path, int64_t n, uint32_t rate = 8000) {
  std::vector<int16_t> samples(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    const double envelope = 0.5 - 0.5 * std::cos(2 * M_PI * static_cast<double>(i) / static_cast<double>(n));
    const double v =
        envelope * (0.3 * std::sin(2 * M_PI * 440 * t) + 0.1 * std::sin(2 * M_PI * 1250 * t)) + 0.01;
    samples[static_cast<size_t>(i)] = static_cast<int16_t>(std::lround(v * 32767.0));
  }
  const std::string bytes =
      WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 1, rate, 16)) +
                       WavBuilder::chunk("data", WavBuilder::raw(samples.data(), 2 * samples.size())));
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
  return path;
}

/// The documented steps composed from the public pieces: read_wav, resample to 16 kHz, mean removal,
/// kaldi_fbank (M bins), then (M, F) centred (crop offset (frames - F) / 2, lead padding
/// (F - frames) / 2), normalized, padding 0. Also returns the fbank frame count.
std::vector<float> composed_features(const std::string& path, const FsddOptions& options,
                                     int64_t* frames_out) {
  const auto wave = bindery::data::read_wav<float>(path);
  std::vector<float> x =
      bindery::data::resample(wave.samples.select(0, 0), wave.sample_rate, 16000).contiguous().to_vector();
  double sum = 0.0;
  for (float v : x) sum += v;
  const float mu = static_cast<float>(sum / static_cast<double>(x.size()));
  for (float& v : x) v -= mu;
  bindery::data::FbankOptions fbank;
  fbank.num_mel_bins = options.num_mel_bins;
  const Tensor<float> log_mel =
      bindery::data::kaldi_fbank(Tensor<float>::from_vector(x), fbank);  // (frames, M)
  const int64_t frames = log_mel.size(0), bins = options.num_mel_bins, target = options.num_frames;
  *frames_out = frames;
  const std::vector<float> lm = log_mel.to_vector();
  std::vector<float> out(static_cast<size_t>(bins * target), 0.0f);
  for (int64_t t = 0; t < target; ++t) {
    const int64_t src = frames >= target ? t + (frames - target) / 2 : t - (target - frames) / 2;
    if (src < 0 || src >= frames) continue;
    for (int64_t b = 0; b < bins; ++b)
      out[static_cast<size_t>(b * target + t)] =
          (lm[static_cast<size_t>(src * bins + b)] - static_cast<float>(options.mean)) /
          static_cast<float>(options.std);
  }
  return out;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace

TEST_CASE("fsdd: listing and speaker split of the shared recordings", "[data][fsdd]") {
  const std::string dir = shared_fsdd();
  if (dir.empty()) return;
  const std::vector<FsddRecording> all = list_fsdd(dir + "/recordings");
  REQUIRE(all.size() == 3000);
  CHECK(bindery::data::fsdd_speakers(all) ==
        std::vector<std::string>{"george", "jackson", "lucas", "nicolas", "theo", "yweweler"});
  // 50 takes 0..49 per (speaker, digit), each exactly once.
  std::map<std::pair<std::string, int64_t>, std::vector<int64_t>> takes;
  for (const FsddRecording& r : all) takes[{r.speaker, r.digit}].push_back(r.take);
  CHECK(takes.size() == 60);
  std::vector<int64_t> expected(50);
  for (int64_t i = 0; i < 50; ++i) expected[static_cast<size_t>(i)] = i;
  for (const auto& [key, list] : takes) {
    INFO(key.first << " digit " << key.second);
    CHECK(list == expected);  // sorted numerically (2 before 10), not by name
  }
  CHECK(all[0].path == dir + "/recordings/0_george_0.wav");
  CHECK((all[0].speaker == "george" && all[0].digit == 0 && all[0].take == 0));
  CHECK((all[2].take == 2 && all[50].digit == 1 && all[500].speaker == "jackson"));
  CHECK(bindery::data::fsdd_digits(all)[2999] == 9);
  // The dataset repository's root works too (recordings/ inside it).
  CHECK(list_fsdd(dir).size() == 3000);

  const bindery::data::FsddSplit split = bindery::data::split_by_speaker(all, {"theo"});
  CHECK(split.train.size() == 2500);
  REQUIRE(split.test.size() == 500);
  for (const FsddRecording& r : split.test) CHECK(r.speaker == "theo");
  CHECK(bindery::data::fsdd_speakers(split.train) ==
        std::vector<std::string>{"george", "jackson", "lucas", "nicolas", "yweweler"});
  const auto two = bindery::data::split_by_speaker(all, {"theo", "yweweler"});
  CHECK((two.train.size() == 2000 && two.test.size() == 1000));
  BINDERY_REQUIRE_THROWS_WITH_ALL(bindery::data::split_by_speaker(all, {"bob"}), bindery::ValueError,
                                  "'bob'"s, "george, jackson"s);
}

TEST_CASE("fsdd: (1, 32, 64) features of shared recordings", "[data][fsdd]") {
  const std::string dir = shared_fsdd();
  if (dir.empty()) return;
  const std::vector<FsddRecording> all = list_fsdd(dir + "/recordings");
  std::vector<FsddRecording> some;
  for (size_t i = 0; i < all.size(); i += 97) some.push_back(all[i]);
  // The shortest (1,148 samples: 12 frames) and the longest (18,262 samples: 226 frames) recordings.
  FsddRecording shortest, longest;
  REQUIRE(bindery::data::parse_fsdd_name("6_yweweler_3.wav", dir + "/recordings", shortest));
  REQUIRE(bindery::data::parse_fsdd_name("9_theo_16.wav", dir + "/recordings", longest));
  some.push_back(shortest);
  some.push_back(longest);
  const int64_t n = static_cast<int64_t>(some.size());

  const FsddOptions options;
  const ThreadGuard guard;
  Cpu::set_num_threads(1);
  const Tensor<float> one = fsdd_batch<float>(some, options);
  Cpu::set_num_threads(2);
  const Tensor<float> two = fsdd_batch<float>(some, options);
  REQUIRE(one.shape() == Shape{n, 1, 32, 64});
  CHECK(one.to_vector() == two.to_vector());  // bit-identical whatever the thread count
  const std::vector<float> batch = one.to_vector();
  CHECK(all_finite(batch));

  for (int64_t i = 0; i < n; ++i) {
    const FsddRecording& r = some[static_cast<size_t>(i)];
    INFO(r.path);
    const Tensor<float> single = fsdd_features<float>(r, options);
    REQUIRE(single.shape() == Shape{1, 32, 64});
    const std::vector<float> values = single.to_vector();
    CHECK(values == fsdd_features<float>(r.path, options).to_vector());  // deterministic
    CHECK(values == std::vector<float>(batch.begin() + i * 2048, batch.begin() + (i + 1) * 2048));
    int64_t frames = 0;
    CHECK(bindery::testing::max_abs_diff(values, composed_features(r.path, options, &frames)) <= 1e-6);
    if (r.path == shortest.path) {
      CHECK(frames == 12);
      for (int64_t b = 0; b < 32; ++b)
        for (int64_t t = 0; t < 64; ++t) {
          const bool padded = t < 26 || t >= 38;  // lead (64 - 12) / 2 = 26
          if (padded) CHECK(values[static_cast<size_t>(b * 64 + t)] == 0.0f);
        }
    }
    if (r.path == longest.path) CHECK(frames == 226);  // cropped from frame (226 - 64) / 2 = 81
  }
}

TEST_CASE("fsdd: normalization constants over all 3,000 recordings", "[data][fsdd]") {
  const std::string dir = shared_fsdd();
  if (dir.empty()) return;
  const std::vector<FsddRecording> all = list_fsdd(dir + "/recordings");
  const bindery::data::FsddStatistics stats = bindery::data::fsdd_statistics<float>(all);
  CHECK(stats.values == 3925856);  // sum over recordings of min(frames, 64) * 32
  CHECK(stats.mean == Approx(bindery::data::kFsddLogMelMean).margin(1e-4));
  CHECK(stats.std == Approx(bindery::data::kFsddLogMelStd).margin(1e-4));
}

TEST_CASE("fsdd: generated WAVs, names, options and errors", "[data][fsdd]") {
  const TempDir tmp;
  const std::string dir = tmp.path.string();
  write_wav(tmp.file("3_tester_7.wav"), 2400);  // 0.3 s -> 4,800 samples at 16 kHz -> 28 frames
  write_wav(tmp.file("5_tester_2.wav"), 9600);  // 1.2 s -> 19,200 samples -> 118 frames
  write_wav(tmp.file("5_alice-b_10.wav"), 4000);
  for (const char* bad :
       {"readme.txt", "3_tester.wav", "x_tester_1.wav", "12_tester_1.wav", "3__1.wav", "3_tester_1.WAV",
        "3_tes_ter_1.wav", "3_tester_1a.wav", "3_tester_.wav", "3_tester_1.wav.bak"})
    write_wav(tmp.file(bad), 2400);
  std::filesystem::create_directory(tmp.path / "4_folder_1.wav");

  const std::vector<FsddRecording> found = list_fsdd(dir);
  REQUIRE(found.size() == 3);
  CHECK((found[0].speaker == "alice-b" && found[0].digit == 5 && found[0].take == 10));
  CHECK((found[1].speaker == "tester" && found[1].digit == 3 && found[1].take == 7));
  CHECK((found[2].speaker == "tester" && found[2].digit == 5 && found[2].take == 2));
  CHECK(found[1].path == tmp.file("3_tester_7.wav"));

  const FsddOptions options;
  int64_t frames = 0;
  const std::vector<float> padded = fsdd_features<float>(found[1], options).to_vector();
  CHECK(bindery::testing::max_abs_diff(padded, composed_features(found[1].path, options, &frames)) <= 1e-6);
  CHECK(frames == 28);
  CHECK(all_finite(padded));
  for (int64_t b = 0; b < 32; ++b) {
    CHECK(padded[static_cast<size_t>(b * 64 + 17)] == 0.0f);  // lead (64 - 28) / 2 = 18
    CHECK(padded[static_cast<size_t>(b * 64 + 18)] != 0.0f);
    CHECK(padded[static_cast<size_t>(b * 64 + 45)] != 0.0f);
    CHECK(padded[static_cast<size_t>(b * 64 + 46)] == 0.0f);
  }
  const std::vector<float> cropped = fsdd_features<float>(found[2], options).to_vector();
  CHECK(bindery::testing::max_abs_diff(cropped, composed_features(found[2].path, options, &frames)) <= 1e-6);
  CHECK(frames == 118);  // cropped from frame 27

  // Raw log energies: padding holds `mean`, the rest is the normalized value un-normalized.
  FsddOptions raw;
  raw.normalize = false;
  const std::vector<float> unnormalized = fsdd_features<float>(found[1], raw).to_vector();
  CHECK(unnormalized[0] == static_cast<float>(raw.mean));
  for (size_t k = 0; k < padded.size(); ++k)
    CHECK(unnormalized[k] == Approx(padded[k] * raw.std + raw.mean).margin(1e-5));
  // double: the same features up to the float32 rounding of the resampler and fbank.
  const std::vector<double> in_double = fsdd_features<double>(found[1], options).to_vector();
  CHECK(bindery::testing::max_abs_diff(std::vector<double>(padded.begin(), padded.end()), in_double) < 0.02);
  // Other sizes and rates: no resampling at 8 kHz, 40 bands, 100 frames.
  FsddOptions other;
  other.sample_rate = 8000;
  other.num_mel_bins = 40;
  other.num_frames = 100;
  CHECK(fsdd_features<float>(found[2], other).shape() == Shape{1, 40, 100});
  CHECK(fsdd_batch<double>(found, other).shape() == Shape{3, 1, 40, 100});

  // Errors: a folder without recordings names the folder; a missing one too; a short clip names
  // its file; a broken WAV inside a batch is rethrown (FormatError naming it).
  const TempDir empty;
  write_wav(empty.file("notes.wav"), 2400);
  BINDERY_REQUIRE_THROWS_WITH_ALL(list_fsdd(empty.path.string()), bindery::IoError, empty.path.string(),
                                  "no FSDD recordings"s);
  BINDERY_REQUIRE_THROWS_WITH_ALL(list_fsdd(empty.file("absent")), bindery::IoError, empty.file("absent"));
  const std::string tiny = write_wav(tmp.file("1_tiny_0.wav"), 100);
  BINDERY_REQUIRE_THROWS_WITH_ALL(fsdd_features<float>(tiny), bindery::ValueError, tiny, "fewer than one"s);
  std::vector<FsddRecording> with_broken = found;
  const std::string broken = tmp.file("2_broken_0.wav");
  std::ofstream(broken, std::ios::binary) << "not a wav file";
  with_broken.push_back({broken, "broken", 2, 0});
  BINDERY_REQUIRE_THROWS_WITH_ALL(fsdd_batch<float>(with_broken), bindery::FormatError, broken);
  FsddOptions zero_frames;
  zero_frames.num_frames = 0;
  BINDERY_REQUIRE_THROWS_WITH_ALL(fsdd_features<float>(found[0], zero_frames), bindery::ValueError,
                                  "num_frames 0"s);
}
