// benchmarks/bench_data.cpp — the input pipelines, raw files to model inputs (Cpu, float).
//
// Cases (Google Benchmark; wall time, whatever threads the pipeline uses):
//   image/<file>        read + decode + Pillow-exact resize + crop + normalize -> (1, 3, 224, 224);
//                       counter images/s. The reference's JPEGs (shared data) and a generated
//                       1920x1080 RGB PNG.
//   audio/<file>        read WAV + resample to 16 kHz + 3 clips + Kaldi fbank + normalize;
//                       counter audio_s/s = seconds of audio per second of wall time. The
//                       reference's WAVs and a generated 10 s 44.1 kHz stereo 16-bit WAV.
//   text/captions       CLIP BPE (ftfy cleaning, cache cold for each batch's new words) of 256
//                       captions -> (256, 77); counter strings/s.
//   depth, thermal, imu transforms on decoded data: 640x480 depth -> (1, 224, 224), 640x512
//                       thermal -> (1, 224, 224), 6 x 4000 IMU samples at 400 Hz -> (6, 2000).
// The shared data folder (BINDERY_SHARED_DATA) is read in place; cases that need it are not
// registered when it is missing.
//   bench_data --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <string>
#include <vector>

#include "bindery/data/all.hpp"
#include "bindery/data/stb_image_write.hpp"

