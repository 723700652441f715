// The image transform: Pillow's antialiased resample, torchvision's Resize/CenterCrop rounding and
// ToTensor + Normalize, against the reference's outputs (tests/reference/make_image_fixtures.py).
#include "image_test_util.hpp"

#include <bindery/data/image.hpp>
#include <bindery/data/resize.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

using namespace bindery;
using namespace bindery::testing;

namespace {

/// The reference's float for byte value v of channel c, read from the exhaustive norm table.
struct NormTable {
  std::array<std::array<float, 256>, 3> value{};
  NormTable() {
    Shape in_shape, out_shape;
    const auto in = read_fixture<uint8_t>("norm_table_in.npy", &in_shape);   // (16, 16, 3)
    const auto out = read_fixture<float>("norm_table_out.npy", &out_shape);  // (3, 16, 16)
    REQUIRE(in_shape == Shape{16, 16, 3});
    REQUIRE(out_shape == Shape{3, 16, 16});
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 256; ++i)
        value[c][in[static_cast<size_t>(i * 3 + c)]] = out[static_cast<size_t>(c * 256 + i)];
  }
};

const NormTable& norm_table() {
  static const NormTable table;
  return table;
}

/// Max |ours - reference| of the normalized (3, H, W) tensors, and whether every position whose
/// pixel agrees has exactly the reference's float.
struct NormalizedStats {
  double max_error = 0.0;
  bool exact_where_equal = true;
};

NormalizedStats compare_normalized(const std::vector<float>& ours, const std::vector<float>& reference,
                                   const std::vector<uint8_t>& our_pixels,
                                   const std::vector<uint8_t>& ref_pixels) {
  NormalizedStats stats;
  REQUIRE(ours.size() == reference.size());
  const size_t plane = ours.size() / 3;
  for (size_t c = 0; c < 3; ++c) {
    for (size_t i = 0; i < plane; ++i) {
      const double error = std::fabs(static_cast<double>(ours[c * plane + i]) - reference[c * plane + i]);
      stats.max_error = std::max(stats.max_error, error);
      if (our_pixels[i * 3 + c] == ref_pixels[i * 3 + c] && error != 0.0) stats.exact_where_equal = false;
    }
  }
  return stats;
}

void require_parity(const std::string& what, const PixelStats& stats, double max_normalized_error = -1.0) {
  report_parity(what, stats, max_normalized_error);
  INFO(what);
  CHECK(stats.equal_fraction() >= 0.999);
  CHECK(stats.max_diff <= 1);
  if (max_normalized_error >= 0) CHECK(max_normalized_error <= 4e-3);
}

std::vector<float> normalized(const data::Image& crop) {
  std::vector<float> out(static_cast<size_t>(3 * crop.height * crop.width));
  data::normalize_into<float>(crop, data::kClipMean, data::kClipStd, out.data());
  return out;
}

}  // namespace

TEST_CASE("resize: torchvision's output size and centre-crop rounding", "[data][image][resize]") {
  // Short side to 224, long side int(224 * long / short).
  CHECK(data::short_side_resize_size(300, 225, 224) == data::Size2{298, 224});  // 298.67 -> 298
  CHECK(data::short_side_resize_size(427, 640, 224) == data::Size2{224, 335});  // 335.7 -> 335
  CHECK(data::short_side_resize_size(1000, 100, 224) == data::Size2{2240, 224});
  CHECK(data::short_side_resize_size(51, 37, 224) == data::Size2{308, 224});  // 308.76 -> 308 (upscale)
  CHECK(data::short_side_resize_size(224, 224, 224) == data::Size2{224, 224});
  // int(round((size - crop) / 2)) with Python's ties-to-even.
  CHECK(data::center_crop_offset(298, 224) == 37);
  CHECK(data::center_crop_offset(225, 224) == 0);  // 0.5 -> 0
  CHECK(data::center_crop_offset(227, 224) == 2);  // 1.5 -> 2
  CHECK(data::center_crop_offset(229, 224) == 2);  // 2.5 -> 2
  CHECK(data::center_crop_offset(231, 224) == 4);  // 3.5 -> 4
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::short_side_resize_size(0, 5, 224), ValueError, "0 x 5");
}

