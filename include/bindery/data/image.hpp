// bindery/data/image.hpp — PNG/JPEG files to the vision encoder's input, as the reference does it.
//
// The reference (imagebind/data.py, load_and_transform_vision_data):
//   Image.open(f).convert("RGB") -> Resize(224, BICUBIC) -> CenterCrop(224) -> ToTensor()
//   -> Normalize(CLIP mean, CLIP std)                                         -> (3, 224, 224)
// bindery reproduces each step:
//   - decode: libjpeg-turbo (data/jpeg.hpp: the library Pillow decodes JPEGs with, same defaults, so
//     the pixels are Pillow's bit for bit) and libpng (data/png.hpp); PNG 1/2/4/8/16-bit gray,
//     gray+alpha, RGB, RGBA, palette (with or without tRNS), interlaced or not; JPEG baseline and
//     progressive, gray, YCbCr, RGB or CMYK (converted as Pillow's convert("RGB") does).
//   - the file's values as Pillow opens them: 16-bit RGB(A) and gray+alpha keep the high byte
//     (Pillow's "RGB;16B" unpacking); 16-bit gray opens as "I;16", whose conversion to L or RGB
//     CLIPS to 255 (values 256..65535 become white: a Pillow quirk the reference inherits).
//   - to_rgb = convert("RGB"): gray replicated, alpha dropped (no compositing), palette expanded.
//     to_gray = convert("L"): L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
//   - resize: Pillow's antialiased resample (data/resize.hpp), torchvision's size and crop rounding.
//   - ToTensor + Normalize in float32 exactly as torch does: (x / 255 - mean) / std, so a pixel equal
//     to Pillow's gives the reference's float bits. For T = double the float32 values are widened.
// Refused where Pillow would open them: JPEGs whose entropy-coded data ends early (Pillow shows grey
// blocks; bindery refuses, so a small file cannot make it decode a huge grey image), 12-bit JPEGs
// (Debian's libjpeg-turbo is 8-bit).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/shape.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/jpeg.hpp"
#include "bindery/data/png.hpp"
#include "bindery/data/resize.hpp"
#include "bindery/io/file.hpp"

namespace bindery::data {

/// An 8-bit image: rows top to bottom, channels interleaved (height, width, channels).
/// channels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
struct Image {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  std::vector<uint8_t> pixels;

