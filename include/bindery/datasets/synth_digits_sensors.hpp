// bindery/datasets/synth_digits_sensors.hpp — the five sensors of datasets/synth_digits.hpp: what image,
// depth, thermal, IMU and audio record of one pen event, their normalization constants, and the
// caption. See synth_digits.hpp for the whole design.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindery/data/fbank.hpp"
#include "bindery/datasets/synth_digits_pen.hpp"

namespace bindery::data::synth {

// Normalization: output = (raw - mean) / std, per channel.
inline constexpr std::array<float, 3> kImageMean = {0.8317f, 0.8232f, 0.8308f};  // RGB in [0, 1]
inline constexpr std::array<float, 3> kImageStd = {0.1671f, 0.1811f, 0.1714f};
inline constexpr float kDepthMean = -0.0618f, kDepthStd = 0.2462f;     // page units
inline constexpr float kThermalMean = 0.0799f, kThermalStd = 0.1570f;  // heat units
inline constexpr std::array<float, 6> kImuMean = {0.0f,    0.0f,    0.0f,
                                                  -0.387f, -0.045f, -0.03f};  // ax ay az wx wy wz
inline constexpr std::array<float, 6> kImuStd = {21.96f, 20.34f, 14.92f, 1.023f, 2.229f, 3.133f};
inline constexpr float kAudioMean = -4.273f, kAudioStd = 2.523f;  // log mel energy

namespace detail {

// ---- rendering ----------------------------------------------------------------------------------

/// Pixel coordinates of a digit-box point: the unit box maps to [0.14 S, 0.86 S].
inline std::array<double, 2> to_pixels(double x, double y, int64_t size) {
  const double s = static_cast<double>(size);
  return {0.14 * s + 0.72 * s * x, 0.14 * s + 0.72 * s * y};
}

/// Gaussian blur (edge-replicating) of a sequence, in place.
inline void gaussian_blur_1d(std::vector<double>& v, double sigma) {
  const int64_t n = static_cast<int64_t>(v.size()), radius = static_cast<int64_t>(std::ceil(3.0 * sigma));
  std::vector<double> kernel(static_cast<size_t>(2 * radius + 1)), out(v.size());
  double sum = 0;
  for (int64_t k = -radius; k <= radius; ++k)
    sum += kernel[k + radius] = std::exp(-0.5 * k * k / (sigma * sigma));
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0;
    for (int64_t k = -radius; k <= radius; ++k)
      acc += kernel[k + radius] * v[std::clamp<int64_t>(i + k, 0, n - 1)];
    out[i] = acc / sum;
  }
  v = std::move(out);
}

/// Separable Gaussian blur (edge-replicating) of an S x S map, in place.
inline void gaussian_blur(std::vector<double>& map, int64_t size, double sigma) {
  if (sigma <= 0.05) return;
  const int64_t radius = static_cast<int64_t>(std::ceil(3.0 * sigma));
  std::vector<double> kernel(static_cast<size_t>(2 * radius + 1));
  double sum = 0;
  for (int64_t k = -radius; k <= radius; ++k)
    sum += kernel[k + radius] = std::exp(-0.5 * k * k / (sigma * sigma));
  for (double& w : kernel) w /= sum;
  std::vector<double> tmp(map.size());
  for (int pass = 0; pass < 2; ++pass) {
    const std::vector<double>& src = pass == 0 ? map : tmp;
    std::vector<double>& dst = pass == 0 ? tmp : map;
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) {
        double acc = 0;
        for (int64_t k = -radius; k <= radius; ++k) {
          const int64_t xx = pass == 0 ? std::clamp<int64_t>(x + k, 0, size - 1) : x;
          const int64_t yy = pass == 1 ? std::clamp<int64_t>(y + k, 0, size - 1) : y;
          acc += kernel[k + radius] * src[yy * size + xx];
        }
        dst[y * size + x] = acc;
      }
  }
}

