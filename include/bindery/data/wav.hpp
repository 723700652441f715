// bindery/data/wav.hpp — RIFF/WAVE files into float samples in [-1, 1], as torchaudio.load gives them.
//
// Accepted: PCM 8 (unsigned), 16, 24 and 32-bit integers; IEEE float 32 and 64-bit; WAVE_FORMAT_PCM (1),
// WAVE_FORMAT_IEEE_FLOAT (3) and WAVE_FORMAT_EXTENSIBLE (0xFFFE, sub-format PCM or float); any channel
// count >= 1 and any sample rate >= 1. Unknown chunks (LIST, fact, cue, ...) are skipped.
// Refused with a FormatError naming the file and the byte offset: a chunk size past the end of the
// RIFF extent, block_align != channels * bits / 8, zero channels or rate, a data chunk before fmt,
// two fmt or two data chunks, a data size that is not a whole number of frames, compressed formats
// (ADPCM, mu-law, ...), RF64. Nothing is trusted before it is checked against the real size.
//
// Scaling (what FFmpeg, under torchaudio.load / torchcodec, produces as float32):
//   u8: (x - 128) / 128     s16: x / 2^15     s24: x / 2^23     s32: float(x) / 2^31
//   f32: x (values outside [-1, 1] are kept)  f64: float(x)
// With T = float the result is bit-identical to torchaudio.load; with T = double it is exact.
//
// Why our own reader and not libsndfile (DESIGN §6 lists it as optional): WAV PCM/float is ~200
// lines, a hard dependency for it is not worth it; errors here are typed FormatErrors with the file
// and byte offset (libsndfile returns a string code); and the parse is ONE pass over a bounds-checked
// span — the class of bug behind dr_wav #300 (a separate count pass disagreeing with the read pass)
// and libsndfile's decoder CVEs cannot happen in code that decodes only PCM and float.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/io/file.hpp"

namespace bindery::data {

/// How the samples of a WAV file are stored.
enum class WavSampleFormat { kPcm, kFloat };

/// What a WAV file declares, after validation.
struct WavInfo {
  WavSampleFormat format = WavSampleFormat::kPcm;
  int64_t channels = 0;
  int64_t sample_rate = 0;
  int64_t bits_per_sample = 0;  // container bits: 8, 16, 24, 32 (PCM) or 32, 64 (float)
  int64_t valid_bits = 0;       // WAVE_FORMAT_EXTENSIBLE's wValidBitsPerSample, else bits_per_sample
  bool extensible = false;      // format tag 0xFFFE
  uint32_t channel_mask = 0;    // speaker positions (extensible only)
  int64_t frames = 0;           // samples per channel
  int64_t data_offset = 0;      // byte where the samples start
};

/// A decoded waveform: samples (C, N), channel-major, and its rate in Hz.
template <class T = float, class B = Cpu>
struct Waveform {
  Tensor<T, B> samples;  // (channels, frames)
  int64_t sample_rate = 0;
};

namespace detail {

inline constexpr std::array<unsigned char, 14> kWavGuidTail = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                                               0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

/// Checked access to the bytes of one WAV file; every read names what it reads for the error.
class WavBytes {
 public:
  WavBytes(std::span<const unsigned char> bytes, const std::string& name) : bytes_(bytes), name_(name) {}
  int64_t size() const { return static_cast<int64_t>(bytes_.size()); }
  const unsigned char* at(int64_t offset, int64_t n, const char* what) const {
    if (offset < 0 || n < 0 || offset > size() || n > size() - offset)
      fail(offset, what, ": needs ", n, " bytes but the file ends at byte ", size());
    return bytes_.data() + offset;
  }
  uint16_t u16(int64_t offset, const char* what) const { return io::read_le<uint16_t>(at(offset, 2, what)); }
  uint32_t u32(int64_t offset, const char* what) const { return io::read_le<uint32_t>(at(offset, 4, what)); }
  template <class... Parts>
  [[noreturn]] void fail(int64_t offset, const Parts&... parts) const {
    throw io::format_error(name_, "wav", static_cast<uint64_t>(offset), parts...);
  }

