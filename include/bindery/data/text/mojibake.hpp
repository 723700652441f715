// bindery/data/text/mojibake.hpp — ftfy's mojibake repair (ftfy.fix_encoding, ftfy 6.3, default
// configuration), the step of ftfy.fix_text that data/text/clean.hpp runs after HTML unescaping.
//
// Mojibake is UTF-8 that was decoded with a single-byte codec ("été" read as Latin-1 is "Ã©tÃ©").
// ftfy repairs it in steps, each applied to the whole text, until a step changes nothing:
//   1. text that is ASCII, or that its badness heuristic (ftfy.badness.is_bad: 37 patterns of 1 to 7
//      code points over ~450 classified characters) does not flag, is left alone;
//   2. otherwise each codec of ftfy's list (Latin-1, sloppy Windows-1252/1251/1250/1253/1254/1257,
//      ISO-8859-2, MacRoman, CP437) that can encode every code point encodes the text; then
//      restore_byte_a0 (not for MacRoman: spaces that stood for byte A0 inside UTF-8 sequences, and
//      "Ã " meaning "à ") and, for the sloppy codecs, replace_lossy_sequences (UTF-8 sequences with
//      bytes lost to U+FFFD, encoded as byte 1A, become U+FFFD); the first codec whose bytes decode
//      as UTF-8 (with CESU-8 surrogate pairs and Java's C0 80 null accepted) gives the result;
//   3. else decode_inconsistent_utf8: runs of UTF-8-looking characters (ftfy's UTF8_DETECTOR_RE)
//      that are themselves bad are repaired on their own;
//   4. else C1 controls are read as Windows-1252.
// The character classes and codec tables are generated from the installed ftfy into
// data/text/mojibake_tables.hpp; the patterns are hand-written matchers over them. One quirk of
// ftfy's decoder is kept: its `$` also matches before a final "\n", so bytes C0 0A ending the text
// decode to U+0000 (the newline is lost), as do the CESU-8 pairs whose last byte is that "\n".
// tests/data/text/test_mojibake.cpp checks is_bad and fix_text against ftfy on generated strings.
#pragma once

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindery/data/text/mojibake_tables.hpp"
#include "bindery/data/text/tables.hpp"

namespace bindery::data::text {

/// Python's str.isspace (what str.strip() removes; the `re` module's \s on str).
inline bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

namespace detail {

template <size_t N>
bool in_ranges(const tables::CodepointRange (&ranges)[N], char32_t c) {
  const auto it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                                   [](char32_t v, const tables::CodepointRange& r) { return v < r.first; });
  return it != std::begin(ranges) && c <= std::prev(it)->last;
}

}  // namespace detail