/// Ink coverage (anti-aliased, stroke `width` px) and the heat trace (max over segments of coverage
/// with a 1 px wider pen times exp(-(capture - t) / tau)) of the pen-down trajectory.
inline void rasterize(const Event& e, int64_t size, double width, double capture, double tau,
                      std::vector<double>& coverage, std::vector<double>& heat) {
  coverage.assign(static_cast<size_t>(size * size), 0.0);
  heat.assign(static_cast<size_t>(size * size), 0.0);
  const double half = 0.5 * width, reach = half + 1.5;
  for (size_t k = 0; k + 1 < e.trajectory.size(); ++k) {
    const PenPoint &pa = e.trajectory[k], &pb = e.trajectory[k + 1];
    if (!pa.down || !pb.down) continue;
    const auto a = to_pixels(pa.x, pa.y, size), b = to_pixels(pb.x, pb.y, size);
    const double hotness = std::exp(-(capture - 0.5 * (pa.t + pb.t)) / tau);
    const double dx = b[0] - a[0], dy = b[1] - a[1], len2 = dx * dx + dy * dy;
    const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(std::min(a[0], b[0]) - reach)));
    const int64_t x1 =
        std::min<int64_t>(size - 1, static_cast<int64_t>(std::ceil(std::max(a[0], b[0]) + reach)));
    const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(std::min(a[1], b[1]) - reach)));
    const int64_t y1 =
        std::min<int64_t>(size - 1, static_cast<int64_t>(std::ceil(std::max(a[1], b[1]) + reach)));
    for (int64_t y = y0; y <= y1; ++y)
      for (int64_t x = x0; x <= x1; ++x) {
        const double px = x + 0.5 - a[0], py = y + 0.5 - a[1];
        const double u = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.0, 1.0) : 0.0;
        const double ex = px - u * dx, ey = py - u * dy, d2 = ex * ex + ey * ey;
        if (d2 >= (half + 1.0) * (half + 1.0)) continue;
        const double d = std::sqrt(d2);
        const size_t i = static_cast<size_t>(y * size + x);
        coverage[i] = std::max(coverage[i], std::clamp(half + 0.5 - d, 0.0, 1.0));
        heat[i] = std::max(heat[i], std::clamp(half + 1.0 - d, 0.0, 1.0) * hotness);
      }
  }
}

struct InkColour {
  const char* name;
  double rgb[3];
};
inline constexpr std::array<InkColour, 6> kInkColours = {{{"black", {0.08, 0.08, 0.1}},
                                                          {"blue", {0.1, 0.2, 0.75}},
                                                          {"red", {0.78, 0.1, 0.1}},
                                                          {"green", {0.08, 0.5, 0.2}},
                                                          {"purple", {0.45, 0.15, 0.6}},
                                                          {"brown", {0.45, 0.27, 0.1}}}};

