// bindery/data/audio.hpp — audio files to ImageBind's input: (clips, 1, mel bins, frames) log-mel clips.
//
// The reference (imagebind/data.py, load_and_transform_audio_data), step by step:
//   1. torchaudio.load: float samples (C, N) in [-1, 1]                           -> data/wav.hpp
//   2. resample to 16 kHz (windowed sinc, Hann, width 6, rolloff 0.99)            -> data/resample.hpp
//   3. ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=3): with
//      D = N / 16000 s and M = max(D - 2, 0), clip k spans [k M / 3, k M / 3 + 2) s, i.e. samples
//      [floor(16000 k M / 3), that + 32000) clamped to N (exact rational arithmetic, as pytorchvideo's
//      Fractions; note the divisor is clips_per_video, not clips_per_video - 1: the last clip ends
//      before the file does).
//   4. per clip: subtract its mean over all channels — IN PLACE on the shared waveform (the reference
//      slices a view and does `waveform -= waveform.mean()`), so where clips overlap (files shorter
//      than 6 s) a later clip sees samples already shifted by the earlier clips' means. Reproduced.
//   5. kaldi fbank of channel 0 (128 bins, 25 ms / 10 ms, hanning)              -> data/fbank.hpp
//   6. transpose to (128, frames); zero-pad or crop to 204 frames (zeros enter BEFORE step 7),
//   7. normalize (x - (-4.268)) / 9.138 in T (torchvision Normalize: sub_ then div_).
//
// Short files: a file of less than 2 s gives three identical clips [0, N), each padded with zeros to
// 204 frames (the reference does exactly this); the report says so. A clip of fewer than 400 samples
// (25 ms) has no complete frame: torchaudio asserts, we throw a ValueError naming the file.
// The reference logs "Large gap between audio n_frames(...) and target_length" when
// |204 - frames| / frames > 0.2; the same text goes into AudioReport::warnings.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/fbank.hpp"
#include "bindery/data/resample.hpp"
#include "bindery/data/wav.hpp"

