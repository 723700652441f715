// bindery/datasets/fsdd.hpp — the Free Spoken Digit Dataset: listing, speaker splits, log-mel inputs.
//
// FSDD (Jakobovski et al.): mono 16-bit WAV recordings at 8 kHz named `{digit}_{speaker}_{take}.wav`,
// 6 speakers x 10 digits x 50 takes, 0.14 to 2.3 s long (median 0.42 s).
//
// Features, per recording (fsdd_features), through the same steps as ImageBind's audio input:
//   1. read_wav (data/wav.hpp): samples in [-1, 1]; channel 0 is used (FSDD is mono),
//   2. resample to options.sample_rate (16 kHz: torchaudio's windowed sinc, data/resample.hpp),
//   3. subtract the waveform's mean,
//   4. Kaldi fbank (data/fbank.hpp): 25 ms hanning frames every 10 ms, num_mel_bins (M = 32) HTK mel
//      bands from 20 Hz to Nyquist, log energies -> (frames, M), frames = 1 + (n - 400) / 160,
//   5. transpose to (M, frames) and centre to F = num_frames (64, i.e. 0.67 s) frames: a longer clip
//      keeps its middle F frames (crop offset (frames - F) / 2; FSDD trims silence around the word,
//      so the middle holds it), a shorter one is centred with (F - frames) / 2 frames of padding
//      before it and the rest after it,
//   6. normalize (x - mean) / std; padded frames are 0, i.e. they hold the mean log-mel value.
// Output (1, M, F), the input of the example's audio encoder.
//
// Why padding holds the mean and not zeros before normalization (ImageBind's way): 95% of FSDD clips
// are shorter than 64 frames (median 40), so padding is a third of what the encoder sees. A raw log
// energy of 0 is louder than most speech frames here (it normalizes to +1.46), and silence (the log
// floor, -15.9) is an outlier at -1.96; the mean is the neutral value (0), like the zero padding
// inside the network's own convolutions.
//
// Normalization constants (kFsddLogMelMean / kFsddLogMelStd): the mean and standard deviation of the
// log-mel values that reach the input (after cropping, padding excluded) over all 3,000 recordings,
// with the default options, measured by fsdd_statistics<float>: -6.7979 and 4.6630 over 3,925,856
// values (without speaker theo: -6.4209 and 4.6829). Two scalars over all six speakers leak nothing
// useful about a held-out speaker; for other options, or to fit the training speakers only, call
// fsdd_statistics(split.train, options) and set options.mean / options.std.
// Note: above 4 kHz an 8 kHz recording holds nothing, so with M = 32 the top 6 bands (26-31, wholly
// above 4 kHz) average -9 to -14.6, near the log floor (-15.9); options.high_freq = 4000 spends all M
// bands on the speech band (its statistics: -5.6778 and 3.7997).
//
// Parallelism: fsdd_batch and fsdd_statistics split the recordings over the OpenMP threads; each
// recording is computed by one thread the same way, and the statistics are reduced in recording
// order, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/fbank.hpp"
#include "bindery/data/resample.hpp"
#include "bindery/data/wav.hpp"