/// Image, depth and thermal of one event; returns the ink colour index (for the caption).
inline int64_t render_maps(const SynthConfig& config, int64_t index, const Event& e, float* image,
                           float* depth, float* thermal) {
  const int64_t s = config.image_size, pixels = s * s;
  const double noise = config.noise, px_scale = static_cast<double>(s) / 32.0;
  Rng rng = sample_rng(config, index, Stream::kImage);
  std::vector<double> coverage, heat, gauss(static_cast<size_t>(3 * pixels));
  const double width = rng.uniform(1.3, 2.6) * px_scale;
  Rng heat_rng = sample_rng(config, index, Stream::kThermal);
  const double tau = heat_rng.uniform(0.5, 1.2), capture = e.duration + heat_rng.uniform(0.05, 0.3);
  rasterize(e, s, width, capture, tau, coverage, heat);
  // Image: paper * (1 - c) + ink * c, lit by a gradient, plus pixel noise.
  const int64_t ink_index = rng.below(static_cast<int64_t>(kInkColours.size()));
  double ink[3], paper[3];
  const double paper_level = rng.uniform(0.78, 0.97);
  for (int c = 0; c < 3; ++c) {
    ink[c] = std::clamp(kInkColours[static_cast<size_t>(ink_index)].rgb[c] + rng.symmetric(0.05), 0.0, 1.0);
    paper[c] = std::min(1.0, paper_level + rng.symmetric(0.04));
  }
  const double light_x = rng.symmetric(0.15, noise), light_y = rng.symmetric(0.15, noise);
  rng.normals(gauss.data(), 3 * pixels);
  for (int64_t y = 0; y < s; ++y)
    for (int64_t x = 0; x < s; ++x) {
      const int64_t i = y * s + x;
      const double light = 1.0 + light_x * ((x + 0.5) / s - 0.5) + light_y * ((y + 0.5) / s - 0.5);
      const double cov = coverage[static_cast<size_t>(i)];
      for (int64_t c = 0; c < 3; ++c) {
        const double value =
            light * (paper[c] * (1.0 - cov) + ink[c] * cov) + 0.03 * noise * gauss[c * pixels + i];
        image[c * pixels + i] = static_cast<float>((value - kImageMean[c]) / kImageStd[c]);
      }
    }
  // Depth: tilted page plane minus the blurred ink relief, plus noise.
  Rng depth_rng = sample_rng(config, index, Stream::kDepth);
  std::vector<double> relief = coverage;
  gaussian_blur(relief, s, 0.6 * px_scale);
  const double relief_height = depth_rng.uniform(0.6, 1.0), offset = depth_rng.symmetric(0.2, noise);
  const double tilt_x = depth_rng.symmetric(0.5, noise), tilt_y = depth_rng.symmetric(0.5, noise);
  depth_rng.normals(gauss.data(), pixels);
  for (int64_t y = 0; y < s; ++y)
    for (int64_t x = 0; x < s; ++x) {
      const int64_t i = y * s + x;
      const double plane = offset + tilt_x * ((x + 0.5) / s - 0.5) + tilt_y * ((y + 0.5) / s - 0.5);
      const double value = plane - relief_height * relief[static_cast<size_t>(i)] + 0.06 * noise * gauss[i];
      depth[i] = static_cast<float>((value - kDepthMean) / kDepthStd);
    }
  // Thermal: blurred heat trace, the writing hand's warm smudge, ambient offset, noise.
  gaussian_blur(heat, s, heat_rng.uniform(0.8, 1.4) * px_scale);
  const double gain = heat_rng.uniform(0.8, 1.2), ambient = heat_rng.symmetric(0.1, noise);
  const double hand = heat_rng.uniform(0.0, 0.25) * noise;
  const PenPoint& last = e.trajectory.back();
  const auto hand_centre = to_pixels(last.x + 0.15 + heat_rng.symmetric(0.1), last.y + 0.3, s);
  const double hand_radius = 0.3 * 0.72 * static_cast<double>(s);
  heat_rng.normals(gauss.data(), pixels);
  for (int64_t y = 0; y < s; ++y)
    for (int64_t x = 0; x < s; ++x) {
      const int64_t i = y * s + x;
      const double hx = x + 0.5 - hand_centre[0], hy = y + 0.5 - hand_centre[1];
      const double smudge = hand * std::exp(-0.5 * (hx * hx + hy * hy) / (hand_radius * hand_radius));
      const double value = ambient + gain * heat[static_cast<size_t>(i)] + smudge + 0.04 * noise * gauss[i];
      thermal[i] = static_cast<float>((value - kThermalMean) / kThermalStd);
    }
  return ink_index;
}

// ---- IMU ----------------------------------------------------------------------------------------

