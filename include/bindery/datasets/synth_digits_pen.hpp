// bindery/datasets/synth_digits_pen.hpp — the pen of datasets/synth_digits.hpp: its configuration, random
// streams, balanced labels, the ten digit templates and the time-stamped trajectory of one sample
// (the event every sensor observes). See synth_digits.hpp for the whole design.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/core/philox.hpp"

namespace bindery::data::synth {

/// What to generate. Sample i depends only on this struct and i.
struct SynthConfig {
  uint64_t seed = 1;
  int64_t image_size = 32;    // S: image, depth and thermal are S x S (8 .. 1024)
  int64_t imu_steps = 128;    // T (8 .. 100000)
  int64_t mel_bins = 32;      // M (4 .. 128)
  int64_t audio_frames = 64;  // F: 10 ms frames (8 .. 10000)
  double noise = 1.0;         // scales all nuisance noise (0 .. 10)
};

inline constexpr int64_t kNumClasses = 10;
inline constexpr int64_t kTrajectoryPoints = 160;  // pen samples per trajectory (uniform in time)
inline constexpr double kAudioSampleRate = 16000.0;

/// "zero" .. "nine".
inline const char* digit_word(int64_t digit) {
  static constexpr const char* kWords[] = {"zero", "one", "two",   "three", "four",
                                           "five", "six", "seven", "eight", "nine"};
  BINDERY_CHECK(digit >= 0 && digit < kNumClasses, ValueError, "digit_word: digit ", digit, " outside 0..9");
  return kWords[digit];
}

/// A pen sample: position in the digit box (x right, y down; the digit spans about 0.1 .. 0.9 before
/// its random affine map), height above the page z (0 while writing, > 0 while lifted between
/// strokes), time t in seconds from the first touch; down: the pen inks from here to the next sample.
struct PenPoint {
  double x = 0, y = 0, z = 0, t = 0;
  bool down = true;
};

namespace detail {

/// Throws ValueError naming the first bad field.
inline void check_config(const SynthConfig& c, const char* where) {
  BINDERY_CHECK(c.image_size >= 8 && c.image_size <= 1024, ValueError, where, ": image_size ", c.image_size,
                " outside [8, 1024]");
  BINDERY_CHECK(c.imu_steps >= 8 && c.imu_steps <= 100000, ValueError, where, ": imu_steps ", c.imu_steps,
                " outside [8, 100000]");
  BINDERY_CHECK(c.mel_bins >= 4 && c.mel_bins <= 128, ValueError, where, ": mel_bins ", c.mel_bins,
                " outside [4, 128]");
  BINDERY_CHECK(c.audio_frames >= 8 && c.audio_frames <= 10000, ValueError, where, ": audio_frames ",
                c.audio_frames, " outside [8, 10000]");
  BINDERY_CHECK(std::isfinite(c.noise) && c.noise >= 0.0 && c.noise <= 10.0, ValueError, where, ": noise ",
                c.noise, " outside [0, 10]");
}

/// splitmix64's finalizer: decorrelates nearby seeds and indices.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// A Philox stream with the draws the generator needs.
class Rng {
 public:
  explicit Rng(uint64_t key) : key_(key) {}
  double uniform() { return ::bindery::detail::philox_uniform01<double>(block()); }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  /// Symmetric: uniform(-half_width, half_width) * scale.
  double symmetric(double half_width, double scale = 1.0) { return uniform(-half_width, half_width) * scale; }
  double normal() { return ::bindery::detail::philox_normal(block()); }
  int64_t below(int64_t n) { return std::min<int64_t>(n - 1, static_cast<int64_t>(uniform() * double(n))); }
  /// n approximately standard normal values for sensor noise, two per Philox block: each the sum of
  /// four 16-bit uniforms (Irwin-Hall), scaled to unit variance; bounded by +-3.46 (no outliers),
  /// and ~5x cheaper than Box-Muller, which matters for the ~6k noise values of every sample.
  void normals(double* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
      const ::bindery::detail::PhiloxBlock b = block();
      for (int64_t half = 0; half < 2 && i + half < n; ++half) {
        const uint32_t w0 = b.word[2 * half], w1 = b.word[2 * half + 1];
        const double sum = static_cast<double>((w0 & 0xFFFFu) + (w0 >> 16) + (w1 & 0xFFFFu) + (w1 >> 16));
        out[i + half] = (sum * 0x1.0p-16 - 2.0) * 1.7320508075688772;
      }
    }
  }
  /// n uniform values of zero mean and unit variance, four per block (cheap audio noise).
  void uniform_noise(double* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 4) {
      const ::bindery::detail::PhiloxBlock b = block();
      for (int64_t k = 0; k < 4 && i + k < n; ++k)
        out[i + k] = (static_cast<double>(b.word[k]) * 0x1.0p-32 - 0.5) * 3.4641016151377544;
    }
  }

