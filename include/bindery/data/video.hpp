// bindery/data/video.hpp — videos to the vision encoder's multi-clip input (15, 3, 2, 224, 224).
//
// The reference (imagebind/data.py, load_and_transform_video_data), step by step:
//   1. decode (decord through pytorchvideo's EncodedVideo): frame i has time i / fps, the video
//      lasts n / fps seconds, and get_clip(start, end) returns the frames
//      [ceil(fps * start), min(ceil(fps * end), n)) as float32 0..255.
//   2. ConstantClipsPerVideoSampler(clip_duration = 2, clips_per_video = 5): with
//      m = max(duration - 2, 0), clip k in 0..4 spans [k m / 5, k m / 5 + 2] in exact rational
//      arithmetic (Python Fractions), converted to double only when multiplied by fps. Note the
//      division by 5, not by 4: the last clip starts at 4/5 m, not at the end.
//   3. UniformTemporalSubsample(2): indices torch.linspace(0, t - 1, 2) (float32), truncated.
//   4. / 255 (float32), ShortSideScale(224): short side 224, long side floor(long / short * 224)
//      in double, torch.nn.functional.interpolate bilinear, align_corners=False, no antialias.
//   5. NormalizeVideo with the CLIP mean/std: (x - mean) / std in float32.
//   6. SpatialCrop(224, 3): three crops along the long side: start, ceil((L - 224) / 2), end.
//      Output per video: clips x crops = 15 views, each (3, 2, 224, 224); clip-major order.
// Input here: a folder of frames (JPEG/PNG files sorted by name) and its frame rate; the frames
// decode exactly as Pillow would (data/image.hpp). Video files (mp4, mkv, ...) decode through
// FFmpeg in data/video_ffmpeg.hpp (optional: CMake BINDERY_FFMPEG), which feeds its frames to the
// same transform_video_clips; without it, extract the frames with `ffmpeg -i in.mp4 frames/%06d.png`
// and pass the folder with the video's frame rate.
// Only the frames the sampled clips use are decoded (5 x 2 of them by default).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/image.hpp"
#include "bindery/data/resize.hpp"