/// (6, T): acceleration and angular velocity of the pen, sensor frame, normalized. The recording
/// starts and stops a random moment before / after the writing; positions are sampled 4x finer than
/// T, smoothed over ~12 ms (the sensor's bandwidth) and differentiated.
inline void make_imu(const SynthConfig& config, int64_t index, const Event& e, float* imu) {
  const int64_t steps = config.imu_steps, fine = 4 * steps;
  const double noise = config.noise;
  Rng rng = sample_rng(config, index, Stream::kImu);
  const double start = -rng.uniform(0.0, 0.2) * noise * e.duration;
  const double stop = e.duration * (1.0 + rng.uniform(0.0, 0.2) * noise);
  const double dt = (stop - start) / static_cast<double>(fine - 1);
  const double tilt = rng.uniform(0.35, 0.8), yaw = rng.symmetric(0.35, noise);
  const double pivot = rng.uniform(1.2, 1.8), turn_gain = rng.uniform(0.2, 0.5);
  std::array<double, 6> bias{};
  for (double& b : bias) b = 0.4 * noise * rng.normal();
  // Fine positions (one extra sample each side), Gaussian-smoothed in time.
  std::vector<double> p(static_cast<size_t>(3 * (fine + 2)));
  for (int64_t k = 0; k < fine + 2; ++k) {
    const auto q = position_at(e, start + dt * static_cast<double>(k - 1));
    for (int d = 0; d < 3; ++d) p[static_cast<size_t>(d * (fine + 2) + k)] = q[static_cast<size_t>(d)];
  }
  std::vector<double> row;
  for (int d = 0; d < 3; ++d) {
    row.assign(p.begin() + d * (fine + 2), p.begin() + (d + 1) * (fine + 2));
    gaussian_blur_1d(row, std::max(1.0, 0.012 / dt));
    std::copy(row.begin(), row.end(), p.begin() + d * (fine + 2));
  }
  // Sensor frame: R = Rz(yaw) Rx(tilt); sensor vector = R^T page vector.
  const double cy = std::cos(yaw), sy = std::sin(yaw), ct = std::cos(tilt), st = std::sin(tilt);
  auto to_sensor = [&](const std::array<double, 3>& v) {
    const double x = cy * v[0] + sy * v[1], y = -sy * v[0] + cy * v[1], z = v[2];  // Rz^T
    return std::array<double, 3>{x, ct * y + st * z, -st * y + ct * z};            // Rx^T
  };
  const double slow = 0.3 * e.speed;
  std::vector<double> white(static_cast<size_t>(6 * steps));
  rng.normals(white.data(), 6 * steps);
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t j = 4 * k + 1 + (k * 3) / (steps - 1);  // fine index of step k (both ends included)
    std::array<double, 3> v{}, a{};
    for (int d = 0; d < 3; ++d) {
      const double* q = p.data() + d * (fine + 2);
      v[d] = (q[j + 1] - q[j - 1]) / (2 * dt);
      a[d] = (q[j + 1] - 2 * q[j] + q[j - 1]) / (dt * dt);
    }
    const double heading_rate = (v[0] * a[1] - v[1] * a[0]) / (v[0] * v[0] + v[1] * v[1] + slow * slow);
    const auto acc_s = to_sensor(a);
    const auto gyro_s = to_sensor({-v[1] / pivot, v[0] / pivot, turn_gain * heading_rate});
    const double raw[6] = {acc_s[0], acc_s[1], acc_s[2], gyro_s[0], gyro_s[1], gyro_s[2]};
    for (int64_t c = 0; c < 6; ++c) {
      const double value = raw[c] + kImuStd[c] * (bias[c] + 0.35 * noise * white[c * steps + k]);
      imu[c * steps + k] = static_cast<float>((value - kImuMean[c]) / kImuStd[c]);
    }
  }
}

// ---- audio --------------------------------------------------------------------------------------

enum class Onset { kNone, kFricative, kPlosive, kNasal };
struct Syllable {
  Onset onset;
  int vowel;                    // index into kVowelFormants
  double pitch_from, pitch_to;  // semitones relative to the speaker's base pitch
  double weight;                // relative vowel duration
};
/// F1, F2, F3 (Hz) of a, e, i, o, u.
inline constexpr double kVowelFormants[5][3] = {
    {730, 1090, 2440}, {530, 1840, 2480}, {270, 2290, 3010}, {570, 840, 2410}, {300, 870, 2240}};
enum : int { kA = 0, kE, kI, kO, kU };

/// The "word" of each digit.
inline const std::array<std::vector<Syllable>, kNumClasses>& digit_words() {
  using O = Onset;
  static const std::array<std::vector<Syllable>, kNumClasses> words = {{
      {{O::kFricative, kI, 2, 4, 1.0}, {O::kNone, kO, 3, -3, 1.2}},
      {{O::kNone, kA, 0, 2, 1.0}, {O::kNasal, kU, 0, -4, 1.0}},
      {{O::kPlosive, kU, -2, 5, 1.4}, {O::kNone, kI, 5, 5, 0.7}},
      {{O::kFricative, kE, 5, 0, 0.8}, {O::kNone, kI, 2, -2, 0.8}, {O::kPlosive, kA, 0, 0, 0.9}},
      {{O::kFricative, kO, 0, 0, 1.3}, {O::kNone, kA, 0, 5, 0.9}},
      {{O::kFricative, kA, 4, -2, 1.0}, {O::kNone, kI, 1, 1, 0.7}, {O::kNasal, kE, -2, 3, 0.9}},
      {{O::kFricative, kI, 0, 0, 0.8}, {O::kPlosive, kI, 3, 7, 0.8}},
      {{O::kFricative, kE, 0, 4, 0.9}, {O::kNasal, kE, 4, -3, 0.9}, {O::kNone, kU, -3, -3, 0.7}},
      {{O::kNone, kE, 3, 3, 1.0}, {O::kPlosive, kU, -2, 2, 1.0}},
      {{O::kNasal, kU, -3, -3, 0.8}, {O::kNone, kA, 2, -4, 1.0}, {O::kNasal, kI, 0, 5, 0.8}},
  }};
  return words;
}