TEST_CASE("resize: Pillow's bicubic weights, computed by hand", "[data][image][resize]") {
  // Upscale 2x: output 1 has centre 0.75 and reads inputs 0..2 at distances 0.25, 0.75, 1.75:
  // Keys a = -0.5: f(0.25) = 0.8671875, f(0.75) = 0.2265625, f(1.75) = -0.0234375, sum 1.0703125.
  const auto c = data::detail::resample_coefficients(4, 0.0, 4.0, 8, data::ResampleFilter::kBicubic);
  CHECK(c.taps == 5);
  CHECK(c.first[1] == 0);
  CHECK(c.count[1] == 3);
  const double sum = 0.8671875 + 0.2265625 - 0.0234375;
  CHECK(c.weights[5 + 0] == Approx(0.8671875 / sum).epsilon(1e-15));
  CHECK(c.weights[5 + 1] == Approx(0.2265625 / sum).epsilon(1e-15));
  CHECK(c.weights[5 + 2] == Approx(-0.0234375 / sum).epsilon(1e-15));
  // Downscale 2x: the kernel stretches to support 4 (antialiasing): 9 taps.
  const auto d = data::detail::resample_coefficients(8, 0.0, 8.0, 4, data::ResampleFilter::kBicubic);
  CHECK(d.taps == 9);
  CHECK(d.count[1] == 7);  // centre 3: inputs (int)(3 - 4 + 0.5) = 0 up to (int)(3 + 4 + 0.5) = 7, exclusive
  // Fixed point: 22 fractional bits, rounded half away from zero.
  const auto k = data::detail::fixed_point_weights({0.5, -0.25, 1.0 / 3.0});
  CHECK(k[0] == 2097152);
  CHECK(k[1] == -1048576);
  CHECK(k[2] == 1398101);  // 1398101.33
  // A constant image stays constant; same-size resizes are the identity.
  const std::vector<uint8_t> flat(20 * 30 * 3, 77);
  for (uint8_t v : data::resize_u8(flat, 20, 30, 3, 7, 45)) CHECK(v == 77);
  const data::Image image = procedural_image(9, 11, 3, 5);
  CHECK(data::resize_u8(image.pixels, 9, 11, 3, 9, 11) == image.pixels);
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::resize_u8(flat, 20, 30, 2, 7, 45), ValueError, "1800 bytes",
                                  "20 x 30 x 2");
}

TEST_CASE("resize: Pillow's Image.resize for odd sizes, up and down, five filters", "[data][image][resize]") {
  struct Case {
    std::string name;
    int64_t in_w, in_h, out_w, out_h;
    data::ResampleFilter filter;
  };
  using F = data::ResampleFilter;
  const std::vector<Case> cases = {{"640x427_to_97x64", 640, 427, 97, 64, F::kBicubic},
                                   {"100x1000_to_22x224", 100, 1000, 22, 224, F::kBicubic},
                                   {"1000x100_to_224x22", 1000, 100, 224, 22, F::kBicubic},
                                   {"224x224_to_224x224", 224, 224, 224, 224, F::kBicubic},
                                   {"37x51_to_80x110", 37, 51, 80, 110, F::kBicubic},
                                   {"33x20_to_33x45", 33, 20, 33, 45, F::kBicubic},
                                   {"300x225_to_64x48_bilinear", 300, 225, 64, 48, F::kBilinear},
                                   {"300x225_to_64x48_lanczos", 300, 225, 64, 48, F::kLanczos},
                                   {"300x225_to_64x48_box", 300, 225, 64, 48, F::kBox},
                                   {"300x225_to_64x48_hamming", 300, 225, 64, 48, F::kHamming}};
  for (const Case& c : cases) {
    const data::Image source =
        procedural_image(c.in_h, c.in_w, 3, static_cast<uint64_t>(c.in_w * 1000 + c.in_h));
    Shape shape;
    const auto reference = read_fixture<uint8_t>("resize_" + c.name + ".npy", &shape);
    REQUIRE(shape == Shape{c.out_h, c.out_w, 3});
    const auto ours = data::resize_u8(source.pixels, c.in_h, c.in_w, 3, c.out_h, c.out_w, c.filter);
    const PixelStats stats = compare_pixels(ours, reference);
    report_parity("Image.resize " + c.name, stats);
    CHECK(stats.equal == stats.total);
  }
}

TEST_CASE("resize: Pillow 13's pass order, and mode F images", "[data][image][resize]") {
  using O = data::ResamplePassOrder;
  CHECK(data::detail::resample_vertical_first(1000, 100, 224, 22, O::kPillow13));   // 776 > 2 * 78
  CHECK(!data::detail::resample_vertical_first(100, 1000, 22, 224, O::kPillow13));  // height not shrunk more
  CHECK(!data::detail::resample_vertical_first(300, 225, 298, 224, O::kPillow13));  // 2 > 2 * 1 is false
  CHECK(!data::detail::resample_vertical_first(200, 200, 220, 300, O::kPillow13));  // height grows
  CHECK(data::detail::resample_vertical_first(200, 200, 220, 300, O::kVerticalFirst));
  // The tall case differs with the pass order: the older (horizontal-first) order is still available.
  const data::Image tall = procedural_image(1000, 100, 3, 100 * 1000 + 1000);
  const auto reference = read_fixture<uint8_t>("resize_100x1000_to_22x224.npy");
  const auto old_order = data::resize_u8(tall.pixels, 1000, 100, 3, 224, 22, data::ResampleFilter::kBicubic,
                                         O::kHorizontalFirst);
  CHECK(compare_pixels(old_order, reference).equal < static_cast<int64_t>(reference.size()));
  struct Case {
    int64_t in_w, in_h, out_w, out_h;
  };
  for (const Case& c : std::vector<Case>{{100, 300, 40, 90}, {300, 100, 90, 40}, {64, 48, 149, 112}}) {
    const data::Image gray = procedural_image(c.in_h, c.in_w, 1, static_cast<uint64_t>(c.in_w + c.in_h));
    std::vector<float> source(gray.pixels.size());
    for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<float>(gray.pixels[i]) / 3.7f - 20.0f;
    const std::string name = "resizef_" + std::to_string(c.in_w) + "x" + std::to_string(c.in_h) + "_to_" +
                             std::to_string(c.out_w) + "x" + std::to_string(c.out_h) + ".npy";
    Shape shape;
    const auto expected = read_fixture<float>(name, &shape);
    REQUIRE(shape == Shape{c.out_h, c.out_w});
    const auto ours = data::resize_f32(source, c.in_h, c.in_w, c.out_h, c.out_w);
    INFO(name);
    CHECK(ours == expected);  // bit for bit
  }
}

