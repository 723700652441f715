// WAV reading: every format against hand-computed values, the reference's torchaudio.load on the
// fixtures (bit for bit), and malformed files -> FormatError with file name and byte offset.
#include "audio_test_util.hpp"

#include <limits>

using bindery::FormatError;
using bindery::data::read_wav;
using bindery::data::read_wav_bytes;
using bindery::data::WavInfo;
using bindery::data::WavSampleFormat;
using bindery::testing::audio::WavBuilder;
namespace audio = bindery::testing::audio;

namespace {

/// A valid file: fmt + data with the given payload.
std::string simple_wav(uint16_t tag, uint16_t channels, uint32_t rate, uint16_t bits,
                       const std::string& samples) {
  return WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(tag, channels, rate, bits)) +
                          WavBuilder::chunk("data", samples));
}

template <class T = float>
std::vector<T> decode(const std::string& bytes, WavInfo* info = nullptr) {
  return read_wav_bytes<T>(WavBuilder::span(bytes), "crafted.wav", info).samples.to_vector();
}

}  // namespace

TEST_CASE("wav: 16-bit PCM scales by 1/32768, channels are de-interleaved", "[data][wav]") {
  const int16_t s[] = {0, 16384, -32768, 32767, -1, 1};  // 3 frames x 2 channels
  WavInfo info;
  const auto v = decode(simple_wav(1, 2, 8000, 16, WavBuilder::raw(s, sizeof(s))), &info);
  CHECK(info.channels == 2);
  CHECK(info.sample_rate == 8000);
  CHECK(info.frames == 3);
  CHECK(info.bits_per_sample == 16);
  CHECK(info.format == WavSampleFormat::kPcm);
  CHECK(v == std::vector<float>{0.0f, -1.0f, -1.0f / 32768, 0.5f, 32767.0f / 32768, 1.0f / 32768});
}

TEST_CASE("wav: 8-bit unsigned, 24-bit and 32-bit PCM", "[data][wav]") {
  const uint8_t u8[] = {0, 128, 255, 64};
  CHECK(decode(simple_wav(1, 1, 8000, 8, WavBuilder::raw(u8, 4))) ==
        std::vector<float>{-1.0f, 0.0f, 127.0f / 128, -0.5f});

  // 24-bit little endian: 0x400000 = 2^22 -> 0.5; 0x800000 -> -1; 0xFFFFFF -> -2^-23; 0x000001 -> 2^-23.
  const uint8_t s24[] = {0x00, 0x00, 0x40, 0x00, 0x00, 0x80, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x00};
  CHECK(decode(simple_wav(1, 1, 22050, 24, WavBuilder::raw(s24, 12))) ==
        std::vector<float>{0.5f, -1.0f, -std::ldexp(1.0f, -23), std::ldexp(1.0f, -23)});

  // 32-bit: int -> float rounds to 24 bits first (as FFmpeg does), then * 2^-31.
  const int32_t s32[] = {std::numeric_limits<int32_t>::min(), 1 << 30, 2147483647, 3};
  CHECK(decode(simple_wav(1, 1, 48000, 32, WavBuilder::raw(s32, 16))) ==
        std::vector<float>{-1.0f, 0.5f, 1.0f, 3.0f * std::ldexp(1.0f, -31)});
  // In double the same file is exact.
  CHECK(decode<double>(simple_wav(1, 1, 48000, 32, WavBuilder::raw(s32, 16)))[2] ==
        2147483647.0 / 2147483648.0);
}

TEST_CASE("wav: IEEE float 32 and 64-bit, values beyond [-1, 1] are kept", "[data][wav]") {
  const float f32[] = {1.5f, -0.25f, 0.0f, -3.0f};
  CHECK(decode(simple_wav(3, 2, 44100, 32, WavBuilder::raw(f32, 16))) ==
        std::vector<float>{1.5f, 0.0f, -0.25f, -3.0f});
  const double f64[] = {0.1, -2.5};
  WavInfo info;
  const auto v = decode(simple_wav(3, 1, 44100, 64, WavBuilder::raw(f64, 16)), &info);
  CHECK(info.format == WavSampleFormat::kFloat);
  CHECK(info.bits_per_sample == 64);
  CHECK(v == std::vector<float>{0.1f, -2.5f});
  CHECK(decode<double>(simple_wav(3, 1, 44100, 64, WavBuilder::raw(f64, 16))) ==
        std::vector<double>{0.1, -2.5});
}