 private:
  ::bindery::detail::PhiloxBlock block() { return ::bindery::detail::philox4x32_10(counter_++, key_); }
  uint64_t key_;
  uint64_t counter_ = 0;
};

/// Independent streams of one sample.
enum class Stream : uint64_t { kGeometry = 1, kImage, kDepth, kThermal, kImu, kAudio, kCaption };

inline Rng sample_rng(const SynthConfig& c, int64_t index, Stream stream) {
  return Rng(mix64(mix64(c.seed) ^ mix64(static_cast<uint64_t>(index) * 8 + static_cast<uint64_t>(stream))));
}

/// Balanced labels: a permutation of 0..9 per block of ten indices.
inline int64_t label_of(const SynthConfig& c, int64_t index) {
  Rng rng(mix64(mix64(c.seed ^ 0xD1B54A32D192ED03ull) ^ mix64(static_cast<uint64_t>(index / kNumClasses))));
  std::array<int64_t, kNumClasses> perm{};
  for (int64_t k = 0; k < kNumClasses; ++k) perm[k] = k;
  for (int64_t k = kNumClasses - 1; k > 0; --k) std::swap(perm[k], perm[rng.below(k + 1)]);
  return perm[index % kNumClasses];
}

// ---- trajectory ---------------------------------------------------------------------------------

struct ControlPoint {
  double x, y;
  bool corner = false;  // the curve may turn sharply here (splits the spline)
};
using StrokeTemplate = std::vector<ControlPoint>;

/// Per-class strokes in a unit box (x right, y down, the digit spans y 0.1 .. 0.9).
inline const std::array<std::vector<StrokeTemplate>, kNumClasses>& digit_templates() {
  static const std::array<std::vector<StrokeTemplate>, kNumClasses> templates = [] {
    std::array<std::vector<StrokeTemplate>, kNumClasses> t;
    StrokeTemplate zero;  // counter-clockwise from the top, slightly past the start
    for (int k = 0; k <= 13; ++k) {
      const double a = 6.283185307179586 * k / 12.0;
      zero.push_back({0.5 - 0.25 * std::sin(a), 0.5 - 0.4 * std::cos(a)});
    }
    t[0] = {zero};
    t[1] = {{{0.36, 0.25}, {0.53, 0.1, true}, {0.52, 0.5}, {0.51, 0.9}}};
    t[2] = {{{0.3, 0.28},
             {0.4, 0.13},
             {0.56, 0.1},
             {0.7, 0.21},
             {0.69, 0.39},
             {0.55, 0.58},
             {0.29, 0.88, true},
             {0.5, 0.88},
             {0.73, 0.87}}};
    t[3] = {{{0.3, 0.17},
             {0.48, 0.1},
             {0.66, 0.17},
             {0.67, 0.32},
             {0.48, 0.47, true},
             {0.68, 0.58},
             {0.7, 0.76},
             {0.55, 0.9},
             {0.3, 0.84}}};
    t[4] = {{{0.54, 0.1}, {0.26, 0.62, true}, {0.76, 0.62}}, {{0.63, 0.36}, {0.62, 0.92}}};
    t[5] = {{{0.7, 0.1},
             {0.36, 0.11, true},
             {0.33, 0.46, true},
             {0.52, 0.41},
             {0.69, 0.54},
             {0.68, 0.77},
             {0.5, 0.9},
             {0.3, 0.84}}};
    t[6] = {{{0.65, 0.12},
             {0.46, 0.2},
             {0.33, 0.45},
             {0.31, 0.7},
             {0.42, 0.88},
             {0.6, 0.88},
             {0.68, 0.71},
             {0.58, 0.56},
             {0.41, 0.57},
             {0.32, 0.68}}};
    t[7] = {{{0.28, 0.12}, {0.72, 0.12, true}, {0.54, 0.48}, {0.43, 0.9}}};
    t[8] = {{{0.65, 0.2},
             {0.5, 0.1},
             {0.35, 0.2},
             {0.38, 0.36},
             {0.5, 0.48},
             {0.66, 0.62},
             {0.66, 0.81},
             {0.5, 0.9},
             {0.34, 0.81},
             {0.34, 0.62},
             {0.5, 0.48},
             {0.63, 0.36},
             {0.66, 0.2}}};
    t[9] = {{{0.66, 0.3},
             {0.58, 0.14},
             {0.44, 0.12},
             {0.33, 0.25},
             {0.36, 0.42},
             {0.5, 0.46},
             {0.66, 0.32, true},
             {0.66, 0.6},
             {0.62, 0.9}}};
    return t;
  }();
  return templates;
}

