// fuzz_video: FFmpeg's container probe (probe_video), built where bindery::ffmpeg is. FFmpeg itself is
// not instrumented; what is fuzzed is bindery's handling of what it reports.
#include "fuzz_target.hpp"

#include <bindery/data/video_ffmpeg.hpp>

extern "C" {
#include <libavutil/log.h>
}

BINDERY_FUZZ_TARGET(video) {
  // FFmpeg logs every malformed input to stderr (AV_LOG_INFO): up to 180 MB per 10-minute chunk,
  // which cut the target to a third of its rate. Its log is not what is fuzzed here.
  static const bool quiet = (av_log_set_level(AV_LOG_QUIET), true);
  (void)quiet;
  bindery::fuzz::with_file(data, size, ".mp4", [](const std::string& path) {
    bindery::data::VideoFileOptions options;
    options.decoder_threads = 1;
    // 1 MP instead of 100 M: FFmpeg's probe zeroes frames up to the limit (half the target's time
    // went there); the limit's arithmetic is the same at any value, and the default is tested in
    // tests/data.
    options.max_pixels = int64_t{1} << 20;
    (void)bindery::data::probe_video(path, options);
  });
  return 0;
}