namespace bindery::data {

/// Mean and std of the default features' log-mel values over all of FSDD (see the header).
inline constexpr double kFsddLogMelMean = -6.7979;
inline constexpr double kFsddLogMelStd = 4.6630;

/// One recording: its path and what its name `{digit}_{speaker}_{take}.wav` says.
struct FsddRecording {
  std::string path, speaker;
  int64_t digit = 0, take = 0;
};

/// Recordings of the training speakers and of the held-out ones.
struct FsddSplit {
  std::vector<FsddRecording> train, test;
};

/// Options of the log-mel features; the defaults give (1, 32, 64).
struct FsddOptions {
  int64_t sample_rate = 16000;  // resample to this rate first (Hz)
  int64_t num_mel_bins = 32;    // M
  int64_t num_frames = 64;      // F: frames after centre crop / pad (10 ms each)
  double low_freq = 20.0;       // mel bands' range (Hz); high_freq <= 0: Nyquist + high_freq
  double high_freq = 0.0;
  bool normalize = true;  // false: raw log energies, padding holds `mean`
  double mean = kFsddLogMelMean;
  double std = kFsddLogMelStd;
  ResampleOptions resample{};
};

/// Mean and standard deviation of log-mel values (fsdd_statistics).
struct FsddStatistics {
  double mean = 0.0, std = 0.0;
  int64_t values = 0;  // how many values they were computed over
};

/// Parses `{digit}_{speaker}_{take}.wav` (digit 0-9, speaker of letters, digits or '-', take a
/// number): true and `out` filled (path = folder / name) when `name` matches.
inline bool parse_fsdd_name(const std::string& name, const std::string& folder, FsddRecording& out) {
  constexpr std::string_view kExtension = ".wav";
  if (name.size() < 9 || name.compare(name.size() - kExtension.size(), kExtension.size(), kExtension) != 0)
    return false;
  const std::string stem = name.substr(0, name.size() - kExtension.size());
  const size_t first = stem.find('_'), last = stem.rfind('_');
  if (first != 1 || last == first || last + 1 >= stem.size() || stem[0] < '0' || stem[0] > '9') return false;
  const std::string speaker = stem.substr(2, last - 2), take = stem.substr(last + 1);
  if (speaker.empty() || take.size() > 9) return false;
  for (char c : speaker)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  for (char c : take)
    if (c < '0' || c > '9') return false;
  out.path = (std::filesystem::path(folder) / name).string();
  out.speaker = speaker;
  out.digit = stem[0] - '0';
  out.take = std::stoll(take);
  return true;
}

/// Every recording in `dir` (or in `dir`/recordings, the dataset repository's layout), sorted by
/// (speaker, digit, take); files with other names are ignored. Throws IoError when the folder cannot
/// be read or holds no recording.
inline std::vector<FsddRecording> list_fsdd(const std::string& dir) {
  auto scan = [](const std::string& folder) {
    std::error_code error;
    std::filesystem::directory_iterator it(folder, error);
    if (error)
      throw IoError(::bindery::detail::concat(folder, ": cannot list the FSDD folder: ", error.message()));
    std::vector<FsddRecording> found;
    for (const auto& entry : it) {
      FsddRecording r;
      std::error_code kind_error;
      if (entry.is_regular_file(kind_error) && parse_fsdd_name(entry.path().filename().string(), folder, r))
        found.push_back(std::move(r));
    }
    return found;
  };
  std::vector<FsddRecording> recordings = scan(dir);
  const std::filesystem::path nested = std::filesystem::path(dir) / "recordings";
  std::error_code error;
  if (recordings.empty() && std::filesystem::is_directory(nested, error)) recordings = scan(nested.string());
  if (recordings.empty())
    throw IoError(::bindery::detail::concat(dir,
                                            ": no FSDD recordings ({digit}_{speaker}_{take}.wav) in this "
                                            "folder (nor in its recordings/ subfolder)"));
  std::sort(recordings.begin(), recordings.end(), [](const FsddRecording& a, const FsddRecording& b) {
    return std::tie(a.speaker, a.digit, a.take, a.path) < std::tie(b.speaker, b.digit, b.take, b.path);
  });
  return recordings;
}

/// The distinct speakers, sorted.
inline std::vector<std::string> fsdd_speakers(std::span<const FsddRecording> recordings) {
  std::vector<std::string> speakers;
  for (const FsddRecording& r : recordings) speakers.push_back(r.speaker);
  std::sort(speakers.begin(), speakers.end());
  speakers.erase(std::unique(speakers.begin(), speakers.end()), speakers.end());
  return speakers;
}

/// The digits (labels) of `recordings`, in order.
inline std::vector<int64_t> fsdd_digits(std::span<const FsddRecording> recordings) {
  std::vector<int64_t> digits;
  digits.reserve(recordings.size());
  for (const FsddRecording& r : recordings) digits.push_back(r.digit);
  return digits;
}

/// Recordings of `held_out_speakers` go to test, the others to train (order kept). A held-out
/// speaker with no recording is a ValueError (a typo would otherwise leak nothing and test nothing).
inline FsddSplit split_by_speaker(std::span<const FsddRecording> recordings,
                                  const std::vector<std::string>& held_out_speakers) {
  const std::vector<std::string> speakers = fsdd_speakers(recordings);
  for (const std::string& s : held_out_speakers) {
    if (!std::binary_search(speakers.begin(), speakers.end(), s)) {
      std::string known;
      for (const std::string& k : speakers) known += (known.empty() ? "" : ", ") + k;
      throw ValueError(::bindery::detail::concat("split_by_speaker: no recording of speaker '", s,
                                                 "' (speakers: ", known, ")"));
    }
  }
  FsddSplit split;
  for (const FsddRecording& r : recordings) {
    const bool held_out =
        std::find(held_out_speakers.begin(), held_out_speakers.end(), r.speaker) != held_out_speakers.end();
    (held_out ? split.test : split.train).push_back(r);
  }
  return split;
}

namespace detail {

inline void check_fsdd_options(const FsddOptions& options) {
  BINDERY_CHECK(options.sample_rate > 0 && options.num_mel_bins > 3 && options.num_frames > 0, ValueError,
                "fsdd_features: sample_rate ", options.sample_rate, ", num_mel_bins ", options.num_mel_bins,
                " (> 3) and num_frames ", options.num_frames, " must be positive");
  BINDERY_CHECK(!options.normalize || options.std > 0.0, ValueError, "fsdd_features: std ", options.std,
                " must be positive");
}

/// Steps 1-4: the log-mel energies (frames, M) of the WAV at `path`, row-major.
template <class T>
std::vector<T> fsdd_log_mel(const std::string& path, const FsddOptions& options) {
  const Waveform<T, Cpu> wave = read_wav<T, Cpu>(path);
  const Tensor<T, Cpu> mono = wave.samples.select(0, 0);  // (N)
  std::vector<T> x =
      resample(mono, wave.sample_rate, options.sample_rate, options.resample).contiguous().to_vector();
  const int64_t n = static_cast<int64_t>(x.size());
  FbankOptions fbank;
  fbank.sample_frequency = static_cast<double>(options.sample_rate);
  fbank.num_mel_bins = options.num_mel_bins;
  fbank.low_freq = options.low_freq;
  fbank.high_freq = options.high_freq;
  const int64_t window = fbank_geometry(fbank).window_size;
  BINDERY_CHECK(n >= window, ValueError, "fsdd_features (", path, "): ", n, " samples at ",
                options.sample_rate, " Hz are fewer than one ", fbank.frame_length_ms, " ms fbank window");
  double sum = 0.0;
  for (T v : x) sum += static_cast<double>(v);
  const T mean = static_cast<T>(sum / static_cast<double>(n));
  for (T& v : x) v -= mean;
  std::vector<T> out;
  kaldi_fbank_host(x.data(), n, fbank, out);
  return out;
}

/// Steps 5-6: (frames, M) log-mel -> dst (M, F), centred, normalized.
template <class T>
void fsdd_place(const std::vector<T>& log_mel, const FsddOptions& options, T* dst) {
  const int64_t bins = options.num_mel_bins, target = options.num_frames;
  const int64_t frames = static_cast<int64_t>(log_mel.size()) / bins;
  const int64_t skip = frames > target ? (frames - target) / 2 : 0;  // frames cropped at the start
  const int64_t lead = frames < target ? (target - frames) / 2 : 0;  // padded frames at the start
  const int64_t kept = std::min(frames, target);
  const T mean = static_cast<T>(options.mean), std = static_cast<T>(options.std);
  const T pad = options.normalize ? T(0) : mean;
  for (int64_t b = 0; b < bins; ++b) {
    T* row = dst + b * target;
    std::fill(row, row + target, pad);
    for (int64_t t = 0; t < kept; ++t) {
      const T v = log_mel[static_cast<size_t>((skip + t) * bins + b)];
      row[lead + t] = options.normalize ? (v - mean) / std : v;
    }
  }
}

/// Runs f(i) for i in [0, n) over the OpenMP threads; the exception of the lowest failing i is
/// rethrown (the same one whatever the thread count).
template <class F>
void parallel_for_rethrow(int64_t n, const F& f) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < n; ++i) {
    try {
      f(i);
    } catch (...) {
      errors[static_cast<size_t>(i)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace detail

/// Log-mel input of the WAV at `path` (any rate, PCM or float; channel 0) -> (1, M, F).
/// Throws IoError / FormatError (the file) or ValueError (shorter than one 25 ms window).
template <class T = float, class B = Cpu>
Tensor<T, B> fsdd_features(const std::string& path, const FsddOptions& options = {}) {
  static_assert(std::is_floating_point_v<T>, "fsdd_features: T must be float or double");
  detail::check_fsdd_options(options);
  std::vector<T> out(static_cast<size_t>(options.num_mel_bins * options.num_frames));
  detail::fsdd_place(detail::fsdd_log_mel<T>(path, options), options, out.data());
  return Tensor<T, B>::from_vector(out, Shape{1, options.num_mel_bins, options.num_frames});
}

/// Log-mel input of one recording -> (1, M, F).
template <class T = float, class B = Cpu>
Tensor<T, B> fsdd_features(const FsddRecording& recording, const FsddOptions& options = {}) {
  return fsdd_features<T, B>(recording.path, options);
}

/// Log-mel inputs of many recordings, in parallel (OpenMP; same result for any thread count)
/// -> (N, 1, M, F). The first failing recording's error is rethrown.
template <class T = float, class B = Cpu>
Tensor<T, B> fsdd_batch(std::span<const FsddRecording> recordings, const FsddOptions& options = {}) {
  static_assert(std::is_floating_point_v<T>, "fsdd_batch: T must be float or double");
  detail::check_fsdd_options(options);
  const int64_t n = static_cast<int64_t>(recordings.size());
  const int64_t item = options.num_mel_bins * options.num_frames;
  std::vector<T> out(static_cast<size_t>(n * item));
  detail::parallel_for_rethrow(n, [&](int64_t i) {
    const std::vector<T> log_mel = detail::fsdd_log_mel<T>(recordings[static_cast<size_t>(i)].path, options);
    detail::fsdd_place(log_mel, options, out.data() + i * item);
  });
  return Tensor<T, B>::from_vector(out, Shape{n, 1, options.num_mel_bins, options.num_frames});
}

/// Mean and standard deviation of the log-mel values fsdd_features would place in its output
/// (after cropping to F frames, padding excluded; options.normalize and mean/std are ignored), in
/// double, reduced in recording order. Use it to normalize with the training split's own statistics.
template <class T = float>
FsddStatistics fsdd_statistics(std::span<const FsddRecording> recordings, const FsddOptions& options = {}) {
  FsddOptions raw = options;
  raw.normalize = false;
  detail::check_fsdd_options(raw);
  const int64_t n = static_cast<int64_t>(recordings.size());
  BINDERY_CHECK(n > 0, ValueError, "fsdd_statistics: no recordings");
  std::vector<double> sums(static_cast<size_t>(n)), squares(static_cast<size_t>(n));
  std::vector<int64_t> counts(static_cast<size_t>(n));
  detail::parallel_for_rethrow(n, [&](int64_t i) {
    const std::vector<T> log_mel = detail::fsdd_log_mel<T>(recordings[static_cast<size_t>(i)].path, raw);
    const int64_t frames = static_cast<int64_t>(log_mel.size()) / raw.num_mel_bins;
    const int64_t kept = std::min(frames, raw.num_frames), skip = (frames - kept) / 2;
    double s = 0.0, q = 0.0;
    for (int64_t k = skip * raw.num_mel_bins; k < (skip + kept) * raw.num_mel_bins; ++k) {
      const double v = static_cast<double>(log_mel[static_cast<size_t>(k)]);
      s += v;
      q += v * v;
    }
    sums[static_cast<size_t>(i)] = s;
    squares[static_cast<size_t>(i)] = q;
    counts[static_cast<size_t>(i)] = kept * raw.num_mel_bins;
  });
  double s = 0.0, q = 0.0;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += sums[static_cast<size_t>(i)];
    q += squares[static_cast<size_t>(i)];
    count += counts[static_cast<size_t>(i)];
  }
  FsddStatistics stats;
  stats.values = count;
  stats.mean = s / static_cast<double>(count);
  stats.std = std::sqrt(std::max(0.0, q / static_cast<double>(count) - stats.mean * stats.mean));
  return stats;
}

}  // namespace bindery::data
