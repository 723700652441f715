// bindery/data/jpeg_kernels.hpp — JPEG pixel reconstruction that matches libjpeg-turbo bit for bit.
//
// Why this exists: the reference decodes JPEGs with Pillow, i.e. libjpeg-turbo with its defaults
// (JDCT_ISLOW integer IDCT, "fancy" triangle-filter chroma upsampling, table-driven YCbCr->RGB).
// stb_image parses JPEGs well (baseline and progressive, Huffman, restart markers) but reconstructs
// pixels its own way: another fixed-point IDCT, upsampling that always rounds .5 up, 20-bit colour
// constants. On the reference's example photos that leaves 5% of the pixels off by 1 to 3 levels.
// So bindery keeps stb for parsing and entropy decoding and swaps in these three reconstruction
// steps (data/stb_image.hpp wires them in), written from the published algorithms:
//   - the IJG "islow" IDCT (Loeffler-Ligtenberg-Moschytz, 13-bit constants, 2 extra bits after
//     the column pass, a 1024-entry wrap-around range limit);
//   - libjpeg's fancy upsampling, whose rounding bias alternates (8/7 for 2x2, 1/2 for 2x1 and 1x2)
//     so that .5 is not always rounded up;
//   - libjpeg's YCbCr->RGB tables (16-bit fixed point, ONE_HALF rounding).
// With them, decoding dog/car/bird_image.jpg gives exactly Pillow's pixels (tests/data).
#pragma once

#include <cstdint>

