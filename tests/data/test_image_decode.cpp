// Decoding PNG and JPEG files exactly as Pillow opens and converts them, and refusing bad files with
// typed errors that name the file.
#include "image_test_util.hpp"

#include <bindery/data/image.hpp>

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using namespace bindery;
using namespace bindery::testing;

namespace {

const std::vector<std::string> kDecodeCases = {"png_gray1.png",
                                               "png_gray2.png",
                                               "png_gray4.png",
                                               "png_gray8.png",
                                               "png_gray8_trns.png",
                                               "png_gray16.png",
                                               "png_gray_alpha8.png",
                                               "png_gray_alpha16.png",
                                               "png_rgb8.png",
                                               "png_rgb16.png",
                                               "png_rgba8.png",
                                               "png_rgba16.png",
                                               "png_palette1.png",
                                               "png_palette2.png",
                                               "png_palette4.png",
                                               "png_palette8.png",
                                               "png_palette4_trns.png",
                                               "jpeg_444.jpg",
                                               "jpeg_422.jpg",
                                               "jpeg_420.jpg",
                                               "jpeg_420_progressive.jpg",
                                               "jpeg_444_progressive.jpg",
                                               "jpeg_gray.jpg",
                                               "jpeg_420_narrow.jpg",
                                               "jpeg_cmyk.jpg",
                                               "jpeg_420_restart.jpg"};

std::string stem(const std::string& file) {
  return file.substr(0, file.rfind('.'));
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  return data::read_file_bytes(path, int64_t{1} << 30);
}

/// A PNG with the given IHDR and an IDAT holding `idat` (CRCs are not checked by the decoder, so
/// they are left zero: this also shows they are not trusted for anything).
std::vector<uint8_t> png_with(uint32_t width, uint32_t height, uint8_t depth, uint8_t color,
                              const std::vector<uint8_t>& idat) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  const auto chunk = [&](const char* kind, const std::vector<uint8_t>& payload) {
    be32(static_cast<uint32_t>(payload.size()));
    out.insert(out.end(), kind, kind + 4);
    out.insert(out.end(), payload.begin(), payload.end());
    // The CRC over type and data, as libpng checks it.
    const uLong crc = crc32(crc32(0L, reinterpret_cast<const Bytef*>(kind), 4), payload.data(),
                            static_cast<uInt>(payload.size()));
    be32(static_cast<uint32_t>(crc));
  };
  std::vector<uint8_t> ihdr;
  for (uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<uint8_t>(v >> s));
  ihdr.insert(ihdr.end(), {depth, color, 0, 0, 0});
  chunk("IHDR", ihdr);
  chunk("IDAT", idat);
  chunk("IEND", {});
  return out;
}

/// A zlib stream that inflates to `repeats * 258 + 1` zero bytes from a few hundred KB: one fixed-
/// Huffman block of a literal 0 followed by (length 258, distance 1) copies.
std::vector<uint8_t> zlib_zero_bomb(int64_t repeats) {
  std::vector<uint8_t> out = {0x78, 0x01};
  uint64_t bits = 0;
  int count = 0;
  const auto put = [&](uint32_t value, int n) {  // LSB-first
    bits |= static_cast<uint64_t>(value) << count;
    count += n;
    while (count >= 8) {
      out.push_back(static_cast<uint8_t>(bits & 0xFF));
      bits >>= 8;
      count -= 8;
    }
  };
  const auto put_code = [&](uint32_t code, int n) {  // Huffman codes go MSB-first
    uint32_t reversed = 0;
    for (int i = 0; i < n; ++i) reversed |= ((code >> i) & 1u) << (n - 1 - i);
    put(reversed, n);
  };
  put(1, 1);              // BFINAL
  put(1, 2);              // BTYPE = fixed Huffman
  put_code(0x30 + 0, 8);  // literal 0
  for (int64_t i = 0; i < repeats; ++i) {
    put_code(0xC0 + (285 - 280), 8);  // length 258
    put_code(0, 5);                   // distance 1
  }
  put_code(0, 7);  // end of block (256)
  if (count > 0) put(0, 8 - count);
  for (int i = 0; i < 4; ++i) out.push_back(0);  // adler32, unchecked
  return out;
}

}  // namespace