namespace bindery::data {

/// The video transform's knobs; the defaults are the reference's.
struct VideoConfig {
  double clip_duration = 2.0;  // seconds
  int64_t clips_per_video = 5;
  int64_t frames_per_clip = 2;
  int64_t size = 224;
  int64_t num_crops = 3;  // 3 (start, centre, end) or 1 (centre)
  std::array<float, 3> mean = kClipMean;
  std::array<float, 3> std = kClipStd;
};

/// A clip's time span in seconds, already rounded to double as pytorchvideo does when it uses it.
struct ClipSpan {
  double start = 0.0;
  double end = 0.0;
};

namespace detail {

/// The double nearest to p / q * 2^shift (ties to even), for p < 2^120, 0 < q < 2^32.
inline double exact_ratio_to_double(unsigned __int128 p, uint64_t q, int shift) {
  if (p == 0) return 0.0;
  const auto bit_length = [](unsigned __int128 v) {
    int n = 0;
    while (v != 0) {
      v >>= 1;
      ++n;
    }
    return n;
  };
  const int lift = std::max(0, 100 - bit_length(p));  // quotient keeps >= 68 significant bits
  const unsigned __int128 numerator = p << lift;
  unsigned __int128 quotient = numerator / q;
  const bool sticky = numerator % q != 0;
  const int drop = bit_length(quotient) - 53;
  unsigned __int128 mantissa = quotient >> drop;
  const unsigned __int128 rest = quotient & ((static_cast<unsigned __int128>(1) << drop) - 1);
  const unsigned __int128 half = static_cast<unsigned __int128>(1) << (drop - 1);
  if (rest > half || (rest == half && (sticky || (mantissa & 1) != 0))) ++mantissa;
  return std::ldexp(static_cast<double>(static_cast<uint64_t>(mantissa)), shift - lift + drop);
}

/// x = mantissa * 2^exponent exactly, mantissa < 2^53.
inline void split_double(double x, uint64_t& mantissa, int& exponent) {
  int e = 0;
  const double fraction = std::frexp(x, &e);
  mantissa = static_cast<uint64_t>(std::ldexp(fraction, 53));
  exponent = e - 53;
}

}  // namespace detail

/// pytorchvideo's ConstantClipsPerVideoSampler over a video of `duration` seconds, as data.py
/// iterates it: `clips_per_video` spans [k m / N, k m / N + clip], m = max(duration - clip, 0).
inline std::vector<ClipSpan> constant_clip_spans(double duration, double clip_duration,
                                                 int64_t clips_per_video) {
  BINDERY_CHECK(std::isfinite(duration) && duration >= 0 && duration < 1e9 && clip_duration > 0 &&
                    clip_duration < 1e9 && clips_per_video > 0 && clips_per_video < (int64_t{1} << 20),
                ValueError, "constant_clip_spans: need 0 <= duration < 1e9, 0 < clip_duration < 1e9 and ",
                "0 < clips_per_video < 2^20; got ", duration, ", ", clip_duration, ", ", clips_per_video);
  const double m = std::max(duration - clip_duration, 0.0);  // Python: float - Fraction is a float
  uint64_t m_mantissa = 0, c_mantissa = 0;
  int m_exponent = 0, c_exponent = 0;
  detail::split_double(m, m_mantissa, m_exponent);
  detail::split_double(clip_duration, c_mantissa, c_exponent);
  const auto n = static_cast<uint64_t>(clips_per_video);
  std::vector<ClipSpan> spans;
  for (uint64_t k = 0; k < n; ++k) {
    ClipSpan span;
    // start = k m / N; end = (k m + N clip) / N, on the common exponent.
    const unsigned __int128 start_numerator = static_cast<unsigned __int128>(k) * m_mantissa;
    span.start = m == 0.0 ? 0.0 : detail::exact_ratio_to_double(start_numerator, n, m_exponent);
    if (m == 0.0) {
      span.end = clip_duration;
    } else {
      const int low = std::min(m_exponent, c_exponent);
      BINDERY_CHECK(m_exponent - low < 40 && c_exponent - low < 40, ValueError,
                    "constant_clip_spans: duration ", duration, " and clip ", clip_duration,
                    " are too far apart in magnitude for exact clip times");
      const unsigned __int128 end_numerator =
          (start_numerator << (m_exponent - low)) +
          ((static_cast<unsigned __int128>(c_mantissa) * n) << (c_exponent - low));
      span.end = detail::exact_ratio_to_double(end_numerator, n, low);
    }
    spans.push_back(span);
  }
  return spans;
}

/// decord's frame range for a clip: [ceil(fps * start), min(ceil(fps * end), frame_count)).
inline std::pair<int64_t, int64_t> clip_frame_range(const ClipSpan& span, double fps, int64_t frame_count) {
  const auto first = static_cast<int64_t>(std::ceil(fps * span.start));
  const auto last = std::min(static_cast<int64_t>(std::ceil(fps * span.end)), frame_count);
  return {first, last};
}

/// pytorchvideo's uniform_temporal_subsample indices: torch.linspace(0, t - 1, n) in float32
/// (start + step * i for the first half, end - step * (n - 1 - i) for the rest), clamped, truncated.
inline std::vector<int64_t> uniform_temporal_indices(int64_t t, int64_t num_samples) {
  BINDERY_CHECK(t > 0 && num_samples > 0, ValueError,
                "uniform_temporal_indices: need t > 0 and num_samples > 0, got ", t, " and ", num_samples);
  std::vector<int64_t> indices(static_cast<size_t>(num_samples));
  const float start = 0.0f, end = static_cast<float>(t - 1);
  const float step = num_samples > 1 ? (end - start) / static_cast<float>(num_samples - 1) : 0.0f;
  const int64_t halfway = num_samples / 2;
  for (int64_t i = 0; i < num_samples; ++i) {
    float v = num_samples == 1 ? start
              : i < halfway    ? start + step * static_cast<float>(i)
                               : end - step * static_cast<float>(num_samples - i - 1);
    v = std::min(std::max(v, start), end);
    indices[static_cast<size_t>(i)] = static_cast<int64_t>(v);
  }
  return indices;
}

/// The frame files of a folder: *.jpg, *.jpeg, *.png (any case), sorted by file name.
inline std::vector<std::string> list_frame_files(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code error;
  BINDERY_CHECK(fs::is_directory(folder, error), IoError, folder, ": not a folder of video frames");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(folder, error)) {
    if (!entry.is_regular_file()) continue;
    std::string extension = entry.path().extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (extension == ".jpg" || extension == ".jpeg" || extension == ".png")
      files.push_back(entry.path().string());
  }
  BINDERY_CHECK(!error, IoError, folder, ": cannot list the folder: ", error.message());
  std::sort(files.begin(), files.end());
  BINDERY_CHECK(!files.empty(), FormatError, folder, ": no .jpg, .jpeg or .png frames in the folder");
  return files;
}