  uint8_t at(int64_t y, int64_t x, int64_t c) const {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
  bool empty() const { return pixels.empty(); }
};

/// A 16-bit single- or multi-channel image (depth maps), same layout as Image.
struct Image16 {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  std::vector<uint16_t> pixels;
};

/// What a decode may cost. Sizes come from the file's header and are checked before the decoder
/// allocates; a JPEG's working memory and scans are bounded too (data/jpeg.hpp).
struct ImageLimits {
  int64_t max_pixels = 100'000'000;           // width * height (overflow-checked: raw 32-bit header values)
  int64_t max_file_bytes = int64_t{1} << 30;  // the whole file is read into memory first
  /// libjpeg's working memory (a progressive file's whole-image coefficient buffer, about 3 bytes
  /// per pixel in 4:2:0) may be at most max(64 MiB, this many times the file's size): a file must
  /// carry data in proportion to the memory it makes the decoder hold.
  int64_t max_jpeg_work_per_file_byte = 1024;
  int max_jpeg_scans = 256;  // progressive scans (real files have about 10; each walks the whole image)
};

enum class ImageFormat { kPng, kJpeg };

/// What a file's header declares.
struct ImageInfo {
  ImageFormat format = ImageFormat::kPng;
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;  // as stored (a palette counts 1, gray + tRNS counts 1)
  int bit_depth = 8;     // per channel as stored (PNG: 1, 2, 4, 8, 16)
  int png_color_type = -1;
};

/// CLIP's normalization, used by the reference for images and video.
inline constexpr std::array<float, 3> kClipMean = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr std::array<float, 3> kClipStd = {0.26862954f, 0.26130258f, 0.27577711f};

namespace detail {

inline std::string image_hex_prefix(std::span<const uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    if (i) out += ' ';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out.empty() ? std::string("(empty file)") : out;
}

inline bool is_png(std::span<const uint8_t> b) {
  static constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return b.size() >= 8 && std::memcmp(b.data(), kSignature, 8) == 0;
}
inline bool is_jpeg(std::span<const uint8_t> b) {
  return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}

inline uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

/// Runs libjpeg-turbo on `bytes` (data/jpeg.hpp); throws FormatError naming `name` on failure.
inline JpegJob run_jpeg(std::span<const uint8_t> bytes, std::string_view name, const ImageLimits& limits,
                        bool header_only) {
  JpegJob job;
  job.bytes = bytes;
  job.header_only = header_only;
  job.max_pixels = header_only ? 0 : limits.max_pixels;
  job.max_scans = limits.max_jpeg_scans;
  int64_t work = 0;
  if (__builtin_mul_overflow(static_cast<int64_t>(bytes.size()), limits.max_jpeg_work_per_file_byte, &work))
    work = INT64_MAX;
  job.max_work_bytes = std::max<int64_t>(work, int64_t{64} << 20);
  if (job.max_work_bytes > int64_t{LONG_MAX}) job.max_work_bytes = LONG_MAX;
  decode_jpeg_into(job);
  if (job.failed && !job.too_large) {
    const std::string at = job.offset >= 0 ? ::bindery::detail::concat(" (noticed at byte ", job.offset,
                                                                       " of ", bytes.size(), ")")
                                           : std::string();
    const std::string text = job.message;
    const bool memory = text.find("Backing store") != std::string::npos;
    throw FormatError(::bindery::detail::concat(
        name, ": cannot ", header_only ? "read the JPEG header" : "decode the JPEG", ": ",
        memory ? ::bindery::detail::concat("its working memory would exceed ", job.max_work_bytes,
                                           " bytes (ImageLimits::max_jpeg_work_per_file_byte = ",
                                           limits.max_jpeg_work_per_file_byte, " x the file's ", bytes.size(),
                                           " bytes, at least 64 MiB)")
               : text,
        at));
  }
  return job;
}

/// PNG or JPEG by signature; FormatError naming `name` otherwise or above the decoders' int length.
inline ImageFormat image_format(std::span<const uint8_t> bytes, std::string_view name) {
  BINDERY_CHECK(is_png(bytes) || is_jpeg(bytes), FormatError, name,
                ": not a PNG or JPEG file (it starts with ", image_hex_prefix(bytes), ")");
  BINDERY_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), FormatError, name, ": ", bytes.size(),
                " bytes is too large for the image decoder");
  return is_png(bytes) ? ImageFormat::kPng : ImageFormat::kJpeg;
}

/// Width and height come raw from the header (up to 2^32 - 1 each for a PNG): their product is
/// overflow-checked, so a header whose product wraps negative cannot pass max_pixels.
inline void check_decodable_size(std::string_view name, int64_t width, int64_t height,
                                 const ImageLimits& limits) {
  BINDERY_CHECK(width > 0 && height > 0, FormatError, name, ": image declares ", width, " x ", height,
                " pixels");
  int64_t pixels = 0;
  const bool overflow = __builtin_mul_overflow(width, height, &pixels);
  BINDERY_CHECK(!overflow && pixels <= limits.max_pixels, FormatError, name, ": image of ", width, " x ",
                height, " (width x height) pixels (",
                overflow ? std::string("over 2^63") : std::to_string(pixels),
                ") exceeds the decode limit of ", limits.max_pixels, " pixels (ImageLimits::max_pixels)");
}

/// Runs libpng on `bytes` (data/png.hpp); throws FormatError naming `name` on failure.
inline PngJob run_png(std::span<const uint8_t> bytes, std::string_view name, bool keep_16, bool gray_only) {
  PngJob job;
  job.bytes = bytes;
  job.keep_16 = keep_16;
  job.gray_only = gray_only;
  decode_png_into(job);
  if (job.impossible)
    throw FormatError(::bindery::detail::concat(
        name, ": cannot decode the PNG: it declares ", job.width, " x ", job.height, " pixels (",
        job.needed_bytes, " bytes of filtered rows) but ", bytes.size(), " bytes inflate to at most ",
        kPngMaxInflation, " times as many: truncated, or a header that lies about the size"));
  if (job.failed)
    throw FormatError(::bindery::detail::concat(name, ": cannot decode the PNG: ", job.message,
                                                " (near byte ", job.at, " of ", bytes.size(), ")"));
  return job;
}

}  // namespace detail

