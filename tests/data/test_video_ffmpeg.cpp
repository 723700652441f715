// Video files through FFmpeg (data/video_ffmpeg.hpp). The test videos are written here, with the
// encoders of the FFmpeg the build links (FFV1, PNG and rawvideo: lossless; MPEG-4 Part 2: lossy),
// then read back: a lossless video must give exactly what its frames saved as PNGs give through the
// frame-folder path; frame counts, rates and clip timing follow decord; every failure is a typed
// error naming the file. The parity with the reference (decord + data.py) is the fixture of
// tests/reference/make_video_fixtures.py. Without FFmpeg only the "no FFmpeg" message is checked.
#include "image_test_util.hpp"

#include <bindery/data/stb_image_write.hpp>
#include <bindery/data/video.hpp>
#include <bindery/data/video_ffmpeg.hpp>
#include <bindery/io/npy.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using namespace bindery;
using namespace bindery::testing;

namespace {

using VideoTempDir = bindery::testing::TempDir;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Frame i (< 100) of a video whose frames can be told apart after lossy coding: flat red and green
/// levels that encode i (red 20 + 8 (i % 25), green 30 + 60 (i / 25)), a blue gradient.
data::Image indexed_frame(int64_t height, int64_t width, int64_t i) {
  data::Image image{height, width, 3, std::vector<uint8_t>(static_cast<size_t>(height * width * 3))};
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      uint8_t* p = image.pixels.data() + (y * width + x) * 3;
      p[0] = static_cast<uint8_t>(20 + 8 * (i % 25));
      p[1] = static_cast<uint8_t>(30 + 60 * (i / 25));
      p[2] = static_cast<uint8_t>(x * 255 / std::max<int64_t>(width - 1, 1));
    }
  return image;
}

/// indexed_frame's i read back from a (possibly lossy) frame: the mean red and green of its centre.
int64_t frame_index_of(const data::Image& image) {
  double red = 0, green = 0;
  int64_t n = 0;
  for (int64_t y = image.height / 4; y < image.height * 3 / 4; ++y)
    for (int64_t x = image.width / 4; x < image.width * 3 / 4; ++x, ++n) {
      red += image.at(y, x, 0);
      green += image.at(y, x, 1);
    }
  return std::lround((red / static_cast<double>(n) - 20) / 8) +
         25 * std::lround((green / static_cast<double>(n) - 30) / 60);
}

std::vector<data::Image> procedural_frames(int64_t count, int64_t height, int64_t width, uint64_t seed) {
  std::vector<data::Image> frames;
  for (int64_t i = 0; i < count; ++i)
    frames.push_back(procedural_image(height, width, 3, seed + static_cast<uint64_t>(i)));
  return frames;
}

/// Every frame of a clip list (clip-major) from the source frames: what the transform should see.
std::map<int64_t, data::Image> pick(const std::vector<data::Image>& frames,
                                    const std::vector<std::vector<int64_t>>& clips) {
  std::map<int64_t, data::Image> picked;
  for (const auto& clip : clips)
    for (const int64_t i : clip) picked.emplace(i, frames[static_cast<size_t>(i)]);
  return picked;
}

}  // namespace

#if defined(BINDERY_HAS_FFMPEG)

extern "C" {
#include <libavutil/display.h>
#include <libavutil/log.h>
}

