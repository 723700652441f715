// bindery/data/resample.hpp — band-limited resampling, as torchaudio.functional.resample computes it.
//
// The method (torchaudio's default "sinc_interp_hann", after Kaldi/ResampleTorch): reduce the rates by
// their gcd to orig and new; the cut-off is base = min(orig, new) * rolloff; each of the `new` output
// phases p has its own FIR filter over 2 * width + orig input samples,
//
//   width = ceil(lowpass_filter_width * orig / base)
//   t[p][k] = clamp(((k - width) / orig - p / new) * base, -W, W)          (W = lowpass_filter_width)
//   kernel[p][k] = sinc(pi t) * cos(pi t / (2 W))^2 * base / orig           (sinc(0) = 1)
//
// and output j * new + p is the dot product of kernel[p] with the input, zero-padded by `width` on
// the left and `width + orig` on the right, starting at j * orig (a conv1d of stride orig). The
// output keeps ceil(new * N / orig) samples.
//
// Fidelity: torchaudio builds the kernel in the waveform's dtype (float32 for torchaudio.load's
// output) and convolves in it. Both matter more than one would think: the kernel's and the sums'
// rounding errors vary with the output phase, so they alias loud low-frequency content into quiet
// bands, where the log-mel features see them (dog_audio.wav: a float64 kernel moves near-silent
// bands by 0.04, a float64 accumulator by 4e-3). So the kernel is built in T with the same steps in
// the same order, and each output is a sequence of fused multiply-adds in T over the taps in order.
// On the fixtures' machine (AVX-512) that is bit for bit what torch's conv1d (oneDNN) computes for
// some rate pairs (12k, 20k, 88.2k, 96k -> 16k); for others oneDNN picks another kernel (8k, 11.025k,
// 32k, 48k -> 16k: multiply, then add) and the last bit differs here and there. torch's SIMD sin/cos
// and libm's also disagree on ~0.5% of the float32 taps by one ulp. Net: outputs within 1e-7 of
// torchaudio's on every fixture (8.9e-8 at most, tests/data/test_audio_resample.cpp). oneDNN chooses
// by CPU and shape, so torchaudio's own float32 output varies between machines at this level too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include "bindery/config.hpp"

#if BINDERY_HOST_SIMD_X86
#include <immintrin.h>
#endif

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"