/// Two-pole resonator with unit gain at DC (Klatt's cascade formant), coefficients set per block.
struct Resonator {
  double a1 = 0, a2 = 0, b0 = 1, y1 = 0, y2 = 0;
  void tune(double frequency, double bandwidth) {
    const double r = std::exp(-M_PI * bandwidth / kAudioSampleRate);
    a1 = 2 * r * std::cos(2 * M_PI * frequency / kAudioSampleRate);
    a2 = -r * r;
    b0 = 1 - a1 - a2;
  }
  double operator()(double x) {
    const double y = b0 * x + a1 * y1 + a2 * y2;
    y2 = y1;
    y1 = y;
    return y;
  }
};

/// A Rosenberg-like glottal pulse at phase in [0, 1): smooth opening over 40 % of the period,
/// faster closing over 16 %, closed after (polynomials instead of Rosenberg's cosines: cheaper,
/// same shape within a few percent).
inline double glottal_pulse(double phase) {
  if (phase < 0.4) {
    const double q = phase / 0.4;
    return q * q * (3 - 2 * q);
  }
  if (phase < 0.56) {
    const double q = (phase - 0.4) / 0.16;
    return 1 - q * q;
  }
  return 0.0;
}

/// (1, M, F) normalized log mel energies of the spoken digit.
inline void make_audio(const SynthConfig& config, int64_t index, int64_t label, float* audio) {
  const int64_t frames = config.audio_frames, bins = config.mel_bins, n = 400 + 160 * (frames - 1);
  const double noise = config.noise, clip = static_cast<double>(n) / kAudioSampleRate;
  Rng rng = sample_rng(config, index, Stream::kAudio);
  const std::vector<Syllable>& word = digit_words()[static_cast<size_t>(label)];
  const double base_pitch = 100.0 * std::pow(2.4, rng.uniform()), tract = rng.uniform(0.9, 1.12);
  const double word_length = rng.uniform(0.45, 0.8) * clip;
  // Plan in relative units, then scale to the word length.
  const double kOnset[4] = {0.0, 0.07, 0.035, 0.05}, kGap = 0.03, kVowelUnit = 0.16;
  double total = 0;
  for (const Syllable& s : word) total += kOnset[static_cast<int>(s.onset)] + kGap + kVowelUnit * s.weight;
  const double stretch = word_length / total;
  double t = rng.uniform(0.01, std::max(0.011, clip - word_length - 0.01));
  std::vector<double> speech(static_cast<size_t>(n), 0.0), white(static_cast<size_t>(n));
  rng.uniform_noise(white.data(), n);
  auto sample_index = [&](double time) {
    return std::clamp<int64_t>(std::llround(time * kAudioSampleRate), 0, n);
  };
  double phase = 0;
  for (size_t k = 0; k < word.size(); ++k) {
    const Syllable& s = word[k];
    const double pitch_jitter = rng.symmetric(1.0, noise), formant_jitter = 1.0 + rng.symmetric(0.05, noise);
    const double onset = kOnset[static_cast<int>(s.onset)] * stretch;
    const int64_t o0 = sample_index(t), o1 = sample_index(t + onset);
    const double f0_start = base_pitch * std::pow(2.0, (s.pitch_from + pitch_jitter) / 12.0);
    if (s.onset == Onset::kFricative) {  // band noise around 4.5-6 kHz
      Resonator hiss;
      hiss.tune(rng.uniform(4500, 6000), 1500);
      for (int64_t i = std::max<int64_t>(o0, 1); i < o1; ++i) {  // differenced: no low frequencies
        const double u = static_cast<double>(i - o0) / std::max<int64_t>(1, o1 - o0);
        speech[i] += 0.5 * std::sin(M_PI * u) * hiss(white[i] - white[i - 1]);
      }
    } else if (s.onset == Onset::kPlosive) {  // closure, then a decaying broadband burst
      const int64_t burst = o0 + (o1 - o0) * 2 / 3;
      for (int64_t i = burst; i < o1; ++i) speech[i] += 1.2 * std::exp(-(i - burst) / 80.0) * white[i];
    } else if (s.onset == Onset::kNasal) {  // voiced murmur through a low resonance
      Resonator murmur;
      murmur.tune(280 * tract, 90);
      for (int64_t i = o0; i < o1; ++i) {
        phase += f0_start / kAudioSampleRate;
        phase -= std::floor(phase);
        const double u = static_cast<double>(i - o0) / std::max<int64_t>(1, o1 - o0);
        speech[i] += 0.5 * std::sin(M_PI * std::min(1.0, 2 * u)) * murmur(glottal_pulse(phase) - 0.3);
      }
    }
    t += onset;
    // Vowel: glottal source through three cascaded formants, coarticulating into the next vowel.
    const double duration = kVowelUnit * s.weight * stretch;
    const int64_t v0 = sample_index(t), v1 = sample_index(t + duration);
    const double* here = kVowelFormants[s.vowel];
    const double* next = k + 1 < word.size() ? kVowelFormants[word[k + 1].vowel] : here;
    const double bandwidth[3] = {80, 100, 150};
    Resonator formant[3];
    double previous = 0, increment = 0;
    for (int64_t i = v0; i < v1; ++i) {
      const double u = static_cast<double>(i - v0) / std::max<int64_t>(1, v1 - v0);
      if ((i - v0) % 32 == 0) {
        const double semitones = s.pitch_from + (s.pitch_to - s.pitch_from) * u + pitch_jitter;
        increment = base_pitch * std::exp2(semitones / 12.0) / kAudioSampleRate;
        const double blend = std::max(0.0, (u - 0.7) / 0.3) * 0.5;
        for (int f = 0; f < 3; ++f)
          formant[f].tune(tract * formant_jitter * (here[f] + blend * (next[f] - here[f])), bandwidth[f]);
      }
      phase += increment;
      phase -= std::floor(phase);
      const double source = glottal_pulse(phase), radiated = source - previous;
      previous = source;
      const double envelope = std::min({1.0, (i - v0) / 200.0, (v1 - i) / 400.0});
      speech[i] += 8.0 * envelope * formant[2](formant[1](formant[0](radiated)));
    }
    t += duration + kGap * stretch;
  }
  // Loudness, coloured background noise (a one-pole low-pass of random colour), fbank.
  double energy = 0;
  for (double v : speech) energy += v * v;
  const double level = std::pow(10.0, rng.uniform(-1.6, -1.0));
  const double gain = level / std::sqrt(std::max(energy / (word_length * kAudioSampleRate), 1e-20));
  const double snr_db = rng.uniform(12.0, 28.0), colour = rng.uniform(0.5, 0.95);
  const double background = level * (noise * std::pow(10.0, -snr_db / 20.0) + 1e-3);
  const double colour_gain = std::sqrt((1 + colour) / (1 - colour));
  std::vector<double> wave(static_cast<size_t>(n));
  double low = 0;
  for (int64_t i = 0; i < n; ++i) {  // the same white noise as the onsets: they are short and far louder
    low = colour * low + (1 - colour) * white[i];
    wave[i] = gain * speech[i] + background * colour_gain * low;
  }
  FbankOptions options;
  options.num_mel_bins = bins;
  std::vector<double> fbank;
  ::bindery::data::detail::kaldi_fbank_host(wave.data(), n, options, fbank);  // (F, M)
  for (int64_t m = 0; m < bins; ++m)
    for (int64_t f = 0; f < frames; ++f)
      audio[m * frames + f] = static_cast<float>((fbank[f * bins + m] - kAudioMean) / kAudioStd);
}