namespace {

/// How write_video encodes.
struct EncodeSpec {
  std::string encoder = "ffv1";              // an FFmpeg encoder name
  AVPixelFormat format = AV_PIX_FMT_0RGB32;  // its input format (RGB24 frames convert to it)
  AVRational fps = {15, 1};
  int max_b_frames = 0;
  int rotation = 0;  // degrees clockwise, stored as the stream's display matrix
};

/// Writes RGB frames as a video file (container from the file name), with libavformat/libavcodec.
void write_video(const std::string& path, const std::vector<data::Image>& frames, const EncodeSpec& spec) {
  REQUIRE(!frames.empty());
  const int width = static_cast<int>(frames[0].width), height = static_cast<int>(frames[0].height);
  AVFormatContext* raw = nullptr;
  REQUIRE(avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str()) >= 0);
  const auto close = [](AVFormatContext* p) {
    if (p->pb != nullptr) avio_closep(&p->pb);
    avformat_free_context(p);
  };
  std::unique_ptr<AVFormatContext, decltype(close)> out(raw, close);
  const AVCodec* encoder = avcodec_find_encoder_by_name(spec.encoder.c_str());
  REQUIRE(encoder != nullptr);
  AVStream* stream = avformat_new_stream(out.get(), nullptr);
  REQUIRE(stream != nullptr);
  data::detail::CodecContextPtr codec(avcodec_alloc_context3(encoder));
  codec->width = width;
  codec->height = height;
  codec->pix_fmt = spec.format;
  codec->time_base = av_inv_q(spec.fps);
  codec->framerate = spec.fps;
  codec->gop_size = 12;
  codec->max_b_frames = spec.max_b_frames;
  codec->thread_count = 1;
  if (spec.encoder == "mpeg4") {  // constant quantizer 2: close to the source, small files
    codec->flags |= AV_CODEC_FLAG_QSCALE;
    codec->global_quality = FF_QP2LAMBDA * 2;
  }
  if ((out->oformat->flags & AVFMT_GLOBALHEADER) != 0) codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  REQUIRE(avcodec_open2(codec.get(), encoder, nullptr) >= 0);
  REQUIRE(avcodec_parameters_from_context(stream->codecpar, codec.get()) >= 0);
  stream->time_base = codec->time_base;
  stream->avg_frame_rate = spec.fps;
  if (spec.rotation != 0) {
    auto* matrix = reinterpret_cast<int32_t*>(
        av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t)));
    REQUIRE(matrix != nullptr);
    // av_display_rotation_get reads counterclockwise degrees, the way decord does (minus it);
    // FFmpeg 5's av_display_rotation_set takes clockwise ones: pick the sign that reads back.
    av_display_rotation_set(matrix, spec.rotation);
    if (std::lround(av_display_rotation_get(matrix)) % 360 != (360 - spec.rotation) % 360 &&
        std::lround(av_display_rotation_get(matrix)) != -spec.rotation)
      av_display_rotation_set(matrix, -spec.rotation);
  }
  REQUIRE(avio_open(&out->pb, path.c_str(), AVIO_FLAG_WRITE) >= 0);
  REQUIRE(avformat_write_header(out.get(), nullptr) >= 0);
  data::detail::SwsPtr sws(sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, spec.format,
                                          SWS_BILINEAR, nullptr, nullptr, nullptr));
  REQUIRE(sws != nullptr);
  data::detail::FramePtr frame(av_frame_alloc());
  data::detail::PacketPtr packet(av_packet_alloc());
  frame->format = spec.format;
  frame->width = width;
  frame->height = height;
  REQUIRE(av_frame_get_buffer(frame.get(), 0) >= 0);
  const auto encode = [&](const AVFrame* f) {
    REQUIRE(avcodec_send_frame(codec.get(), f) >= 0);
    while (avcodec_receive_packet(codec.get(), packet.get()) == 0) {
      av_packet_rescale_ts(packet.get(), codec->time_base, stream->time_base);
      packet->stream_index = stream->index;
      REQUIRE(av_interleaved_write_frame(out.get(), packet.get()) >= 0);
    }
  };
  // libswscale reads whole vectors past a row's end: give it rows padded to 64 bytes.
  const size_t row_bytes = static_cast<size_t>(width) * 3, stride = (row_bytes + 63) / 64 * 64;
  std::vector<uint8_t> padded(stride * static_cast<size_t>(height) + 64);
  for (size_t i = 0; i < frames.size(); ++i) {
    REQUIRE(av_frame_make_writable(frame.get()) >= 0);
    for (int y = 0; y < height; ++y)
      std::memcpy(padded.data() + y * stride, frames[i].pixels.data() + y * row_bytes, row_bytes);
    const uint8_t* planes[4] = {padded.data(), nullptr, nullptr, nullptr};
    const int strides[4] = {static_cast<int>(stride), 0, 0, 0};
    sws_scale(sws.get(), planes, strides, 0, height, frame->data, frame->linesize);
    frame->pts = static_cast<int64_t>(i);
    encode(frame.get());
  }
  encode(nullptr);
  REQUIRE(av_write_trailer(out.get()) >= 0);
}