/// Steps 1-3 for a video of `frame_count` frames at `fps`: the frames each clip uses, clip by clip
/// (clips_per_video lists of frames_per_clip indices, in order). Checks the config too.
inline std::vector<std::vector<int64_t>> video_clip_frame_indices(int64_t frame_count, double fps,
                                                                  const VideoConfig& config = {}) {
  BINDERY_CHECK(frame_count > 0 && fps > 0 && std::isfinite(fps), ValueError,
                "transform_video_frames: ", frame_count, " frames at ", fps,
                " fps (need frames and fps > 0)");
  BINDERY_CHECK(config.num_crops == 1 || config.num_crops == 3, ValueError,
                "transform_video_frames: num_crops must be 1 or 3, got ", config.num_crops);
  const double duration = static_cast<double>(frame_count) / fps;
  const std::vector<ClipSpan> spans =
      constant_clip_spans(duration, config.clip_duration, config.clips_per_video);
  std::vector<std::vector<int64_t>> clips;
  for (size_t k = 0; k < spans.size(); ++k) {
    const auto [first, last] = clip_frame_range(spans[k], fps, frame_count);
    BINDERY_CHECK(last > first, ValueError, "transform_video_frames: clip ", k, " [", spans[k].start, ", ",
                  spans[k].end, "] s holds no frame of the ", frame_count, " frames at ", fps, " fps");
    std::vector<int64_t> picks = uniform_temporal_indices(last - first, config.frames_per_clip);
    for (int64_t& pick : picks) pick += first;
    clips.push_back(std::move(picks));
  }
  return clips;
}

/// Steps 4-6 on decoded frames -> (views, 3, T, size, size), views = clips x num_crops, clip-major.
/// `clips` as video_clip_frame_indices gives them; `frames` maps each of their indices to its RGB
/// frame (H x W x 3 uint8, every frame the same size). Shared by the frame-folder and the
/// video-file (data/video_ffmpeg.hpp) paths.
template <class T = float, class B = Cpu>
Tensor<T, B> transform_video_clips(const std::vector<std::vector<int64_t>>& clips,
                                   const std::map<int64_t, Image>& frames, const VideoConfig& config = {}) {
  BINDERY_CHECK(!clips.empty() && !clips[0].empty(), ValueError, "transform_video_clips: no clips");
  BINDERY_CHECK(config.num_crops == 1 || config.num_crops == 3, ValueError,
                "transform_video_clips: num_crops must be 1 or 3, got ", config.num_crops);
  const int64_t t = static_cast<int64_t>(clips[0].size()), s = config.size;
  const auto frame = [&](int64_t index) -> const Image& {
    const auto it = frames.find(index);
    BINDERY_CHECK(it != frames.end(), IndexError, "transform_video_clips: frame ", index, " was not decoded");
    return it->second;
  };
  // The first frame of the first clip sets the video's size.
  const int64_t height = frame(clips[0][0]).height, width = frame(clips[0][0]).width;
  const int64_t views = static_cast<int64_t>(clips.size()) * config.num_crops;
  std::vector<T> out(static_cast<size_t>(views * 3 * t * s * s));
  int64_t view = 0;
  for (const std::vector<int64_t>& picks : clips) {
    BINDERY_CHECK(static_cast<int64_t>(picks.size()) == t, ValueError, "transform_video_clips: clips of ",
                  picks.size(), " and ", t, " frames");
    // (C, T, H, W) float32 in [0, 1].
    std::vector<float> clip(static_cast<size_t>(3 * t * height * width));
    const int64_t plane = height * width;
    for (int64_t j = 0; j < t; ++j) {
      const Image& image = frame(picks[static_cast<size_t>(j)]);
      BINDERY_CHECK(image.height == height && image.width == width && image.channels == 3, FormatError,
                    "transform_video_clips: frame ", picks[static_cast<size_t>(j)], " of ", image.width,
                    " x ", image.height, " x ", image.channels, " in a video of ", width, " x ", height,
                    " x 3");
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < plane; ++i)
          clip[static_cast<size_t>((c * t + j) * plane + i)] =
              static_cast<float>(image.pixels[static_cast<size_t>(i * 3 + c)]) / 255.0f;
    }
    // ShortSideScale(size): floor(long / short * size) in double.
    int64_t new_h = s, new_w = s;
    if (width < height) {
      new_h = static_cast<int64_t>(
          std::floor(static_cast<double>(height) / static_cast<double>(width) * static_cast<double>(s)));
    } else {
      new_w = static_cast<int64_t>(
          std::floor(static_cast<double>(width) / static_cast<double>(height) * static_cast<double>(s)));
    }
    std::vector<float> scaled = interpolate_bilinear(clip, 3 * t, height, width, new_h, new_w);
    const int64_t scaled_plane = new_h * new_w;
    for (int64_t c = 0; c < 3; ++c) {
      const float m = config.mean[static_cast<size_t>(c)], d = config.std[static_cast<size_t>(c)];
      for (int64_t i = c * t * scaled_plane; i < (c + 1) * t * scaled_plane; ++i)
        scaled[static_cast<size_t>(i)] = (scaled[static_cast<size_t>(i)] - m) / d;
    }
    // SpatialCrop: data.py's uniform_crop offsets.
    const std::vector<int64_t> crops =
        config.num_crops == 3 ? std::vector<int64_t>{0, 1, 2} : std::vector<int64_t>{1};
    for (const int64_t crop : crops) {
      auto y0 = static_cast<int64_t>(std::ceil(static_cast<double>(new_h - s) / 2.0));
      auto x0 = static_cast<int64_t>(std::ceil(static_cast<double>(new_w - s) / 2.0));
      if (new_h > new_w) {
        if (crop == 0) y0 = 0;
        if (crop == 2) y0 = new_h - s;
      } else {
        if (crop == 0) x0 = 0;
        if (crop == 2) x0 = new_w - s;
      }
      T* o = out.data() + view * 3 * t * s * s;
      for (int64_t p = 0; p < 3 * t; ++p)
        for (int64_t y = 0; y < s; ++y)
          for (int64_t x = 0; x < s; ++x)
            o[(p * s + y) * s + x] =
                static_cast<T>(scaled[static_cast<size_t>(p * scaled_plane + (y0 + y) * new_w + x0 + x)]);
      ++view;
    }
  }
  return Tensor<T, B>::from_vector(out, Shape{views, 3, t, s, s});
}