namespace detail::mojibake {

// ---- character classes ------------------------------------------------------------------------------

/// Class bits of the code points below U+2600 (all but four of the classified ones), by index.
inline constexpr std::array<uint32_t, 0x2600> kDenseClasses = [] {
  std::array<uint32_t, 0x2600> table{};
  for (const auto& e : tables::kMojibakeClasses)
    if (e.codepoint < table.size()) table[e.codepoint] = e.classes;
  return table;
}();

/// The class bits (tables::kMb*) of a code point.
inline uint32_t classes_of(char32_t c) {
  if (c < kDenseClasses.size()) return kDenseClasses[c];
  // the few classified code points above the dense table
  constexpr auto kSparse =
      std::find_if(std::begin(tables::kMojibakeClasses), std::end(tables::kMojibakeClasses),
                   [](const auto& e) { return e.codepoint >= kDenseClasses.size(); });
  if (kSparse == std::end(tables::kMojibakeClasses) || c < kSparse->codepoint) return 0;
  const auto it =
      std::lower_bound(kSparse, std::end(tables::kMojibakeClasses), c,
                       [](const tables::MojibakeClassEntry& e, char32_t v) { return e.codepoint < v; });
  return it != std::end(tables::kMojibakeClasses) && it->codepoint == c ? it->classes : 0;
}

/// The `re` module's \w on str (Python's Unicode 14): letters, numbers, '_'.
inline bool is_python_word(char32_t c) {
  if (c == U'_') return true;
  if (c > 0x10FFFF || in_ranges(tables::kAssignedAfterPythonUnicode, c)) return false;
  const auto k = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
         (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

inline bool one_of(char32_t c, std::u32string_view set) {
  return set.find(c) != std::u32string_view::npos;
}

inline bool ascii_lower(char32_t c) {
  return c >= U'a' && c <= U'z';
}
inline bool ascii_letter(char32_t c) {
  return ascii_lower(c) || (c >= U'A' && c <= U'Z');
}

// ---- ftfy.badness.is_bad ------------------------------------------------------------------------------

/// The literal code points that BADNESS_RE's patterns accept in second position (bad_at skips most
/// patterns when that position is unclassified; tests/data/text/test_mojibake.cpp checks these are all
/// classified).
inline constexpr std::u32string_view kBadnessSecondLiterals =
    U"°€œŠš¢£Ÿž\u00a0\u00ad®©·»–—´²³µ¹¼½¾±∂†≠™≤≥¥øÄâóЂ¡ ўÂ";

/// Whether one of the alternatives of ftfy's BADNESS_RE matches at position i. `m` holds the class
/// bits of t[i..i+3] (zero past the end); `at(k)` is t[i + k], or a value no pattern accepts.
inline bool bad_at(std::u32string_view t, const uint32_t (&m)[4], size_t i) {
  using namespace tables;
  const size_t n = t.size();
  auto at = [&](size_t k) -> char32_t { return i + k < n ? t[i + k] : char32_t{0x110000}; };
  const uint32_t a = m[0], b = m[1], c = m[2];
  const char32_t c0 = t[i], c1 = at(1), c2 = at(2);
  constexpr uint32_t LA = kMbLowerAccented, UA = kMbUpperAccented, BOX = kMbBox, SP = kMbStart, EP = kMbEnd,
                     CUR = kMbCurrency, NUM = kMbNumeric, LAW = kMbLaw, BAD = kMbBad;
  if (a & kMbC1) return true;
  if (b == 0) {
    // The second code point of every other pattern is classified (the literal ones too: see
    // kBadnessSecondLiterals), except for Œ/œ + non-letter and the optional space of [a-z]\s?[ÃÂ][ ].
    if (c0 == U'Œ' || c0 == U'œ') return i + 1 < n && !ascii_letter(c1);
    return ascii_lower(c0) && is_python_space(c1) && (c2 == U'Ã' || c2 == U'Â') && at(3) == U' ';
  }
  // Two-class patterns, most of them: [first][second] (and a third class for a few).
  if ((a & (BAD | LA | UA | BOX | SP | EP | CUR | NUM | LAW)) && (b & BAD)) return true;
  if (ascii_letter(c0) && (b & (kMbLowerCommon | kMbUpperCommon)) && (c & BAD)) return true;
  if ((a & BAD) && (b & (LA | UA | BOX | SP | EP | CUR | NUM | LAW))) return true;
  if ((a & (LA | kMbLowerCommon | BOX | EP | CUR | NUM)) && (b & UA)) return true;
  if ((a & (BOX | EP | CUR | NUM)) && (b & LA)) return true;
  if ((a & (LA | BOX | EP)) && (b & CUR)) return true;
  if (is_python_space(c0) && (b & UA) && (c & CUR)) return true;
  if ((a & (UA | BOX)) && (b & (NUM | LAW))) return true;
  if ((a & (LA | UA | BOX | CUR | EP)) && (b & SP) && (c & NUM)) return true;
  if ((a & (LA | UA | CUR | NUM | BOX | LAW)) && (b & EP) && (c & SP)) return true;
  if ((a & (CUR | NUM | BOX)) && (b & SP)) return true;
  if (ascii_lower(c0) && (b & UA) && (c & (SP | CUR))) return true;
  if ((a & BOX) && (b & kMbKaomoji)) return true;
  if ((a & (LA | UA | CUR | NUM | SP | EP | LAW)) && (b & BOX)) return true;
  if ((a & BOX) && (b & EP)) return true;
  if ((a & (LA | UA)) && (b & (SP | EP)) && i + 2 < n && is_python_word(c2)) return true;
  // Patterns that do not start with a particular character.
  if ((a & UA) && c1 == U'°') return true;
  if ((ascii_lower(c0) || c0 == U'.' || c0 == U',' || c0 == U'?' || c0 == U'!' || (a & EP)) && c1 == U'Â' &&
      (c2 == U' ' || (c & (SP | EP))))
    return true;
  if (ascii_lower(c0)) {  // [a-z]\s?[ÃÂ][ ]
    if ((c1 == U'Ã' || c1 == U'Â') && c2 == U' ') return true;
    if (is_python_space(c1) && (c2 == U'Ã' || c2 == U'Â') && at(3) == U' ') return true;
  }
  // Patterns that start with a particular character.
  auto cyrillic_or_greek_pair = [&](std::u32string_view letters, bool cyrillic) {
    const bool middle = (b & (kMbC1 | BAD | SP | EP | CUR)) || c1 == U'°' || (cyrillic && c1 == U'µ');
    return middle && one_of(c2, letters);
  };
  auto arabic = [](uint32_t bits, char32_t ch) {
    return (bits & (kMbCommon | CUR | BAD | NUM | SP)) || one_of(ch, U"ŸŠ®°µ»");
  };
  switch (c0) {
    case U'Œ':
    case U'œ':
      return i + 1 < n && !ascii_letter(c1);
    case U'Ã':
      if (c1 == 0xA0 || c1 == U'¡') return true;
      [[fallthrough]];
    case U'Â':
      if (i == 0 && c1 == U' ') return true;
      [[fallthrough]];
    case U'Î':
    case U'Ð':
      return one_of(c1, U"€œŠš¢£Ÿž\u00a0\u00ad®©°·»–—´") || (b & (SP | EP));
    case U'×':
      return c1 == U'²' || c1 == U'³';
    case U'Ø':
    case U'Ù':
      return (c2 == U'Ø' || c2 == U'Ù') && arabic(b, c1) && arabic(m[3], at(3));
    case U'à':
      return one_of(c1, U"²µ¹¼½¾");
    case U'√':
      return one_of(c1, U"±∂†≠®™´≤≥¥µø");
    case U'≈':
      return c1 == U'°' || c1 == U'¢';
    case U'‚':
      return (c1 == U'Ä' && one_of(c2, U"ìîïòôúùû†°¢π")) ||
             ((c1 == U'â' || c1 == U'ó') && one_of(c2, U"àä°ê"));
    case U'в':
      return c1 == U'Ђ';
    case U'Г':
      if (t.substr(i, 5) == U"ГўВЂВ" && i + 6 < n && t[i + 5] != U'\n' &&
          (ascii_letter(t[i + 6]) || t[i + 6] == U' '))
        return true;
      [[fallthrough]];
    case U'В':
    case U'Р':
    case U'С':
      return cyrillic_or_greek_pair(U"ВГРС", true);
    case U'β':
      return c1 == U'€' && one_of(c2, U"™\u00a0Ά\u00ad®°");
    case U'Β':
    case U'Γ':
    case U'Ξ':
    case U'Ο':
      return cyrillic_or_greek_pair(U"ΒΓΞΟ", false);
    case U'ā':
      return c1 == U'€';
    default:
      return false;
  }
}

/// Class bits of every code point of `t`, and four zeros after.
inline std::vector<uint32_t> class_masks(std::u32string_view t) {
  std::vector<uint32_t> m(t.size() + 4, 0);
  for (size_t i = 0; i < t.size(); ++i) m[i] = classes_of(t[i]);
  return m;
}

inline bool is_bad(std::u32string_view t) {
  const size_t n = t.size();
  auto mask = [&](size_t j) { return j < n ? classes_of(t[j]) : 0u; };
  uint32_t window[4] = {mask(0), mask(1), mask(2), mask(3)};  // class bits of t[i..i+3]
  for (size_t i = 0; i < n; ++i) {
    // A pattern starts with a classified code point, or with an unclassified one (an ASCII letter or
    // punctuation, a space) followed by a classified one or a space.
    const bool maybe = window[0] != 0 || window[1] != 0 || (i + 1 < n && is_python_space(t[i + 1]));
    if (maybe && bad_at(t, window, i)) return true;
    window[0] = window[1];
    window[1] = window[2];
    window[2] = window[3];
    window[3] = mask(i + 4);
  }
  return false;
}

// ---- codecs -------------------------------------------------------------------------------------------

/// Encodes `t` with codec `k` of tables::kMojibakeCodecs; nullopt when a code point has no byte.
inline std::optional<std::string> encode(std::u32string_view t, size_t k) {
  // Per codec, its code points >= U+0080 (and U+FFFD of the sloppy codecs) with their bytes, sorted.
  using Inverse = std::vector<std::pair<char32_t, uint8_t>>;
  static const std::array<Inverse, std::size(tables::kMojibakeCodecs)> inverses = [] {
    std::array<Inverse, std::size(tables::kMojibakeCodecs)> out;
    for (size_t j = 0; j < out.size(); ++j) {
      const auto& codec = tables::kMojibakeCodecs[j];
      for (size_t b = 0; b < 128; ++b) out[j].emplace_back(codec.high[b], static_cast<uint8_t>(0x80 + b));
      if (codec.sloppy) out[j].emplace_back(0xFFFD, 0x1A);
      std::sort(out[j].begin(), out[j].end());
    }
    return out;
  }();
  const bool sloppy = tables::kMojibakeCodecs[k].sloppy;
  const Inverse& inverse = inverses[k];
  std::string bytes;
  bytes.reserve(t.size());
  for (char32_t c : t) {
    if (c < 0x80 && !(sloppy && c == 0x1A)) {
      bytes.push_back(static_cast<char>(c));
      continue;
    }
    const auto it = std::lower_bound(inverse.begin(), inverse.end(), std::pair<char32_t, uint8_t>(c, 0));
    if (it == inverse.end() || it->first != c) return std::nullopt;
    bytes.push_back(static_cast<char>(it->second));
  }
  return bytes;
}

/// ftfy's "utf-8-variants" decoder, strict: UTF-8, plus CESU-8 surrogate pairs and C0 80 for U+0000
/// (with the quirk described at the top); nullopt on anything else that is not UTF-8.
inline std::optional<std::u32string> decode_utf8_variants(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  auto cont = [&](size_t j) { return j < n && s[j] >= 0x80 && s[j] <= 0xBF; };
  auto final_newline = [&](size_t j) { return j + 1 == n && s[j] == '\n'; };
  std::u32string out;
  out.reserve(n);
  for (size_t i = 0; i < n;) {
    const unsigned c = s[i];
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    if (c == 0xC0) {
      if (i + 1 < n && (s[i + 1] == 0x80 || final_newline(i + 1))) {
        out.push_back(0);
        i += 2;
        continue;
      }
      return std::nullopt;
    }
    if (c == 0xED && i + 1 < n && s[i + 1] >= 0xA0) {  // an encoded surrogate: only as a CESU-8 pair
      if (i + 6 <= n && s[i + 1] <= 0xAF && cont(i + 2) && s[i + 3] == 0xED && s[i + 4] >= 0xB0 &&
          s[i + 4] <= 0xBF && (cont(i + 5) || final_newline(i + 5))) {
        out.push_back(0x10000 + ((s[i + 1] & 0x0Fu) << 16) + ((s[i + 2] & 0x3Fu) << 10) +
                      ((s[i + 4] & 0x0Fu) << 6) + (s[i + 5] & 0x3Fu));
        i += 6;
        continue;
      }
      return std::nullopt;
    }
    int extra = 0;
    uint32_t cp = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0F;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return std::nullopt;
    }
    if (i + static_cast<size_t>(extra) >= n) return std::nullopt;
    for (int k = 1; k <= extra; ++k) {
      const unsigned b = s[i + static_cast<size_t>(k)];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return std::nullopt;
      cp = (cp << 6) | (b & 0x3F);
    }
    out.push_back(cp);
    i += static_cast<size_t>(extra) + 1;
  }
  return out;
}

// ---- byte patterns ------------------------------------------------------------------------------------

/// A set of bytes, as the class of a bytes regex.
struct ByteClass {
  uint64_t bits[4] = {0, 0, 0, 0};
  constexpr ByteClass(std::initializer_list<std::pair<unsigned, unsigned>> ranges) {
    for (const auto& [lo, hi] : ranges)
      for (unsigned b = lo; b <= hi; ++b) bits[b >> 6] |= uint64_t{1} << (b & 63);
  }
  constexpr bool has(unsigned b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
};

/// Whether `bytes` holds the sequence of classes `pattern` at position i.
inline bool match_bytes(std::string_view bytes, size_t i, std::initializer_list<ByteClass> pattern) {
  if (bytes.size() - i < pattern.size()) return false;
  for (const ByteClass& cls : pattern)
    if (!cls.has(static_cast<unsigned char>(bytes[i++]))) return false;
  return true;
}

inline constexpr ByteClass kSpaceByte{{0x20, 0x20}};
inline constexpr ByteClass kContinuationByte{{0x80, 0xBF}};

/// Length of the match of ftfy's ALTERED_UTF8_RE at i (UTF-8 with one byte A0 turned into a space),
/// or 0; its alternatives in order.
inline size_t altered_utf8_at(std::string_view b, size_t i) {
  constexpr ByteClass kLead2{{0xC2, 0xC3}, {0xC5, 0xC5}, {0xCE, 0xCE}, {0xD0, 0xD0}, {0xD9, 0xD9}};
  constexpr ByteClass kLead3Space{{0xE2, 0xE3}}, kLead3{{0xE0, 0xE3}}, kLead4{{0xF0, 0xF0}};
  constexpr ByteClass kNotA0{{0x80, 0x84}, {0x86, 0x9F}, {0xA1, 0xBF}};
  // Every alternative starts with a lead byte in [C2, F0]: most bytes are rejected here at once.
  if (i >= b.size()) return 0;
  if (const auto c = static_cast<unsigned char>(b[i]); c < 0xC2 || c > 0xF0) return 0;
  if (match_bytes(b, i, {kLead2, kSpaceByte})) return 2;
  if (match_bytes(b, i, {kLead3Space, kSpaceByte, kNotA0})) return 3;
  if (match_bytes(b, i, {kLead3, kNotA0, kSpaceByte})) return 3;
  if (match_bytes(b, i, {kLead4, kSpaceByte, kContinuationByte, kContinuationByte})) return 4;
  if (match_bytes(b, i, {kLead4, kContinuationByte, kSpaceByte, kContinuationByte})) return 4;
  if (match_bytes(b, i, {kLead4, kContinuationByte, kContinuationByte, kSpaceByte})) return 4;
  return 0;
}

inline bool has_altered_utf8(std::string_view b) {
  for (size_t i = 0; i < b.size(); ++i)
    if (altered_utf8_at(b, i)) return true;
  return false;
}

/// ftfy.fixes.restore_byte_a0: "C3 20" not starting a Portuguese "às"/"àquele"... becomes "C3 A0 20",
/// then the spaces of every ALTERED_UTF8_RE match become A0.
inline std::string restore_byte_a0(std::string_view in) {
  std::string b;
  b.reserve(in.size() + 8);
  for (size_t i = 0; i < in.size(); ++i) {
    b.push_back(in[i]);
    if (static_cast<unsigned char>(in[i]) == 0xC3 && i + 1 < in.size() && in[i + 1] == ' ') {
      const std::string_view rest = in.substr(i + 2);
      const bool keep = rest.starts_with(" ") || rest.starts_with("quele") || rest.starts_with("quela") ||
                        rest.starts_with("quilo") || rest.starts_with("s ");
      if (!keep) {
        b += "\xA0 ";
        ++i;
      }
    }
  }
  for (size_t i = 0; i < b.size();) {
    const size_t len = altered_utf8_at(b, i);
    if (len == 0) {
      ++i;
      continue;
    }
    for (size_t k = i; k < i + len; ++k)
      if (b[k] == ' ') b[k] = '\xA0';
    i += len;
  }
  return b;
}

/// Length of the match of ftfy's LOSSY_UTF8_RE at i (a UTF-8 sequence with bytes lost to 1A, or to
/// one '?'; or a lone 1A), or 0; its alternatives in order.
inline size_t lossy_utf8_at(std::string_view b, size_t i) {
  constexpr ByteClass k1A{{0x1A, 0x1A}}, kQuestion{{'?', '?'}}, kLost{{0x1A, 0x1A}, {'?', '?'}};
  constexpr ByteClass kLostOrCont{{0x1A, 0x1A}, {'?', '?'}, {0x80, 0xBF}},
      k1AOrCont{{0x1A, 0x1A}, {0x80, 0xBF}};
  constexpr ByteClass kLead2{{0xC2, 0xDF}}, kLatinLead{{0xC2, 0xC3}}, kLead3{{0xE0, 0xEF}},
      kLead4{{0xF0, 0xF4}};
  constexpr ByteClass kED{{0xED, 0xED}}, kHighSurrogate{{0xA0, 0xAF}}, kLowSurrogate{{0xB0, 0xBF}};
  // Every alternative starts with 1A or a lead byte in [C2, F4]: most bytes are rejected here at once.
  if (i >= b.size()) return 0;
  if (const auto c = static_cast<unsigned char>(b[i]); c != 0x1A && (c < 0xC2 || c > 0xF4)) return 0;
  if (match_bytes(b, i, {kLead2, k1A})) return 2;
  if (match_bytes(b, i, {kLatinLead, kQuestion})) return 2;
  if (match_bytes(b, i, {kED, kHighSurrogate, kLost, kED, kLowSurrogate, kLostOrCont})) return 6;
  if (match_bytes(b, i, {kED, kHighSurrogate, kLostOrCont, kED, kLowSurrogate, kLost})) return 6;
  if (match_bytes(b, i, {kLead3, kLost, k1AOrCont})) return 3;
  if (match_bytes(b, i, {kLead3, k1AOrCont, kLost})) return 3;
  if (match_bytes(b, i, {kLead4, kLost, k1AOrCont, k1AOrCont})) return 4;
  if (match_bytes(b, i, {kLead4, k1AOrCont, kLost, k1AOrCont})) return 4;
  if (match_bytes(b, i, {kLead4, k1AOrCont, k1AOrCont, kLost})) return 4;
  if (match_bytes(b, i, {k1A})) return 1;
  return 0;
}

/// ftfy.fixes.replace_lossy_sequences: each LOSSY_UTF8_RE match becomes the UTF-8 of U+FFFD.
inline std::string replace_lossy_sequences(std::string_view in) {
  std::string b;
  b.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    const size_t len = lossy_utf8_at(in, i);
    if (len == 0) {
      b.push_back(in[i++]);
    } else {
      b += "\xEF\xBF\xBD";
      i += len;
    }
  }
  return b;
}

// ---- fix_encoding -------------------------------------------------------------------------------------

inline std::u32string fix_encoding(std::u32string_view text);

/// Length of the match of ftfy's UTF8_DETECTOR_RE at i (runs of a UTF-8 lead character and its
/// continuation characters, not after a strict continuation character), or 0.
inline size_t utf8_detector_at(const std::vector<uint32_t>& m, size_t n, size_t i) {
  using namespace tables;
  if (i > 0 && (m[i - 1] & kMbContinuationStrict)) return 0;
  size_t j = i;
  while (j < n) {
    // (first of 2, 1 continuation | first of 3, 2 | first of 4, 3): the first alternative that matches
    size_t len = 0;
    if ((m[j] & kMbFirstOf2) && (m[j + 1] & kMbContinuation)) {
      len = 2;
    } else if ((m[j] & kMbFirstOf3) && (m[j + 1] & m[j + 2] & kMbContinuation)) {
      len = 3;
    } else if ((m[j] & kMbFirstOf4) && (m[j + 1] & m[j + 2] & m[j + 3] & kMbContinuation)) {
      len = 4;
    }
    if (len == 0 || j + len > n) break;
    j += len;
  }
  return j - i;
}

/// ftfy.fixes.decode_inconsistent_utf8: each detected run shorter than the text that is bad on its
/// own is replaced by its fix_encoding.
inline std::u32string decode_inconsistent_utf8(std::u32string_view text, const std::vector<uint32_t>& m) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t len = utf8_detector_at(m, text.size(), i);
    if (len == 0) {
      out.push_back(text[i++]);
      continue;
    }
    const std::u32string_view run = text.substr(i, len);
    if (run.size() < text.size() && is_bad(run))
      out += fix_encoding(run);
    else
      out += run;
    i += len;
  }
  return out;
}

