// examples/common/fsdd_inputs.hpp — the FSDD audio inputs of 02_imagebind_digits' real-data run
// (--mnist/--fsdd), shared by the applications that prompt or probe that model with recordings.
#pragma once

#include <bindery/datasets/fsdd.hpp>

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

namespace digits_run {

/// FSDD log-mel inputs (N, 1, 32, 64): mel bands up to 4 kHz (the recordings are 8 kHz: nothing
/// lies above), then per-utterance mean and variance normalization of each band over the frames the
/// recording fills (CMVN: removes the speaker's and the microphone's spectral tilt), padding at 0.
inline bindery::Tensor<float, bindery::Cpu> fsdd_cmvn_inputs(
    std::span<const bindery::data::FsddRecording> recordings) {
  using T = float;
  bindery::data::FsddOptions options;
  options.high_freq = 4000.0;
  options.normalize = false;  // raw log energies; padded frames hold options.mean exactly
  bindery::Tensor<T, bindery::Cpu> x = bindery::data::fsdd_batch<T>(recordings, options);
  const int64_t n = x.shape()[0], mels = x.shape()[2], frames = x.shape()[3];
  T* v = x.data();
  const T pad = static_cast<T>(options.mean);
  for (int64_t i = 0; i < n; ++i) {
    T* u = v + i * mels * frames;
    std::vector<bool> filled(static_cast<size_t>(frames), false);
    for (int64_t f = 0; f < frames; ++f)
      for (int64_t m = 0; m < mels; ++m)
        filled[static_cast<size_t>(f)] = filled[static_cast<size_t>(f)] || u[m * frames + f] != pad;
    for (int64_t m = 0; m < mels; ++m) {
      double sum = 0, sq = 0, count = 0;
      for (int64_t f = 0; f < frames; ++f)
        if (filled[static_cast<size_t>(f)])
          sum += u[m * frames + f], sq += double(u[m * frames + f]) * u[m * frames + f], ++count;
      const double mean = count > 0 ? sum / count : 0.0;
      const double std = count > 1 ? std::sqrt(std::max(sq / count - mean * mean, 1e-6)) : 1.0;
      for (int64_t f = 0; f < frames; ++f)
        u[m * frames + f] =
            filled[static_cast<size_t>(f)] ? static_cast<T>((u[m * frames + f] - mean) / std) : T(0);
    }
  }
  return x;
}

}  // namespace digits_run