/// The header of a PNG or JPEG held in `bytes` (`name` is used in messages only).
inline ImageInfo inspect_image(std::span<const uint8_t> bytes, std::string_view name) {
  ImageInfo info;
  info.format = detail::image_format(bytes, name);
  if (info.format == ImageFormat::kPng) {
    // The first chunk must be IHDR: length 13, then width, height, depth, colour type.
    BINDERY_CHECK(bytes.size() >= 33 && detail::read_be32(bytes.data() + 8) == 13 &&
                      std::memcmp(bytes.data() + 12, "IHDR", 4) == 0,
                  FormatError, name, ": PNG without a valid IHDR chunk at byte 8");
    info.width = detail::read_be32(bytes.data() + 16);
    info.height = detail::read_be32(bytes.data() + 20);
    info.bit_depth = bytes[24];
    info.png_color_type = bytes[25];
    static constexpr int kChannels[7] = {1, 0, 3, 1, 2, 0, 4};
    BINDERY_CHECK(info.png_color_type <= 6 && kChannels[info.png_color_type] > 0, FormatError, name,
                  ": PNG colour type ", info.png_color_type, " is invalid (byte 25)");
    info.channels = kChannels[info.png_color_type];
    return info;
  }
  const detail::JpegJob header = detail::run_jpeg(bytes, name, ImageLimits{}, /*header_only=*/true);
  info.width = header.width;
  info.height = header.height;
  info.channels = header.channels;
  return info;
}

/// Decodes a PNG or JPEG held in memory to 8-bit values as Pillow opens the file: channels as
/// stored (palettes expanded to RGB, tRNS transparency dropped), 16-bit samples reduced as Pillow
/// does (see the file comment). Throws FormatError naming `name` (not an image, truncated, corrupt,
/// over `limits`).
inline Image decode_image(std::span<const uint8_t> bytes, std::string_view name,
                          const ImageLimits& limits = {}) {
  if (detail::image_format(bytes, name) == ImageFormat::kJpeg) {
    // One libjpeg pass: it reads the header, checks max_pixels, then decodes. Gray -> 1 channel,
    // YCbCr/RGB -> 3, CMYK -> 3 through Pillow's convert("RGB") (the decoded Image holds no CMYK
    // mode; the reference converts every image to RGB anyway).
    detail::JpegJob job = detail::run_jpeg(bytes, name, limits, /*header_only=*/false);
    if (job.too_large) detail::check_decodable_size(name, job.width, job.height, limits);  // throws
    if (job.channels == 4) detail::jpeg_cmyk_to_rgb(job.pixels, job.inverted);
    return Image{job.height, job.width, job.channels == 1 ? 1 : 3, std::move(job.pixels)};
  }
  const ImageInfo info = inspect_image(bytes, name);  // the PNG's IHDR, read in place
  detail::check_decodable_size(name, info.width, info.height, limits);
  // Pillow's modes: 16-bit gray opens as "I;16", whose convert("L"/"RGB") clips each value to 255;
  // every other kind keeps its channels (palettes as RGB, tRNS dropped), 16-bit samples cut to the
  // high byte.
  const bool gray16 = info.bit_depth == 16 && info.png_color_type == 0;
  detail::PngJob job = detail::run_png(bytes, name, /*keep_16=*/gray16, /*gray_only=*/false);
  Image image{job.height, job.width, job.channels, {}};
  const size_t n = static_cast<size_t>(job.width * job.height);
  if (gray16) {
    image.pixels.resize(n);
    for (size_t i = 0; i < n; ++i) {
      uint16_t v = 0;
      std::memcpy(&v, job.pixels.data() + 2 * i, 2);
      image.pixels[i] = static_cast<uint8_t>(std::min<uint16_t>(v, 255));
    }
  } else if (info.png_color_type == 3 && job.channels == 4) {  // tRNS made an alpha channel: drop it
    image.channels = 3;
    image.pixels.resize(n * 3);
    for (size_t i = 0; i < n; ++i) std::memcpy(image.pixels.data() + 3 * i, job.pixels.data() + 4 * i, 3);
  } else {
    image.pixels = std::move(job.pixels);
  }
  return image;
}