/// FFmpeg's own log stays quiet in these tests (the corrupt files make it talk).
struct QuietFfmpeg {
  int saved = av_log_get_level();
  QuietFfmpeg() { av_log_set_level(AV_LOG_QUIET); }
  ~QuietFfmpeg() { av_log_set_level(saved); }
};

data::VideoConfig small_config() {
  data::VideoConfig config;
  config.size = 24;  // 224 in the reference; the same code at a test-sized crop
  return config;
}

}  // namespace

TEST_CASE("video file: lossless videos equal their frames as PNGs through the frame-folder path",
          "[data][video][ffmpeg]") {
  const QuietFfmpeg quiet;
  const VideoTempDir tmp;
  const std::vector<data::Image> frames = procedural_frames(45, 36, 50, 700);  // 3 s at 15 fps
  std::filesystem::create_directory(tmp.path / "frames");
  for (size_t i = 0; i < frames.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "frames/%06zu.png", i + 1);
    data::write_png(tmp.file(name), frames[i].pixels.data(), frames[i].width, frames[i].height, 3);
  }
  const data::VideoConfig config = small_config();
  const Tensor<float> folder =
      data::transform_video_frames<float>(data::list_frame_files(tmp.file("frames")), 15.0, config);
  REQUIRE(folder.shape() == Shape{15, 3, 2, 24, 24});
  struct Case {
    std::string file;
    EncodeSpec spec;
  };
  const std::vector<Case> cases = {
      {"ffv1.mkv", {"ffv1", AV_PIX_FMT_0RGB32, {15, 1}}},
      {"ffv1.nut", {"ffv1", AV_PIX_FMT_0RGB32, {15, 1}}},
      {"raw_bgr24.avi", {"rawvideo", AV_PIX_FMT_BGR24, {15, 1}}},
      {"png.avi", {"png", AV_PIX_FMT_RGB24, {15, 1}}},
      {"raw.nut", {"rawvideo", AV_PIX_FMT_RGB24, {15, 1}}},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    write_video(tmp.file(c.file), frames, c.spec);
    const data::VideoFileInfo info = data::probe_video(tmp.file(c.file));
    CHECK(info.frame_count == 45);
    CHECK(info.fps == 15.0);
    CHECK(info.width == 50);
    CHECK(info.height == 36);
    CHECK(info.rotation == 0);
    const Tensor<float> file = data::load_video_file<float>(tmp.file(c.file), config);
    REQUIRE(file.shape() == folder.shape());
    CHECK(file.to_vector() == folder.to_vector());  // bit for bit
    // Every decoded frame equals its source.
    data::VideoFileReader reader(tmp.file(c.file));
    const auto decoded = reader.read_frames({0, 1, 2, 23, 44});
    REQUIRE(decoded.size() == 5);
    for (const auto& [i, image] : decoded) CHECK(image.pixels == frames[static_cast<size_t>(i)].pixels);
  }
  // The batched loader mixes files and folders; double works too.
  const Tensor<double> both =
      data::load_and_transform_videos<double>({tmp.file("ffv1.mkv"), tmp.file("frames")}, 15.0, config);
  REQUIRE(both.shape() == Shape{2, 15, 3, 2, 24, 24});
  const std::vector<double> values = both.to_vector();
  const std::vector<float> expected = folder.to_vector();
  for (size_t i = 0; i < expected.size(); ++i) {
    REQUIRE(values[i] == static_cast<double>(expected[i]));
    REQUIRE(values[i + expected.size()] == static_cast<double>(expected[i]));
  }
}