namespace {

using bindery::Cpu;
using bindery::Shape;
using bindery::Tensor;
namespace data = bindery::data;
namespace fs = std::filesystem;

fs::path scratch_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("bindery_bench_data_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

/// A 16-bit PCM WAV of `seconds` at `rate` Hz with `channels` channels: two tones and some noise.
std::string write_test_wav(double seconds, int rate, int channels) {
  const std::string path = (scratch_dir() / ("tone_" + std::to_string(rate) + ".wav")).string();
  const auto frames = static_cast<uint32_t>(seconds * rate);
  const uint32_t bytes = frames * static_cast<uint32_t>(channels) * 2u;
  std::ofstream f(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  f.write("RIFF", 4);
  u32(36 + bytes);
  f.write("WAVEfmt ", 8);
  u32(16);
  u16(1);
  u16(static_cast<uint16_t>(channels));
  u32(static_cast<uint32_t>(rate));
  u32(static_cast<uint32_t>(rate * channels * 2));
  u16(static_cast<uint16_t>(channels * 2));
  u16(16);
  f.write("data", 4);
  u32(bytes);
  uint32_t noise = 12345;
  for (uint32_t i = 0; i < frames; ++i) {
    for (int c = 0; c < channels; ++c) {
      noise = noise * 1664525u + 1013904223u;
      const double t = double(i) / rate;
      const double v = 0.4 * std::sin(2 * M_PI * 440.0 * t) +
                       0.2 * std::sin(2 * M_PI * (1000.0 + 300 * c) * t) +
                       0.05 * (double(noise >> 8) / 16777216.0 - 0.5);
      u16(static_cast<uint16_t>(static_cast<int16_t>(std::lround(v * 32767))));
    }
  }
  return path;
}

std::string write_test_png(int64_t width, int64_t height) {
  const std::string path = (scratch_dir() / "frame_1920x1080.png").string();
  std::vector<uint8_t> rgb(static_cast<size_t>(width * height * 3));
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int64_t c = 0; c < 3; ++c)
        rgb[static_cast<size_t>((y * width + x) * 3 + c)] =
            static_cast<uint8_t>((x * (c + 1) + y * 3 + x * y / 97) & 255);
  data::write_png(path, rgb.data(), width, height, 3);
  return path;
}

void bm_image(benchmark::State& state, std::string path) {
  for (auto _ : state) {
    const Tensor<float> x = data::load_and_transform_vision_data<float>({path});
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["images/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_audio(benchmark::State& state, std::string path) {
  const auto wave = data::read_wav<float>(path);
  const double seconds = double(wave.samples.size(1)) / double(wave.sample_rate);
  for (auto _ : state) {
    const Tensor<float> x = data::load_audio_clips<float>(path);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["audio_s/s"] = benchmark::Counter(seconds, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_text(benchmark::State& state, std::string bpe) {
  const char* subjects[] = {"a dog",  "two cats",  "a red car",    "an old man",
                            "a bird", "the ocean", "a city street"};
  const char* verbs[] = {"running on", "sleeping near", "parked beside", "looking at", "flying over"};
  const char* places[] = {"the beach", "a wooden table", "the snowy mountains", "a busy café", "São Paulo"};
  std::vector<std::string> captions;
  for (int i = 0; i < 256; ++i) {
    captions.push_back(std::string(subjects[i % 7]) + " " + verbs[(i / 7) % 5] + " " + places[(i / 35) % 5] +
                       " #" + std::to_string(i));
  }
  (void)data::tokenize(captions, bpe);  // loads the merges once
  for (auto _ : state) {
    const Tensor<int64_t> ids = data::tokenize(captions, bpe);
    benchmark::DoNotOptimize(ids.data());
  }
  state.counters["strings/s"] =
      benchmark::Counter(double(captions.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void bm_depth(benchmark::State& state) {
  data::RawDepth depth;
  depth.height = 480;
  depth.width = 640;
  depth.values.resize(480 * 640);
  for (size_t i = 0; i < depth.values.size(); ++i) depth.values[i] = 500.0 + double((i * 7919) % 4000);
  for (auto _ : state) {
    const Tensor<float> x = data::transform_depth<float>(depth);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["images/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_thermal(benchmark::State& state) {
  data::Image image;
  image.height = 512;
  image.width = 640;
  image.channels = 1;
  image.pixels.resize(512 * 640);
  for (size_t i = 0; i < image.pixels.size(); ++i)
    image.pixels[i] = static_cast<uint8_t>((i * 31 + i / 640) & 255);
  for (auto _ : state) {
    const Tensor<float> x = data::transform_thermal_image<float>(image);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["images/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_imu(benchmark::State& state) {
  std::vector<float> values(6 * 4000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.01f * float(i));
  const Tensor<float> samples = Tensor<float>::from_vector(values, Shape{6, 4000});
  data::ImuOptions options;
  options.sample_rate = 400.0;
  for (auto _ : state) {
    const Tensor<float> x = data::imu_from_samples<float>(samples, options);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["samples/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string shared = BINDERY_SHARED_DATA_DIR;
  const std::string assets = shared + "/imagebind_assets/";
  const bool have_assets = fs::exists(assets + "dog_image.jpg");
  auto reg = [](const std::string& name, auto fn, auto... args) {
    benchmark::RegisterBenchmark(name.c_str(), fn, args...)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  if (have_assets) {
    for (const char* name : {"dog_image.jpg", "car_image.jpg", "bird_image.jpg"})
      reg(std::string("image/") + name, bm_image, assets + name);
  }
  reg("image/generated_1920x1080.png", bm_image, write_test_png(1920, 1080));
  if (have_assets) {
    for (const char* name : {"dog_audio.wav", "car_audio.wav", "bird_audio.wav"})
      reg(std::string("audio/") + name, bm_audio, assets + name);
  }
  reg("audio/generated_10s_44k1_stereo.wav", bm_audio, write_test_wav(10.0, 44100, 2));
  reg("audio/generated_10s_16k_mono.wav", bm_audio, write_test_wav(10.0, 16000, 1));
  if (have_assets) reg("text/captions_256", bm_text, assets + "bpe_simple_vocab_16e6.txt.gz");
  reg("depth/640x480", bm_depth);
  reg("thermal/640x512", bm_thermal);
  reg("imu/6x4000_at_400Hz", bm_imu);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ignored;
  fs::remove_all(scratch_dir(), ignored);
  return 0;
}
