// The libjpeg-turbo-exact JPEG kernels by hand, and stb_image living next to a user's own stb.
#include "test_util.hpp"

// A user's own stb, included BEFORE bindery's private copy (declarations only; the other order is
// test_image_decode.cpp's, where bindery comes first and nothing else follows).
#include <stb/stb_image.h>

#include <bindery/data/image.hpp>
#include <bindery/data/jpeg_kernels.hpp>

#include <cmath>
#include <type_traits>
#include <vector>

using namespace bindery;

TEST_CASE("jpeg kernels: islow IDCT", "[data][image][jpeg]") {
  // DC only: every sample is (c + 4) >> 3 (+128): column pass 4c, row pass (4c + 16) >> 5.
  for (const int dc : {80, -80, 0, 1019, -1024, 7, -9}) {
    int16_t block[64] = {};
    block[0] = static_cast<int16_t>(dc);
    uint8_t out[64];
    data::detail::jpeg_idct_islow(out, 8, block);
    const int expected = std::min(255, std::max(0, ((dc * 4 + 16) >> 5) + 128));
    for (uint8_t v : out) CHECK(v == expected);
  }
  // Any block: within 1 of the exact inverse DCT (rounded, level-shifted, clamped).
  uint64_t state = 12345;
  for (int trial = 0; trial < 200; ++trial) {
    int16_t block[64];
    for (auto& c : block) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      c = static_cast<int16_t>(static_cast<int>((state >> 33) % 161) - 80);
    }
    uint8_t out[64];
    data::detail::jpeg_idct_islow(out, 8, block);
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        double sum = 0;
        for (int v = 0; v < 8; ++v)
          for (int u = 0; u < 8; ++u)
            sum += (u ? 1.0 : std::sqrt(0.5)) * (v ? 1.0 : std::sqrt(0.5)) * block[v * 8 + u] *
                   std::cos((2 * x + 1) * u * M_PI / 16) * std::cos((2 * y + 1) * v * M_PI / 16);
        const double exact = std::min(255.0, std::max(0.0, std::round(sum / 4 + 128)));
        CHECK(std::fabs(out[y * 8 + x] - exact) <= 1.0);
      }
    }
  }
  // The range limit wraps as libjpeg's table does.
  CHECK(data::detail::jpeg_range_limit(0) == 128);
  CHECK(data::detail::jpeg_range_limit(127) == 255);
  CHECK(data::detail::jpeg_range_limit(300) == 255);
  CHECK(data::detail::jpeg_range_limit(-128) == 0);
  CHECK(data::detail::jpeg_range_limit(-300) == 0);
  CHECK(data::detail::jpeg_range_limit(-1) == 127);
}

TEST_CASE("jpeg kernels: fancy upsampling's alternating rounding", "[data][image][jpeg]") {
  // h2v1: out = (3 near + far + 1 or 2) >> 2, e.g. (60 + 10 + 1) >> 2 = 17; the ends copy.
  const uint8_t row[4] = {10, 20, 30, 41};
  uint8_t out[8];
  data::detail::jpeg_upsample_h2v1(out, row, 4);
  CHECK(std::vector<int>(out, out + 8) == std::vector<int>{10, 13, 17, 23, 27, 33, 38, 41});
  // h2v2 with near == far: column sums 4x, out = (3 s + s' + 8 or 7) >> 4, e.g. (360 + 164 + 7) >> 4 = 33.
  uint8_t out2[8];
  data::detail::jpeg_upsample_h2v2(out2, row, row, 4);
  CHECK(std::vector<int>(out2, out2 + 8) == std::vector<int>{10, 12, 18, 22, 28, 33, 38, 41});
  // Two samples wide: replicated, no interpolation (libjpeg's rule for narrow chroma).
  data::detail::jpeg_upsample_h2v2(out2, row, row + 2, 2);
  CHECK(std::vector<int>(out2, out2 + 4) == std::vector<int>{10, 10, 20, 20});
  // h1v2: bias 1 with the row above, 2 with the row below: (3*10 + 11 + b) >> 2 = 10 or 10, 11 or 11.
  const uint8_t near[2] = {10, 10}, far[2] = {11, 13};
  uint8_t v1[2], v2[2];
  data::detail::jpeg_upsample_h1v2(v1, near, far, 2, false);
  data::detail::jpeg_upsample_h1v2(v2, near, far, 2, true);
  CHECK(std::vector<int>(v1, v1 + 2) == std::vector<int>{10, 11});  // (41+1)>>2, (43+1)>>2
  CHECK(std::vector<int>(v2, v2 + 2) == std::vector<int>{10, 11});  // (41+2)>>2, (43+2)>>2
  const uint8_t far3[1] = {12};
  data::detail::jpeg_upsample_h1v2(v1, near, far3, 1, false);
  data::detail::jpeg_upsample_h1v2(v2, near, far3, 1, true);
  CHECK(static_cast<int>(v1[0]) == 10);  // (42 + 1) >> 2
  CHECK(static_cast<int>(v2[0]) == 11);  // (42 + 2) >> 2
}

TEST_CASE("jpeg kernels: YCbCr -> RGB tables", "[data][image][jpeg]") {
  const uint8_t y[4] = {128, 100, 100, 0}, cb[4] = {128, 128, 255, 0}, cr[4] = {128, 255, 128, 0};
  uint8_t rgb[12];
  data::detail::jpeg_ycbcr_to_rgb_row(rgb, y, cb, cr, 4, 3);
  CHECK(std::vector<int>(rgb, rgb + 3) == std::vector<int>{128, 128, 128});
  // Y 100, Cr 255: R = 100 + round(1.402 * 127) = 278 -> 255; G = 100 - 0.71414 * 127 = 9.3 -> 9.
  CHECK(std::vector<int>(rgb + 3, rgb + 6) == std::vector<int>{255, 9, 100});
  // Y 100, Cb 255: B = 100 + round(1.772 * 127) -> 255; G = 100 - 0.34414 * 127 = 56.3 -> 56.
  CHECK(std::vector<int>(rgb + 6, rgb + 9) == std::vector<int>{100, 56, 255});
  // Y 0, Cb = Cr = 0: R = -179.5 -> 0, G = 0 + 44 + 91 = 135.1 -> 135, B = -226.8 -> 0.
  CHECK(std::vector<int>(rgb + 9, rgb + 12) == std::vector<int>{0, 135, 0});
}

TEST_CASE("stb: a user's own stb_image.h and bindery's private copy coexist", "[data][image]") {
  // The user's declarations are global and extern "C"; bindery's are renamed, static, namespaced.
  static_assert(
      std::is_same_v<decltype(&::stbi_info_from_memory), int (*)(const stbi_uc*, int, int*, int*, int*)>);
  std::string path = BINDERY_TEST_DATA;
  path += "/reference/image/decode_jpeg_444.jpg";
  CHECK(data::read_image(path).width == 37);
}
