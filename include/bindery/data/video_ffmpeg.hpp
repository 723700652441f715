// bindery/data/video_ffmpeg.hpp — video files (mp4, mkv, avi, webm, ...) to the vision encoder's
// multi-clip input (15, 3, 2, 224, 224), decoded with FFmpeg (libavformat, libavcodec, libswscale).
//
// Optional: FFmpeg is used only where the build defines BINDERY_HAS_FFMPEG, which linking the CMake
// target bindery::ffmpeg does (configure option BINDERY_FFMPEG, on by default when pkg-config finds
// libavformat-dev, libavcodec-dev, libswscale-dev and libavutil-dev). Without it this header still
// compiles: kHasFfmpeg is false and every function throws IoError saying how to get video support
// (rebuild with FFmpeg, or extract the frames with `ffmpeg -i in.mp4 frames/%06d.png` and use
// data/video.hpp's frame folders).
//
// Decoding follows decord's VideoReader, which the reference reads videos with (pytorchvideo's
// EncodedVideoDecord in imagebind/data.py):
//   - the video is the best video stream (av_find_best_stream);
//   - frame count = the stream's packets (decord indexes every packet; len(VideoReader)), fps = the
//     stream's average frame rate as a double (get_avg_fps), frame i = the i-th decoded frame in
//     presentation order, which the clip sampler places at time i / fps (data/video.hpp, steps 1-3);
//   - frames convert to RGB24 at the stream's size with libswscale, set up as decord's filter graph
//     sets up FFmpeg 4's scale filter: bilinear flags, the frame's own YCbCr matrix (BT.601 when
//     unspecified) and range; frames of another size (a mid-stream change) are scaled to it;
//   - a rotation in the stream's metadata ("rotate" tag, else the display matrix) of 90, 180 or 270
//     degrees turns the frames as decord's transpose filters do (applied here to the RGB frame).
// The decoded RGB frames then go through the same transform_video_clips as frame folders, so a
// lossless video and its frames saved as PNG give identical tensors. Only the frames the clips use
// are converted; decoding runs from the start to the last frame needed (no seeking: the cost grows
// with the video's length, about 84% of it decoded with the default clips).
// Measured against data.py + decord 0.6.0 (tests/reference/make_video_fixtures.py): FFV1 and
// MPEG-4 Part 2 videos within 3.5e-6. One known difference: on streams with B-frames decord's
// backward seek between clips returns frames shifted from the requested ones (dmlc/decord#54,
// #365; measured there: 2 frames off in the last two clips); this reader returns frame i.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/image.hpp"
#include "bindery/data/video.hpp"

#if defined(BINDERY_HAS_FFMPEG)
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}
#endif

