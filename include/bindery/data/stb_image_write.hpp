// bindery/data/stb_image_write.hpp — PNG writing (stb_image_write) and a tiny bitmap font
// (stb_easy_font), both from Debian's libstb-dev, compiled privately inside bindery.
//
// Same approach as data/stb_image.hpp, for the same reason (a header-only library cannot ask its
// users to define STB_IMAGE_WRITE_IMPLEMENTATION in "exactly one" file): stb's implementation is
// compiled with STB_IMAGE_WRITE_STATIC inside `bindery::data::detail::stbw`, so every translation
// unit that writes PNGs gets a private copy (internal linkage, nothing exported). With
// STB_IMAGE_WRITE_STATIC stb_image_write declares every function `static` (no `extern "C"` block,
// unlike stb_image), so no renaming is needed: a user's own `#include <stb/stb_image_write.h>`, even
// with its implementation, before or after this header, declares distinct global names. stb's include
// guards and STBIWDEF are saved and restored around the include for that purpose.
//
// Hardening: no stdio (STBI_WRITE_NO_STDIO: bytes come back in memory and io::AtomicFileWriter
// writes them: temp file, fsync, rename), stb's asserts throw instead of aborting.
// stb_easy_font has only static functions and data (no implementation switch); it is included in the
// same namespace for the captions of contact sheets.
#pragma once

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/io/file.hpp"

namespace bindery::data::detail {

/// Thrown by stb_image_write's asserts (caught by write_png, reported as a ValueError).
struct StbWriteAssertFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void stb_write_assert_failed(const char* condition) {
  throw StbWriteAssertFailure(std::string("internal check failed: ") + condition);
}

}  // namespace bindery::data::detail

// Everything below is stb's code: no warnings from it (it is also under /usr/include).
#pragma GCC system_header

#pragma push_macro("INCLUDE_STB_IMAGE_WRITE_H")
#pragma push_macro("STBIWDEF")
#pragma push_macro("INCLUDE_STB_EASY_FONT_H")
#undef INCLUDE_STB_IMAGE_WRITE_H
#undef STBIWDEF
#undef INCLUDE_STB_EASY_FONT_H

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#define STBIW_ASSERT(condition) \
  ((condition) ? static_cast<void>(0) : ::bindery::data::detail::stb_write_assert_failed(#condition))

namespace bindery::data::detail::stbw {
#include <stb/stb_image_write.h>
#include <stb/stb_easy_font.h>
}  // namespace bindery::data::detail::stbw

#undef STB_IMAGE_WRITE_STATIC
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#undef STBI_WRITE_NO_STDIO
#undef STBIW_ASSERT
// ...and the helper macros stb_image_write defines for its implementation.
#undef STBIW_MALLOC
#undef STBIW_REALLOC
#undef STBIW_FREE
#undef STBIW_REALLOC_SIZED
#undef STBIW_MEMMOVE
#undef STBIW_UCHAR
#undef stbiw__sbraw
#undef stbiw__sbm
#undef stbiw__sbn
#undef stbiw__sbneedgrow
#undef stbiw__sbmaybegrow
#undef stbiw__sbgrow
#undef stbiw__sbpush
#undef stbiw__sbcount
#undef stbiw__sbfree
#undef stbiw__wpng4
#undef stbiw__wp32
#undef stbiw__wptag
#undef stbiw__max
#undef stbiw__zlib_flush
#undef stbiw__zlib_add
#undef stbiw__zlib_huff
#undef stbiw__zlib_huffa
#undef stbiw__zlib_huff1
#undef stbiw__zlib_huff2
#undef stbiw__zlib_huff3
#undef stbiw__zlib_huff4
#undef stbiw__zlib_huffb
#undef stbiw__ZHASH

#undef INCLUDE_STB_IMAGE_WRITE_H
#undef STBIWDEF
#undef INCLUDE_STB_EASY_FONT_H
#pragma pop_macro("INCLUDE_STB_EASY_FONT_H")
#pragma pop_macro("STBIWDEF")
#pragma pop_macro("INCLUDE_STB_IMAGE_WRITE_H")

namespace bindery::data {

/// PNG bytes of an 8-bit image: pixels (height, width, channels) row-major, channels 1..4.
inline std::vector<uint8_t> encode_png(const uint8_t* pixels, int64_t width, int64_t height,
                                       int64_t channels) {
  BINDERY_CHECK(width >= 1 && height >= 1 && width <= (1 << 20) && height <= (1 << 20), ValueError,
                "encode_png: image of ", width, " x ", height, " pixels (each side must be in [1, 2^20])");
  BINDERY_CHECK(channels >= 1 && channels <= 4, ValueError, "encode_png: ", channels,
                " channels (need 1 to 4)");
  int length = 0;
  unsigned char* png = nullptr;
  try {
    png = detail::stbw::stbi_write_png_to_mem(pixels, static_cast<int>(width * channels),
                                              static_cast<int>(width), static_cast<int>(height),
                                              static_cast<int>(channels), &length);
  } catch (const detail::StbWriteAssertFailure& failure) {
    throw ValueError(::bindery::detail::concat("encode_png: ", failure.what()));
  }
  BINDERY_CHECK(png != nullptr, ValueError, "encode_png: stb_image_write failed on a ", width, " x ", height,
                " image (out of memory?)");
  std::vector<uint8_t> bytes(png, png + length);
  free(png);
  return bytes;
}

/// Writes an 8-bit image (height, width, channels) as a PNG at `path`, atomically (temporary file,
/// fsync, rename). Throws IoError naming the file when it cannot be written.
inline void write_png(const std::string& path, const uint8_t* pixels, int64_t width, int64_t height,
                      int64_t channels) {
  const std::vector<uint8_t> bytes = encode_png(pixels, width, height, channels);
  io::AtomicFileWriter writer(path);
  writer.write(bytes.data(), static_cast<int64_t>(bytes.size()));
  writer.commit();
}

namespace detail {

/// Draws `text` (ASCII, stb_easy_font's ~6 x 8 pixel glyphs) into an RGB image (height, width, 3)
/// with its top-left corner at (x, y); glyphs are clipped at the image border.
inline void draw_text_rgb(std::vector<uint8_t>& rgb, int64_t width, int64_t height, int64_t x, int64_t y,
                          const std::string& text, const uint8_t colour[3]) {
  struct Vertex {
    float x, y, z;
    unsigned char colour[4];
  };
  std::string copy = text;                             // stb_easy_font takes a char*
  std::vector<Vertex> vertices(copy.size() * 70 + 4);  // <= ~17 quads (68 vertices) per glyph
  const int quads =
      stbw::stb_easy_font_print(static_cast<float>(x), static_cast<float>(y), copy.data(), nullptr,
                                vertices.data(), static_cast<int>(vertices.size() * sizeof(Vertex)));
  for (int q = 0; q < quads; ++q) {
    const Vertex* v = vertices.data() + 4 * q;  // axis-aligned: corners 0 and 2 are opposite
    const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::min(v[0].x, v[2].x)));
    const int64_t x1 = std::min<int64_t>(width, static_cast<int64_t>(std::max(v[0].x, v[2].x)));
    const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::min(v[0].y, v[2].y)));
    const int64_t y1 = std::min<int64_t>(height, static_cast<int64_t>(std::max(v[0].y, v[2].y)));
    for (int64_t py = y0; py < y1; ++py)
      for (int64_t px = x0; px < x1; ++px)
        for (int c = 0; c < 3; ++c) rgb[static_cast<size_t>((py * width + px) * 3 + c)] = colour[c];
  }
}

}  // namespace detail

}  // namespace bindery::data