namespace bindery::data::detail {

/// libjpeg's post-IDCT range limit: the 8-bit sample for an IDCT output `v` (before the +128 level
/// shift). In-range values map to v + 128, overshoots clamp to 0/255 and absurd values wrap modulo
/// 1024 exactly as libjpeg's table lookup `range_limit[v & 1023]` does.
inline uint8_t jpeg_range_limit(int64_t v) {
  const int64_t i = v & 1023;
  if (i < 128) return static_cast<uint8_t>(i + 128);  // v in [0, 127]
  if (i < 512) return 255;                            // v in [128, 511]
  if (i < 896) return 0;                              // v in [-512, -129]
  return static_cast<uint8_t>(i - 896);               // v in [-128, -1]
}

/// One 8x8 inverse DCT, IJG "islow": `coefficients` are dequantized, in natural order
/// (coefficients[8 * v + u], v the vertical frequency); writes 8 rows of 8 samples at `out`.
inline void jpeg_idct_islow(uint8_t* out, int out_stride, const int16_t* coefficients) {
  constexpr int kConstBits = 13;
  constexpr int kPass1Bits = 2;
  // FIX(x) = round(x * 2^13)
  constexpr int64_t k0_298631336 = 2446, k0_390180644 = 3196, k0_541196100 = 4433, k0_765366865 = 6270,
                    k0_899976223 = 7373, k1_175875602 = 9633, k1_501321110 = 12299, k1_847759065 = 15137,
                    k1_961570560 = 16069, k2_053119869 = 16819, k2_562915447 = 20995, k3_072711026 = 25172;
  const auto descale = [](int64_t x, int n) { return (x + (int64_t{1} << (n - 1))) >> n; };

  // One 1-D pass over 8 values x[0..7] (x[k] = element k * stride); results in r[0..7], descaled by n.
  const auto one_dimension = [&](const auto& x, int64_t r[8], int n) {
    // Even part.
    int64_t z2 = x(2), z3 = x(6);
    int64_t z1 = (z2 + z3) * k0_541196100;
    int64_t tmp2 = z1 + z3 * -k1_847759065;
    int64_t tmp3 = z1 + z2 * k0_765366865;
    const int64_t tmp0e = (x(0) + x(4)) * (int64_t{1} << kConstBits);
    const int64_t tmp1e = (x(0) - x(4)) * (int64_t{1} << kConstBits);
    const int64_t tmp10 = tmp0e + tmp3, tmp13 = tmp0e - tmp3;
    const int64_t tmp11 = tmp1e + tmp2, tmp12 = tmp1e - tmp2;
    // Odd part.
    int64_t tmp0 = x(7), tmp1 = x(5);
    tmp2 = x(3);
    tmp3 = x(1);
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    int64_t z4 = tmp1 + tmp3;
    const int64_t z5 = (z3 + z4) * k1_175875602;
    tmp0 *= k0_298631336;
    tmp1 *= k2_053119869;
    tmp2 *= k3_072711026;
    tmp3 *= k1_501321110;
    z1 *= -k0_899976223;
    z2 *= -k2_562915447;
    z3 = z3 * -k1_961570560 + z5;
    z4 = z4 * -k0_390180644 + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    r[0] = descale(tmp10 + tmp3, n);
    r[7] = descale(tmp10 - tmp3, n);
    r[1] = descale(tmp11 + tmp2, n);
    r[6] = descale(tmp11 - tmp2, n);
    r[2] = descale(tmp12 + tmp1, n);
    r[5] = descale(tmp12 - tmp1, n);
    r[3] = descale(tmp13 + tmp0, n);
    r[4] = descale(tmp13 - tmp0, n);
  };

  // Pass 1: columns -> workspace, scaled up by 2^kPass1Bits. An all-zero AC column gives the same
  // numbers as the full computation (libjpeg's shortcut is exact), so no special case is needed.
  int64_t workspace[64];
  for (int column = 0; column < 8; ++column) {
    int64_t r[8];
    one_dimension([&](int k) { return static_cast<int64_t>(coefficients[8 * k + column]); }, r,
                  kConstBits - kPass1Bits);
    for (int k = 0; k < 8; ++k) workspace[8 * k + column] = r[k];
  }
  // Pass 2: rows -> samples; undo the 2^kPass1Bits and the factor 8 of the 2-D transform.
  for (int row = 0; row < 8; ++row) {
    int64_t r[8];
    const int64_t* w = workspace + 8 * row;
    one_dimension([&](int k) { return w[k]; }, r, kConstBits + kPass1Bits + 3);
    uint8_t* o = out + static_cast<int64_t>(row) * out_stride;
    for (int k = 0; k < 8; ++k) o[k] = jpeg_range_limit(r[k]);
  }
}

/// Chroma upsampling 2x horizontally and 2x vertically (4:2:0) for one output row: `near` is the
/// chroma row nearest to it, `far` the next nearest (above or below). libjpeg uses the triangle
/// filter only when the chroma row is wider than 2 samples; narrower rows are replicated.
/// Writes 2 * width samples.
inline void jpeg_upsample_h2v2(uint8_t* out, const uint8_t* near, const uint8_t* far, int width) {
  if (width <= 2) {
    for (int i = 0; i < width; ++i) out[2 * i] = out[2 * i + 1] = near[i];
    return;
  }
  int this_sum = 3 * near[0] + far[0];
  int next_sum = 3 * near[1] + far[1];
  out[0] = static_cast<uint8_t>((this_sum * 4 + 8) >> 4);
  out[1] = static_cast<uint8_t>((this_sum * 3 + next_sum + 7) >> 4);
  int last_sum = this_sum;
  this_sum = next_sum;
  for (int i = 1; i < width - 1; ++i) {
    next_sum = 3 * near[i + 1] + far[i + 1];
    out[2 * i] = static_cast<uint8_t>((this_sum * 3 + last_sum + 8) >> 4);
    out[2 * i + 1] = static_cast<uint8_t>((this_sum * 3 + next_sum + 7) >> 4);
    last_sum = this_sum;
    this_sum = next_sum;
  }
  out[2 * (width - 1)] = static_cast<uint8_t>((this_sum * 3 + last_sum + 8) >> 4);
  out[2 * (width - 1) + 1] = static_cast<uint8_t>((this_sum * 4 + 7) >> 4);
}

/// Chroma upsampling 2x horizontally only (4:2:2); writes 2 * width samples.
inline void jpeg_upsample_h2v1(uint8_t* out, const uint8_t* in, int width) {
  if (width <= 2) {
    for (int i = 0; i < width; ++i) out[2 * i] = out[2 * i + 1] = in[i];
    return;
  }
  out[0] = in[0];
  out[1] = static_cast<uint8_t>((in[0] * 3 + in[1] + 2) >> 2);
  for (int i = 1; i < width - 1; ++i) {
    const int value = in[i] * 3;
    out[2 * i] = static_cast<uint8_t>((value + in[i - 1] + 1) >> 2);
    out[2 * i + 1] = static_cast<uint8_t>((value + in[i + 1] + 2) >> 2);
  }
  out[2 * (width - 1)] = static_cast<uint8_t>((in[width - 1] * 3 + in[width - 2] + 1) >> 2);
  out[2 * (width - 1) + 1] = in[width - 1];
}

/// Chroma upsampling 2x vertically only (4:4:0); the bias is 1 when `far` is the row above and 2
/// when it is the row below (libjpeg-turbo >= 1.5). Writes width samples.
inline void jpeg_upsample_h1v2(uint8_t* out, const uint8_t* near, const uint8_t* far, int width,
                               bool far_is_below) {
  const int bias = far_is_below ? 2 : 1;
  for (int i = 0; i < width; ++i) out[i] = static_cast<uint8_t>((3 * near[i] + far[i] + bias) >> 2);
}

/// libjpeg's YCbCr -> RGB for one row: r = y + round(1.402 cr'), b = y + round(1.772 cb'),
/// g = y + ((-0.34414 cb' - 0.71414 cr' + 1/2) >> 16) with 16-bit fixed-point constants
/// (cb' = cb - 128), clamped to [0, 255]. Writes `step` bytes per pixel (RGB, then 255 if step 4).
inline void jpeg_ycbcr_to_rgb_row(uint8_t* out, const uint8_t* y, const uint8_t* cb, const uint8_t* cr,
                                  int count, int step) {
  constexpr int kScaleBits = 16;
  constexpr int64_t kOneHalf = int64_t{1} << (kScaleBits - 1);
  // FIX(x) = (int64)(x * 2^16 + 0.5)
  constexpr int64_t k1_40200 = 91881, k1_77200 = 116130, k0_71414 = 46802, k0_34414 = 22554;
  const auto clamp8 = [](int64_t v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); };
  for (int i = 0; i < count; ++i) {
    const int64_t cb_centered = static_cast<int64_t>(cb[i]) - 128;
    const int64_t cr_centered = static_cast<int64_t>(cr[i]) - 128;
    const int64_t luma = y[i];
    out[0] = clamp8(luma + ((k1_40200 * cr_centered + kOneHalf) >> kScaleBits));
    out[1] = clamp8(luma + ((-k0_34414 * cb_centered + kOneHalf + -k0_71414 * cr_centered) >> kScaleBits));
    out[2] = clamp8(luma + ((k1_77200 * cb_centered + kOneHalf) >> kScaleBits));
    if (step == 4) out[3] = 255;
    out += step;
  }
}

}  // namespace bindery::data::detail