/// One step of ftfy's fix_encoding_and_explain (the text itself when the step changes nothing).
inline std::u32string fix_encoding_step(std::u32string_view text) {
  const bool ascii = std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
  if (ascii || !is_bad(text)) return std::u32string(text);
  for (size_t k = 0; k < std::size(tables::kMojibakeCodecs); ++k) {
    std::optional<std::string> bytes = encode(text, k);
    if (!bytes) continue;
    const auto& codec = tables::kMojibakeCodecs[k];
    if (codec.name != "macroman" && has_altered_utf8(*bytes)) *bytes = restore_byte_a0(*bytes);
    if (codec.sloppy) *bytes = replace_lossy_sequences(*bytes);
    if (auto decoded = decode_utf8_variants(*bytes)) return std::move(*decoded);
  }
  const auto m = class_masks(text);
  bool detected = false;
  for (size_t i = 0; i < text.size() && !detected; ++i) detected = utf8_detector_at(m, text.size(), i) > 0;
  if (detected) {
    std::u32string fixed = decode_inconsistent_utf8(text, m);
    if (fixed != text) return fixed;
  }
  // Latin-1 that meant Windows-1252: C1 controls read as sloppy Windows-1252 (codec 1).
  std::u32string fixed(text);
  for (char32_t& c : fixed)
    if (c >= 0x80 && c <= 0x9F) c = tables::kMojibakeCodecs[1].high[c - 0x80];
  return fixed;
}

inline std::u32string fix_encoding(std::u32string_view text) {
  std::u32string current(text);
  while (true) {
    std::u32string next = fix_encoding_step(current);
    if (next == current) return current;
    current = std::move(next);
  }
}

}  // namespace detail::mojibake

/// ftfy.badness.is_bad: whether the text shows one of the character sequences typical of mojibake.
inline bool ftfy_is_bad(std::u32string_view text) {
  return detail::mojibake::is_bad(text);
}

/// ftfy.fix_encoding (default configuration): the mojibake repair described at the top.
inline std::u32string ftfy_fix_encoding(std::u32string_view text) {
  return detail::mojibake::fix_encoding(text);
}

}  // namespace bindery::data::text