TEST_CASE("video file: decord's frame count, rate and clip timing at 30000/1001 fps and 7.5 fps",
          "[data][video][ffmpeg]") {
  const QuietFfmpeg quiet;
  const VideoTempDir tmp;
  const data::VideoConfig config = small_config();
  SECTION("100 frames at 30000/1001 fps (NTSC), lossless") {
    std::vector<data::Image> frames;
    for (int64_t i = 0; i < 100; ++i) frames.push_back(indexed_frame(24, 32, i));
    write_video(tmp.file("ntsc.nut"), frames, {"ffv1", AV_PIX_FMT_0RGB32, {30000, 1001}});
    const data::VideoFileInfo info = data::probe_video(tmp.file("ntsc.nut"));
    CHECK(info.frame_count == 100);
    CHECK(info.fps_num == 30000);
    CHECK(info.fps_den == 1001);
    CHECK(info.fps == 30000.0 / 1001.0);
    CHECK(info.duration == 100.0 / (30000.0 / 1001.0));
    // By hand: duration 3.3367 s, m = 1.3367 s; clip k starts at k m / 5, frame fps * t:
    // clip 1: 8.012 -> 9, end 67.952 -> 68: frames [9, 68), linspace(0, 58, 2) -> 9 and 67.
    const auto clips = data::video_clip_frame_indices(info.frame_count, info.fps, config);
    const std::vector<std::vector<int64_t>> expected = {{0, 59}, {9, 67}, {17, 75}, {25, 83}, {33, 91}};
    CHECK(clips == expected);
    // Frame i is the i-th frame: the decoded frames carry their index.
    data::VideoFileReader reader(tmp.file("ntsc.nut"));
    for (const auto& [i, image] : reader.read_frames({0, 9, 17, 25, 33, 59, 67, 75, 83, 91, 99}))
      CHECK(frame_index_of(image) == i);
    const Tensor<float> file = data::load_video_file<float>(tmp.file("ntsc.nut"), config);
    CHECK(file.to_vector() ==
          data::transform_video_clips<float>(clips, pick(frames, clips), config).to_vector());
  }
  SECTION("a 1.33 s video (10 frames at 7.5 fps): five identical clips of all its frames") {
    std::vector<data::Image> frames;
    for (int64_t i = 0; i < 10; ++i) frames.push_back(indexed_frame(24, 32, i));
    write_video(tmp.file("short.mkv"), frames, {"ffv1", AV_PIX_FMT_0RGB32, {15, 2}});
    const data::VideoFileInfo info = data::probe_video(tmp.file("short.mkv"));
    CHECK(info.frame_count == 10);
    CHECK(info.fps == 7.5);
    CHECK(info.duration == Approx(10 / 7.5).epsilon(1e-15));
    // m = max(1.33 - 2, 0) = 0: every clip is [0, 2] s -> frames [0, min(15, 10)) -> 0 and 9.
    const auto clips = data::video_clip_frame_indices(info.frame_count, info.fps, config);
    CHECK(clips == std::vector<std::vector<int64_t>>(5, std::vector<int64_t>{0, 9}));
    const Tensor<float> file = data::load_video_file<float>(tmp.file("short.mkv"), config);
    REQUIRE(file.shape() == Shape{15, 3, 2, 24, 24});
    const std::vector<float> v = file.to_vector();
    const size_t clip_values = v.size() / 5;
    for (size_t k = 1; k < 5; ++k)
      CHECK(std::equal(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(clip_values),
                       v.begin() + static_cast<std::ptrdiff_t>(k * clip_values)));
    CHECK(v == data::transform_video_clips<float>(clips, pick(frames, clips), config).to_vector());
  }
}

TEST_CASE("video file: lossy MPEG-4 Part 2 (yuv420p, B-frames) in .mp4", "[data][video][ffmpeg]") {
  const QuietFfmpeg quiet;
  const VideoTempDir tmp;
  std::vector<data::Image> frames;
  for (int64_t i = 0; i < 70; ++i) frames.push_back(indexed_frame(48, 64, i));
  write_video(tmp.file("lossy.mp4"), frames, {"mpeg4", AV_PIX_FMT_YUV420P, {25, 1}, 2});
  const data::VideoFileInfo info = data::probe_video(tmp.file("lossy.mp4"));
  CHECK(info.codec == "mpeg4");
  CHECK(info.frame_count == 70);
  CHECK(info.fps == 25.0);
  CHECK(info.width == 64);
  CHECK(info.height == 48);
  // Presentation order across the B-frames: frame i decodes to the picture of index i.
  std::vector<int64_t> all(70);
  for (int64_t i = 0; i < 70; ++i) all[static_cast<size_t>(i)] = i;
  data::VideoFileReader reader(tmp.file("lossy.mp4"));
  const auto decoded = reader.read_frames(all);
  REQUIRE(decoded.size() == 70);
  int max_diff = 0;
  for (const auto& [i, image] : decoded) {
    CHECK(frame_index_of(image) == i);
    for (size_t p = 0; p < image.pixels.size(); ++p)
      max_diff =
          std::max(max_diff, std::abs(int{image.pixels[p]} - int{frames[static_cast<size_t>(i)].pixels[p]}));
  }
  std::cout << "[video] mpeg4 q2 yuv420p 64 x 48: max |decoded - source| = " << max_diff << " of 255\n";
  CHECK(max_diff <= 24);           // chroma subsampling of the blue gradient + quantization
  const data::VideoConfig config;  // the reference's 224 crops
  const Tensor<float> out = data::load_video_file<float>(tmp.file("lossy.mp4"), config);
  CHECK(out.shape() == Shape{15, 3, 2, 224, 224});
  const auto clips = data::video_clip_frame_indices(70, 25.0, config);
  CHECK(out.to_vector() ==
        data::transform_video_clips<float>(clips, reader.read_frames(all), config).to_vector());
}