/// Decodes the raw stored samples of a gray PNG (8- or 16-bit, e.g. a depth map in millimetres):
/// no scaling, no clipping. Colour PNGs and JPEGs are refused (a depth map has one channel).
inline Image16 decode_image_u16(std::span<const uint8_t> bytes, std::string_view name,
                                const ImageLimits& limits = {}) {
  const ImageInfo info = inspect_image(bytes, name);
  BINDERY_CHECK(info.format == ImageFormat::kPng && (info.png_color_type == 0 || info.png_color_type == 4),
                FormatError, name, ": expected a single-channel (gray) PNG for raw 16-bit values, got ",
                info.format == ImageFormat::kJpeg ? "a JPEG" : "PNG colour type ", info.png_color_type);
  detail::check_decodable_size(name, info.width, info.height, limits);
  detail::PngJob job = detail::run_png(bytes, name, /*keep_16=*/true, /*gray_only=*/true);
  Image16 image{job.height, job.width, 1, std::vector<uint16_t>(static_cast<size_t>(job.width * job.height))};
  if (job.bytes_per_sample == 2) {
    std::memcpy(image.pixels.data(), job.pixels.data(), image.pixels.size() * 2);
  } else {
    std::copy(job.pixels.begin(), job.pixels.begin() + static_cast<std::ptrdiff_t>(image.pixels.size()),
              image.pixels.begin());
  }
  return image;
}

/// The whole file at `path` (IoError if unreadable, FormatError above `max_bytes`).
inline std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes) {
  const io::File file = io::File::open(path);
  BINDERY_CHECK(file.size() <= max_bytes, FormatError, path, ": file of ", file.size(),
                " bytes exceeds the limit of ", max_bytes, " bytes");
  std::vector<uint8_t> bytes(static_cast<size_t>(file.size()));
  if (!bytes.empty()) file.read_at(0, bytes.data(), file.size(), "image");
  return bytes;
}

/// Reads and decodes a PNG or JPEG file (see decode_image).
inline Image read_image(const std::string& path, const ImageLimits& limits = {}) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, limits.max_file_bytes);
  return decode_image(bytes, path, limits);
}

/// Pillow's convert("RGB"): gray replicated, alpha dropped.
inline Image to_rgb(const Image& image) {
  if (image.channels == 3) return image;
  BINDERY_CHECK(image.channels >= 1 && image.channels <= 4, ValueError, "to_rgb: ", image.channels,
                " channels (expected 1 to 4)");
  Image out{image.height, image.width, 3,
            std::vector<uint8_t>(static_cast<size_t>(image.height * image.width * 3))};
  const int64_t n = image.height * image.width;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = image.pixels.data() + i * image.channels;
    uint8_t* o = out.pixels.data() + i * 3;
    if (image.channels <= 2) {
      o[0] = o[1] = o[2] = p[0];
    } else {
      o[0] = p[0];
      o[1] = p[1];
      o[2] = p[2];
    }
  }
  return out;
}

