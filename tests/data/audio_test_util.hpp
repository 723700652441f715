// tests/data/audio_test_util.hpp — fixtures of the audio tests (tests/reference/audio, written by
// tests/reference/make_audio_text_fixtures.py) and a WAV byte builder for crafted inputs.
#pragma once

#include "test_util.hpp"

#include <bindery/data/audio.hpp>
#include <bindery/io/npy.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace bindery::testing::audio {

inline std::string fixture(const std::string& name) {
  // Appended in place: GCC 12's -Warray-bounds misfires on string(literal) + literal + name here
  // when the unit's inlining budget changes (a false positive, an error under -Werror).
  std::string path = BINDERY_TEST_DATA;
  path += "/reference/audio/";
  path += name;
  return path;
}

/// One entry of manifest.json: a WAV and what the reference made of it.
struct AudioCase {
  std::string name, path;  // path resolved: in the repository or in the shared data folder
  int64_t source_rate = 0, channels = 0, source_frames = 0, resampled_frames = 0;
  std::vector<data::SampleSpan> clips;
  std::vector<int64_t> clip_frames;
  int64_t load_step = 1, resampled_step = 1, fbank_step = 1, input_step = 1;
  double reference_noise = 0.0;  // max |torchaudio float32 fbank - the same in float64| on this file
};

inline const std::vector<AudioCase>& cases() {
  static const std::vector<AudioCase> all = [] {
    std::ifstream in(fixture("manifest.json"));
    REQUIRE(in.good());
    const auto json = nlohmann::json::parse(in);
    std::vector<AudioCase> out;
    for (const auto& c : json.at("cases")) {
      AudioCase a;
      a.name = c.at("name").get<std::string>();
      const std::string rel = c.at("path").get<std::string>();
      a.path = rel.rfind("shared:", 0) == 0 ? std::string(BINDERY_SHARED_DATA) + "/" + rel.substr(7)
                                            : std::string(BINDERY_TEST_DATA) + "/../" + rel;
      a.source_rate = c.at("source_rate");
      a.channels = c.at("channels");
      a.source_frames = c.at("source_frames");
      a.resampled_frames = c.at("resampled_frames");
      for (const auto& s : c.at("clips")) a.clips.push_back({s.at(0).get<int64_t>(), s.at(1).get<int64_t>()});
      a.clip_frames = c.at("clip_frames").get<std::vector<int64_t>>();
      a.load_step = c.at("load_step");
      a.resampled_step = c.at("resampled_step");
      a.fbank_step = c.at("fbank_step");
      a.input_step = c.at("input_step");
      a.reference_noise = c.at("fbank_float32_vs_float64");
      out.push_back(a);
    }
    return out;
  }();
  return all;
}

/// The reference values saved for `name` (`kind`: load, resampled, fbank, input), flattened.
inline std::vector<float> reference(const std::string& name, const std::string& kind) {
  return io::read_npy<float>(fixture(name + "." + kind + ".npy")).to_vector();
}

/// max |ours[i * step] - reference[i]| over the stored values (infinity when the counts disagree).
template <class T>
double strided_max_error(const std::vector<T>& ours, int64_t step, const std::vector<float>& stored) {
  const size_t expected = (ours.size() + static_cast<size_t>(step) - 1) / static_cast<size_t>(step);
  if (expected != stored.size()) return INFINITY;
  double worst = 0.0;
  for (size_t i = 0; i < stored.size(); ++i) {
    const double d = std::fabs(static_cast<double>(ours[i * static_cast<size_t>(step)]) - stored[i]);
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

/// Builds WAV files byte by byte: a RIFF header, chunks, and helpers for the usual fmt payloads.
class WavBuilder {
 public:
  static std::string u16(uint16_t v) { return raw(&v, 2); }
  static std::string u32(uint32_t v) { return raw(&v, 4); }
  template <class V>
  static std::string raw(const V* p, size_t n) {
    return std::string(reinterpret_cast<const char*>(p), n);
  }

  /// fmt payload (16 bytes): tag, channels, rate, byte rate, block align, bits.
  static std::string fmt(uint16_t tag, uint16_t channels, uint32_t rate, uint16_t bits,
                         int block_align = -1) {
    const uint16_t align =
        block_align >= 0 ? static_cast<uint16_t>(block_align) : static_cast<uint16_t>(channels * bits / 8);
    return u16(tag) + u16(channels) + u32(rate) + u32(rate * align) + u16(align) + u16(bits);
  }
  /// WAVE_FORMAT_EXTENSIBLE fmt payload (40 bytes) with sub-format `sub_tag` (1 PCM, 3 float).
  static std::string fmt_extensible(uint16_t sub_tag, uint16_t channels, uint32_t rate, uint16_t bits,
                                    uint16_t valid_bits, bool good_guid = true) {
    static const unsigned char tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                           0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    std::string guid = u16(sub_tag) + raw(tail, 14);
    if (!good_guid) guid[10] = 0x7F;
    return fmt(0xFFFE, channels, rate, bits) + u16(22) + u16(valid_bits) + u32((1u << channels) - 1) + guid;
  }
  static std::string chunk(const std::string& id, const std::string& payload, int64_t declared = -1) {
    const uint32_t size =
        declared >= 0 ? static_cast<uint32_t>(declared) : static_cast<uint32_t>(payload.size());
    std::string out = id + u32(size) + payload;
    if (payload.size() % 2 == 1 && declared < 0) out += '\0';
    return out;
  }
  static std::string riff(const std::string& chunks, int64_t declared = -1) {
    const uint32_t size =
        declared >= 0 ? static_cast<uint32_t>(declared) : static_cast<uint32_t>(4 + chunks.size());
    return "RIFF" + u32(size) + "WAVE" + chunks;
  }
  static std::span<const unsigned char> span(const std::string& bytes) {
    return {reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()};
  }
};

}  // namespace bindery::testing::audio