namespace bindery::data {

/// The reference's audio settings (load_and_transform_audio_data's defaults).
struct AudioOptions {
  int64_t sample_rate = 16000;  // resample to this rate first
  int64_t num_mel_bins = 128;
  int64_t target_length = 204;  // frames per clip after zero-padding / cropping
  double clip_duration_s = 2.0;
  int64_t clips_per_video = 3;
  double mean = -4.268;
  double std = 9.138;
  ResampleOptions resample{};
};

/// One clip of the resampled waveform: samples [begin, end) (video.hpp's ClipSpan is in seconds).
struct SampleSpan {
  int64_t begin = 0, end = 0;
};

/// What happened to one file (optional output of the loaders).
struct AudioReport {
  int64_t source_rate = 0, channels = 0, source_frames = 0, resampled_frames = 0;
  std::vector<SampleSpan> clips;
  std::vector<int64_t> clip_frames;   // fbank frames per clip before padding / cropping
  bool shorter_than_clip = false;     // the file is shorter than clip_duration_s
  std::vector<std::string> warnings;  // human-readable notes (short file, large padding, ...)
};

namespace detail {

/// floor(value * numerator / denominator) for a finite double value >= 0, exactly (no rounding):
/// pytorchvideo computes clip bounds with Fractions, so a double product could be off by one sample.
inline int64_t exact_floor_scaled(double value, int64_t numerator, int64_t denominator) {
  if (value == 0.0 || numerator == 0) return 0;
  int exponent = 0;
  const double fraction =
      std::frexp(value, &exponent);  // value = fraction * 2^exponent, fraction in [0.5, 1)
  const auto mantissa = static_cast<__int128>(std::ldexp(fraction, 53));  // exact 53-bit integer
  exponent -= 53;
  __int128 top = mantissa * numerator;  // < 2^53 * 2^63: fits
  if (exponent >= 0) {
    BINDERY_CHECK(exponent <= 8, ValueError, "clip sampler: duration ", value, " s is too large");
    top <<= exponent;
  } else {
    if (-exponent >= 120) return 0;
    top >>= -exponent;  // floor(floor(a / 2^e) / d) == floor(a / (2^e d)) for positive integers
  }
  const __int128 bottom = denominator;
  return static_cast<int64_t>(top / bottom);
}

}  // namespace detail

/// The clips ConstantClipsPerVideoSampler(clip_duration, clips_per_video) gives a waveform of
/// `num_samples` samples at `sample_rate`, as the reference slices them (end clamped to num_samples).
inline std::vector<SampleSpan> constant_clip_sample_spans(int64_t num_samples, int64_t sample_rate,
                                                          double clip_duration_s, int64_t clips_per_video) {
  BINDERY_CHECK(num_samples >= 0 && sample_rate > 0 && clips_per_video > 0 && clip_duration_s > 0.0,
                ValueError, "constant_clip_sample_spans: ", num_samples, " samples at ", sample_rate,
                " Hz, clip ", clip_duration_s, " s, ", clips_per_video, " clips");
  const double clip_samples = clip_duration_s * static_cast<double>(sample_rate);
  BINDERY_CHECK(clip_samples == std::floor(clip_samples) && clip_samples < 1e15, ValueError,
                "constant_clip_sample_spans: clip of ", clip_duration_s,
                " s is not a whole number of samples at ", sample_rate, " Hz");
  // pytorchvideo: max(duration - clip_duration, 0) in float, then exact Fractions.
  const double duration = static_cast<double>(num_samples) / static_cast<double>(sample_rate);
  const double max_start = std::max(duration - clip_duration_s, 0.0);
  std::vector<SampleSpan> spans;
  for (int64_t k = 0; k < clips_per_video; ++k) {
    const int64_t begin = detail::exact_floor_scaled(max_start, k * sample_rate, clips_per_video);
    const int64_t end = begin + static_cast<int64_t>(clip_samples);
    spans.push_back({std::min(begin, num_samples), std::min(end, num_samples)});
  }
  return spans;
}

namespace detail {

/// Steps 2-5 of the pipeline: the log-mel features of each clip, (frames_c, num_mel_bins) row-major,
/// before padding and normalization (what the reference's kaldi.fbank call returns).
template <class T, class B>
std::vector<std::vector<T>> audio_clip_fbanks(const Tensor<T, B>& samples, int64_t sample_rate,
                                              const AudioOptions& options, AudioReport& r,
                                              const std::string& name) {
  static_assert(std::is_floating_point_v<T>, "audio clips: T must be float or double");
  BINDERY_CHECK(samples.defined() && samples.rank() == 2 && samples.size(0) >= 1, ShapeError, "audio clips (",
                name, "): samples of shape ", samples.shape(), " must be (C, N) with C >= 1");
  BINDERY_CHECK(sample_rate > 0, ValueError, "audio clips (", name, "): sample rate ", sample_rate);
  BINDERY_CHECK(options.target_length > 0 && options.std != 0.0 && options.sample_rate > 0, ValueError,
                "audio clips (", name, "): target_length ", options.target_length, ", std ", options.std,
                ", sample_rate ", options.sample_rate);
  r = AudioReport{};
  r.source_rate = sample_rate;
  r.channels = samples.size(0);
  r.source_frames = samples.size(1);

  const Tensor<T, B> wave = resample(samples, sample_rate, options.sample_rate, options.resample);
  std::vector<T> host = wave.contiguous().to_vector();  // (C, N'), modified in place clip by clip
  const int64_t channels = wave.size(0), n = wave.size(1);
  r.resampled_frames = n;
  r.clips =
      constant_clip_sample_spans(n, options.sample_rate, options.clip_duration_s, options.clips_per_video);
  const double clip_samples = options.clip_duration_s * static_cast<double>(options.sample_rate);
  if (static_cast<double>(n) < clip_samples) {
    r.shorter_than_clip = true;
    r.warnings.push_back(::bindery::detail::concat(
        name, ": ", static_cast<double>(n) / static_cast<double>(options.sample_rate),
        " s is shorter than one ", options.clip_duration_s, " s clip: the ", options.clips_per_video,
        " clips all cover the whole file and are zero-padded (as the reference does)"));
  }
  FbankOptions fbank;
  fbank.sample_frequency = static_cast<double>(options.sample_rate);
  fbank.num_mel_bins = options.num_mel_bins;
  std::vector<std::vector<T>> features(r.clips.size());
  std::vector<T> clip;
  for (size_t c = 0; c < r.clips.size(); ++c) {
    const SampleSpan span = r.clips[c];
    const int64_t length = span.end - span.begin;
    BINDERY_CHECK(length >= fbank_geometry(fbank).window_size, ValueError, "audio clips (", name, "): clip ",
                  c, " has ", length, " samples at ", options.sample_rate,
                  " Hz, fewer than one 25 ms fbank window (the reference fails on it too)");
    // In-place mean removal over all channels of the clip (see the header comment).
    double sum = 0.0;
    for (int64_t ch = 0; ch < channels; ++ch)
      for (int64_t i = span.begin; i < span.end; ++i)
        sum += static_cast<double>(host[static_cast<size_t>(ch * n + i)]);
    const T clip_mean = static_cast<T>(sum / static_cast<double>(channels * length));
    for (int64_t ch = 0; ch < channels; ++ch)
      for (int64_t i = span.begin; i < span.end; ++i) host[static_cast<size_t>(ch * n + i)] -= clip_mean;
    clip.assign(host.begin() + span.begin, host.begin() + span.end);  // channel 0
    kaldi_fbank_host(clip.data(), length, fbank, features[c]);
    const int64_t frames = static_cast<int64_t>(features[c].size()) / options.num_mel_bins;
    r.clip_frames.push_back(frames);
    if (std::abs(static_cast<double>(options.target_length - frames)) / static_cast<double>(frames) > 0.2) {
      r.warnings.push_back(::bindery::detail::concat(name, ": clip ", c,
                                                     ": large gap between audio n_frames (", frames,
                                                     ") and target_length (", options.target_length, ")"));
    }
  }
  return features;
}

}  // namespace detail

/// ImageBind audio clips of a decoded waveform. samples: (C, N) at `sample_rate` Hz
/// -> (clips_per_video, 1, num_mel_bins, target_length).
template <class T = float, class B = Cpu>
Tensor<T, B> audio_clips_from_waveform(const Tensor<T, B>& samples, int64_t sample_rate,
                                       const AudioOptions& options = {}, AudioReport* report = nullptr,
                                       const std::string& name = "waveform") {
  AudioReport local;
  AudioReport& r = report != nullptr ? *report : local;
  const std::vector<std::vector<T>> features =
      detail::audio_clip_fbanks(samples, sample_rate, options, r, name);
  const int64_t bins = options.num_mel_bins, target = options.target_length;
  const int64_t clips = static_cast<int64_t>(features.size());
  std::vector<T> out(static_cast<size_t>(clips * bins * target));
  const T mean_t = static_cast<T>(options.mean), std_t = static_cast<T>(options.std);
  for (int64_t c = 0; c < clips; ++c) {
    const std::vector<T>& f = features[static_cast<size_t>(c)];
    const int64_t frames = static_cast<int64_t>(f.size()) / bins;
    // (frames, bins) -> (bins, target): transpose, zero-pad or crop, then normalize.
    T* dst = out.data() + c * bins * target;
    for (int64_t b = 0; b < bins; ++b)
      for (int64_t t = 0; t < target; ++t) {
        const T value = t < frames ? f[static_cast<size_t>(t * bins + b)] : T(0);
        dst[b * target + t] = (value - mean_t) / std_t;
      }
  }
  return Tensor<T, B>::from_vector(out, Shape{clips, 1, bins, target});
}

/// Reads a WAV file and makes the reference's audio input. path -> (3, 1, 128, 204) with the
/// default options. `report` (optional) receives what happened, including warnings for short files.
template <class T = float, class B = Cpu>
Tensor<T, B> load_audio_clips(const std::string& path, const AudioOptions& options = {},
                              AudioReport* report = nullptr) {
  const Waveform<T, B> wave = read_wav<T, B>(path);
  return audio_clips_from_waveform<T, B>(wave.samples, wave.sample_rate, options, report, path);
}

/// Several files, as load_and_transform_audio_data returns them: (B, 3, 1, 128, 204).
template <class T = float, class B = Cpu>
Tensor<T, B> load_audio_batch(const std::vector<std::string>& paths, const AudioOptions& options = {},
                              std::vector<AudioReport>* reports = nullptr) {
  BINDERY_CHECK(!paths.empty(), ValueError, "load_audio_batch: no paths");
  std::vector<T> all;
  Shape item;
  if (reports != nullptr) reports->assign(paths.size(), AudioReport{});
  for (size_t i = 0; i < paths.size(); ++i) {
    const Tensor<T, B> clips =
        load_audio_clips<T, B>(paths[i], options, reports != nullptr ? &(*reports)[i] : nullptr);
    item = clips.shape();
    const std::vector<T> values = clips.to_vector();
    all.insert(all.end(), values.begin(), values.end());
  }
  std::vector<int64_t> dims = {static_cast<int64_t>(paths.size())};
  for (int64_t d : item.dims()) dims.push_back(d);
  return Tensor<T, B>::from_vector(all, Shape(dims));
}

}  // namespace bindery::data