TEST_CASE("decode: every PNG kind and both JPEG kinds give Pillow's convert('RGB') and convert('L')",
          "[data][image][decode]") {
  for (const std::string& file : kDecodeCases) {
    INFO("fixture " << file);
    const data::Image image = data::read_image(image_fixture("decode_" + file));
    Shape rgb_shape, gray_shape;
    const auto rgb = read_fixture<uint8_t>("decode_" + stem(file) + "_rgb.npy", &rgb_shape);
    const auto gray = read_fixture<uint8_t>("decode_" + stem(file) + "_gray.npy", &gray_shape);
    const data::Image as_rgb = data::to_rgb(image);
    const data::Image as_gray = data::to_gray(image);
    CHECK(Shape{as_rgb.height, as_rgb.width, 3} == rgb_shape);
    CHECK(Shape{as_gray.height, as_gray.width} == gray_shape);
    const PixelStats rgb_stats = compare_pixels(as_rgb.pixels, rgb);
    const PixelStats gray_stats = compare_pixels(as_gray.pixels, gray);
    CHECK(rgb_stats.equal == rgb_stats.total);
    CHECK(gray_stats.equal == gray_stats.total);
  }
}

TEST_CASE("decode: the channels as stored, 16-bit values reduced as Pillow does", "[data][image][decode]") {
  CHECK(data::read_image(image_fixture("decode_png_gray8.png")).channels == 1);
  CHECK(data::read_image(image_fixture("decode_png_gray_alpha8.png")).channels == 2);
  CHECK(data::read_image(image_fixture("decode_png_rgb16.png")).channels == 3);
  CHECK(data::read_image(image_fixture("decode_png_rgba8.png")).channels == 4);
  CHECK(data::read_image(image_fixture("decode_png_palette4_trns.png")).channels == 3);
  CHECK(data::read_image(image_fixture("decode_jpeg_gray.jpg")).channels == 1);
  // 16-bit gray: Pillow's I;16 -> L clips (values >= 256 become 255), the raw decoder keeps them.
  const auto bytes = file_bytes(image_fixture("decode_png_gray16.png"));
  const data::Image clipped = data::decode_image(bytes, "gray16");
  const data::Image16 raw = data::decode_image_u16(bytes, "gray16");
  REQUIRE(raw.pixels.size() == clipped.pixels.size());
  bool saw_large = false;
  for (size_t i = 0; i < raw.pixels.size(); ++i) {
    CHECK(clipped.pixels[i] == std::min<uint16_t>(raw.pixels[i], 255));
    saw_large = saw_large || raw.pixels[i] > 255;
  }
  CHECK(saw_large);
}

TEST_CASE("decode: the reference's example photos (progressive JPEG) decode to a full image",
          "[data][image][decode]") {
  for (const char* name : {"dog_image.jpg", "car_image.jpg", "bird_image.jpg"}) {
    const data::ImageInfo info = data::inspect_image(file_bytes(shared_asset(name)), name);
    CHECK(info.format == data::ImageFormat::kJpeg);
    CHECK(info.width == 640);
    const data::Image image = data::read_image(shared_asset(name));
    CHECK(image.channels == 3);
    CHECK(image.width == 640);
    CHECK(image.height == info.height);
  }
}