namespace bindery::data {

/// Whether this build decodes video files (BINDERY_HAS_FFMPEG, set by linking bindery::ffmpeg).
#if defined(BINDERY_HAS_FFMPEG)
inline constexpr bool kHasFfmpeg = true;
#else
inline constexpr bool kHasFfmpeg = false;
#endif

/// A video file's best video stream, as decord reports it.
struct VideoFileInfo {
  std::string path;
  std::string container;  // the demuxer ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", ...)
  std::string codec;      // the decoder ("h264", "mpeg4", "ffv1", ...)
  int stream_index = -1;
  int64_t width = 0;        // of the RGB frames, after the rotation
  int64_t height = 0;       //
  int rotation = 0;         // 0, 90, 180 or 270: degrees the frames are turned clockwise
  int64_t frame_count = 0;  // the stream's packets: decord's len(VideoReader)
  int64_t fps_num = 0;      // the stream's average frame rate, fps_num / fps_den
  int64_t fps_den = 1;
  double fps = 0.0;       // decord's get_avg_fps()
  double duration = 0.0;  // frame_count / fps: pytorchvideo's EncodedVideoDecord.duration
};

/// Decoding knobs (none changes the decoded values).
struct VideoFileOptions {
  int decoder_threads = 0;           // FFmpeg's thread_count; 0: one per core, decord's default
  int64_t max_pixels = 100'000'000;  // width * height allowed for a frame (FFmpeg's probe too)
};

/// File names with a video container's extension (.mp4, .mkv, .avi, .mov, .webm, ...), any case:
/// how the command-line tools tell a video file from an image file.
inline bool is_video_file_name(const std::string& path) {
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::vector<std::string> kExtensions = {
      ".mp4",  ".m4v", ".mov", ".mkv", ".webm", ".avi", ".nut", ".mpg", ".mpeg", ".ts",
      ".m2ts", ".mts", ".wmv", ".flv", ".3gp",  ".ogv", ".mxf", ".y4m", ".h264", ".hevc"};
  return std::find(kExtensions.begin(), kExtensions.end(), extension) != kExtensions.end();
}

namespace detail {

/// What a build without FFmpeg says for a video file.
inline std::string no_ffmpeg_message(const std::string& path) {
  return ::bindery::detail::concat(
      path,
      ": cannot decode video files: bindery was built without FFmpeg. Install libavformat-dev "
      "libavcodec-dev libswscale-dev libavutil-dev (scripts/install-deps.sh) and reconfigure with "
      "-DBINDERY_FFMPEG=ON, linking bindery::ffmpeg; or extract the frames with `ffmpeg -i ",
      path, " frames/%06d.png` and pass the folder with the video's frame rate");
}

}  // namespace detail

#if defined(BINDERY_HAS_FFMPEG)

namespace detail {

inline std::string av_error_text(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

/// FFmpeg's failures to read a file (missing, no permission, I/O) are IoError; the rest FormatError.
[[noreturn]] inline void throw_av_error(const std::string& path, const std::string& what, int code) {
  const std::string message = ::bindery::detail::concat(path, ": ", what, ": ", av_error_text(code));
  if (code == AVERROR(ENOENT) || code == AVERROR(EACCES) || code == AVERROR(EISDIR) || code == AVERROR(EIO) ||
      code == AVERROR(EPERM))
    throw IoError(message);
  throw FormatError(message);
}

struct FormatContextDeleter {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameDeleter {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* p) const { sws_freeContext(p); }
};
using FormatContextPtr = std::unique_ptr<AVFormatContext, FormatContextDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;

/// decord's GetRotation: the "rotate" tag if set and not "0", else minus the display matrix's
/// counterclockwise angle; in [0, 360).
inline double stream_rotation(const AVStream* stream) {
  double theta = 0.0;
  const AVDictionaryEntry* rotate = av_dict_get(stream->metadata, "rotate", nullptr, 0);
  if (rotate != nullptr && *rotate->value != '\0' && std::string(rotate->value) != "0")
    theta = std::atof(rotate->value);
  const uint8_t* matrix = nullptr;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 31, 100)  // FFmpeg 6.1: side data moved to codecpar
  const AVPacketSideData* side = av_packet_side_data_get(
      stream->codecpar->coded_side_data, stream->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  if (side != nullptr && side->size >= 9 * sizeof(int32_t)) matrix = side->data;
#else
  size_t size = 0;
  matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (size < 9 * sizeof(int32_t)) matrix = nullptr;
#endif
  if (matrix != nullptr && theta == 0.0)
    theta = -av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  // A degenerate display matrix gives NaN (av_display_rotation_get divides by its scale), as does a
  // "rotate" tag of "inf" or "nan": no usable rotation. (Cast to int, NaN was undefined behaviour;
  // found by fuzz/fuzz_video.cpp.)
  if (!std::isfinite(theta)) return 0.0;
  theta = std::fmod(theta, 360.0);
  if (theta < 0) theta += 360.0;
  return theta;
}

/// FFmpeg 4's scale filter's parse_yuv_type("auto", colorspace): the frame's YCbCr matrix, BT.601
/// for unspecified or unknown ones.
inline const int* yuv_coefficients(AVColorSpace colorspace) {
  int cs = static_cast<int>(colorspace);
  if (cs < 1 || cs > 10 || cs == 8) cs = AVCOL_SPC_BT470BG;
  return sws_getCoefficients(cs);
}

/// The full-range (JPEG) pixel formats swscale deprecates, as their plain twins.
inline AVPixelFormat unjpeg_format(AVPixelFormat format, bool& full_range) {
  full_range = true;
  switch (format) {
    case AV_PIX_FMT_YUVJ420P:
      return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
      return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
      return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
      return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P:
      return AV_PIX_FMT_YUV411P;
    default:
      full_range = false;
      return format;
  }
}

/// `rgb` (height x width x 3) turned clockwise by `rotation` degrees (90, 180, 270), as FFmpeg's
/// transpose=clock, transpose=clock twice and transpose=cclock do.
inline Image rotate_rgb(const Image& rgb, int rotation) {
  if (rotation != 90 && rotation != 180 && rotation != 270) return rgb;
  const int64_t h = rgb.height, w = rgb.width;
  Image out{rotation == 180 ? h : w, rotation == 180 ? w : h, 3, std::vector<uint8_t>(rgb.pixels.size())};
  for (int64_t r = 0; r < out.height; ++r) {
    for (int64_t c = 0; c < out.width; ++c) {
      int64_t y = 0, x = 0;  // the source pixel
      if (rotation == 90) {
        y = h - 1 - c;
        x = r;
      } else if (rotation == 270) {
        y = c;
        x = w - 1 - r;
      } else {
        y = h - 1 - r;
        x = w - 1 - c;
      }
      for (int64_t k = 0; k < 3; ++k)
        out.pixels[static_cast<size_t>((r * out.width + c) * 3 + k)] =
            rgb.pixels[static_cast<size_t>((y * w + x) * 3 + k)];
    }
  }
  return out;
}

}  // namespace detail

/// RAII reader of one video file's best video stream. Opening reads the whole stream's packets
/// once (without decoding) to count the frames as decord does; read_frames then decodes from the
/// start. Every FFmpeg object is owned by a unique_ptr, so no error path leaks.
class VideoFileReader {
 public:
  explicit VideoFileReader(const std::string& path, const VideoFileOptions& options = {})
      : options_(options) {
    info_.path = path;
    std::error_code error;
    BINDERY_CHECK(std::filesystem::exists(path, error), IoError, path, ": no such file");
    BINDERY_CHECK(!std::filesystem::is_directory(path, error), IoError, path,
                  ": is a folder, not a video file (frame folders: data/video.hpp)");
    open();
    const AVStream* stream = format_->streams[info_.stream_index];
    info_.container = format_->iformat != nullptr ? format_->iformat->name : "";
    info_.codec = decoder_->name;
    const double rotation = detail::stream_rotation(stream);
    info_.rotation = static_cast<int>(rotation);  // decord switches on the truncated angle
    if (info_.rotation != 90 && info_.rotation != 180 && info_.rotation != 270) info_.rotation = 0;
    coded_width_ = stream->codecpar->width;
    coded_height_ = stream->codecpar->height;
    const bool swap = info_.rotation == 90 || info_.rotation == 270;
    info_.width = swap ? coded_height_ : coded_width_;
    info_.height = swap ? coded_width_ : coded_height_;
    BINDERY_CHECK(int64_t{coded_width_} * coded_height_ <= options_.max_pixels, FormatError, path,
                  ": frames of ", coded_width_, " x ", coded_height_, " pixels exceed max_pixels ",
                  options_.max_pixels);
    info_.fps_num = stream->avg_frame_rate.num;
    info_.fps_den = stream->avg_frame_rate.den;
    // Count the packets of the stream, as decord's index of frames does.
    detail::PacketPtr packet(av_packet_alloc());
    BINDERY_CHECK(packet != nullptr, BackendError, path, ": out of memory");
    for (;;) {
      const int ret = av_read_frame(format_.get(), packet.get());
      if (ret == AVERROR_EOF) break;
      if (ret < 0) detail::throw_av_error(path, "cannot read the video's packets", ret);
      if (packet->stream_index == info_.stream_index) ++info_.frame_count;
      av_packet_unref(packet.get());
    }
    BINDERY_CHECK(info_.frame_count > 0, FormatError, path, ": the video stream ", info_.stream_index, " (",
                  info_.codec, ") holds no frames");
    BINDERY_CHECK(info_.fps_num > 0 && info_.fps_den > 0, FormatError, path, ": the video stream ",
                  info_.stream_index, " has no average frame rate (", info_.fps_num, "/", info_.fps_den,
                  "); decode its frames to a folder and pass the rate (data/video.hpp)");
    info_.fps = static_cast<double>(info_.fps_num) / static_cast<double>(info_.fps_den);
    info_.duration = static_cast<double>(info_.frame_count) / info_.fps;
    BINDERY_CHECK(coded_width_ > 0 && coded_height_ > 0, FormatError, path, ": the video stream ",
                  info_.stream_index, " (", info_.codec, ") has no frame size");
  }