 private:
  std::span<const unsigned char> bytes_;
  const std::string& name_;
};

/// Parses and validates the fmt chunk whose payload starts at `at` and holds `size` bytes.
inline void parse_wav_fmt(const WavBytes& in, int64_t at, int64_t size, WavInfo& info) {
  if (size < 16) in.fail(at - 4, "fmt chunk of ", size, " bytes (at least 16 needed)");
  const uint16_t tag = in.u16(at, "fmt format tag");
  info.channels = in.u16(at + 2, "fmt channels");
  info.sample_rate = in.u32(at + 4, "fmt sample rate");
  const int64_t block_align = in.u16(at + 12, "fmt block align");
  info.bits_per_sample = in.u16(at + 14, "fmt bits per sample");
  info.valid_bits = info.bits_per_sample;
  uint16_t format = tag;
  if (tag == 0xFFFE) {
    info.extensible = true;
    if (size < 40) in.fail(at - 4, "WAVE_FORMAT_EXTENSIBLE fmt chunk of ", size, " bytes (40 needed)");
    const uint16_t extra = in.u16(at + 16, "fmt cbSize");
    if (extra < 22) in.fail(at + 16, "WAVE_FORMAT_EXTENSIBLE cbSize ", extra, " (22 needed)");
    info.valid_bits = in.u16(at + 18, "fmt valid bits");
    info.channel_mask = in.u32(at + 20, "fmt channel mask");
    format = in.u16(at + 24, "fmt sub-format");
    if (std::memcmp(in.at(at + 26, 14, "fmt sub-format GUID"), kWavGuidTail.data(), 14) != 0)
      in.fail(at + 24, "WAVE_FORMAT_EXTENSIBLE sub-format GUID is not a KSDATAFORMAT_SUBTYPE_* GUID");
    if (info.valid_bits == 0 || info.valid_bits > info.bits_per_sample)
      in.fail(at + 18, "valid bits ", info.valid_bits, " outside 1..", info.bits_per_sample);
  }
  if (format == 1) {
    info.format = WavSampleFormat::kPcm;
    if (info.bits_per_sample != 8 && info.bits_per_sample != 16 && info.bits_per_sample != 24 &&
        info.bits_per_sample != 32)
      in.fail(at + 14, "PCM with ", info.bits_per_sample, " bits per sample (supported: 8, 16, 24, 32)");
  } else if (format == 3) {
    info.format = WavSampleFormat::kFloat;
    if (info.bits_per_sample != 32 && info.bits_per_sample != 64)
      in.fail(at + 14, "IEEE float with ", info.bits_per_sample, " bits per sample (supported: 32, 64)");
  } else {
    in.fail(tag == 0xFFFE ? at + 24 : at, "unsupported format tag ", format,
            " (supported: 1 = PCM, 3 = IEEE float, as such or inside WAVE_FORMAT_EXTENSIBLE 0xFFFE;"
            " 2 = MS ADPCM, 6/7 = A-law/mu-law, 85 = MP3 and the rest are compressed formats)");
  }
  if (info.channels == 0) in.fail(at + 2, "zero channels");
  if (info.sample_rate == 0) in.fail(at + 4, "zero sample rate");
  if (block_align != info.channels * info.bits_per_sample / 8)
    in.fail(at + 12, "block align ", block_align, " != channels (", info.channels, ") * bits (",
            info.bits_per_sample, ") / 8");
}

/// Walks the RIFF chunks once: fmt is validated when met, data must come after it.
inline WavInfo parse_wav_header(const WavBytes& in) {
  const unsigned char* riff = in.at(0, 12, "RIFF header");
  if (std::memcmp(riff, "RF64", 4) == 0) in.fail(0, "RF64 (WAV > 4 GiB) is not supported");
  if (std::memcmp(riff, "RIFF", 4) != 0) in.fail(0, "not a RIFF file (no 'RIFF' magic)");
  if (std::memcmp(riff + 8, "WAVE", 4) != 0) in.fail(8, "RIFF file of form type other than 'WAVE'");
  const int64_t riff_size = in.u32(4, "RIFF size");
  if (riff_size < 4 || riff_size > in.size() - 8)
    in.fail(4, "RIFF size ", riff_size, " does not fit the file of ", in.size(), " bytes");
  const int64_t end = 8 + riff_size;
  WavInfo info;
  bool has_fmt = false, has_data = false;
  int64_t pos = 12;
  while (pos < end) {
    if (end - pos < 8) in.fail(pos, "truncated chunk header (", end - pos, " bytes left in the RIFF extent)");
    const unsigned char* header = in.at(pos, 8, "chunk header");
    const int64_t size = io::read_le<uint32_t>(header + 4);
    const int64_t payload = pos + 8;
    if (size > end - payload)
      in.fail(pos + 4, "chunk '", std::string(reinterpret_cast<const char*>(header), 4), "' declares ", size,
              " bytes but only ", end - payload, " remain");
    if (std::memcmp(header, "fmt ", 4) == 0) {
      if (has_fmt) in.fail(pos, "second fmt chunk");
      parse_wav_fmt(in, payload, size, info);
      has_fmt = true;
    } else if (std::memcmp(header, "data", 4) == 0) {
      if (!has_fmt) in.fail(pos, "data chunk before the fmt chunk");
      if (has_data) in.fail(pos, "second data chunk");
      const int64_t frame_bytes = info.channels * info.bits_per_sample / 8;
      if (size % frame_bytes != 0)
        in.fail(pos + 4, "data size ", size, " is not a multiple of the frame size ", frame_bytes);
      info.frames = size / frame_bytes;
      info.data_offset = payload;
      has_data = true;
    }
    // Chunks are padded to an even size; a missing final pad byte is tolerated.
    pos = payload + size + (size & 1);
  }
  if (!has_fmt) in.fail(12, "no fmt chunk");
  if (!has_data) in.fail(12, "no data chunk");
  return info;
}

/// Converts the interleaved samples to T, channel-major, with torchaudio.load's scaling.
template <class T>
void decode_wav_samples(const WavInfo& info, const unsigned char* data, T* out) {
  const int64_t channels = info.channels, frames = info.frames;
  auto store = [&](auto&& sample_at) {
    for (int64_t f = 0; f < frames; ++f)
      for (int64_t c = 0; c < channels; ++c) out[c * frames + f] = sample_at(f * channels + c);
  };
  // Scales written as float products, in the order FFmpeg's sample-format conversion uses, so that
  // T = float reproduces torchaudio.load bit for bit.
  if (info.format == WavSampleFormat::kFloat && info.bits_per_sample == 32) {
    store([&](int64_t i) { return static_cast<T>(io::read_le<float>(data + 4 * i)); });
  } else if (info.format == WavSampleFormat::kFloat) {
    store([&](int64_t i) { return static_cast<T>(io::read_le<double>(data + 8 * i)); });
  } else if (info.bits_per_sample == 8) {
    store([&](int64_t i) { return static_cast<T>(static_cast<int>(data[i]) - 128) * (T(1) / T(128)); });
  } else if (info.bits_per_sample == 16) {
    store([&](int64_t i) { return static_cast<T>(io::read_le<int16_t>(data + 2 * i)) * (T(1) / T(32768)); });
  } else if (info.bits_per_sample == 24) {
    store([&](int64_t i) {
      const unsigned char* p = data + 3 * i;
      const int32_t value = static_cast<int32_t>((uint32_t{p[0]} << 8) | (uint32_t{p[1]} << 16) |
                                                 (uint32_t{p[2]} << 24));  // sign from the top byte
      return static_cast<T>(value) * (T(1) / T(2147483648.0));
    });
  } else {
    store([&](int64_t i) {
      return static_cast<T>(io::read_le<int32_t>(data + 4 * i)) * (T(1) / T(2147483648.0));
    });
  }
}

/// The whole file in memory (pread, not mmap: a file truncated by another process meanwhile gives an
/// error, not SIGBUS).
inline std::vector<unsigned char> read_whole_file(const std::string& path) {
  const io::File file = io::File::open(path);
  std::vector<unsigned char> bytes(static_cast<size_t>(file.size()));
  file.read_at(0, bytes.data(), file.size(), "whole file");
  return bytes;
}

}  // namespace detail

/// Validates a WAV held in memory; `name` is used in error messages.
inline WavInfo inspect_wav_bytes(std::span<const unsigned char> bytes, const std::string& name) {
  return detail::parse_wav_header(detail::WavBytes(bytes, name));
}

/// Decodes a WAV held in memory (same parser as read_wav). -> samples (C, N) in [-1, 1].
template <class T = float, class B = Cpu>
Waveform<T, B> read_wav_bytes(std::span<const unsigned char> bytes, const std::string& name,
                              WavInfo* info_out = nullptr) {
  const detail::WavBytes in(bytes, name);
  const WavInfo info = detail::parse_wav_header(in);
  const unsigned char* data =
      in.at(info.data_offset, info.frames * info.channels * info.bits_per_sample / 8, "data");
  std::vector<T> host(static_cast<size_t>(info.channels * info.frames));
  detail::decode_wav_samples(info, data, host.data());
  if (info_out != nullptr) *info_out = info;
  return {Tensor<T, B>::from_vector(host, Shape{info.channels, info.frames}), info.sample_rate};
}

/// What the WAV file at `path` declares (fmt fields, frame count), fully validated.
inline WavInfo inspect_wav(const std::string& path) {
  const std::vector<unsigned char> bytes = detail::read_whole_file(path);
  return inspect_wav_bytes(bytes, path);
}

/// Reads a WAV file: samples (C, N) as torchaudio.load(path) returns them, and the sample rate.
/// Throws IoError (cannot read) or FormatError (malformed: file and byte offset in the message).
template <class T = float, class B = Cpu>
Waveform<T, B> read_wav(const std::string& path, WavInfo* info_out = nullptr) {
  const std::vector<unsigned char> bytes = detail::read_whole_file(path);
  return read_wav_bytes<T, B>(bytes, path, info_out);
}

}  // namespace bindery::data