TEST_CASE("decode: bad files are refused with a FormatError or IoError naming the file",
          "[data][image][errors]") {
  SECTION("not an image") {
    const std::string path = image_fixture("norm_table_in.npy");
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::read_image(path), FormatError, path.c_str(), "not a PNG or JPEG",
                                    "93 4e 55 4d");
    const std::vector<uint8_t> empty;
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(empty, "empty.png"), FormatError, "empty.png",
                                    "(empty file)");
  }
  SECTION("missing file") {
    const std::string path = image_fixture("no_such_image.png");
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::read_image(path), IoError, path.c_str());
  }
  SECTION("truncated PNG") {
    auto bytes = file_bytes(image_fixture("decode_png_rgb8.png"));
    bytes.resize(bytes.size() / 2);
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(bytes, "half.png"), FormatError, "half.png",
                                    "cannot decode");
  }
  SECTION("truncated JPEG, baseline and progressive") {
    for (const char* file : {"decode_jpeg_420.jpg", "decode_jpeg_420_progressive.jpg"}) {
      auto bytes = file_bytes(image_fixture(file));
      for (const size_t keep : {bytes.size() - 2, bytes.size() * 2 / 3, size_t{200}}) {
        const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep));
        INFO(file << " cut to " << keep << " bytes");
        BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(cut, "cut.jpg"), FormatError, "cut.jpg");
      }
    }
  }
  SECTION("huge declared dimensions are refused before any allocation") {
    const auto bytes = png_with(200000, 100000, 8, 2, {});
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(bytes, "huge.png"), FormatError, "huge.png",
                                    "200000 x 100000", "exceeds the decode limit");
    data::ImageLimits small;
    small.max_pixels = 100;
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::read_image(image_fixture("decode_png_rgb8.png"), small),
                                    FormatError, "decode_png_rgb8.png", "19 x 13", "ImageLimits::max_pixels");
  }
  SECTION("a header that lies about the size") {
    const auto bytes = png_with(3000, 3000, 8, 0, {0x78, 0x01, 0x03, 0x00, 0, 0, 0, 1});
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(bytes, "liar.png"), FormatError, "liar.png",
                                    "cannot decode");
  }
  SECTION("a zlib bomb after the image data is never inflated") {
    // Declares 16 x 16 pixels; its IDAT inflates to ~100 MB of zeros. Decoding stops after the 16th
    // row (stb inflated until its ~64 MB budget refused it); the rows themselves are zeros.
    const auto bytes = png_with(16, 16, 8, 0, zlib_zero_bomb(400000));
    const data::Image image = data::decode_image(bytes, "bomb.png");
    CHECK((image.width == 16 && image.height == 16 && image.channels == 1));
    CHECK(std::all_of(image.pixels.begin(), image.pixels.end(), [](uint8_t v) { return v == 0; }));
  }
  SECTION("a header that declares more rows than the file can inflate to is refused before decoding") {
    const auto bytes = png_with(9000, 9000, 8, 2, {0x78, 0x01, 0x03, 0x00, 0, 0, 0, 1});
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(bytes, "lies.png"), FormatError, "lies.png",
                                    "9000 x 9000", "inflate to at most");
  }
  SECTION("a Huffman table with more than 256 codes (overflowed stb 2.27's tables)") {
    auto bytes = file_bytes(image_fixture("decode_jpeg_444.jpg"));
    std::vector<uint8_t> dht = {0xFF, 0xC4, 0x00, 0x13, 0x00};   // DC table 0: 16 counts, no symbols
    for (int k = 0; k < 16; ++k) dht.push_back(k < 2 ? 0 : 20);  // 280 codes
    bytes.insert(bytes.begin() + 2, dht.begin(), dht.end());
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(bytes, "dht.jpg"), FormatError, "dht.jpg",
                                    "Bogus Huffman table");
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::inspect_image(bytes, "dht.jpg"), FormatError, "dht.jpg",
                                    "cannot read the JPEG header");
  }
  SECTION("a DHT segment running past the end of the file (issue 18, 3: stb wrote out of bounds)") {
    // SOI, then a DHT whose declared length (0x00F0) is longer than the 52 bytes left, with code
    // counts that sum past 256: stb built the table from the counts before noticing the truncation.
    std::vector<uint8_t> bytes = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0xF0, 0x00};
    for (int k = 0; k < 16; ++k) bytes.push_back(0x40);
    while (bytes.size() < 56) bytes.push_back(0x11);
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(bytes, "cut_dht.jpg"), FormatError, "cut_dht.jpg",
                                    "JPEG");
  }
  SECTION("a small file declaring a huge image stops where its data ends (issue 18, 9)") {
    // The 29 x 37 fixtures with the frame header patched to 10000 x 10000 (exactly the default
    // max_pixels): the baseline file is refused when its entropy-coded data runs out (after a few
    // blocks, not 100 megapixels of grey); the progressive one would need a ~300 MB coefficient
    // buffer, over the working-memory budget a 2 KB file gets (64 MiB).
    for (const char* file : {"decode_jpeg_420.jpg", "decode_jpeg_420_progressive.jpg"}) {
      auto bytes = file_bytes(image_fixture(file));
      bool patched = false;
      for (size_t i = 2; i + 9 < bytes.size() && !patched; ++i) {
        if (bytes[i] == 0xFF && (bytes[i + 1] == 0xC0 || bytes[i + 1] == 0xC2)) {
          bytes[i + 5] = 0x27, bytes[i + 6] = 0x10, bytes[i + 7] = 0x27, bytes[i + 8] = 0x10;  // 10000
          patched = true;
        }
      }
      REQUIRE(patched);
      INFO(file);
      const bool progressive = std::string(file).find("progressive") != std::string::npos;
      BINDERY_REQUIRE_THROWS_WITH_ALL(
          data::decode_image(bytes, "huge.jpg"), FormatError, "huge.jpg",
          progressive ? "ImageLimits::max_jpeg_work_per_file_byte" : "premature end of data segment");
      const data::ImageInfo info = data::inspect_image(bytes, "huge.jpg");
      CHECK((info.width == 10000 && info.height == 10000));
    }
  }
  SECTION("progressive scans are bounded (ImageLimits::max_jpeg_scans)") {
    const auto bytes = file_bytes(image_fixture("decode_jpeg_420_progressive.jpg"));
    data::ImageLimits few;
    few.max_jpeg_scans = 2;
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(bytes, "scans.jpg", few), FormatError, "scans.jpg",
                                    "more than 2 scans", "ImageLimits::max_jpeg_scans");
    CHECK(data::decode_image(bytes, "scans.jpg").width == 37);  // the default allows it
  }
  SECTION("a raw 16-bit read of a colour file") {
    const auto bytes = file_bytes(image_fixture("decode_png_rgb16.png"));
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image_u16(bytes, "rgb16.png"), FormatError, "rgb16.png",
                                    "single-channel");
  }
}