TEST_CASE("video file: rotation from the display matrix, as decord's transpose filters",
          "[data][video][ffmpeg]") {
  const QuietFfmpeg quiet;
  const VideoTempDir tmp;
  const std::vector<data::Image> frames = procedural_frames(6, 4, 6, 31);  // 6 wide, 4 high
  for (const int rotation : {90, 180, 270}) {
    INFO(rotation);
    const std::string path = tmp.file("rot" + std::to_string(rotation) + ".mov");
    write_video(path, frames, {"png", AV_PIX_FMT_RGB24, {6, 1}, 0, rotation});
    const data::VideoFileInfo info = data::probe_video(path);
    CHECK(info.rotation == rotation);
    CHECK(info.width == (rotation == 180 ? 6 : 4));
    CHECK(info.height == (rotation == 180 ? 4 : 6));
    data::VideoFileReader reader(path);
    const data::Image image = reader.read_frames({2}).at(2);
    const data::Image& source = frames[2];
    REQUIRE(image.width == info.width);
    REQUIRE(image.height == info.height);
    // By hand: clockwise 90 puts the source's bottom-left pixel top-left; 270 its top-right.
    for (int64_t y = 0; y < image.height; ++y)
      for (int64_t x = 0; x < image.width; ++x)
        for (int64_t c = 0; c < 3; ++c) {
          const uint8_t expected = rotation == 90 ? source.at(source.height - 1 - x, y, c)
                                   : rotation == 270
                                       ? source.at(x, source.width - 1 - y, c)
                                       : source.at(source.height - 1 - y, source.width - 1 - x, c);
          REQUIRE(image.at(y, x, c) == expected);
        }
  }
}

TEST_CASE("video file: a degenerate display matrix or a non-finite rotate tag means no rotation",
          "[data][video][ffmpeg][hardening]") {
  // fuzz/regressions/video/nan_rotation_display_matrix.mp4: av_display_rotation_get of a matrix
  // whose scale is zero is NaN, which the reader cast to int (undefined behaviour, UBSan).
  const auto close = [](AVFormatContext* p) { avformat_free_context(p); };
  std::unique_ptr<AVFormatContext, decltype(close)> context(avformat_alloc_context(), close);
  REQUIRE(context != nullptr);
  AVStream* stream = avformat_new_stream(context.get(), nullptr);
  REQUIRE(stream != nullptr);
  auto* matrix = av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t));
  REQUIRE(matrix != nullptr);
  std::fill(matrix, matrix + 9 * sizeof(int32_t), uint8_t{0});
  REQUIRE(std::isnan(av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix))));
  CHECK(data::detail::stream_rotation(stream) == 0.0);
  for (const char* tag : {"inf", "-inf", "nan"}) {
    INFO(tag);
    REQUIRE(av_dict_set(&stream->metadata, "rotate", tag, 0) >= 0);
    CHECK(data::detail::stream_rotation(stream) == 0.0);
  }
  REQUIRE(av_dict_set(&stream->metadata, "rotate", "-90", 0) >= 0);
  CHECK(data::detail::stream_rotation(stream) == 270.0);
}

