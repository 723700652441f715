// bindery/data/depth.hpp — depth maps to the depth encoder's input (1, 224, 224).
//
// The reference package ships no depth loader (its issues #14, #69, #122, #134 ask for one). The
// model was trained on SUN RGB-D depth converted to DISPARITY (the paper: "for scale
// normalization"). bindery follows the community recipe reported to reproduce the paper's
// SUN-D zero-shot ~35% (ImageBind issue #134, built on the Omnivore authors' conversion code in
// facebookresearch/omnivore issue #12). Every step, in float32 as numpy computes it:
//   1. raw values: a 16-bit (or 8-bit) gray PNG, or a 2-D .npy (any numeric dtype).
//      SUN RGB-D PNGs store millimetres rotated left by 3 bits: with `sun_rgbd_bitshift` the
//      value is first rotated back, (raw >> 3) | (raw << 13) in uint16 (the SUN RGB-D toolbox).
//   2. metres = float(raw) / depth_scale. Default scale: 1000 for integer data (millimetres, as
//      PNG depth maps store them), 1 for floating-point .npy data (already metres).
//   3. missing measurements (metres <= 0, NaN, inf) get disparity `invalid_disparity` (default 0:
//      "infinitely far"). The recipe instead clips them to min_depth, giving the LARGEST disparity
//      (0.075 * 518.86 / 0.01 = 3891) to holes; set `clip_invalid_to_min_depth` to reproduce that.
//   4. metres clamped to [min_depth, max_depth] = [0.01, 8]: the toolbox caps depth at 8 m, the
//      Omnivore code clips below at 1 cm.
//   5. disparity = focal_length * baseline / metres, with the Kinect v1 defaults of the recipe
//      (NYU-v2 fx = 518.857901 px, baseline 0.075 m). For SUN RGB-D use the per-image fx from its
//      intrinsics.txt and baseline 0.075 (kv1, kv2) or 0.095 (realsense, xtion).
//   6. Image.fromarray(disparity) (Pillow mode "F") -> Resize(224, BICUBIC) -> CenterCrop(224) ->
//      ToTensor (no /255 for float images): data/resize.hpp's float resample, exact to Pillow.
//   7. optional: (x - mean) / std (off by default; the recipe feeds raw disparity).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/image.hpp"
#include "bindery/data/resize.hpp"
#include "bindery/io/npy.hpp"