/// The event all sensors see: a dense path with time stamps (for exact sampling at any time), the
/// resampled trajectory (kTrajectoryPoints, uniform in time, with jitter), and the writer's style.
struct Event {
  int64_t label = 0;
  std::vector<PenPoint> path;        // dense, time-stamped; path[j].down: segment j -> j+1 is inked
  std::vector<PenPoint> trajectory;  // resampled, with tremor and jitter
  double duration = 0, speed = 0;
  std::array<double, 3> tremor_amplitude{}, tremor_frequency{}, tremor_phase_x{}, tremor_phase_y{};
};

/// Uniform Catmull-Rom through `p` (clamped ends), `steps` samples per span, appended to `out`.
inline void catmull_rom(const std::vector<std::array<double, 2>>& p, int steps,
                        std::vector<std::array<double, 2>>& out) {
  const int64_t n = static_cast<int64_t>(p.size());
  for (int64_t i = 0; i + 1 < n; ++i) {
    const auto& p0 = p[static_cast<size_t>(std::max<int64_t>(i - 1, 0))];
    const auto& p1 = p[static_cast<size_t>(i)];
    const auto& p2 = p[static_cast<size_t>(i + 1)];
    const auto& p3 = p[static_cast<size_t>(std::min<int64_t>(i + 2, n - 1))];
    for (int s = (i == 0 && out.empty()) ? 0 : 1; s <= steps; ++s) {
      const double u = static_cast<double>(s) / steps, u2 = u * u, u3 = u2 * u;
      std::array<double, 2> q{};
      for (int d = 0; d < 2; ++d)
        q[d] = 0.5 * (2 * p1[d] + (p2[d] - p0[d]) * u + (2 * p0[d] - 5 * p1[d] + 4 * p2[d] - p3[d]) * u2 +
                      (3 * p1[d] - p0[d] - 3 * p2[d] + p3[d]) * u3);
      out.push_back(q);
    }
  }
}

/// Position (x, y, z) at time t on the dense path, plus the tremor.
inline std::array<double, 3> position_at(const Event& e, double t) {
  t = std::clamp(t, 0.0, e.duration);
  const auto it = std::upper_bound(e.path.begin(), e.path.end(), t,
                                   [](double value, const PenPoint& p) { return value < p.t; });
  const size_t j =
      static_cast<size_t>(std::clamp<int64_t>(it - e.path.begin(), 1, int64_t(e.path.size()) - 1));
  const PenPoint &a = e.path[j - 1], &b = e.path[j];
  const double w = b.t > a.t ? (t - a.t) / (b.t - a.t) : 0.0;
  std::array<double, 3> p = {a.x + w * (b.x - a.x), a.y + w * (b.y - a.y), a.z + w * (b.z - a.z)};
  for (int r = 0; r < 3; ++r) {
    const double phase = 6.283185307179586 * e.tremor_frequency[r] * t;
    p[0] += e.tremor_amplitude[r] * std::sin(phase + e.tremor_phase_x[r]);
    p[1] += e.tremor_amplitude[r] * std::sin(phase + e.tremor_phase_y[r]);
  }
  return p;
}

