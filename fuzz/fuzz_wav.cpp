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
    // Integer PCM is scaled into [-1, 1]; float samples come back as stored (torchaudio does the
    // same), so only integer formats are range-checked.
    if (info.format == bindery::data::WavSampleFormat::kPcm) {
      for (float v : wave.samples.to_vector())
        if (!(v >= -1.0f && v <= 1.0f))
          bindery::fuzz::round_trip_failed("wav", "a PCM sample outside [-1, 1]");
    }
  });
  return 0;
}