  const VideoFileInfo& info() const { return info_; }

  /// The frames at `indices` (each in [0, frame_count), any order, repeats allowed): index -> RGB
  /// frame (height x width x 3 uint8, rotated). Decodes from the first frame up to the last index.
  std::map<int64_t, Image> read_frames(const std::vector<int64_t>& indices) {
    std::vector<int64_t> wanted(indices);
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    std::map<int64_t, Image> frames;
    if (wanted.empty()) return frames;
    BINDERY_CHECK(wanted.front() >= 0 && wanted.back() < info_.frame_count, IndexError, info_.path,
                  ": frame ", wanted.front() < 0 ? wanted.front() : wanted.back(), " of a video of ",
                  info_.frame_count, " frames");
    open();  // from the start, in a fresh demuxer and decoder
    detail::CodecContextPtr codec(avcodec_alloc_context3(decoder_));
    BINDERY_CHECK(codec != nullptr, BackendError, info_.path, ": out of memory");
    int ret = avcodec_parameters_to_context(codec.get(), format_->streams[info_.stream_index]->codecpar);
    if (ret < 0) detail::throw_av_error(info_.path, "cannot set up the decoder", ret);
    codec->thread_count = options_.decoder_threads;
    codec->max_pixels = max_pixels_for_ffmpeg();
    ret = avcodec_open2(codec.get(), decoder_, nullptr);
    if (ret < 0)
      detail::throw_av_error(info_.path,
                             ::bindery::detail::concat("cannot open the ", info_.codec, " decoder"), ret);
    detail::PacketPtr packet(av_packet_alloc());
    detail::FramePtr frame(av_frame_alloc());
    BINDERY_CHECK(packet != nullptr && frame != nullptr, BackendError, info_.path, ": out of memory");
    int64_t next = 0;  // the index of the next frame out of the decoder
    size_t want = 0;   // the next wanted index
    bool draining = false;
    // Takes every frame the decoder has ready; false once it is fully drained.
    const auto receive = [&]() {
      for (;;) {
        const int got = avcodec_receive_frame(codec.get(), frame.get());
        if (got == AVERROR(EAGAIN)) return true;
        if (got == AVERROR_EOF) return false;
        if (got < 0)
          detail::throw_av_error(info_.path, ::bindery::detail::concat("cannot decode frame ", next), got);
        if (want < wanted.size() && next == wanted[want]) {
          frames.emplace(next, to_rgb_frame(*frame));
          ++want;
        }
        ++next;
        av_frame_unref(frame.get());
        if (want == wanted.size()) return false;
      }
    };
    while (want < wanted.size()) {
      if (!draining) {
        ret = av_read_frame(format_.get(), packet.get());
        if (ret == AVERROR_EOF) {
          draining = true;
          ret = avcodec_send_packet(codec.get(), nullptr);
          if (ret < 0) detail::throw_av_error(info_.path, "cannot flush the decoder", ret);
        } else if (ret < 0) {
          detail::throw_av_error(info_.path,
                                 ::bindery::detail::concat("cannot read the packet of frame ", next), ret);
        } else if (packet->stream_index != info_.stream_index) {
          av_packet_unref(packet.get());
          continue;
        } else {
          ret = avcodec_send_packet(codec.get(), packet.get());
          // EAGAIN: the decoder wants its ready frames taken first (not seen with receive() below).
          while (ret == AVERROR(EAGAIN) && receive()) ret = avcodec_send_packet(codec.get(), packet.get());
          av_packet_unref(packet.get());
          if (ret < 0 && ret != AVERROR(EAGAIN))
            detail::throw_av_error(info_.path, ::bindery::detail::concat("cannot decode frame ", next), ret);
        }
      }
      if (want == wanted.size() || !receive()) break;
    }
    BINDERY_CHECK(want == wanted.size(), FormatError, info_.path, ": decoded only ", next,
                  " frames, but the stream has ", info_.frame_count, " packets and frame ", wanted[want],
                  " is needed (a truncated or corrupt video?)");
    format_.reset();  // the file is not kept open between reads
    return frames;
  }

