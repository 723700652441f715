// bindery/datasets/synth_digits.hpp — "a handwritten digit seen by six sensors": a deterministic,
// random-access generator of naturally paired image / depth / thermal / IMU / audio / caption data.
//
// One sample is one event: a digit 0-9 written by hand. Its pen trajectory is drawn once and every
// modality is derived from that one trajectory, so the six views agree the way real paired data does:
//   trajectory  per-class stroke templates (control points of Catmull-Rom pieces, corners split the
//               pieces), control points perturbed, a random affine map (rotation +-15 deg, scale
//               0.8-1.2, aspect +-10 %, shear +-0.25, translation +-0.08 of the digit box), pen-up
//               travel between strokes (lifted in z), speed slowing on curvature (a power law) and at
//               stroke ends, random writing speed, smooth tremor; resampled to kTrajectoryPoints
//               points uniform in time (time stamps in seconds) plus per-point digitizer jitter.
//   image       (3, S, S): anti-aliased strokes of random width in a random ink colour (the caption
//               names it) on random paper, a lighting gradient, pixel noise.
//   depth       (1, S, S): a depth map of the page: a randomly tilted and offset plane with the ink
//               embossed towards the camera (blurred relief of random height), plus noise.
//   thermal     (1, S, S): the pen's heat trace: each part of the stroke warmer the more recently the
//               pen passed (exponential decay with a random time constant), blurred, a warm smudge
//               of the writing hand, ambient offset and noise.
//   imu         (6, T): pen-tip linear acceleration (x, y on the page, z up: pen lifts and touch-
//               downs) and angular velocity (the pen pivoting in the fingers and turning with the
//               writing direction), in a sensor frame of random tilt and yaw, resampled to T steps
//               over the recording (the writing plus a random lead-in and tail, up to 20 % each),
//               with white noise and a random constant bias per sample.
//   audio       (1, M, F): the digit "spoken": a 2-3 syllable formant-synthesized word whose vowels,
//               onsets (fricative, plosive, nasal) and pitch contours are class-specific, relative to
//               a random base pitch, with random vocal-tract length, speaking rate, position,
//               loudness and coloured background noise; 16 kHz waveform of exactly F frames
//               (400 + 160 (F - 1) samples: 0.655 s at F = 64, so no frame is cropped or padded: the
//               word, 45-80 % of the clip, sits at a random offset inside), then bindery's Kaldi fbank
//               (data/fbank.hpp, num_mel_bins M) transposed to (mel, time).
//   caption     one of eight templates with the digit word and/or numeral and sometimes the ink colour.
// Every tensor is normalized with the fixed constants of synth_digits_sensors.hpp (measured over 4000
// samples of the default config, noise = 1): outputs are roughly zero-mean, unit-variance per channel
// (IMU values have heavier tails: the pen's stops at corners give spikes of up to ~14).
//
// Determinism: sample i is a pure function of (config, i). Each modality draws from its own Philox
// stream keyed by (seed, i, modality), so batches are generated in parallel (make_batch, OpenMP) with
// results independent of the thread count, and a data cursor is just an index. Labels are balanced:
// indices 10 b .. 10 b + 9 hold a random permutation of 0..9 (keyed by (seed, b)).
// `noise` scales every nuisance amplitude (affine ranges, template perturbation, tremor, jitter, pixel
// / depth / thermal / IMU / audio noise, biases, page tilt, lighting, sensor yaw); noise = 0 gives
// clean, centred digits. "Style" draws (colours, stroke width, writing speed, pen tilt, voice pitch,
// speaking rate, loudness) stay random at any noise level.
//
// Files: synth_digits_pen.hpp (SynthConfig, random streams, labels, digit templates, trajectory),
// synth_digits_sensors.hpp (the five sensors, normalization constants, captions), this one (samples,
// parallel batches, contact sheets), stb_image_write.hpp (PNG writing).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/stb_image_write.hpp"
#include "bindery/datasets/synth_digits_pen.hpp"
#include "bindery/datasets/synth_digits_sensors.hpp"

