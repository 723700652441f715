// Video from a folder of frames: pytorchvideo's clip sampling and subsampling, torch's bilinear
// ShortSideScale, NormalizeVideo and data.py's SpatialCrop, against the reference run on the same
// frames (tests/reference/make_image_fixtures.py).
#include "image_test_util.hpp"

#include <bindery/data/video.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace bindery;
using namespace bindery::testing;

TEST_CASE("video: clip spans equal pytorchvideo's exact-fraction sampler, frame ranges decord's",
          "[data][video]") {
  Shape shape;
  const auto rows = read_fixture<double>("clip_spans.npy", &shape);
  REQUIRE(shape.rank() == 2);
  REQUIRE(shape[1] == 7);
  int64_t checked = 0;
  for (int64_t r = 0; r < shape[0]; ++r) {
    const double* row = rows.data() + r * 7;
    const auto n = static_cast<int64_t>(row[0]);
    const double fps = row[1];
    const auto k = static_cast<size_t>(row[2]);
    const auto spans = data::constant_clip_spans(static_cast<double>(n) / fps, 2.0, 5);
    REQUIRE(spans.size() == 5);
    INFO(n << " frames at " << fps << " fps, clip " << k);
    CHECK(spans[k].start == row[3]);  // bit for bit
    CHECK(spans[k].end == row[4]);
    const auto [first, last] = data::clip_frame_range(spans[k], fps, n);
    CHECK(first == static_cast<int64_t>(row[5]));
    CHECK(last == static_cast<int64_t>(row[6]));
    ++checked;
  }
  CHECK(checked == shape[0]);
  // By hand: 57 frames at 10 fps last 5.7 s; m = 3.7; clip 1 starts at 0.74 s -> frames [8, 28).
  const auto spans = data::constant_clip_spans(5.7, 2.0, 5);
  CHECK(spans[1].start == Approx(0.74).epsilon(1e-15));
  CHECK(data::clip_frame_range(spans[1], 10.0, 57) == std::pair<int64_t, int64_t>{8, 28});
  // Shorter than a clip: five identical clips from 0.
  for (const auto& span : data::constant_clip_spans(1.0, 2.0, 5))
    CHECK((span.start == 0.0 && span.end == 2.0));
}

TEST_CASE("video: uniform temporal subsample indices", "[data][video]") {
  CHECK(data::uniform_temporal_indices(20, 2) == std::vector<int64_t>{0, 19});
  CHECK(data::uniform_temporal_indices(1, 2) == std::vector<int64_t>{0, 0});
  CHECK(data::uniform_temporal_indices(10, 4) == std::vector<int64_t>{0, 3, 6, 9});
  CHECK(data::uniform_temporal_indices(3, 5) == std::vector<int64_t>{0, 0, 1, 1, 2});
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::uniform_temporal_indices(0, 2), ValueError, "t > 0");
}

TEST_CASE("video: bilinear interpolation as torch, by hand", "[data][video]") {
  // 1 x 2 -> 1 x 4: scale 0.5, source x = 0.5 (i + 0.5) - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25
  // (index 1 is the last: no right neighbour).
  const auto out = data::interpolate_bilinear({10.0f, 30.0f}, 1, 1, 2, 1, 4);
  CHECK(out == std::vector<float>{10.0f, 15.0f, 25.0f, 30.0f});
  // 2 x 2 -> 1 x 1: the centre, the mean.
  CHECK(data::interpolate_bilinear({0.0f, 4.0f, 8.0f, 12.0f}, 1, 2, 2, 1, 1) == std::vector<float>{6.0f});
}

TEST_CASE("video: a folder of JPEG frames equals data.py's load_and_transform_video_data",
          "[data][video][parity]") {
  data::VideoConfig config;
  config.size = 16;  // the fixture's ShortSideScale / SpatialCrop size (224 in the reference)
  const std::string folder = image_fixture("video_frames");
  const Tensor<float> ours = data::load_and_transform_video_frames<float>({folder}, 10.0, config);
  Shape shape;
  const auto reference = read_fixture<float>("video_out.npy", &shape);
  REQUIRE(shape == Shape{1, 15, 3, 2, 16, 16});
  REQUIRE(ours.shape() == shape);
  const auto values = ours.to_vector();
  double worst = 0;
  int64_t equal = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(values[i]) - reference[i]));
    equal += values[i] == reference[i] ? 1 : 0;
  }
  std::cout << "[parity] video_frames (57 frames, 10 fps): " << equal << " of " << values.size()
            << " values bit-equal, max error " << worst << "\n";
  CHECK(worst <= 1e-5);
  // One centre crop per clip.
  config.num_crops = 1;
  CHECK(data::load_and_transform_video_frames<float>({folder}, 10.0, config).shape() ==
        Shape{1, 5, 3, 2, 16, 16});
}

TEST_CASE("video: bad inputs", "[data][video][errors]") {
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::list_frame_files(image_fixture("no_such_folder")), IoError,
                                  "no_such_folder");
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::transform_video_frames<float>({}, 10.0), ValueError, "0 frames");
  data::VideoConfig config;
  config.num_crops = 2;
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      data::transform_video_frames<float>({image_fixture("video_frames/frame_0000.jpg")}, 10.0, config),
      ValueError, "num_crops");
  // Frames of different sizes are not one video.
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      data::transform_video_frames<float>(
          {image_fixture("video_frames/frame_0000.jpg"), image_fixture("decode_png_rgb8.png")}, 1.0),
      FormatError, "decode_png_rgb8.png", "19 x 13");
}