namespace bindery::data {

/// A depth map as stored: values in file units, row-major (height, width).
struct RawDepth {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<double> values;
  bool integer = true;  // integer-typed storage (PNG, integer .npy): millimetres by default
};

/// The depth transform's knobs; defaults are the community SUN-D recipe's (see the file comment).
struct DepthConfig {
  std::optional<double> depth_scale;       // raw units per metre; default 1000 (integer data) or 1 (float)
  bool sun_rgbd_bitshift = false;          // undo SUN RGB-D's 3-bit rotation of 16-bit PNG values
  double min_depth = 0.01;                 // metres
  double max_depth = 8.0;                  // metres
  double focal_length = 518.857901;        // pixels
  double baseline = 0.075;                 // metres
  float invalid_disparity = 0.0f;          // for depth <= 0 / NaN / inf
  bool clip_invalid_to_min_depth = false;  // the recipe's behaviour for holes (see step 3)
  int64_t size = 224;
  ResampleFilter filter = ResampleFilter::kBicubic;
  bool normalize = false;
  float mean = 0.0f;
  float std = 1.0f;
};

/// Reads a depth map: a gray PNG (8- or 16-bit, raw values) or an .npy of shape (H, W), (1, H, W)
/// or (H, W, 1). Throws IoError / FormatError naming the file.
inline RawDepth read_raw_depth(const std::string& path, const ImageLimits& limits = {}) {
  const bool is_npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  RawDepth depth;
  if (!is_npy) {
    const Image16 image = decode_image_u16(read_file_bytes(path, limits.max_file_bytes), path, limits);
    depth.height = image.height;
    depth.width = image.width;
    depth.values.assign(image.pixels.begin(), image.pixels.end());
    return depth;
  }
  const io::NpyInfo info = io::inspect_npy(path);
  BINDERY_CHECK(info.shape.rank() >= 2 && info.shape.rank() <= 3 && info.shape.numel() > 0, FormatError, path,
                ": a depth map must have shape (H, W), (1, H, W) or (H, W, 1), got ", info.shape);
  if (info.shape.rank() == 3) {
    BINDERY_CHECK(info.shape[0] == 1 || info.shape[2] == 1, FormatError, path,
                  ": a depth map must have shape (H, W), (1, H, W) or (H, W, 1), got ", info.shape);
    depth.height = info.shape[0] == 1 ? info.shape[1] : info.shape[0];
    depth.width = info.shape[0] == 1 ? info.shape[2] : info.shape[1];
  } else {
    depth.height = info.shape[0];
    depth.width = info.shape[1];
  }
  depth.integer = !io::is_floating(info.dtype);
  depth.values = io::read_npy<double>(path).to_vector();
  return depth;
}

/// Steps 1-5: raw values -> float32 disparity, row-major (height, width).
inline std::vector<float> depth_to_disparity(const RawDepth& depth, const DepthConfig& config = {}) {
  BINDERY_CHECK(static_cast<int64_t>(depth.values.size()) == depth.height * depth.width && depth.height > 0 &&
                    depth.width > 0,
                ValueError, "depth_to_disparity: ", depth.values.size(), " values for a ", depth.height,
                " x ", depth.width, " depth map");
  const double scale = config.depth_scale.value_or(depth.integer ? 1000.0 : 1.0);
  BINDERY_CHECK(scale > 0 && config.min_depth > 0 && config.max_depth >= config.min_depth &&
                    config.focal_length > 0 && config.baseline > 0,
                ValueError,
                "depth_to_disparity: need depth_scale > 0, 0 < min_depth <= max_depth, focal_length > 0",
                " and baseline > 0; got ", scale, ", ", config.min_depth, ", ", config.max_depth, ", ",
                config.focal_length, ", ", config.baseline);
  const auto scale_f = static_cast<float>(scale);
  const auto min_f = static_cast<float>(config.min_depth);
  const auto max_f = static_cast<float>(config.max_depth);
  const auto numerator = static_cast<float>(config.focal_length * config.baseline);
  std::vector<float> disparity(depth.values.size());
  for (size_t i = 0; i < depth.values.size(); ++i) {
    double raw = depth.values[i];
    if (config.sun_rgbd_bitshift) {
      BINDERY_CHECK(depth.integer && raw >= 0 && raw <= 65535, ValueError,
                    "depth_to_disparity: sun_rgbd_bitshift needs 16-bit integer values, got ", raw);
      const auto v = static_cast<uint16_t>(raw);
      raw = static_cast<uint16_t>((v >> 3) | static_cast<uint16_t>(v << 13));
    }
    float metres = static_cast<float>(raw) / scale_f;
    const bool valid = std::isfinite(metres) && metres > 0.0f;
    if (!valid && !config.clip_invalid_to_min_depth) {
      disparity[i] = config.invalid_disparity;
      continue;
    }
    if (!valid) metres = min_f;  // the recipe's clip of holes
    if (metres > max_f) metres = max_f;
    if (metres < min_f) metres = min_f;
    disparity[i] = numerator / metres;
  }
  return disparity;
}

/// Steps 1-7 for one depth map: -> (1, size, size).
template <class T = float, class B = Cpu>
Tensor<T, B> transform_depth(const RawDepth& depth, const DepthConfig& config = {}) {
  const std::vector<float> disparity = depth_to_disparity(depth, config);
  const Size2 target = short_side_resize_size(depth.height, depth.width, config.size);
  const std::vector<float> resized =
      resize_f32(disparity, depth.height, depth.width, target.height, target.width, config.filter);
  const int64_t top = center_crop_offset(target.height, config.size);
  const int64_t left = center_crop_offset(target.width, config.size);
  std::vector<T> values(static_cast<size_t>(config.size * config.size));
  for (int64_t y = 0; y < config.size; ++y) {
    for (int64_t x = 0; x < config.size; ++x) {
      float v = resized[static_cast<size_t>((top + y) * target.width + left + x)];
      if (config.normalize) v = (v - config.mean) / config.std;
      values[static_cast<size_t>(y * config.size + x)] = static_cast<T>(v);
    }
  }
  return Tensor<T, B>::from_vector(values, Shape{1, config.size, config.size});
}

/// Depth files (PNG or .npy) -> (B, 1, size, size).
template <class T = float, class B = Cpu>
Tensor<T, B> load_and_transform_depth_data(const std::vector<std::string>& paths,
                                           const DepthConfig& config = {}) {
  BINDERY_CHECK(!paths.empty(), ValueError, "load_and_transform_depth_data: no depth paths given");
  const int64_t per = config.size * config.size;
  std::vector<T> values(static_cast<size_t>(per * static_cast<int64_t>(paths.size())));
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::vector<T> one = transform_depth<T, Cpu>(read_raw_depth(paths[i]), config).to_vector();
    std::copy(one.begin(), one.end(), values.begin() + static_cast<std::ptrdiff_t>(i) * per);
  }
  return Tensor<T, B>::from_vector(values,
                                   Shape{static_cast<int64_t>(paths.size()), 1, config.size, config.size});
}

}  // namespace bindery::data