/// Pillow's convert("L"): ITU-R 601-2 luma in 16-bit fixed point, alpha dropped.
inline Image to_gray(const Image& image) {
  if (image.channels == 1) return image;
  BINDERY_CHECK(image.channels >= 1 && image.channels <= 4, ValueError, "to_gray: ", image.channels,
                " channels (expected 1 to 4)");
  Image out{image.height, image.width, 1,
            std::vector<uint8_t>(static_cast<size_t>(image.height * image.width))};
  const int64_t n = image.height * image.width;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = image.pixels.data() + i * image.channels;
    out.pixels[static_cast<size_t>(i)] =
        image.channels == 2
            ? p[0]
            : static_cast<uint8_t>((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
  }
  return out;
}

/// torchvision Resize(size, filter) on a PIL image: short side to `size` (Pillow's antialiased
/// resample), long side int(size * long / short).
inline Image resize_short_side(const Image& image, int64_t size,
                               ResampleFilter filter = ResampleFilter::kBicubic) {
  const Size2 target = short_side_resize_size(image.height, image.width, size);
  if (target.height == image.height && target.width == image.width) return image;
  return Image{target.height, target.width, image.channels,
               resize_u8(image.pixels, image.height, image.width, image.channels, target.height, target.width,
                         filter)};
}

/// torchvision CenterCrop(crop_height, crop_width) on an image at least that large.
inline Image center_crop(const Image& image, int64_t crop_height, int64_t crop_width) {
  BINDERY_CHECK(image.height >= crop_height && image.width >= crop_width && crop_height > 0 && crop_width > 0,
                ValueError, "center_crop: cannot crop ", crop_height, " x ", crop_width, " from an image of ",
                image.height, " x ", image.width);
  const int64_t top = center_crop_offset(image.height, crop_height);
  const int64_t left = center_crop_offset(image.width, crop_width);
  Image out{crop_height, crop_width, image.channels,
            std::vector<uint8_t>(static_cast<size_t>(crop_height * crop_width * image.channels))};
  const int64_t row = crop_width * image.channels;
  for (int64_t y = 0; y < crop_height; ++y) {
    std::memcpy(out.pixels.data() + y * row,
                image.pixels.data() + ((top + y) * image.width + left) * image.channels,
                static_cast<size_t>(row));
  }
  return out;
}

/// The vision transform's knobs; the defaults are the reference's.
struct VisionTransformConfig {
  int64_t size = 224;
  ResampleFilter filter = ResampleFilter::kBicubic;
  std::array<float, 3> mean = kClipMean;
  std::array<float, 3> std = kClipStd;
};

/// Resize(size) + CenterCrop(size) on 8-bit pixels: the uint8 image the normalization sees.
inline Image resize_and_center_crop(const Image& image, int64_t size,
                                    ResampleFilter filter = ResampleFilter::kBicubic) {
  return center_crop(resize_short_side(image, size, filter), size, size);
}

/// ToTensor + Normalize of an 8-bit image into `out` (channels planes of height * width), in
/// float32 as torch computes it: (float(x) / 255 - mean[c]) / std[c].
template <class T>
void normalize_into(const Image& image, std::span<const float> mean, std::span<const float> std, T* out) {
  BINDERY_CHECK(static_cast<int64_t>(mean.size()) == image.channels && mean.size() == std.size(), ValueError,
                "normalize: ", mean.size(), " means and ", std.size(), " stds for ", image.channels,
                " channels");
  const int64_t plane = image.height * image.width;
  for (int64_t c = 0; c < image.channels; ++c) {
    const float m = mean[static_cast<size_t>(c)], s = std[static_cast<size_t>(c)];
    for (int64_t i = 0; i < plane; ++i) {
      const float unit =
          static_cast<float>(image.pixels[static_cast<size_t>(i * image.channels + c)]) / 255.0f;
      out[c * plane + i] = static_cast<T>((unit - m) / s);
    }
  }
}

/// One decoded image to the vision input: (3, size, size).
template <class T = float, class B = Cpu>
Tensor<T, B> transform_vision_image(const Image& image, const VisionTransformConfig& config = {}) {
  const Image cropped = resize_and_center_crop(to_rgb(image), config.size, config.filter);
  std::vector<T> values(static_cast<size_t>(3 * config.size * config.size));
  normalize_into<T>(cropped, config.mean, config.std, values.data());
  return Tensor<T, B>::from_vector(values, Shape{3, config.size, config.size});
}

/// The reference's load_and_transform_vision_data: image files -> (B, 3, size, size).
template <class T = float, class B = Cpu>
Tensor<T, B> load_and_transform_vision_data(const std::vector<std::string>& paths,
                                            const VisionTransformConfig& config = {},
                                            const ImageLimits& limits = {}) {
  BINDERY_CHECK(!paths.empty(), ValueError, "load_and_transform_vision_data: no image paths given");
  const int64_t per_image = 3 * config.size * config.size;
  std::vector<T> values(static_cast<size_t>(per_image * static_cast<int64_t>(paths.size())));
  for (size_t i = 0; i < paths.size(); ++i) {
    const Image cropped =
        resize_and_center_crop(to_rgb(read_image(paths[i], limits)), config.size, config.filter);
    normalize_into<T>(cropped, config.mean, config.std, values.data() + static_cast<int64_t>(i) * per_image);
  }
  return Tensor<T, B>::from_vector(values,
                                   Shape{static_cast<int64_t>(paths.size()), 3, config.size, config.size});
}

}  // namespace bindery::data