/// One video given as its frames (files in time order) and frame rate -> (views, 3, T, size, size)
/// with views = clips_per_video * num_crops.
template <class T = float, class B = Cpu>
Tensor<T, B> transform_video_frames(const std::vector<std::string>& frames, double fps,
                                    const VideoConfig& config = {}, const ImageLimits& limits = {}) {
  const std::vector<std::vector<int64_t>> clips =
      video_clip_frame_indices(static_cast<int64_t>(frames.size()), fps, config);
  std::map<int64_t, Image> decoded;  // frames shared by clips decode once
  int64_t height = 0, width = 0;     // the first decoded frame's
  for (const std::vector<int64_t>& picks : clips) {
    for (const int64_t index : picks) {
      if (decoded.count(index) != 0) continue;
      const std::string& file = frames[static_cast<size_t>(index)];
      Image rgb = to_rgb(read_image(file, limits));
      if (decoded.empty()) {
        height = rgb.height;
        width = rgb.width;
      }
      BINDERY_CHECK(rgb.height == height && rgb.width == width, FormatError, file, ": frame of ", rgb.width,
                    " x ", rgb.height, " pixels in a video of ", width, " x ", height);
      decoded.emplace(index, std::move(rgb));
    }
  }
  return transform_video_clips<T, B>(clips, decoded, config);
}

/// Folders of frames (one video each, all at `fps`) -> (B, views, 3, T, size, size).
template <class T = float, class B = Cpu>
Tensor<T, B> load_and_transform_video_frames(const std::vector<std::string>& folders, double fps,
                                             const VideoConfig& config = {}) {
  BINDERY_CHECK(!folders.empty(), ValueError, "load_and_transform_video_frames: no frame folders given");
  std::vector<T> values;
  Shape one;
  for (const std::string& folder : folders) {
    const Tensor<T, Cpu> video = transform_video_frames<T, Cpu>(list_frame_files(folder), fps, config);
    one = video.shape();
    const std::vector<T> v = video.to_vector();
    values.insert(values.end(), v.begin(), v.end());
  }
  std::vector<int64_t> dims = {static_cast<int64_t>(folders.size())};
  for (int64_t d = 0; d < one.rank(); ++d) dims.push_back(one[d]);
  return Tensor<T, B>::from_vector(values, Shape(dims));
}

}  // namespace bindery::data