TEST_CASE("video file: errors are typed and name the file and FFmpeg's reason",
          "[data][video][ffmpeg][errors]") {
  const QuietFfmpeg quiet;
  const VideoTempDir tmp;
  std::vector<data::Image> frames;
  for (int64_t i = 0; i < 30; ++i) frames.push_back(indexed_frame(24, 32, i));
  SECTION("missing file, and a folder") {
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::load_video_file<float>(tmp.file("missing.mp4")), IoError,
                                    "missing.mp4", "no such file");
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::probe_video(tmp.path.string()), IoError, "is a folder");
  }
  SECTION("not a video") {
    std::string garbage;
    for (int i = 0; i < 200; ++i) garbage += "this is not a video file, just text. ";
    write_bytes(tmp.file("garbage.mp4"), garbage);
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::load_video_file<float>(tmp.file("garbage.mp4")), FormatError,
                                    "garbage.mp4", "cannot open as a video", "Invalid data found");
  }
  SECTION("truncated: an .mp4 cut before its index; an .mkv cut mid-way is a shorter video, as for decord") {
    write_video(tmp.file("whole.mp4"), frames, {"mpeg4", AV_PIX_FMT_YUV420P, {25, 1}});
    const std::string mp4 = read_bytes(tmp.file("whole.mp4"));
    write_bytes(tmp.file("cut.mp4"), mp4.substr(0, mp4.size() * 6 / 10));  // the moov box is at the end
    // (FFmpeg says "Invalid data found" or finds no streams, depending on where the cut falls.)
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::load_video_file<float>(tmp.file("cut.mp4")), FormatError,
                                    "cut.mp4");
    write_video(tmp.file("whole.mkv"), frames, {"ffv1", AV_PIX_FMT_0RGB32, {25, 1}});
    const std::string mkv = read_bytes(tmp.file("whole.mkv"));
    write_bytes(tmp.file("cut.mkv"), mkv.substr(0, mkv.size() / 2 + 123));
    // decord 0.6.0 reads 14 frames of this file too (its packets up to the cut).
    const data::VideoFileInfo info = data::probe_video(tmp.file("cut.mkv"));
    CHECK(info.frame_count > 0);
    CHECK(info.frame_count < 30);
    data::VideoFileReader reader(tmp.file("cut.mkv"));
    const int64_t last = info.frame_count - 1;
    CHECK(reader.read_frames({last}).at(last).pixels == frames[static_cast<size_t>(last)].pixels);
    CHECK(data::load_video_file<float>(tmp.file("cut.mkv"), small_config()).shape() ==
          Shape{15, 3, 2, 24, 24});
    write_bytes(tmp.file("header_only.mp4"), mp4.substr(0, 40));
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::probe_video(tmp.file("header_only.mp4")), FormatError,
                                    "header_only.mp4", "Invalid data found");
  }
  SECTION("no video stream (a WAV file)") {
    const std::string wav = std::string(BINDERY_TEST_DATA) + "/reference/audio/wav/s16_16k_mono_2p3s.wav";
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::probe_video(wav), FormatError, "s16_16k_mono_2p3s.wav",
                                    "no video stream", "Stream not found");
  }
  SECTION("unsupported codec: an AVI whose FourCC no decoder knows") {
    write_video(tmp.file("ffv1.avi"), frames, {"ffv1", AV_PIX_FMT_0RGB32, {25, 1}});
    std::string avi = read_bytes(tmp.file("ffv1.avi"));
    int patched = 0;
    for (size_t at = avi.find("FFV1"); at != std::string::npos; at = avi.find("FFV1", at + 4), ++patched)
      avi.replace(at, 4, "ZZZ9");
    REQUIRE(patched >= 1);
    write_bytes(tmp.file("unknown.avi"), avi);
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::load_video_file<float>(tmp.file("unknown.avi")), FormatError,
                                    "unknown.avi", "unsupported video codec", "ZZZ9", "Decoder not found");
  }
  SECTION("zero frames: an AVI with a video stream and no packets") {
    AVFormatContext* raw = nullptr;
    REQUIRE(avformat_alloc_output_context2(&raw, nullptr, nullptr, tmp.file("empty.avi").c_str()) >= 0);
    const auto close = [](AVFormatContext* p) {
      if (p->pb != nullptr) avio_closep(&p->pb);
      avformat_free_context(p);
    };
    std::unique_ptr<AVFormatContext, decltype(close)> out(raw, close);
    AVStream* stream = avformat_new_stream(out.get(), nullptr);
    REQUIRE(stream != nullptr);
    stream->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
    stream->codecpar->codec_id = AV_CODEC_ID_MPEG4;
    stream->codecpar->format = AV_PIX_FMT_YUV420P;
    stream->codecpar->width = 32;
    stream->codecpar->height = 24;
    stream->time_base = {1, 25};
    stream->avg_frame_rate = {25, 1};
    REQUIRE(avio_open(&out->pb, tmp.file("empty.avi").c_str(), AVIO_FLAG_WRITE) >= 0);
    REQUIRE(avformat_write_header(out.get(), nullptr) >= 0);
    REQUIRE(av_write_trailer(out.get()) >= 0);
    out.reset();
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::load_video_file<float>(tmp.file("empty.avi")), FormatError,
                                    "empty.avi", "video stream 0 (mpeg4) holds no frames");
  }
  SECTION("no average frame rate (one frame in NUT): decord's fps would be NaN") {
    write_video(tmp.file("one.nut"), {frames[0]}, {"rawvideo", AV_PIX_FMT_RGB24, {25, 1}});
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::probe_video(tmp.file("one.nut")), FormatError, "one.nut",
                                    "no average frame rate");
  }
  SECTION("max_pixels holds inside FFmpeg's probe: its decoders refuse larger frames (issue 18)") {
    // MPEG-4 Part 2 in .mp4: only decoding tells the pixel format, so the probe opens a decoder.
    // FFmpeg gets 2 · max_pixels + 2²⁰ (its scratch pictures are larger than the frames): with a
    // limit of 1,000 pixels, frames of 1100 × 1000 are refused inside the probe.
    std::vector<data::Image> big;
    for (int64_t i = 0; i < 3; ++i) big.push_back(indexed_frame(1000, 1100, i));
    write_video(tmp.file("big.mp4"), big, {"mpeg4", AV_PIX_FMT_YUV420P, {25, 1}});
    static std::string messages;  // av_log's callback takes no context
    messages.clear();
    av_log_set_callback([](void*, int level, const char* format, va_list args) {
      if (level > AV_LOG_ERROR) return;
      char line[512];
      std::vsnprintf(line, sizeof(line), format, args);
      messages += line;
    });
    data::VideoFileOptions options;
    options.max_pixels = 1000;
    const auto refused = [&] { (void)data::probe_video(tmp.file("big.mp4"), options); };
    BINDERY_REQUIRE_THROWS_WITH_ALL(refused(), FormatError, "big.mp4");
    av_log_set_callback(av_log_default_callback);
    INFO("FFmpeg said: " << messages);
    CHECK(messages.find("Picture size 1100x1000 exceeds specified max pixel count 1050576") !=
          std::string::npos);
    // at exactly the frame size, the probe and the decoder take the frames
    options.max_pixels = 1100 * 1000;
    const data::VideoFileInfo info = data::probe_video(tmp.file("big.mp4"), options);
    CHECK(info.width == 1100);
    CHECK(info.frame_count == 3);
    data::VideoFileReader reader(tmp.file("big.mp4"), options);
    CHECK(reader.read_frames({2}).at(2).width == 1100);
    options.max_pixels = 1100 * 1000 - 1;
    BINDERY_REQUIRE_THROWS_WITH_ALL(data::probe_video(tmp.file("big.mp4"), options), FormatError, "big.mp4",
                                    "1100 x 1000", "max_pixels 1099999");
  }
  SECTION("a frame index past the end") {
    write_video(tmp.file("short.mkv"), frames, {"ffv1", AV_PIX_FMT_0RGB32, {25, 1}});
    data::VideoFileReader reader(tmp.file("short.mkv"));
    BINDERY_REQUIRE_THROWS_WITH_ALL(reader.read_frames({3, 30}), IndexError, "short.mkv", "frame 30",
                                    "30 frames");
  }
}

