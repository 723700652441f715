// bindery/models/imagebind/modality.hpp — Modality: a modality is a name, as in the reference.
//
//   ```cpp body
//   const ib::Modality audio = ib::Modality::kAudio;  // one of the six built-in modalities ("audio")
//   const ib::Modality trajectory("trajectory");      // a modality of your own: any lower-case identifier
//   static_assert(ib::Modality::kImu < ib::Modality("aardvark"));  // the built-in six come first
//   // model.add_encoder(trajectory, encoder): ImageBindModel holds it like the built-in ones
//   ```
//
// The reference ImageBind keys everything by the modality's string ("vision", "text", "audio",
// "depth", "thermal", "imu"): its ModuleDicts, its forward's input dict and every checkpoint key
// (`modality_trunks.audio.blocks.0...`). So does bindery: a Modality is a short name (a small value
// type, no allocation, usable in constant expressions). The six built-in names keep the reference's
// order — `std::map<Modality, ...>` lists vision, text, audio, depth, thermal, imu first, then the
// user's modalities by name — so a model's key order is the reference's.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <string_view>

#include "bindery/core/error.hpp"

namespace bindery::models::imagebind {

class Modality {
 public:
  /// Longest name a modality may have.
  static constexpr size_t kMaxNameLength = 31;

  /// The modality named `name`: 1 to 31 characters of [a-z0-9_], starting with a letter (names are
  /// the second component of checkpoint keys: no dots, no spaces). Throws ValueError otherwise.
  constexpr explicit Modality(std::string_view name) {
    if (!is_valid_name(name)) {
      throw ValueError(::bindery::detail::concat(
          "Modality: invalid name '", name, "' (1 to ", kMaxNameLength,
          " characters of a-z, 0-9 and _, starting with a letter: it becomes part of checkpoint keys)"));
    }
    for (size_t i = 0; i < name.size(); ++i) name_[i] = name[i];
    size_ = static_cast<uint8_t>(name.size());
    for (size_t i = 0; i < kBuiltinNames.size(); ++i) {
      if (name == kBuiltinNames[i]) builtin_ = static_cast<int8_t>(i);
    }
  }

  /// 1 to 31 characters of [a-z0-9_], starting with a letter.
  static constexpr bool is_valid_name(std::string_view name) {
    bool ok = !name.empty() && name.size() <= kMaxNameLength && name[0] >= 'a' && name[0] <= 'z';
    for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
    return ok;
  }

  constexpr std::string_view name() const { return {name_.data(), size_}; }
  /// The name as a NUL-terminated string (valid as long as this Modality).
  constexpr const char* c_str() const { return name_.data(); }
  /// True for the six modalities of the reference ImageBind.
  constexpr bool is_builtin() const { return builtin_ >= 0; }
  /// 0..5 for vision, text, audio, depth, thermal, imu (the reference's order); -1 otherwise.
  constexpr int builtin_index() const { return builtin_; }

  static const Modality kVision, kText, kAudio, kDepth, kThermal, kImu;

  friend constexpr bool operator==(const Modality& a, const Modality& b) { return a.name() == b.name(); }
  /// The built-in modalities first, in the reference's order, then the others by name.
  friend constexpr std::strong_ordering operator<=>(const Modality& a, const Modality& b) {
    const int ra = a.is_builtin() ? a.builtin_ : static_cast<int>(kBuiltinNames.size());
    const int rb = b.is_builtin() ? b.builtin_ : static_cast<int>(kBuiltinNames.size());
    if (ra != rb) return ra <=> rb;
    return a.name() <=> b.name();
  }
  friend std::ostream& operator<<(std::ostream& out, const Modality& m) { return out << m.name(); }

 private:
  static constexpr std::array<std::string_view, 6> kBuiltinNames = {"vision", "text",    "audio",
                                                                    "depth",  "thermal", "imu"};

  std::array<char, kMaxNameLength + 1> name_{};  // NUL-terminated
  uint8_t size_ = 0;
  int8_t builtin_ = -1;
};

inline constexpr Modality Modality::kVision{"vision"};
inline constexpr Modality Modality::kText{"text"};
inline constexpr Modality Modality::kAudio{"audio"};
inline constexpr Modality Modality::kDepth{"depth"};
inline constexpr Modality Modality::kThermal{"thermal"};
inline constexpr Modality Modality::kImu{"imu"};

/// The six modalities of ImageBind, in the reference's order (the order of its ModuleDicts).
inline constexpr std::array<Modality, 6> kModalities = {Modality::kVision,  Modality::kText,
                                                        Modality::kAudio,   Modality::kDepth,
                                                        Modality::kThermal, Modality::kImu};

/// The modality's name: the second component of every checkpoint key
/// (`modality_trunks.vision.blocks.0...`). The pointer stays valid for the whole program, whatever
/// the lifetime of `modality` (the names of the user's modalities are interned once each).
inline const char* modality_name(const Modality& modality) {
  static constexpr std::array<const char*, 6> kLiterals = {"vision", "text",    "audio",
                                                           "depth",  "thermal", "imu"};
  if (modality.is_builtin()) return kLiterals[static_cast<size_t>(modality.builtin_index())];
  static std::mutex mutex;
  static std::set<std::string, std::less<>> names;
  const std::lock_guard<std::mutex> lock(mutex);
  return names.emplace(modality.name()).first->c_str();
}

/// The BUILT-IN Modality named `name`; throws ValueError listing the valid names (for command lines
/// and files where only the reference's six make sense). A modality of your own is Modality(name).
inline Modality modality_from_name(std::string_view name) {
  for (const Modality& m : kModalities) {
    if (name == m.name()) return m;
  }
  throw ValueError(::bindery::detail::concat("unknown modality '", name,
                                             "' (expected vision, text, audio, depth, thermal or imu; a ",
                                             "modality of your own is Modality(\"", name, "\"))"));
}

/// The number a modality's weights are seeded with inside a model: the built-in index (0..5, as
/// before modalities were open: the same weights), or a 64-bit FNV-1a hash of the name.
inline uint64_t modality_seed_index(const Modality& modality) {
  if (modality.is_builtin()) return static_cast<uint64_t>(modality.builtin_index());
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : modality.name()) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

}  // namespace bindery::models::imagebind