 private:
  /// The max_pixels that FFmpeg's decoders get: 2 · options_.max_pixels + 2²⁰, at most INT_MAX (their
  /// default). Their scratch pictures are larger than the frames (edges and alignment: 192 × 280 for
  /// 64 × 48 frames in MPEG-4), so the headroom keeps them from refusing a frame that bindery allows
  /// (short of extreme aspect ratios, which then fail with a FormatError). What it bounds is what a
  /// small file that declares huge frames makes FFmpeg allocate and zero while probing.
  int64_t max_pixels_for_ffmpeg() const {
    const int64_t limit = std::max<int64_t>(options_.max_pixels, 0);
    const int64_t most = std::numeric_limits<int>::max();
    return limit >= most / 2 ? most : std::min(most, 2 * limit + (int64_t{1} << 20));
  }

  /// (Re)opens the file and finds the best video stream and its decoder.
  void open() {
    format_.reset();
    AVFormatContext* raw = nullptr;
    int ret = avformat_open_input(&raw, info_.path.c_str(), nullptr, nullptr);
    if (ret < 0) detail::throw_av_error(info_.path, "cannot open as a video", ret);
    format_.reset(raw);
    // The probe decodes a few frames: FFmpeg's decoders get max_pixels too, so a small file that
    // declares huge frames is refused before they are allocated, not only after the probe.
    const std::string pixel_limit = std::to_string(max_pixels_for_ffmpeg());
    std::vector<AVDictionary*> stream_options(format_->nb_streams, nullptr);
    for (AVDictionary*& entry : stream_options) av_dict_set(&entry, "max_pixels", pixel_limit.c_str(), 0);
    ret = avformat_find_stream_info(format_.get(), stream_options.empty() ? nullptr : stream_options.data());
    for (AVDictionary*& entry : stream_options) av_dict_free(&entry);
    if (ret < 0) detail::throw_av_error(info_.path, "cannot read the video's streams", ret);
    const AVCodec* decoder = nullptr;
    ret = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
    if (ret == AVERROR_STREAM_NOT_FOUND) {
      const std::string streams = format_->nb_streams == 0
                                      ? std::string("no streams at all: a truncated or damaged file?")
                                      : ::bindery::detail::concat(format_->nb_streams, " other stream(s)");
      throw FormatError(::bindery::detail::concat(info_.path, ": no video stream (", format_->iformat->name,
                                                  ", ", streams, "): ", detail::av_error_text(ret)));
    }
    if (ret == AVERROR_DECODER_NOT_FOUND) {
      // The best video stream by FFmpeg's own rule, to name its codec.
      std::string codec = "unknown";
      for (unsigned i = 0; i < format_->nb_streams; ++i) {
        const AVCodecParameters* par = format_->streams[i]->codecpar;
        if (par->codec_type != AVMEDIA_TYPE_VIDEO) continue;
        char tag[AV_FOURCC_MAX_STRING_SIZE] = {};
        av_fourcc_make_string(tag, par->codec_tag);
        codec = ::bindery::detail::concat(avcodec_get_name(par->codec_id), " (tag ", tag, ")");
        break;
      }
      throw FormatError(
          ::bindery::detail::concat(info_.path, ": unsupported video codec ", codec,
                                    ": this FFmpeg has no decoder for it: ", detail::av_error_text(ret)));
    }
    if (ret < 0) detail::throw_av_error(info_.path, "cannot find a video stream", ret);
    info_.stream_index = ret;
    decoder_ = decoder;
  }