TEST_CASE("transform: ToTensor + Normalize equals torch's float32 for every byte value",
          "[data][image][normalize]") {
  Shape shape;
  const auto in = read_fixture<uint8_t>("norm_table_in.npy", &shape);
  const auto reference = read_fixture<float>("norm_table_out.npy");
  const data::Image table{16, 16, 3, in};
  const std::vector<float> ours = normalized(table);
  REQUIRE(ours.size() == reference.size());
  for (size_t i = 0; i < ours.size(); ++i) CHECK(ours[i] == reference[i]);  // bit for bit
}

TEST_CASE("transform: Resize(224) + CenterCrop(224) of procedural images equals the reference",
          "[data][image][parity]") {
  for (const auto& [w, h] : std::vector<std::pair<int64_t, int64_t>>{{225, 300}, {37, 51}}) {
    const std::string name = "full_" + std::to_string(w) + "x" + std::to_string(h);
    const data::Image source = procedural_image(h, w, 3, static_cast<uint64_t>(w * 1000 + h));
    const data::Image crop = data::resize_and_center_crop(source, 224);
    const auto reference = read_fixture<uint8_t>(name + ".npy");
    const PixelStats stats = compare_pixels(crop.pixels, reference);
    // The reference tensor of these pixels is the norm table applied to them (proved above).
    std::vector<float> reference_tensor(reference.size());
    for (size_t i = 0; i < reference.size(); ++i)
      reference_tensor[(i % 3) * (reference.size() / 3) + i / 3] = norm_table().value[i % 3][reference[i]];
    const NormalizedStats norm =
        compare_normalized(normalized(crop), reference_tensor, crop.pixels, reference);
    require_parity(name, stats, norm.max_error);
    CHECK(norm.exact_where_equal);
  }
}

TEST_CASE("transform: the reference's example photos, from file to tensor", "[data][image][parity]") {
  // The reference's outputs for these photos are not stored: shared data is read in place and never
  // copied into the repository, not even as derived arrays (their pixel parity, 100% equal to Pillow,
  // was measured when the pipeline was written; tests/reference/make_image_fixtures.py).
  SECTION("dog: float and double give the same values") {
    const Tensor<float> ours = data::load_and_transform_vision_data<float>({shared_asset("dog_image.jpg")});
    REQUIRE(ours.shape() == Shape{1, 3, 224, 224});
    const std::vector<float> values = ours.to_vector();
    const Tensor<double> wide = data::load_and_transform_vision_data<double>({shared_asset("dog_image.jpg")});
    const std::vector<double> wide_values = wide.to_vector();
    for (size_t i = 0; i < values.size(); ++i) REQUIRE(wide_values[i] == static_cast<double>(values[i]));
  }
  SECTION("a batch of three") {
    const Tensor<float> batch = data::load_and_transform_vision_data<float>(
        {shared_asset("dog_image.jpg"), shared_asset("car_image.jpg"), shared_asset("bird_image.jpg")});
    CHECK(batch.shape() == Shape{3, 3, 224, 224});
    const auto values = batch.to_vector();
    const auto single =
        data::transform_vision_image<float>(data::read_image(shared_asset("car_image.jpg"))).to_vector();
    const size_t per = 3 * 224 * 224;
    CHECK(std::equal(single.begin(), single.end(), values.begin() + static_cast<std::ptrdiff_t>(per)));
  }
}

TEST_CASE("transform: grayscale, palette and RGBA files go through convert('RGB') first", "[data][image]") {
  for (const char* file : {"decode_png_gray8.png", "decode_png_palette8.png", "decode_png_rgba16.png"}) {
    const Tensor<float> t = data::load_and_transform_vision_data<float>({image_fixture(file)});
    CHECK(t.shape() == Shape{1, 3, 224, 224});
  }
  const Tensor<float> gray =
      data::load_and_transform_vision_data<float>({image_fixture("decode_png_gray8.png")});
  const auto v = gray.to_vector();
  // Gray replicated: channel c = (x/255 - mean[c]) / std[c] from one byte x per pixel.
  const size_t plane = 224 * 224;
  for (size_t i = 0; i < plane; i += 997) {
    const float unit0 = v[i] * data::kClipStd[0] + data::kClipMean[0];
    const float unit2 = v[2 * plane + i] * data::kClipStd[2] + data::kClipMean[2];
    CHECK(unit0 == Approx(unit2).margin(1e-6));
  }
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::load_and_transform_vision_data<float>({}), ValueError,
                                  "no image paths");
}
