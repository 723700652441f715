// fuzz_wav: RIFF/WAVE chunks, fmt (PCM, float, extensible) and sample decoding, from memory.
#include "fuzz_target.hpp"

#include <bindery/data/wav.hpp>

BINDERY_FUZZ_TARGET(wav) {
  bindery::fuzz::guarded([&] {
    bindery::data::WavInfo info;
    const auto wave =
        bindery::data::read_wav_bytes<float>(bindery::fuzz::bytes_of(data, size), "fuzz.wav", &info);
    if (wave.samples.size(0) != info.channels || wave.samples.size(1) != info.frames)
      bindery::fuzz::round_trip_failed("wav", "samples shape vs the header");
    for (float v : wave.samples.to_vector())
      if (!(v >= -1.0f && v <= 1.0f) && v == v)
        bindery::fuzz::round_trip_failed("wav", "a sample outside [-1, 1]");
  });
  return 0;
}
