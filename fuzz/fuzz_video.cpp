// fuzz_video: FFmpeg's container probe (probe_video), built where bindery::ffmpeg is. FFmpeg itself is
// not instrumented; what is fuzzed is bindery's handling of what it reports.
#include "fuzz_target.hpp"

#include <bindery/data/video_ffmpeg.hpp>

BINDERY_FUZZ_TARGET(video) {
  bindery::fuzz::with_file(data, size, ".mp4", [](const std::string& path) {
    bindery::data::VideoFileOptions options;
    options.decoder_threads = 1;
    (void)bindery::data::probe_video(path, options);
  });
  return 0;
}