namespace bindery::data::synth {

/// One event seen by the six sensors; tensors flattened row-major.
struct DigitSample {
  int64_t label = 0;
  int64_t ink = 0;           // index into ink_names(): the ink colour the image shows (and captions may name)
  std::vector<float> image;  // (3, S, S)
  std::vector<float> depth;  // (1, S, S)
  std::vector<float> thermal;  // (1, S, S)
  std::vector<float> imu;      // (6, T)
  std::vector<float> audio;    // (1, M, F)
  std::string caption;
};

/// Samples first .. first + N - 1, stacked.
struct DigitBatch {
  Tensor<int64_t, Cpu> labels;  // (N)
  Tensor<float, Cpu> image;     // (N, 3, S, S)
  Tensor<float, Cpu> depth;     // (N, 1, S, S)
  Tensor<float, Cpu> thermal;   // (N, 1, S, S)
  Tensor<float, Cpu> imu;       // (N, 6, T)
  Tensor<float, Cpu> audio;     // (N, 1, M, F)
  std::vector<std::string> captions;
  std::vector<int64_t> inks;  // (N) ink colour indices (ink_name)
};

/// The name of ink colour `ink` ("black", "blue", "red", "green", "purple", "brown").
inline const char* ink_name(int64_t ink) {
  BINDERY_CHECK(ink >= 0 && ink < static_cast<int64_t>(detail::kInkColours.size()), ValueError,
                "ink_name: ink ", ink, " outside [0, ", detail::kInkColours.size(), ")");
  return detail::kInkColours[static_cast<size_t>(ink)].name;
}
inline int64_t num_inks() {
  return static_cast<int64_t>(detail::kInkColours.size());
}

namespace detail {

inline int64_t image_numel(const SynthConfig& c) {
  return c.image_size * c.image_size;
}

/// Fills one sample's slots (already sized).
inline int64_t fill_sample(const SynthConfig& config, int64_t index, float* image, float* depth,
                           float* thermal, float* imu, float* audio, std::string& caption,
                           int64_t* ink_out = nullptr) {
  const Event event = make_event(config, index);
  const int64_t ink = render_maps(config, index, event, image, depth, thermal);
  if (ink_out != nullptr) *ink_out = ink;
  make_imu(config, index, event, imu);
  make_audio(config, index, event.label, audio);
  caption = make_caption(config, index, event.label, ink);
  return event.label;
}

}  // namespace detail

/// Sample `index` (>= 0) of the stream defined by `config`: a pure function of (config, index).
inline DigitSample make_sample(const SynthConfig& config, int64_t index) {
  detail::check_config(config, "make_sample");
  BINDERY_CHECK(index >= 0, ValueError, "make_sample: index ", index, " must be >= 0");
  DigitSample s;
  const int64_t pixels = detail::image_numel(config);
  s.image.resize(static_cast<size_t>(3 * pixels));
  s.depth.resize(static_cast<size_t>(pixels));
  s.thermal.resize(static_cast<size_t>(pixels));
  s.imu.resize(static_cast<size_t>(6 * config.imu_steps));
  s.audio.resize(static_cast<size_t>(config.mel_bins * config.audio_frames));
  s.label = detail::fill_sample(config, index, s.image.data(), s.depth.data(), s.thermal.data(), s.imu.data(),
                                s.audio.data(), s.caption, &s.ink);
  return s;
}

/// The pen trajectory every sensor of sample `index` observes: kTrajectoryPoints pen samples uniform
/// in time (with tremor and digitizer jitter), before any sensor's rendering.
inline std::vector<PenPoint> pen_trajectory(const SynthConfig& config, int64_t index) {
  detail::check_config(config, "pen_trajectory");
  BINDERY_CHECK(index >= 0, ValueError, "pen_trajectory: index ", index, " must be >= 0");
  return detail::make_event(config, index).trajectory;
}

/// Samples first .. first + count - 1, generated in parallel (Cpu::for_each over OpenMP threads);
/// the result does not depend on the thread count.
inline DigitBatch make_batch(const SynthConfig& config, int64_t first, int64_t count) {
  detail::check_config(config, "make_batch");
  BINDERY_CHECK(first >= 0, ValueError, "make_batch: first ", first, " must be >= 0");
  BINDERY_CHECK(count >= 0 && count <= (int64_t{1} << 40) - first, ValueError, "make_batch: count ", count,
                " must be >= 0 (and first + count must not overflow)");
  const int64_t s = config.image_size, pixels = s * s, t = config.imu_steps;
  const int64_t m = config.mel_bins, f = config.audio_frames;
  DigitBatch batch;
  batch.labels = Tensor<int64_t, Cpu>::empty(Shape{count});
  batch.image = Tensor<float, Cpu>::empty(Shape{count, 3, s, s});
  batch.depth = Tensor<float, Cpu>::empty(Shape{count, 1, s, s});
  batch.thermal = Tensor<float, Cpu>::empty(Shape{count, 1, s, s});
  batch.imu = Tensor<float, Cpu>::empty(Shape{count, 6, t});
  batch.audio = Tensor<float, Cpu>::empty(Shape{count, 1, m, f});
  batch.captions.resize(static_cast<size_t>(count));
  batch.inks.resize(static_cast<size_t>(count));
  int64_t* labels = batch.labels.data();
  float *image = batch.image.data(), *depth = batch.depth.data(), *thermal = batch.thermal.data();
  float *imu = batch.imu.data(), *audio = batch.audio.data();
  std::exception_ptr failure;
  Cpu::for_each(
      count,
      [&](int64_t i) {
        try {
          labels[i] = detail::fill_sample(config, first + i, image + i * 3 * pixels, depth + i * pixels,
                                          thermal + i * pixels, imu + i * 6 * t, audio + i * m * f,
                                          batch.captions[static_cast<size_t>(i)],
                                          &batch.inks[static_cast<size_t>(i)]);
        } catch (...) {
#pragma omp critical(bindery_synth_digits_failure)
          if (!failure) failure = std::current_exception();
        }
      },
      1);
  if (failure) std::rethrow_exception(failure);
  return batch;
}

/// A PNG contact sheet of samples first .. first + count - 1 (1 <= count <= 1000): one row per sample
/// with its caption, then image, depth (near = bright), thermal (hot colours), audio fbank (low
/// frequencies at the bottom) and the six IMU channels as lines (acceleration x y z: red, green,
/// blue; angular velocity x y z: orange, teal, violet). Written atomically; IoError names the file.
inline void write_contact_sheet(const std::string& path, const SynthConfig& config, int64_t first,
                                int64_t count) {
  detail::check_config(config, "write_contact_sheet");
  BINDERY_CHECK(first >= 0, ValueError, "write_contact_sheet: first ", first, " must be >= 0");
  BINDERY_CHECK(count >= 1 && count <= 1000, ValueError, "write_contact_sheet: count ", count,
                " outside [1, 1000]");
  const DigitBatch batch = make_batch(config, first, count);
  const int64_t s = config.image_size, t = config.imu_steps, m = config.mel_bins, f = config.audio_frames;
  const int64_t zoom = std::max<int64_t>(1, 96 / s), cell = s * zoom;
  const int64_t audio_zoom = std::max<int64_t>(1, cell / m), audio_h = m * audio_zoom,
                audio_w = f * audio_zoom;
  const int64_t imu_w = 2 * cell, imu_h = cell, gap = 6, header = 16;
  size_t longest = 0;
  for (const std::string& c : batch.captions) longest = std::max(longest, c.size());
  const int64_t text_w = 6 * static_cast<int64_t>(longest) + 24;
  const int64_t row_h = std::max(cell, audio_h) + gap;
  const int64_t col[6] = {gap,
                          gap + text_w,
                          gap + text_w + cell + gap,
                          gap + text_w + 2 * (cell + gap),
                          gap + text_w + 3 * (cell + gap),
                          gap + text_w + 3 * (cell + gap) + audio_w + gap};
  const int64_t width = col[5] + imu_w + gap, height = header + count * row_h + gap;
  std::vector<uint8_t> rgb(static_cast<size_t>(width * height * 3), 40);
  auto put = [&](int64_t x, int64_t y, double r, double g, double b) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    uint8_t* p = rgb.data() + (y * width + x) * 3;
    p[0] = static_cast<uint8_t>(std::clamp(r, 0.0, 1.0) * 255.0 + 0.5);
    p[1] = static_cast<uint8_t>(std::clamp(g, 0.0, 1.0) * 255.0 + 0.5);
    p[2] = static_cast<uint8_t>(std::clamp(b, 0.0, 1.0) * 255.0 + 0.5);
  };
  auto hot = [](double v, double out[3]) {
    out[0] = std::clamp(3 * v, 0.0, 1.0), out[1] = std::clamp(3 * v - 1, 0.0, 1.0);
    out[2] = std::clamp(3 * v - 2, 0.0, 1.0);
  };
  // A map (h, w) drawn at (x0, y0), min-max scaled, through `paint`.
  auto draw_map = [&](const float* v, int64_t h, int64_t w, int64_t z, int64_t x0, int64_t y0, bool flip,
                      auto paint) {
    const auto [lo, hi] = std::minmax_element(v, v + h * w);
    const double range = std::max(1e-6, static_cast<double>(*hi - *lo));
    for (int64_t y = 0; y < h * z; ++y)
      for (int64_t x = 0; x < w * z; ++x) {
        const int64_t row = flip ? h - 1 - y / z : y / z;
        double c[3];
        paint((v[row * w + x / z] - *lo) / range, c);
        put(x0 + x, y0 + y, c[0], c[1], c[2]);
      }
  };
  const uint8_t white[3] = {230, 230, 230};
  const char* titles[6] = {"caption", "image", "depth", "thermal", "audio fbank", "imu"};
  for (int k = 0; k < 6; ++k)
    ::bindery::data::detail::draw_text_rgb(rgb, width, height, col[k], 4, titles[k], white);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t y0 = header + i * row_h;
    const std::string text =
        std::to_string(batch.labels.data()[i]) + ": " + batch.captions[static_cast<size_t>(i)];
    ::bindery::data::detail::draw_text_rgb(rgb, width, height, col[0], y0 + cell / 2 - 4, text, white);
    const float* image = batch.image.data() + i * 3 * s * s;
    for (int64_t y = 0; y < cell; ++y)
      for (int64_t x = 0; x < cell; ++x) {
        double c[3];
        for (int64_t ch = 0; ch < 3; ++ch)
          c[ch] = image[(ch * s + y / zoom) * s + x / zoom] * kImageStd[ch] + kImageMean[ch];
        put(col[1] + x, y0 + y, c[0], c[1], c[2]);
      }
    draw_map(batch.depth.data() + i * s * s, s, s, zoom, col[2], y0, false,
             [](double v, double c[3]) { c[0] = c[1] = c[2] = 1.0 - v; });
    draw_map(batch.thermal.data() + i * s * s, s, s, zoom, col[3], y0, false, hot);
    draw_map(batch.audio.data() + i * m * f, m, f, audio_zoom, col[4], y0, true, hot);
    // IMU: white panel, zero line, six polylines of values in [-4, 4].
    for (int64_t y = 0; y < imu_h; ++y)
      for (int64_t x = 0; x < imu_w; ++x) put(col[5] + x, y0 + y, 1, 1, 1);
    for (int64_t x = 0; x < imu_w; ++x) put(col[5] + x, y0 + imu_h / 2, 0.75, 0.75, 0.75);
    static constexpr double kLine[6][3] = {{0.85, 0.1, 0.1}, {0.1, 0.6, 0.1}, {0.1, 0.2, 0.85},
                                           {0.95, 0.55, 0},  {0, 0.6, 0.6},   {0.55, 0.1, 0.75}};
    const float* imu = batch.imu.data() + i * 6 * t;
    for (int64_t c = 0; c < 6; ++c)
      for (int64_t k = 0; k + 1 < t; ++k) {
        auto to_y = [&](float v) {
          return (0.5 - std::clamp(static_cast<double>(v), -4.0, 4.0) / 8.0) * (imu_h - 1);
        };
        const double xa = static_cast<double>(k) * (imu_w - 1) / (t - 1),
                     xb = static_cast<double>(k + 1) * (imu_w - 1) / (t - 1);
        const double ya = to_y(imu[c * t + k]), yb = to_y(imu[c * t + k + 1]);
        const int64_t steps = 1 + static_cast<int64_t>(std::max(std::fabs(xb - xa), std::fabs(yb - ya)));
        for (int64_t q = 0; q <= steps; ++q) {
          const double u = static_cast<double>(q) / steps;
          put(col[5] + std::llround(xa + u * (xb - xa)), y0 + std::llround(ya + u * (yb - ya)), kLine[c][0],
              kLine[c][1], kLine[c][2]);
        }
      }
  }
  write_png(path, rgb.data(), width, height, 3);
}

}  // namespace bindery::data::synth