TEST_CASE("wav: WAVE_FORMAT_EXTENSIBLE with PCM and float sub-formats", "[data][wav]") {
  const int16_t s[] = {16384, -16384, 8192, 0};
  WavInfo info;
  const auto v =
      decode(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt_extensible(1, 2, 96000, 16, 16)) +
                              WavBuilder::chunk("data", WavBuilder::raw(s, 8))),
             &info);
  CHECK(info.extensible);
  CHECK(info.channel_mask == 3);
  CHECK(info.sample_rate == 96000);
  CHECK(v == std::vector<float>{0.5f, 0.25f, -0.5f, 0.0f});
  const float f[] = {0.75f, -0.125f};
  CHECK(decode(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt_extensible(3, 1, 16000, 32, 32)) +
                                WavBuilder::chunk("data", WavBuilder::raw(f, 8)))) ==
        std::vector<float>{0.75f, -0.125f});
  // 20 valid bits in a 24-bit container: scaled by the container, as FFmpeg does.
  const uint8_t s24[] = {0x00, 0x00, 0x40};
  CHECK(decode(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt_extensible(1, 1, 16000, 24, 20)) +
                                WavBuilder::chunk("data", WavBuilder::raw(s24, 3)))) ==
        std::vector<float>{0.5f});
}

TEST_CASE("wav: unknown chunks (odd sizes padded, before and after data) are skipped", "[data][wav]") {
  const int16_t s[] = {1000, -1000};
  const std::string file = WavBuilder::riff(
      WavBuilder::chunk("JUNK", "abc") + WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 1, 16000, 16)) +
      WavBuilder::chunk("LIST", std::string(10, 'x')) + WavBuilder::chunk("data", WavBuilder::raw(s, 4)) +
      WavBuilder::chunk("id3 ", "tail!"));
  CHECK(decode(file) == std::vector<float>{1000.0f / 32768, -1000.0f / 32768});
  // A missing pad byte after a final odd-sized chunk is tolerated.
  const uint8_t u8[] = {200};
  CHECK(decode(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 1, 8000, 8)) + "data" +
                                WavBuilder::u32(1) + WavBuilder::raw(u8, 1))) ==
        std::vector<float>{72.0f / 128});
  // Zero frames is a valid (empty) file.
  CHECK(decode(simple_wav(1, 2, 8000, 16, "")).empty());
}

TEST_CASE("wav: the fixtures decode exactly as torchaudio.load (float32, bit for bit)",
          "[data][wav][reference]") {
  for (const auto& c : audio::cases()) {
    INFO(c.name << " (" << c.path << ")");
    WavInfo info;
    const auto wave = read_wav<float>(c.path, &info);
    CHECK(wave.sample_rate == c.source_rate);
    CHECK(wave.samples.shape() == bindery::Shape{c.channels, c.source_frames});
    const auto stored = audio::reference(c.name, "load");
    CHECK(audio::strided_max_error(wave.samples.to_vector(), c.load_step, stored) == 0.0);
  }
  // The generated files cover every format once.
  const auto info = bindery::data::inspect_wav(audio::fixture("wav/f32_11k025_3ch_0p5s.wav"));
  CHECK(info.format == WavSampleFormat::kFloat);
  CHECK(info.channels == 3);
  CHECK(info.sample_rate == 11025);
  CHECK(bindery::data::inspect_wav(audio::fixture("wav/ext_s16_44k1_stereo_0p3s.wav")).extensible);
  CHECK(bindery::data::inspect_wav(audio::fixture("wav/s24_22k05_stereo_0p5s.wav")).bits_per_sample == 24);
}

// ---- malformed files -----------------------------------------------------------------------------

namespace {

/// REQUIRE a FormatError naming the file and "at byte <offset>" and containing `needle`.
void require_wav_error(const std::string& bytes, int64_t offset, const std::string& needle) {
  BINDERY_REQUIRE_THROWS_WITH_ALL(decode(bytes), FormatError, std::string("crafted.wav"),
                                  "at byte " + std::to_string(offset), needle);
}

}  // namespace

TEST_CASE("wav: truncated at every byte -> FormatError with the offset, never a crash",
          "[data][wav][malformed]") {
  const int16_t s[] = {1, 2, 3, 4, 5, 6};
  const std::string good = WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 2, 8000, 16)) +
                                            WavBuilder::chunk("LIST", "abcd") +
                                            WavBuilder::chunk("data", WavBuilder::raw(s, sizeof(s))));
  REQUIRE(decode(good).size() == 6);
  for (size_t n = 0; n < good.size(); ++n) {
    INFO("truncated to " << n << " of " << good.size() << " bytes");
    bool format_error = false;
    try {
      (void)decode(good.substr(0, n));
    } catch (const FormatError& e) {
      format_error = std::string(e.what()).find("crafted.wav: wav at byte ") == 0;
    }
    CHECK(format_error);
  }
  // The same for a file on disk: the error names its path.
  const std::string path = audio::fixture("wav/u8_8k_mono_7s.wav");
  BINDERY_REQUIRE_THROWS_WITH_ALL(bindery::data::read_wav<float>(audio::fixture("no_such.wav")),
                                  bindery::IoError, "no_such.wav");
  CHECK(bindery::data::inspect_wav(path).frames == 56000);
}