  /// One decoded frame -> RGB24 at the stream's coded size (swscale as decord's scale filter), rotated.
  Image to_rgb_frame(const AVFrame& frame) {
    BINDERY_CHECK(
        frame.width > 0 && frame.height > 0 && int64_t{frame.width} * frame.height <= options_.max_pixels,
        FormatError, info_.path, ": a decoded frame of ", frame.width, " x ", frame.height, " pixels");
    bool full_range = false;
    const AVPixelFormat format = detail::unjpeg_format(static_cast<AVPixelFormat>(frame.format), full_range);
    sws_.reset(sws_getCachedContext(sws_.release(), frame.width, frame.height, format, coded_width_,
                                    coded_height_, AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr,
                                    nullptr));
    BINDERY_CHECK(sws_ != nullptr, FormatError, info_.path, ": cannot convert frames of ",
                  av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame.format)), " ", frame.width, " x ",
                  frame.height, " to RGB");
    const AVPixFmtDescriptor* descriptor = av_pix_fmt_desc_get(format);
    if (descriptor != nullptr && (descriptor->flags & AV_PIX_FMT_FLAG_RGB) == 0) {
      // The scale filter's colour set-up: the frame's matrix for input and output, its range.
      int *inverse = nullptr, *table = nullptr;
      int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
      sws_getColorspaceDetails(sws_.get(), &inverse, &src_range, &table, &dst_range, &brightness, &contrast,
                               &saturation);
      const int* coefficients = detail::yuv_coefficients(frame.colorspace);
      if (frame.color_range != AVCOL_RANGE_UNSPECIFIED) {
        src_range = frame.color_range == AVCOL_RANGE_JPEG ? 1 : 0;
      } else if (full_range) {
        src_range = 1;
      }
      sws_setColorspaceDetails(sws_.get(), coefficients, src_range, coefficients, dst_range, brightness,
                               contrast, saturation);
    }
    // libswscale's vector code stores whole vectors past a row's last pixel (8 bytes past the end
    // of a 1100-pixel RGB frame, under valgrind): it converts into rows padded to 64 bytes, with 64
    // more after the last, and the rows are copied out.
    const size_t row_bytes = static_cast<size_t>(coded_width_) * 3;
    const size_t stride = (row_bytes + 63) / 64 * 64;
    rgb_rows_.resize(stride * static_cast<size_t>(coded_height_) + 64);
    uint8_t* planes[4] = {rgb_rows_.data(), nullptr, nullptr, nullptr};
    const int strides[4] = {static_cast<int>(stride), 0, 0, 0};
    const int rows = sws_scale(sws_.get(), frame.data, frame.linesize, 0, frame.height, planes, strides);
    BINDERY_CHECK(rows == coded_height_, FormatError, info_.path, ": converting a frame to RGB gave ", rows,
                  " of ", coded_height_, " rows");
    Image rgb{coded_height_, coded_width_, 3, std::vector<uint8_t>(row_bytes * coded_height_)};
    for (int y = 0; y < coded_height_; ++y)
      std::memcpy(rgb.pixels.data() + y * row_bytes, rgb_rows_.data() + y * stride, row_bytes);
    return detail::rotate_rgb(rgb, info_.rotation);
  }