// ---- caption ------------------------------------------------------------------------------------

inline std::string with_article(const std::string& noun_phrase) {
  // "an eight", "an 8", but "a one" (the words that follow are digit words, numerals, colours).
  const bool vowel_sound = noun_phrase.starts_with("eight") || noun_phrase.starts_with("8");
  return (vowel_sound ? "an " : "a ") + noun_phrase;
}

inline std::string make_caption(const SynthConfig& config, int64_t index, int64_t label, int64_t ink) {
  Rng rng = sample_rng(config, index, Stream::kCaption);
  const std::string word = digit_word(label), numeral = std::to_string(label);
  const std::string colour = kInkColours[static_cast<size_t>(ink)].name;
  switch (rng.below(8)) {
    case 0:
      return with_article("handwritten " + word);
    case 1:
      return "the digit " + numeral + " written in " + colour + " ink";
    case 2:
      return "someone writes " + with_article(numeral);
    case 3:
      return with_article(colour + " " + word + " written by hand");
    case 4:
      return "the number " + word;
    case 5:
      return "a sketch of the digit " + word + " in " + colour;
    case 6:
      return with_article(word + " scribbled on paper");
    default:
      return "the handwritten number " + numeral;
  }
}

}  // namespace detail

}  // namespace bindery::data::synth