namespace bindery::data {

/// Options of the windowed-sinc resampler (torchaudio.functional.resample's defaults), and the
/// resource limits that bound what a rate read from a file (a WAV header, IMU timestamps) can cost.
/// Both limits are checked before anything is allocated; exceeding one throws ValueError naming it.
struct ResampleOptions {
  int64_t lowpass_filter_width = 6;
  double rolloff = 0.99;
  /// Most coefficients of the polyphase filter bank: new x taps, with the rates reduced by their
  /// gcd and taps = 2 * ceil(width * orig / (min(orig, new) * rolloff)) + orig. Memory is 4 (float)
  /// or 8 (double) bytes each, twice for float on AVX2 CPUs (a transposed copy), and building the
  /// bank computes one sin and one cos per coefficient. Common rates need few: 44.1k -> 16k 76,000,
  /// 22.05k -> 16k 146,880, 11.025k -> 16k 291,200. Rates sharing no large divisor need a huge bank
  /// (16,001 -> 16,000 Hz: 256 million = 1 GB; 999,983 -> 16,000 Hz: 16 billion): refused unless
  /// this is raised. Default 2^24 (64 MB of float).
  int64_t max_kernel_coefficients = int64_t{1} << 24;
  /// Most output samples in all, channels x ceil(new * n / orig): a 1 Hz WAV header would otherwise
  /// turn a small file into gigabytes at 16 kHz. Default 2^28 (1 GB of float; 4.6 hours of 16 kHz mono).
  int64_t max_output_samples = int64_t{1} << 28;
};

/// The polyphase filter bank of one rate conversion: `phases` rows of `taps` coefficients.
template <class T>
struct ResampleKernel {
  int64_t orig = 0, new_rate = 0;  // rates after gcd reduction
  int64_t width = 0;               // zero padding on the left (and width + orig on the right)
  int64_t taps = 0;                // 2 * width + orig
  std::vector<T> weights;          // (new_rate, taps), row-major
};

/// The kernel torchaudio's _get_sinc_resample_kernel builds for `orig_freq` -> `new_freq`.
template <class T>
ResampleKernel<T> sinc_resample_kernel(int64_t orig_freq, int64_t new_freq,
                                       const ResampleOptions& options = {}) {
  BINDERY_CHECK(orig_freq > 0 && new_freq > 0, ValueError, "resample: rates must be positive, got ",
                orig_freq, " -> ", new_freq, " Hz");
  BINDERY_CHECK(options.lowpass_filter_width > 0, ValueError, "resample: lowpass_filter_width ",
                options.lowpass_filter_width, " must be positive");
  BINDERY_CHECK(options.rolloff > 0.0 && options.rolloff <= 1.0, ValueError, "resample: rolloff ",
                options.rolloff, " outside (0, 1]");
  const int64_t gcd = std::gcd(orig_freq, new_freq);
  ResampleKernel<T> kernel;
  kernel.orig = orig_freq / gcd;
  kernel.new_rate = new_freq / gcd;
  const int64_t filter_width = options.lowpass_filter_width;
  const double base_freq = static_cast<double>(std::min(kernel.orig, kernel.new_rate)) * options.rolloff;
  // The bank's size, in double first (no int64 overflow for any rates), checked before allocating.
  const double width =
      std::ceil(static_cast<double>(filter_width) * static_cast<double>(kernel.orig) / base_freq);
  const double taps = 2.0 * width + static_cast<double>(kernel.orig);
  const double coefficients = static_cast<double>(kernel.new_rate) * taps;
  const auto whole = [](double v) {  // for the message: 16015, not 1.6015e+04
    return v < 9e18 ? std::to_string(static_cast<int64_t>(v)) : ::bindery::detail::concat(v);
  };
  BINDERY_CHECK(
      coefficients <= static_cast<double>(options.max_kernel_coefficients), ValueError,
      "resample: ", orig_freq, " -> ", new_freq, " Hz (", kernel.orig, " -> ", kernel.new_rate,
      " after dividing by their gcd ", gcd, ") needs a filter bank of ", kernel.new_rate, " phases x ",
      whole(taps), " taps = ", whole(coefficients), " coefficients, over the limit of ",
      options.max_kernel_coefficients,
      " (ResampleOptions::max_kernel_coefficients); resample through a rate sharing a larger common "
      "divisor with both, or raise the limit");
  kernel.width = static_cast<int64_t>(width);
  kernel.taps = 2 * kernel.width + kernel.orig;
  kernel.weights.resize(static_cast<size_t>(kernel.new_rate * kernel.taps));
  // Every step in T, as torch does on a T tensor with Python scalars cast to T.
  const T orig_t = static_cast<T>(kernel.orig), new_t = static_cast<T>(kernel.new_rate);
  const T base_t = static_cast<T>(base_freq), width_t = static_cast<T>(filter_width);
  const T pi_t = static_cast<T>(M_PI);
  const T scale_t = static_cast<T>(base_freq / static_cast<double>(kernel.orig));
  for (int64_t p = 0; p < kernel.new_rate; ++p) {
    const T phase = static_cast<T>(-p) / new_t;
    for (int64_t k = 0; k < kernel.taps; ++k) {
      const T index = static_cast<T>(k - kernel.width) / orig_t;
      T t = (phase + index) * base_t;
      t = std::clamp(t, -width_t, width_t);
      const T c = std::cos(t * pi_t / width_t / T(2));
      const T window = c * c;
      t *= pi_t;
      const T sinc = t == T(0) ? T(1) : std::sin(t) / t;
      kernel.weights[static_cast<size_t>(p * kernel.taps + k)] = sinc * (window * scale_t);
    }
  }
  return kernel;
}

namespace detail {

// The 8-phase path per host variant (config.hpp): the x86 one in AVX2, the portable one (nvcc's host
// side, other CPUs) as eight scalar chains with the same bits. Different inline namespaces, so a
// program linking both kinds of translation unit keeps both, and whichever copy of the callers below
// the linker keeps computes the same numbers.
#if BINDERY_HOST_SIMD_X86
inline namespace simd_x86 {
/// Whether this CPU has AVX2 and FMA (checked once) for resample_8_phases.
inline bool resample_simd_supported() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

/// Eight phases of one block at once: lane p is its own chain of fused multiply-adds over the taps in
/// order, the same operations as the scalar loop below, so the results are bit-identical to it
/// (fma rounds once either way). wt: the kernel transposed, (taps, new_rate); out: 8 outputs.
__attribute__((target("avx2,fma"))) inline void resample_8_phases(const float* x, const float* wt,
                                                                  int64_t stride, int64_t k_begin,
                                                                  int64_t k_end, float* out) {
  __m256 sum = _mm256_setzero_ps();
  for (int64_t k = k_begin; k < k_end; ++k)
    sum = _mm256_fmadd_ps(_mm256_set1_ps(x[k]), _mm256_loadu_ps(wt + k * stride), sum);
  _mm256_storeu_ps(out, sum);
}
}  // namespace simd_x86
#else
inline namespace simd_portable {
/// No SIMD path in this translation unit: resample() leaves the transposed kernel empty.
inline bool resample_simd_supported() {
  return false;
}
/// resample_8_phases' contract in scalar code: eight chains of fused multiply-adds, bit-identical to
/// the AVX2 lanes (unused through resample() here, and correct if handed a transposed kernel).
inline void resample_8_phases(const float* x, const float* wt, int64_t stride, int64_t k_begin, int64_t k_end,
                              float* out) {
  for (int64_t lane = 0; lane < 8; ++lane) {
    float sum = 0.0f;
    for (int64_t k = k_begin; k < k_end; ++k) sum = std::fma(x[k], wt[k * stride + lane], sum);
    out[lane] = sum;
  }
}
}  // namespace simd_portable
#endif

/// One channel: x (n) -> y (out_length) with the polyphase kernel. `transposed`: the weights as
/// (taps, new_rate) for the 8-phase SIMD path (float on AVX2+FMA CPUs), or empty.
template <class T>
void apply_resample_kernel(const ResampleKernel<T>& kernel, const T* x, int64_t n, T* y, int64_t out_length,
                           const std::vector<T>& transposed = {}) {
  for (int64_t j = 0; j * kernel.new_rate < out_length; ++j) {
    const int64_t first = j * kernel.orig - kernel.width;  // input index under tap 0
    const int64_t k_begin = std::max<int64_t>(0, -first), k_end = std::min<int64_t>(kernel.taps, n - first);
    int64_t p = 0;
    if constexpr (std::is_same_v<T, float>) {
      if (!transposed.empty()) {
        for (; p + 8 <= kernel.new_rate && j * kernel.new_rate + p + 8 <= out_length; p += 8) {
          resample_8_phases(x + first, transposed.data() + p, kernel.new_rate, k_begin, k_end,
                            y + j * kernel.new_rate + p);
        }
      }
    }
    for (; p < kernel.new_rate && j * kernel.new_rate + p < out_length; ++p) {
      const T* w = kernel.weights.data() + p * kernel.taps;
      // Sequential fused multiply-adds in T over the taps, in order: exactly what torch's conv1d
      // (oneDNN) does for one input channel — the fixtures agree bit for bit. A double accumulator
      // would be more accurate but moves near-silent mel bands by up to 4e-3 (see the header).
      T sum = T(0);
      for (int64_t k = k_begin; k < k_end; ++k) sum = std::fma(x[first + k], w[k], sum);
      y[j * kernel.new_rate + p] = sum;
    }
  }
}

}  // namespace detail

/// Output length of resampling n samples: ceil(new * n / orig) with the gcd-reduced rates.
inline int64_t resampled_length(int64_t n, int64_t orig_freq, int64_t new_freq) {
  BINDERY_CHECK(orig_freq > 0 && new_freq > 0 && n >= 0, ValueError, "resampled_length: n ", n, ", rates ",
                orig_freq, " -> ", new_freq);
  if (orig_freq == new_freq) return n;
  const int64_t gcd = std::gcd(orig_freq, new_freq);
  const int64_t orig = orig_freq / gcd, new_rate = new_freq / gcd;
  BINDERY_CHECK(n <= INT64_MAX / new_rate, ValueError, "resampled_length: ", n, " samples overflow at ",
                orig_freq, " -> ", new_freq, " Hz");
  return (n * new_rate + orig - 1) / orig;
}

/// Resamples each row of `waveform` from `orig_freq` to `new_freq` Hz (torchaudio.functional.resample
/// with its defaults). waveform: (C, N) or (N) -> (C, ceil(new * N / orig)) or (M). Equal rates return
/// the input unchanged (shared storage, as torchaudio does).
template <class T, class B>
Tensor<T, B> resample(const Tensor<T, B>& waveform, int64_t orig_freq, int64_t new_freq,
                      const ResampleOptions& options = {}) {
  static_assert(std::is_floating_point_v<T>, "resample: T must be float or double");
  BINDERY_CHECK(waveform.defined() && (waveform.rank() == 1 || waveform.rank() == 2), ShapeError,
                "resample: waveform of shape ", waveform.shape(), " must be (C, N) or (N)");
  BINDERY_CHECK(orig_freq > 0 && new_freq > 0, ValueError, "resample: rates must be positive, got ",
                orig_freq, " -> ", new_freq, " Hz");
  if (orig_freq == new_freq) return waveform;
  const int64_t n = waveform.size(-1);
  const int64_t rows = waveform.rank() == 2 ? waveform.size(0) : 1;
  const int64_t out_length = resampled_length(n, orig_freq, new_freq);
  int64_t out_total = 0;
  BINDERY_CHECK(
      !__builtin_mul_overflow(rows, out_length, &out_total) && out_total <= options.max_output_samples,
      ValueError, "resample: ", rows, " x ", n, " samples at ", orig_freq, " -> ", new_freq, " Hz give ",
      rows, " x ", out_length, " samples, over the limit of ", options.max_output_samples,
      " (ResampleOptions::max_output_samples)");
  const ResampleKernel<T> kernel = sinc_resample_kernel<T>(orig_freq, new_freq, options);
  const std::vector<T> host = waveform.contiguous().to_vector();
  std::vector<T> out(static_cast<size_t>(rows * out_length));
  std::vector<T> transposed;  // (taps, new_rate) for the 8-phase SIMD path
  if (std::is_same_v<T, float> && detail::resample_simd_supported() && kernel.new_rate >= 8) {
    transposed.resize(kernel.weights.size());
    for (int64_t p = 0; p < kernel.new_rate; ++p)
      for (int64_t k = 0; k < kernel.taps; ++k)
        transposed[static_cast<size_t>(k * kernel.new_rate + p)] =
            kernel.weights[static_cast<size_t>(p * kernel.taps + k)];
  }
#pragma omp parallel for if (rows > 1)
  for (int64_t r = 0; r < rows; ++r)
    detail::apply_resample_kernel(kernel, host.data() + r * n, n, out.data() + r * out_length, out_length,
                                  transposed);
  if (waveform.rank() == 1) return Tensor<T, B>::from_vector(out, Shape{out_length});
  return Tensor<T, B>::from_vector(out, Shape{rows, out_length});
}

}  // namespace bindery::data
