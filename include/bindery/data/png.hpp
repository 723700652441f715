// bindery/data/png.hpp — PNG decoding through libpng, with the sample values Pillow gives.
//
// Why libpng: PNG decoding is lossless, so any correct decoder gives the same samples; the choice is
// about trust. libpng is the reference implementation, fuzzed continuously (OSS-Fuzz), and the
// library Pillow links for writing; stb_image's 2022 snapshot in Debian has a history of CVEs and
// undefined behaviour on corrupt input (issue 18, class 5). bindery asks libpng for no colour
// management (no gamma, no background compositing) and only these transforms: palettes expanded to
// RGB, 1/2/4-bit gray scaled to 8 bits (x255, x85, x17, as Pillow's "1", "L;2", "L;4" unpackers do),
// 16-bit samples either kept (gray, for depth maps and Pillow's "I;16") or cut to their high byte
// (Pillow's "RGB;16B" and friends). tRNS transparency is not turned into alpha: Pillow keeps it as
// an attribute, and convert("RGB") ignores it.
//
// Bounded work: the caller checks width * height against ImageLimits::max_pixels on the IHDR before
// calling; a header that declares more pixel data than the file could inflate to is refused at
// once (deflate expands at most 1032:1, so a 60-byte file cannot hold 9 MB of rows); rows are
// decoded one by one into an output that grows with them (non-interlaced files), and decoding stops
// after the last row, so compressed data past the image (a zlib bomb appended to IDAT) is never
// inflated. Ancillary chunks are capped by libpng's own chunk limit (8 MB).
//
// Errors: libpng's error callback longjmps back into decode_png_into, which holds no object with a
// destructor between setjmp and the libpng calls (what it changes lives in the caller's PngJob).
#pragma once

#include <algorithm>
#include <climits>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <span>
#include <vector>

#include <png.h>

namespace bindery::data::detail {

/// deflate's largest expansion ratio (258-byte matches in 2 bits... rounded up): no valid file of
/// n bytes inflates to more than kPngMaxInflation * n bytes.
inline constexpr int64_t kPngMaxInflation = 1032;

/// One PNG decode: inputs, outputs, failure; filled by decode_png_into.
struct PngJob {
  // Inputs.
  std::span<const uint8_t> bytes;
  bool keep_16 = false;    // 16-bit samples as they are (uint16, host order) instead of the high byte
  bool gray_only = false;  // drop alpha from gray + alpha (raw depth reads)
  // Outputs.
  int64_t width = 0, height = 0;
  int color_type = -1, bit_depth = 0;
  int channels = 0;          // after the transforms
  int bytes_per_sample = 1;  // 2 when keep_16 and the file is 16-bit
  std::vector<uint8_t> pixels;
  // Failure.
  bool failed = false;
  bool impossible = false;   // declares more pixel data than the file can inflate to
  int64_t needed_bytes = 0;  // that pixel data, for the message
  char message[256] = {0};
  // The reader's position.
  size_t at = 0;
};

struct PngContext {
  std::jmp_buf jump{};
  PngJob* job = nullptr;
};

inline void png_on_error(png_structp png, png_const_charp text) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  ctx->job->failed = true;
  std::snprintf(ctx->job->message, sizeof ctx->job->message, "%s", text != nullptr ? text : "?");
  std::longjmp(ctx->jump, 1);
}

inline void png_on_warning(png_structp, png_const_charp) {}

inline void png_read_from_job(png_structp png, png_bytep out, size_t length) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  PngJob& job = *ctx->job;
  if (length > job.bytes.size() - job.at) {
    std::snprintf(job.message, sizeof job.message, "the file ends at byte %zu, inside a chunk (truncated)",
                  job.bytes.size());
    job.failed = true;
    std::longjmp(ctx->jump, 1);
  }
  std::memcpy(out, job.bytes.data() + job.at, length);
  job.at += length;
}

/// The whole decode; see the file comment for the setjmp discipline.
inline void decode_png_into(PngJob& job) {
  PngContext ctx;
  ctx.job = &job;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
  if (png == nullptr) {
    job.failed = true;
    std::snprintf(job.message, sizeof job.message, "libpng could not start (out of memory)");
    return;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    job.failed = true;
    std::snprintf(job.message, sizeof job.message, "libpng could not start (out of memory)");
    return;
  }
  if (setjmp(ctx.jump) != 0) {
    png_destroy_read_struct(&png, &info, nullptr);
    return;
  }
  png_set_read_fn(png, &ctx, png_read_from_job);
  png_set_user_limits(png, 0x7fffffffU, 0x7fffffffU);  // the PNG maximum; max_pixels decides
  png_read_info(png, info);
  job.width = png_get_image_width(png, info);
  job.height = png_get_image_height(png, info);
  job.color_type = png_get_color_type(png, info);
  job.bit_depth = png_get_bit_depth(png, info);
  const int interlace = png_get_interlace_type(png, info);
  // The filtered rows the file must inflate to: height * (1 + ceil(width * bits / 8)).
  const int64_t bits = static_cast<int64_t>(png_get_channels(png, info)) * job.bit_depth;
  int64_t raw = 0;
  const bool overflow = __builtin_mul_overflow(job.height, 1 + (job.width * bits + 7) / 8, &raw);
  if (overflow || raw / kPngMaxInflation > static_cast<int64_t>(job.bytes.size())) {
    job.failed = job.impossible = true;
    job.needed_bytes = overflow ? INT64_MAX : raw;
    png_destroy_read_struct(&png, &info, nullptr);
    return;
  }
  if (job.color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (job.color_type == PNG_COLOR_TYPE_GRAY && job.bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (job.bit_depth == 16) {
    if (job.keep_16)
      png_set_swap(png);  // network order to the host's (x86: little-endian)
    else
      png_set_strip_16(png);  // the high byte, as Pillow's ";16B" unpackers
  }
  if (job.gray_only && job.color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_strip_alpha(png);
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  job.channels = png_get_channels(png, info);
  job.bytes_per_sample = (job.bit_depth == 16 && job.keep_16) ? 2 : 1;
  const size_t row = png_get_rowbytes(png, info);
  const size_t all = row * static_cast<size_t>(job.height);
  if (interlace != PNG_INTERLACE_NONE) {
    try {
      job.pixels.resize(all);  // passes revisit every row
    } catch (const std::bad_alloc&) {
      job.failed = true;
      std::snprintf(job.message, sizeof job.message, "out of memory for %zu bytes of pixels", all);
      png_destroy_read_struct(&png, &info, nullptr);
      return;
    }
    for (int pass = 0; pass < passes; ++pass)
      for (int64_t y = 0; y < job.height; ++y)
        png_read_row(png, job.pixels.data() + row * static_cast<size_t>(y), nullptr);
  } else {
    for (int64_t y = 0; y < job.height; ++y) {
      const size_t need = row * static_cast<size_t>(y + 1);
      if (job.pixels.size() < need) {
        try {
          job.pixels.resize(std::min(all, std::max(need, 2 * job.pixels.size())));
        } catch (const std::bad_alloc&) {
          job.failed = true;
          std::snprintf(job.message, sizeof job.message, "out of memory for %zu bytes of pixels", all);
          png_destroy_read_struct(&png, &info, nullptr);
          return;
        }
      }
      png_read_row(png, job.pixels.data() + row * static_cast<size_t>(y), nullptr);
    }
  }
  png_destroy_read_struct(&png, &info, nullptr);  // what follows the image data is not inflated
}

}  // namespace bindery::data::detail