/// Draws the trajectory of sample `index` (the geometry stream).
inline Event make_event(const SynthConfig& config, int64_t index) {
  Rng rng = sample_rng(config, index, Stream::kGeometry);
  const double noise = config.noise;
  Event e;
  e.label = label_of(config, index);
  // Random affine map about the box centre.
  const double angle = rng.symmetric(15.0 * M_PI / 180.0, noise), scale = 1.0 + rng.symmetric(0.2, noise);
  const double aspect = 1.0 + rng.symmetric(0.1, noise), shear = rng.symmetric(0.25, noise);
  const double shift_x = rng.symmetric(0.08, noise), shift_y = rng.symmetric(0.08, noise);
  const double ca = std::cos(angle), sa = std::sin(angle);
  auto transform = [&](double x, double y) {
    x -= 0.5;
    y -= 0.5;
    x += shear * y;
    x *= scale * aspect;
    y *= scale / aspect;
    return std::array<double, 2>{0.5 + ca * x - sa * y + shift_x, 0.5 + sa * x + ca * y + shift_y};
  };
  // Strokes: perturbed control points, split at corners, Catmull-Rom pieces.
  std::vector<std::vector<std::array<double, 2>>> strokes;
  for (const StrokeTemplate& stroke : digit_templates()[static_cast<size_t>(e.label)]) {
    std::vector<std::array<double, 2>> dense, piece;
    for (size_t k = 0; k < stroke.size(); ++k) {
      const double dx = 0.022 * noise * rng.normal(), dy = 0.022 * noise * rng.normal();
      piece.push_back(transform(stroke[k].x + dx, stroke[k].y + dy));
      if (stroke[k].corner || k + 1 == stroke.size()) {
        catmull_rom(piece, 10, dense);
        piece = {piece.back()};
      }
    }
    strokes.push_back(std::move(dense));
  }
  // Dense path: strokes on the page, straight lifted travel between them.
  const double lift = rng.uniform(0.08, 0.2);
  std::vector<PenPoint>& path = e.path;
  for (size_t s = 0; s < strokes.size(); ++s) {
    if (s > 0) {
      const auto a = strokes[s - 1].back(), b = strokes[s].front();
      path.back().down = false;
      for (int k = 1; k < 12; ++k) {
        const double u = k / 12.0;
        path.push_back(
            {a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1]), lift * std::sin(M_PI * u), 0, false});
      }
    }
    for (const auto& q : strokes[s]) {
      if (!path.empty() && std::hypot(q[0] - path.back().x, q[1] - path.back().y) < 1e-9) continue;
      path.push_back({q[0], q[1], 0.0, 0.0, true});
    }
  }
  // Timing: speed falls with curvature (power law) and near the ends of each pen-down/up run.
  const int64_t n = static_cast<int64_t>(path.size());
  std::vector<double> length(static_cast<size_t>(n), 0.0), factor(static_cast<size_t>(n), 1.0);
  for (int64_t j = 0; j + 1 < n; ++j)
    length[j] = std::hypot(path[j + 1].x - path[j].x, path[j + 1].y - path[j].y);
  for (int64_t j = 1; j + 1 < n; ++j) {
    const double ax = path[j].x - path[j - 1].x, ay = path[j].y - path[j - 1].y;
    const double bx = path[j + 1].x - path[j].x, by = path[j + 1].y - path[j].y;
    const double turn = std::fabs(std::atan2(ax * by - ay * bx, ax * bx + ay * by));
    const double curvature = turn / std::max(0.5 * (length[j - 1] + length[j]), 1e-6);
    factor[j] = std::max(0.04, std::pow(1.0 + curvature / 2.0, -0.5));
  }
  for (int64_t j = 0; j < n;) {  // ramps within each run of equal pen state
    int64_t end = j;
    while (end + 1 < n && path[end].down == path[j].down) ++end;
    double total = 0;
    for (int64_t k = j; k < end; ++k) total += length[k];
    double from_start = 0;
    for (int64_t k = j; k <= end; ++k) {
      const double edge = std::min(from_start, total - from_start);
      factor[k] *= (path[j].down ? 1.0 : 1.4) * std::min(1.0, 0.3 + 0.7 * edge / 0.12);
      if (k < end) from_start += length[k];
    }
    j = end + 1;
  }
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<double> smooth = factor;
    for (int64_t j = 1; j + 1 < n; ++j)
      smooth[j] = 0.25 * factor[j - 1] + 0.5 * factor[j] + 0.25 * factor[j + 1];
    factor = smooth;
  }
  e.speed = rng.uniform(2.2, 3.6);  // digit heights per second
  for (int64_t j = 1; j < n; ++j)
    path[j].t = path[j - 1].t + length[j - 1] / (e.speed * 0.5 * (factor[j - 1] + factor[j]));
  e.duration = path.back().t;
  // Tremor: three slow sinusoids per axis.
  for (int r = 0; r < 3; ++r) {
    e.tremor_amplitude[r] = 0.004 * noise * rng.uniform(0.5, 1.5);
    e.tremor_frequency[r] = rng.uniform(1.5, 6.0);
    e.tremor_phase_x[r] = rng.uniform(0.0, 6.283185307179586);
    e.tremor_phase_y[r] = rng.uniform(0.0, 6.283185307179586);
  }
  // Resampled trajectory with digitizer jitter.
  e.trajectory.resize(kTrajectoryPoints);
  size_t segment = 0;
  for (int64_t k = 0; k < kTrajectoryPoints; ++k) {
    const double t = e.duration * static_cast<double>(k) / static_cast<double>(kTrajectoryPoints - 1);
    while (segment + 2 < path.size() && path[segment + 1].t <= t) ++segment;
    const std::array<double, 3> p = position_at(e, t);
    e.trajectory[static_cast<size_t>(k)] = {p[0] + 0.003 * noise * rng.normal(),
                                            p[1] + 0.003 * noise * rng.normal(), p[2], t, path[segment].down};
  }
  return e;
}

}  // namespace detail

}  // namespace bindery::data::synth
