// fuzz_audio: the audio pipeline of a WAV held in memory: decode, resample to 16 kHz, Kaldi fbank,
// clips. The resampler's limits are set lower than the defaults, and the clips are short and have
// few mel bins, so one input stays fast (the defaults are tested in tests/data): what is being fuzzed
// is the arithmetic (rates, lengths, clip bounds, padding), which does not depend on those sizes.
#include "fuzz_target.hpp"

#include <bindery/data/audio.hpp>
#include <bindery/data/wav.hpp>

BINDERY_FUZZ_TARGET(audio) {
  bindery::fuzz::guarded([&] {
    const auto wave = bindery::data::read_wav_bytes<float>(bindery::fuzz::bytes_of(data, size), "fuzz.wav");
    bindery::data::AudioOptions options;
    options.resample.max_kernel_coefficients = int64_t{1} << 15;
    options.resample.max_output_samples = int64_t{1} << 16;
    options.num_mel_bins = 16;
    options.target_length = 24;
    options.clip_duration_s = 0.25;
    options.clips_per_video = 2;
    const auto clips =
        bindery::data::audio_clips_from_waveform<float>(wave.samples, wave.sample_rate, options);
    if (clips.rank() != 4 || clips.size(2) != options.num_mel_bins || clips.size(3) != options.target_length)
      bindery::fuzz::round_trip_failed("audio", "clip shape");
  });
  return 0;
}