  VideoFileOptions options_;
  VideoFileInfo info_;
  detail::FormatContextPtr format_;
  const AVCodec* decoder_ = nullptr;  // static in FFmpeg: not owned
  detail::SwsPtr sws_;
  std::vector<uint8_t> rgb_rows_;  // sws_scale's padded output rows (to_rgb_frame)
  int coded_width_ = 0;            // the stream's frame size before rotation
  int coded_height_ = 0;
};

/// A video file's best video stream: size, rotation, frame count and rate as decord reports them.
inline VideoFileInfo probe_video(const std::string& path, const VideoFileOptions& options = {}) {
  return VideoFileReader(path, options).info();
}

/// One video file -> (views, 3, T, size, size), views = clips_per_video * num_crops: data.py's
/// load_and_transform_video_data for one video (15, 3, 2, 224, 224 by default).
template <class T = float, class B = Cpu>
Tensor<T, B> load_video_file(const std::string& path, const VideoConfig& config = {},
                             const VideoFileOptions& options = {}) {
  VideoFileReader reader(path, options);
  const std::vector<std::vector<int64_t>> clips =
      video_clip_frame_indices(reader.info().frame_count, reader.info().fps, config);
  std::vector<int64_t> indices;
  for (const auto& clip : clips) indices.insert(indices.end(), clip.begin(), clip.end());
  return transform_video_clips<T, B>(clips, reader.read_frames(indices), config);
}