TEST_CASE("decode: corrupted bytes never crash, they decode or throw bindery::Error",
          "[data][image][errors]") {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  const auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int decoded = 0, refused = 0;
  for (const std::string& file : kDecodeCases) {
    const auto original = file_bytes(image_fixture("decode_" + file));
    for (int trial = 0; trial < 40; ++trial) {
      auto bytes = original;
      const int flips = 1 + static_cast<int>(next() % 4);
      for (int f = 0; f < flips; ++f) bytes[next() % bytes.size()] = static_cast<uint8_t>(next());
      try {
        const data::Image image = data::decode_image(bytes, file);
        CHECK(static_cast<int64_t>(image.pixels.size()) == image.height * image.width * image.channels);
        ++decoded;
      } catch (const Error&) {
        ++refused;
      }
    }
  }
  INFO(decoded << " decoded, " << refused << " refused");
  CHECK(decoded + refused == static_cast<int>(kDecodeCases.size()) * 40);
}

TEST_CASE("decode: header sizes whose product overflows int64 are refused by max_pixels (issue 18, 4)",
          "[data][image][errors][hardening]") {
  // (2^32 - 1)^2 wrapped negative in a plain int64 product and passed the limit.
  const auto bytes = png_with(0xFFFFFFFFu, 0xFFFFFFFFu, 8, 2, {});
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::decode_image(bytes, "wrap.png"), FormatError, "wrap.png",
                                  "4294967295 x 4294967295", "over 2^63", "ImageLimits::max_pixels");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      data::decode_image_u16(png_with(0xFFFFFFFFu, 0xC0000000u, 16, 0, {}), "w16.png"), FormatError,
      "w16.png", "ImageLimits::max_pixels");
  // A limit raised to INT64_MAX passes such a header on to libpng; the size of its rows
  // (2^31 - 1 rows of 6.4 GB) overflows int64 and is refused, not wrapped.
  data::ImageLimits unlimited;
  unlimited.max_pixels = INT64_MAX;
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      data::decode_image(png_with(0x7FFFFFFFu, 0x7FFFFFFFu, 8, 2, {}), "big.png", unlimited), FormatError,
      "big.png", "inflate to at most");
}