TEST_CASE("wav: bad sizes and fields -> FormatError at the offending byte", "[data][wav][malformed]") {
  const std::string fmt16 = WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 1, 8000, 16));
  const std::string data4 = WavBuilder::chunk("data", std::string(4, '\0'));
  // RIFF extent larger than the file.
  require_wav_error(WavBuilder::riff(fmt16 + data4, 1000), 4, "RIFF size 1000");
  // A chunk larger than what remains: data declares 100 bytes, 4 follow.
  require_wav_error(WavBuilder::riff(fmt16 + WavBuilder::chunk("data", std::string(4, '\0'), 100)), 40,
                    "declares 100 bytes");
  // Size 0xFFFFFFFF (streaming writers) is refused the same way, without overflow.
  require_wav_error(WavBuilder::riff(fmt16 + WavBuilder::chunk("data", std::string(4, '\0'), 0xFFFFFFFF)), 40,
                    "declares 4294967295 bytes");
  // fmt too small.
  require_wav_error(WavBuilder::riff(WavBuilder::chunk("fmt ", std::string(14, '\0')) + data4), 16,
                    "fmt chunk of 14");
  // Zero channels, zero rate, block align mismatch.
  require_wav_error(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 0, 8000, 16, 2)) + data4),
                    22, "zero channels");
  require_wav_error(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 1, 0, 16)) + data4), 24,
                    "zero sample rate");
  require_wav_error(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 2, 8000, 16, 2)) + data4),
                    32, "block align 2 != channels (2) * bits (16) / 8");
  // Unsupported encodings and widths.
  require_wav_error(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(2, 1, 8000, 4, 0)) + data4),
                    20, "unsupported format tag 2");
  require_wav_error(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(1, 1, 8000, 12, 1)) + data4),
                    34, "PCM with 12 bits");
  require_wav_error(WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt(3, 1, 8000, 16)) + data4), 34,
                    "IEEE float with 16 bits");
  // Extensible: bad GUID, valid bits beyond the container.
  require_wav_error(
      WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt_extensible(1, 1, 8000, 16, 16, false)) +
                       data4),
      44, "GUID");
  require_wav_error(
      WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt_extensible(1, 1, 8000, 16, 17)) + data4), 38,
      "valid bits 17");
  // Chunk order and multiplicity.
  require_wav_error(WavBuilder::riff(data4 + fmt16), 12, "data chunk before the fmt chunk");
  require_wav_error(WavBuilder::riff(fmt16 + fmt16 + data4), 36, "second fmt chunk");
  require_wav_error(WavBuilder::riff(fmt16 + data4 + data4), 48, "second data chunk");
  require_wav_error(WavBuilder::riff(fmt16), 12, "no data chunk");
  require_wav_error(WavBuilder::riff(data4.substr(0, 0)), 12, "no fmt chunk");
  // Partial frame.
  require_wav_error(WavBuilder::riff(fmt16 + WavBuilder::chunk("data", std::string(3, '\0'))), 40,
                    "data size 3 is not a multiple of the frame size 2");
  // Not a WAV at all.
  require_wav_error("RIFX" + std::string(40, '\0'), 0, "no 'RIFF' magic");
  require_wav_error("RF64" + std::string(40, '\0'), 0, "RF64");
  require_wav_error(WavBuilder::riff(fmt16 + data4).replace(8, 4, "AVI "), 8, "form type");
  // Chunk header cut by the RIFF extent.
  require_wav_error(WavBuilder::riff(fmt16 + data4 + "LI"), 48, "truncated chunk header");
}

TEST_CASE("wav: random corruption never crashes (typed errors only)", "[data][wav][malformed]") {
  const int16_t s[] = {1, -2, 3, -4};
  const std::string good =
      WavBuilder::riff(WavBuilder::chunk("fmt ", WavBuilder::fmt_extensible(1, 2, 8000, 16, 16)) +
                       WavBuilder::chunk("data", WavBuilder::raw(s, sizeof(s))));
  bindery::Philox rng(2024);
  int parsed = 0, refused = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    std::string bytes = good;
    const uint64_t flips = 1 + rng.next_below(4);
    for (uint64_t f = 0; f < flips; ++f)
      bytes[rng.next_below(bytes.size())] = static_cast<char>(rng.next_below(256));
    try {
      (void)decode(bytes);
      ++parsed;
    } catch (const FormatError&) {
      ++refused;
    }
  }
  CHECK(parsed + refused == 4000);
  CHECK(refused > 100);
}