#else  // without FFmpeg: the same names, each a clear error

class VideoFileReader {
 public:
  explicit VideoFileReader(const std::string& path, const VideoFileOptions& = {}) {
    throw IoError(detail::no_ffmpeg_message(path));
  }
  const VideoFileInfo& info() const { return info_; }
  std::map<int64_t, Image> read_frames(const std::vector<int64_t>&) { return {}; }

 private:
  VideoFileInfo info_;
};

inline VideoFileInfo probe_video(const std::string& path, const VideoFileOptions& = {}) {
  throw IoError(detail::no_ffmpeg_message(path));
}

template <class T = float, class B = Cpu>
Tensor<T, B> load_video_file(const std::string& path, const VideoConfig& = {}, const VideoFileOptions& = {}) {
  throw IoError(detail::no_ffmpeg_message(path));
}

#endif  // BINDERY_HAS_FFMPEG

/// Videos, each a file (FFmpeg) or a folder of frames at `folder_fps` -> (B, views, 3, T, size, size).
/// A folder needs folder_fps > 0; a file's rate comes from the file.
template <class T = float, class B = Cpu>
Tensor<T, B> load_and_transform_videos(const std::vector<std::string>& paths, double folder_fps,
                                       const VideoConfig& config = {}, const VideoFileOptions& options = {}) {
  BINDERY_CHECK(!paths.empty(), ValueError, "load_and_transform_videos: no videos given");
  std::vector<T> values;
  Shape one;
  for (const std::string& path : paths) {
    std::error_code error;
    Tensor<T, Cpu> video;
    if (std::filesystem::is_directory(path, error)) {
      BINDERY_CHECK(folder_fps > 0, ValueError, path, ": a folder of frames needs its frame rate (fps)");
      video = transform_video_frames<T, Cpu>(list_frame_files(path), folder_fps, config);
    } else {
      video = load_video_file<T, Cpu>(path, config, options);
    }
    one = video.shape();
    const std::vector<T> v = video.to_vector();
    values.insert(values.end(), v.begin(), v.end());
  }
  std::vector<int64_t> dims = {static_cast<int64_t>(paths.size())};
  for (int64_t d = 0; d < one.rank(); ++d) dims.push_back(one[d]);
  return Tensor<T, B>::from_vector(values, Shape(dims));
}

}  // namespace bindery::data
