// Depth (community SUN-D recipe -> disparity) and thermal (convert("L"), no normalization) inputs,
// against tests/reference/make_image_fixtures.py.
#include "image_test_util.hpp"

#include <bindery/data/depth.hpp>
#include <bindery/data/thermal.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

using namespace bindery;
using namespace bindery::testing;

TEST_CASE("depth: raw values to disparity, by hand", "[data][depth]") {
  data::RawDepth depth{1, 6, {1000.0, 2000.0, 0.0, 9500.0, 5.0, -3.0}, true};
  data::DepthConfig config;
  const std::vector<float> d = data::depth_to_disparity(depth, config);
  const float bf = static_cast<float>(518.857901 * 0.075);  // 38.914...
  CHECK(d[0] == bf / 1.0f);                                 // 1 m
  CHECK(d[1] == bf / 2.0f);                                 // 2 m
  CHECK(d[2] == 0.0f);                                      // missing -> invalid_disparity
  CHECK(d[3] == bf / 8.0f);                                 // 9.5 m capped at 8 m
  CHECK(d[4] == bf / 0.01f);                                // 5 mm clipped up to 1 cm
  CHECK(d[5] == 0.0f);                                      // negative = missing
  config.clip_invalid_to_min_depth = true;                  // the recipe's hole handling
  CHECK(data::depth_to_disparity(depth, config)[2] == bf / 0.01f);
  // Float data is metres; SUN RGB-D's rotated millimetres come back with the bit shift.
  data::RawDepth metres{1, 2, {1.5, std::numeric_limits<double>::quiet_NaN()}, false};
  const auto m = data::depth_to_disparity(metres);
  CHECK(m[0] == bf / 1.5f);
  CHECK(m[1] == 0.0f);
  data::RawDepth rotated{
      1, 1, {static_cast<double>(static_cast<uint16_t>((1234u << 3) | (1234u >> 13)))}, true};
  data::DepthConfig sun;
  sun.sun_rgbd_bitshift = true;
  CHECK(data::depth_to_disparity(rotated, sun)[0] == bf / (1234.0f / 1000.0f));
  data::DepthConfig bad;
  bad.baseline = 0;
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::depth_to_disparity(depth, bad), ValueError, "baseline > 0");
}

TEST_CASE("depth: a SUN RGB-D style 16-bit PNG matches the recipe + Pillow mode F resize",
          "[data][depth][parity]") {
  data::DepthConfig config;
  config.sun_rgbd_bitshift = true;
  config.size = 112;  // the fixture's crop (the recipe's 224 would make a 4x larger file)
  const data::RawDepth raw = data::read_raw_depth(image_fixture("depth_in.png"));
  CHECK(raw.height == 48);
  CHECK(raw.width == 64);
  const Tensor<float> ours =
      data::load_and_transform_depth_data<float>({image_fixture("depth_in.png")}, config);
  REQUIRE(ours.shape() == Shape{1, 1, 112, 112});
  Shape shape;
  const auto reference = read_fixture<float>("depth_disparity.npy", &shape);
  REQUIRE(shape == Shape{1, 112, 112});
  const auto values = ours.to_vector();
  double worst = 0;
  int64_t equal = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(values[i]) - reference[i]));
    equal += values[i] == reference[i] ? 1 : 0;
  }
  std::cout << "[parity] depth_in.png: " << equal << " of " << values.size()
            << " disparities bit-equal, max error " << worst << "\n";
  CHECK(equal == static_cast<int64_t>(values.size()));
  // Normalization, when asked for, is (x - mean) / std of the same numbers.
  config.normalize = true;
  config.mean = 2.0f;
  config.std = 4.0f;
  const auto normalized = data::transform_depth<float>(raw, config).to_vector();
  CHECK(normalized[777] == (values[777] - 2.0f) / 4.0f);
}

TEST_CASE("depth: .npy inputs and bad files", "[data][depth][errors]") {
  // An integer .npy is millimetres, like the PNG; a float one is metres.
  const std::string dir = (std::filesystem::temp_directory_path() / "bindery_test_depth_npy").string();
  std::filesystem::create_directories(dir);
  const auto as_mm = Tensor<int64_t>::from_vector({1000, 2000, 4000, 500, 0, 1500}, Shape{2, 3});
  const auto as_m = Tensor<double>::from_vector({1.0, 2.0, 4.0, 0.5, 0.0, 1.5}, Shape{1, 2, 3});
  io::write_npy(dir + "/mm.npy", as_mm);
  io::write_npy(dir + "/m.npy", as_m);
  data::DepthConfig config;
  config.size = 4;
  const auto a = data::transform_depth<float>(data::read_raw_depth(dir + "/mm.npy"), config).to_vector();
  const auto b = data::transform_depth<float>(data::read_raw_depth(dir + "/m.npy"), config).to_vector();
  CHECK(a == b);
  const auto bad = Tensor<float>::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, Shape{2, 2, 2});
  io::write_npy(dir + "/bad.npy", bad);
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::read_raw_depth(dir + "/bad.npy"), FormatError, "bad.npy",
                                  "(2, 2, 2)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::read_raw_depth(image_fixture("decode_jpeg_420.jpg")), FormatError,
                                  "decode_jpeg_420.jpg", "single-channel");
  std::filesystem::remove_all(dir);
}

TEST_CASE("thermal: convert('L'), Resize, CenterCrop, ToTensor; normalization optional",
          "[data][thermal][parity]") {
  const data::Image image = data::read_image(image_fixture("thermal_in.png"));
  const data::Image crop = data::resize_and_center_crop(data::to_gray(image), 224);
  const auto reference = read_fixture<uint8_t>("thermal_crop.npy");
  const PixelStats stats = compare_pixels(crop.pixels, reference);
  report_parity("thermal_in.png", stats);
  CHECK(stats.equal == stats.total);
  const Tensor<float> t = data::load_and_transform_thermal_data<float>({image_fixture("thermal_in.png")});
  REQUIRE(t.shape() == Shape{1, 1, 224, 224});
  const auto v = t.to_vector();
  for (size_t i = 0; i < v.size(); i += 101) CHECK(v[i] == static_cast<float>(reference[i]) / 255.0f);
  data::ThermalConfig normalized;
  normalized.normalize = true;  // PR #73's Normalize(0.5, 0.5)
  const auto n =
      data::load_and_transform_thermal_data<float>({image_fixture("thermal_in.png")}, normalized).to_vector();
  for (size_t i = 0; i < n.size(); i += 101)
    CHECK(n[i] == (static_cast<float>(reference[i]) / 255.0f - 0.5f) / 0.5f);
  // A colour file goes through Pillow's luma first.
  const auto rgb = data::load_and_transform_thermal_data<double>({image_fixture("decode_png_rgb8.png")});
  CHECK(rgb.shape() == Shape{1, 1, 224, 224});
}
