// The synthetic six-sensor digits: shapes, determinism (per index, per batch, per thread count),
// balanced labels, normalization, class information in every modality, the contact sheet, errors.
#include "test_util.hpp"

#include <set>

#include <bindery/data/image.hpp>
#include <bindery/datasets/synth_digits.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

using bindery::Cpu;
using bindery::Shape;
using bindery::Tensor;
using bindery::ValueError;
using namespace bindery::data::synth;

namespace {

std::string scratch(const std::string& name) {
  static const auto dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("bindery_synth_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return (dir / name).string();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool same_bits(const std::vector<float>& a, const float* b) {
  return std::memcmp(a.data(), b, a.size() * sizeof(float)) == 0;
}

bool same_samples(const DigitSample& a, const DigitSample& b) {
  return a.label == b.label && a.caption == b.caption && same_bits(a.image, b.image) &&
         same_bits(a.depth, b.depth) && same_bits(a.thermal, b.thermal) && same_bits(a.imu, b.imu) &&
         same_bits(a.audio, b.audio);
}

bool same_batches(const DigitBatch& a, const DigitBatch& b) {
  return a.labels.to_vector() == b.labels.to_vector() && a.captions == b.captions &&
         same_bits(a.image.to_vector(), b.image.to_vector()) &&
         same_bits(a.depth.to_vector(), b.depth.to_vector()) &&
         same_bits(a.thermal.to_vector(), b.thermal.to_vector()) &&
         same_bits(a.imu.to_vector(), b.imu.to_vector()) &&
         same_bits(a.audio.to_vector(), b.audio.to_vector());
}

/// Nearest-class-centroid accuracy: centroids from samples [0, train), tested on [train, n).
double nearest_centroid_accuracy(const Tensor<float, Cpu>& x, const std::vector<int64_t>& labels,
                                 int64_t train) {
  const int64_t n = x.size(0), per = x.numel() / n;
  const float* v = x.data();
  std::vector<double> centroid(static_cast<size_t>(kNumClasses * per), 0.0);
  std::vector<int64_t> count(kNumClasses, 0);
  for (int64_t i = 0; i < train; ++i) {
    ++count[static_cast<size_t>(labels[i])];
    for (int64_t k = 0; k < per; ++k) centroid[static_cast<size_t>(labels[i] * per + k)] += v[i * per + k];
  }
  for (int64_t c = 0; c < kNumClasses; ++c)
    for (int64_t k = 0; k < per; ++k)
      centroid[static_cast<size_t>(c * per + k)] /= static_cast<double>(std::max<int64_t>(1, count[c]));
  int64_t correct = 0;
  for (int64_t i = train; i < n; ++i) {
    int64_t best = -1;
    double best_distance = INFINITY;
    for (int64_t c = 0; c < kNumClasses; ++c) {
      double d = 0;
      for (int64_t k = 0; k < per; ++k) {
        const double e = v[i * per + k] - centroid[static_cast<size_t>(c * per + k)];
        d += e * e;
      }
      if (d < best_distance) best_distance = d, best = c;
    }
    correct += best == labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(n - train);
}

}  // namespace

TEST_CASE("synth digits: shapes, labels and captions", "[data][synth]") {
  for (const SynthConfig config : {SynthConfig{}, SynthConfig{3, 16, 40, 24, 20, 0.5}}) {
    const int64_t s = config.image_size, t = config.imu_steps, m = config.mel_bins, f = config.audio_frames;
    const DigitSample sample = make_sample(config, 7);
    CHECK(sample.image.size() == static_cast<size_t>(3 * s * s));
    CHECK(sample.depth.size() == static_cast<size_t>(s * s));
    CHECK(sample.thermal.size() == static_cast<size_t>(s * s));
    CHECK(sample.imu.size() == static_cast<size_t>(6 * t));
    CHECK(sample.audio.size() == static_cast<size_t>(m * f));
    CHECK(sample.label >= 0);
    CHECK(sample.label < 10);

    const DigitBatch batch = make_batch(config, 20, 5);
    CHECK(batch.labels.shape() == Shape{5});
    CHECK(batch.image.shape() == Shape{5, 3, s, s});
    CHECK(batch.depth.shape() == Shape{5, 1, s, s});
    CHECK(batch.thermal.shape() == Shape{5, 1, s, s});
    CHECK(batch.imu.shape() == Shape{5, 6, t});
    CHECK(batch.audio.shape() == Shape{5, 1, m, f});
    CHECK(batch.captions.size() == 5);
    static_assert(std::is_same_v<decltype(DigitBatch::labels), Tensor<int64_t, Cpu>>);
    static_assert(std::is_same_v<decltype(DigitBatch::image), Tensor<float, Cpu>>);
    for (size_t i = 0; i < 5; ++i) {
      const int64_t label = batch.labels.to_vector()[i];
      const std::string& caption = batch.captions[i];
      INFO(caption);
      CHECK((caption.find(digit_word(label)) != std::string::npos ||
             caption.find(std::to_string(label)) != std::string::npos));
      for (const float v : batch.image.select(0, static_cast<int64_t>(i)).to_vector())
        REQUIRE(std::isfinite(v));
      for (const float v : batch.audio.select(0, static_cast<int64_t>(i)).to_vector())
        REQUIRE(std::isfinite(v));
    }
  }
  CHECK(std::string(digit_word(0)) == "zero");
  CHECK(std::string(digit_word(8)) == "eight");
  const DigitBatch empty = make_batch(SynthConfig{}, 0, 0);
  CHECK(empty.image.shape() == Shape{0, 3, 32, 32});
  CHECK(empty.captions.empty());
}

TEST_CASE("synth digits: deterministic per index, per batch and per thread count", "[data][synth]") {
  const SynthConfig config;
  CHECK(same_samples(make_sample(config, 12), make_sample(config, 12)));
  CHECK_FALSE(same_samples(make_sample(config, 12), make_sample(config, 13)));

  const DigitBatch batch = make_batch(config, 5, 6);
  for (int64_t i = 0; i < 6; ++i) {
    const DigitSample s = make_sample(config, 5 + i);
    INFO("index " << 5 + i);
    CHECK(batch.labels.to_vector()[static_cast<size_t>(i)] == s.label);
    CHECK(batch.captions[static_cast<size_t>(i)] == s.caption);
    CHECK(same_bits(s.image, batch.image.data() + i * static_cast<int64_t>(s.image.size())));
    CHECK(same_bits(s.depth, batch.depth.data() + i * static_cast<int64_t>(s.depth.size())));
    CHECK(same_bits(s.thermal, batch.thermal.data() + i * static_cast<int64_t>(s.thermal.size())));
    CHECK(same_bits(s.imu, batch.imu.data() + i * static_cast<int64_t>(s.imu.size())));
    CHECK(same_bits(s.audio, batch.audio.data() + i * static_cast<int64_t>(s.audio.size())));
  }

  const int threads = Cpu::num_threads();
  Cpu::set_num_threads(1);
  const DigitBatch one = make_batch(config, 100, 9);
  Cpu::set_num_threads(2);
  const DigitBatch two = make_batch(config, 100, 9);
  Cpu::set_num_threads(threads);
  CHECK(same_batches(one, two));
}

TEST_CASE("synth digits: seeds and noise", "[data][synth]") {
  SynthConfig a, b;
  b.seed = 2;
  int64_t differing = 0;
  for (int64_t i = 0; i < 10; ++i) {
    const DigitSample x = make_sample(a, i), y = make_sample(b, i);
    CHECK_FALSE(same_bits(x.image, y.image));
    CHECK_FALSE(same_bits(x.audio, y.audio));
    differing += x.label != y.label;
  }
  CHECK(differing > 0);  // the label permutation depends on the seed too
  // Each modality draws from its own stream: the noise level changes the signals, never the labels,
  // the ink colour or the caption.
  SynthConfig clean;
  clean.noise = 0.0;
  for (int64_t i = 0; i < 10; ++i) {
    const DigitSample x = make_sample(a, i), y = make_sample(clean, i);
    CHECK(x.label == y.label);
    CHECK(x.caption == y.caption);
    CHECK_FALSE(same_bits(x.depth, y.depth));
  }
}

TEST_CASE("synth digits: pen trajectories", "[data][synth]") {
  const SynthConfig config;
  for (int64_t index = 0; index < 20; ++index) {
    const std::vector<PenPoint> pen = pen_trajectory(config, index);
    const int64_t label = make_sample(config, index).label;
    INFO("index " << index << ", digit " << label);
    REQUIRE(pen.size() == static_cast<size_t>(kTrajectoryPoints));
    CHECK(pen.front().t == 0.0);
    CHECK(pen.back().t > 0.2);  // a digit takes a few tenths of a second to write
    CHECK(pen.back().t < 2.0);
    int64_t lifted = 0;
    for (size_t k = 0; k < pen.size(); ++k) {
      if (k > 0) CHECK(pen[k].t > pen[k - 1].t);
      CHECK(pen[k].x > -0.3);
      CHECK(pen[k].x < 1.3);
      CHECK(pen[k].y > -0.3);
      CHECK(pen[k].y < 1.3);
      lifted += !pen[k].down;
      if (pen[k].down) CHECK(pen[k].z == 0.0);
    }
    // Only the four is written in two strokes: the pen lifts between them, above the page.
    if (label == 4) {
      CHECK(lifted > 0);
      CHECK(std::any_of(pen.begin(), pen.end(), [](const PenPoint& p) { return p.z > 0.02; }));
    } else {
      CHECK(lifted == 0);
    }
  }
}

TEST_CASE("synth digits: labels are balanced in every block of ten", "[data][synth]") {
  const DigitBatch batch = make_batch(SynthConfig{}, 0, 100);
  const std::vector<int64_t> labels = batch.labels.to_vector();
  for (int64_t block = 0; block < 10; ++block) {
    std::vector<int64_t> seen(10, 0);
    for (int64_t k = 0; k < 10; ++k) ++seen[static_cast<size_t>(labels[static_cast<size_t>(block * 10 + k)])];
    INFO("block " << block);
    CHECK(seen == std::vector<int64_t>(10, 1));
  }
}

TEST_CASE("synth digits: outputs are roughly normalized", "[data][synth]") {
  const DigitBatch batch = make_batch(SynthConfig{}, 0, 200);
  const struct {
    const char* name;
    const Tensor<float, Cpu>* x;
    int64_t channels;
  } modalities[] = {{"image", &batch.image, 3},
                    {"depth", &batch.depth, 1},
                    {"thermal", &batch.thermal, 1},
                    {"imu", &batch.imu, 6},
                    {"audio", &batch.audio, 1}};
  for (const auto& m : modalities) {
    const int64_t per = m.x->numel() / 200, per_channel = per / m.channels;
    const float* v = m.x->data();
    for (int64_t c = 0; c < m.channels; ++c) {
      double sum = 0, sum2 = 0;
      for (int64_t i = 0; i < 200; ++i)
        for (int64_t k = 0; k < per_channel; ++k) {
          const double value = v[i * per + c * per_channel + k];
          sum += value;
          sum2 += value * value;
        }
      const double count = 200.0 * static_cast<double>(per_channel), mean = sum / count;
      const double std = std::sqrt(sum2 / count - mean * mean);
      INFO(m.name << " channel " << c << ": mean " << mean << ", std " << std);
      CHECK(std::fabs(mean) < 0.5);
      CHECK(std > 0.3);
      CHECK(std < 3.0);
    }
  }
}

TEST_CASE("synth digits: every modality carries the class", "[data][synth]") {
  // A nearest-class-centroid classifier (no learning) on raw values: far above chance (10 %) on every
  // sensor, yet well below 100 %: the nuisances are real.
  const DigitBatch batch = make_batch(SynthConfig{}, 0, 2000);
  const std::vector<int64_t> labels = batch.labels.to_vector();
  const std::pair<const char*, const Tensor<float, Cpu>*> modalities[] = {{"image", &batch.image},
                                                                          {"depth", &batch.depth},
                                                                          {"thermal", &batch.thermal},
                                                                          {"imu", &batch.imu},
                                                                          {"audio", &batch.audio}};
  for (const auto& [name, x] : modalities) {
    const double accuracy = nearest_centroid_accuracy(*x, labels, 1500);
    INFO(name << ": nearest-centroid accuracy " << accuracy);
    CHECK(accuracy >= 0.4);
    CHECK(accuracy < 0.99);
  }
}

TEST_CASE("synth digits: contact sheet is a PNG", "[data][synth]") {
  const SynthConfig config;
  const std::string path = scratch("sheet.png");
  write_contact_sheet(path, config, 10, 3);
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 8);
  CHECK(std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0);
  const bindery::data::Image image = bindery::data::read_image(path);
  // Layout (defaults): 16 px of titles, then one 96 + 6 px row per sample and a 6 px margin; columns:
  // caption (6 px per character + 24), image, depth and thermal (96 + 6 each), audio (192 + 6), IMU
  // (192), margins of 6.
  size_t longest = 0;
  for (const std::string& caption : make_batch(config, 10, 3).captions)
    longest = std::max(longest, caption.size());
  CHECK(image.channels == 3);
  CHECK(image.height == 16 + 3 * 102 + 6);
  CHECK(image.width == 6 + (6 * static_cast<int64_t>(longest) + 24) + 3 * 102 + 198 + 192 + 6);
  // Sample 10's image cell: its top-left pixel is paper-coloured (light).
  const int64_t x = 6 + 6 * static_cast<int64_t>(longest) + 24, y = 16;
  CHECK(int(image.at(y + 2, x + 2, 0)) + int(image.at(y + 2, x + 2, 1)) + int(image.at(y + 2, x + 2, 2)) >
        300);

  BINDERY_REQUIRE_THROWS_WITH_ALL(write_contact_sheet("/nonexistent-bindery-dir/sheet.png", config, 0, 2),
                                  bindery::IoError, "/nonexistent-bindery-dir/sheet.png");
}

TEST_CASE("synth digits: bad arguments", "[data][synth]") {
  const SynthConfig ok;
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_batch(ok, 0, -1), ValueError, "count -1");
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_batch(ok, -4, 2), ValueError, "first -4");
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_sample(ok, -3), ValueError, "index -3");
  BINDERY_REQUIRE_THROWS_WITH_ALL(write_contact_sheet(scratch("x.png"), ok, 0, 0), ValueError, "count 0");
  BINDERY_REQUIRE_THROWS_WITH_ALL(digit_word(10), ValueError, "digit 10");
  SynthConfig bad = ok;
  bad.image_size = 4;
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_sample(bad, 0), ValueError, "image_size 4");
  bad = ok;
  bad.imu_steps = 2;
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_batch(bad, 0, 1), ValueError, "imu_steps 2");
  bad = ok;
  bad.mel_bins = 3;
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_sample(bad, 0), ValueError, "mel_bins 3");
  bad = ok;
  bad.audio_frames = 0;
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_sample(bad, 0), ValueError, "audio_frames 0");
  bad = ok;
  bad.noise = -0.5;
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_sample(bad, 0), ValueError, "noise -0.5");
  bad.noise = NAN;
  BINDERY_REQUIRE_THROWS_WITH_ALL(make_sample(bad, 0), ValueError, "noise nan");
}

TEST_CASE("synth digits: ink colours are reported and agree with the captions", "[synth]") {
  SynthConfig config;
  const auto batch = make_batch(config, 0, 200);
  REQUIRE(batch.inks.size() == 200);
  std::set<int64_t> seen;
  int64_t named = 0;
  for (int64_t i = 0; i < 200; ++i) {
    const int64_t ink = batch.inks[static_cast<size_t>(i)];
    CHECK(ink == make_sample(config, i).ink);
    seen.insert(ink);
    const std::string& caption = batch.captions[static_cast<size_t>(i)];
    for (int64_t c = 0; c < num_inks(); ++c) {
      if (caption.find(ink_name(c)) == std::string::npos) continue;
      ++named;
      CHECK(c == ink);  // a caption that names a colour names the image's ink
    }
  }
  CHECK(seen.size() == static_cast<size_t>(num_inks()));
  CHECK(named > 40);  // 3 of 8 templates name the colour
  BINDERY_REQUIRE_THROWS_WITH_ALL(ink_name(6), ValueError, "ink 6");
}