TEST_CASE("video file: equals data.py reading the committed videos with decord",
          "[data][video][ffmpeg][parity]") {
  // tests/reference/make_video_fixtures.py: the reference's own load_and_transform_video_data
  // (decord 0.6.0 with its FFmpeg 4.1) at size 16, and at 224 for the lossy video.
  const auto fixture = [](const std::string& name) {
    std::string path = BINDERY_TEST_DATA;
    path += "/reference/video/";
    path += name;
    return path;
  };
  std::ifstream info_file(fixture("info.json"));
  REQUIRE(info_file.good());
  const nlohmann::json info = nlohmann::json::parse(info_file);
  data::VideoConfig config;
  config.size = 16;
  for (const std::string name : {"lossless", "lossy"}) {
    const std::string file = name == "lossless" ? "lossless.mkv" : "lossy.mp4";
    INFO(file);
    const nlohmann::json& expected = info.at(file);
    const data::VideoFileInfo probed = data::probe_video(fixture(file));
    CHECK(probed.frame_count == expected.at("frames").get<int64_t>());
    CHECK(probed.fps == expected.at("fps").get<double>());  // bit for bit
    CHECK(data::video_clip_frame_indices(probed.frame_count, probed.fps, config) ==
          expected.at("clips").get<std::vector<std::vector<int64_t>>>());
    const std::vector<float> ours = data::load_video_file<float>(fixture(file), config).to_vector();
    const Tensor<float> reference = io::read_npy<float>(fixture(name + "_out.npy"));
    REQUIRE(reference.shape() == Shape{1, 15, 3, 2, 16, 16});
    const std::vector<float> values = reference.to_vector();
    REQUIRE(ours.size() == values.size());
    int64_t equal = 0;
    for (size_t i = 0; i < ours.size(); ++i) equal += ours[i] == values[i] ? 1 : 0;
    const double worst = max_abs_diff(ours, values);
    std::cout << "[parity] " << file << " (" << probed.frame_count << " frames at " << probed.fps << " fps, "
              << probed.codec << "): " << equal << " of " << ours.size() << " values bit-equal, max error "
              << worst << "\n";
    CHECK(worst <= 1e-5);
  }
  // The lossy video at the reference's 224: per view/channel/frame sums and a strided subset.
  const Tensor<float> full = data::load_video_file<float>(fixture("lossy.mp4"));
  REQUIRE(full.shape() == Shape{15, 3, 2, 224, 224});
  const std::vector<float> v = full.to_vector();
  const std::vector<double> sums = io::read_npy<double>(fixture("lossy_full_sums.npy")).to_vector();
  const std::vector<float> strided = io::read_npy<float>(fixture("lossy_full_strided.npy")).to_vector();
  REQUIRE(sums.size() == 15 * 3 * 2);
  REQUIRE(strided.size() == 15 * 3 * 2 * 14 * 14);
  double worst_sum = 0, worst_value = 0;
  for (size_t plane = 0; plane < sums.size(); ++plane) {
    double sum = 0;
    for (size_t i = 0; i < 224 * 224; ++i) sum += v[plane * 224 * 224 + i];
    worst_sum = std::max(worst_sum, std::fabs(sum - sums[plane]));
    for (size_t y = 0; y < 14; ++y)
      for (size_t x = 0; x < 14; ++x)
        worst_value = std::max(worst_value,
                               std::fabs(static_cast<double>(v[plane * 224 * 224 + y * 16 * 224 + x * 16]) -
                                         strided[(plane * 14 + y) * 14 + x]));
  }
  std::cout << "[parity] lossy.mp4 at 224: max error " << worst_value << " (strided ::16), max |sum error| "
            << worst_sum << " over 224 x 224 values\n";
  CHECK(worst_value <= 1e-5);
  CHECK(worst_sum <= 224 * 224 * 1e-5);
}

TEST_CASE("video file: is_video_file_name", "[data][video][ffmpeg]") {
  CHECK(data::kHasFfmpeg);
  CHECK(data::is_video_file_name("a/b/clip.MP4"));
  CHECK(data::is_video_file_name("x.mkv"));
  CHECK_FALSE(data::is_video_file_name("x.png"));
  CHECK_FALSE(data::is_video_file_name("frames"));
}

#else  // built without FFmpeg

TEST_CASE("video file: without FFmpeg, a clear error says how to get video support",
          "[data][video][ffmpeg]") {
  CHECK_FALSE(data::kHasFfmpeg);
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::load_video_file<float>("clip.mp4"), IoError, "clip.mp4",
                                  "built without FFmpeg", "BINDERY_FFMPEG",
                                  "ffmpeg -i clip.mp4 frames/%06d.png");
  BINDERY_REQUIRE_THROWS_WITH_ALL(data::probe_video("clip.mp4"), IoError, "built without FFmpeg");
  CHECK(data::is_video_file_name("clip.mp4"));
  (void)pick;
  (void)indexed_frame;
  (void)frame_index_of;
  (void)procedural_frames;
  (void)write_bytes;
  (void)read_bytes;
}

#endif
