// bindery/data/text/clean.hpp — the text cleaning and splitting of the CLIP tokenizer, as the
// reference (imagebind SimpleTokenizer.encode) does it in Python:
//
//   text = whitespace_clean(basic_clean(text)).lower()          basic_clean = ftfy.fix_text, then
//   tokens = regex.findall(PATTERN, text, IGNORECASE)            html.unescape twice, then strip
//
// with PATTERN = <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// Unicode data: categories, simple case mappings and NFC/NFKC from utf8proc (libutf8proc), plus
// data/text/tables.hpp (generated from Python): the HTML5 entity list, ftfy's all-caps entities,
// the letters/numbers the `regex` module knows beyond Python's Unicode 14, and the Cased /
// Case_Ignorable extras str.lower() needs for the final sigma; and data/text/mojibake_tables.hpp
// (generated from ftfy) for the mojibake repair. tests/data/text/test_tokenizer.cpp checks every code
// point (split class, lower()) against Python and ~1,400 strings end to end, mojibake included.
//
// What matches the reference exactly:
//   - html.unescape: all 2,231 HTML5 names, with and without ';', longest-prefix rule for the legacy
//     names (&notit; -> ¬it;), numeric references with Python's replacements (&#128; -> €, &#0; ->
//     U+FFFD, surrogates and > U+10FFFF -> U+FFFD, control code points -> nothing);
//   - ftfy.fix_text (6.3, default config): per-line segments; HTML unescaping unless a '<' was seen
//     (ftfy's stricter regex and its all-caps names such as &EACUTE;), the mojibake repair
//     (fix_encoding, data/text/mojibake.hpp: the badness heuristic, re-encoding with Latin-1,
//     Windows-125x, ISO-8859-2, MacRoman or CP437 and decoding as UTF-8, restore_byte_a0, lossy
//     sequences, decode_inconsistent_utf8: "Ã©tÃ©" -> "été"), C1 controls read as Windows-1252,
//     Latin ligatures, full/half width forms (NFKC), curly quotes, line breaks, ANSI terminal
//     escapes, control characters, NFC — repeated until nothing changes;
//   - str.lower (full mapping: İ -> i̇; final sigma), regex \s, \p{L}, \p{N} with IGNORECASE
//     (U+0345 matches no alternative; 'ſ matches 's).
// Input bytes that are not valid UTF-8 become U+FFFD (one per maximal invalid subpart, as Python's
// errors="replace"); Python strings cannot hold such bytes, so the reference has no behaviour there.
#pragma once

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/data/text/mojibake.hpp"
#include "bindery/data/text/tables.hpp"

namespace bindery::data::text {

// ---- UTF-8 ------------------------------------------------------------------------------------

/// Decodes UTF-8; each maximal invalid subpart becomes one U+FFFD (Unicode §3.9, as Python's
/// bytes.decode("utf-8", errors="replace")).
inline std::u32string utf8_decode(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = s[i];
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    int extra = 0;
    uint32_t cp = 0;
    unsigned lo = 0x80, hi = 0xBF;  // valid range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0F;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    size_t j = i + 1;
    int got = 0;
    for (; got < extra && j < n; ++got, ++j) {
      const unsigned b = s[j];
      if (got == 0 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (got == extra) {
      out.push_back(cp);
    } else {
      out.push_back(0xFFFD);  // the lead byte and the valid continuation bytes seen so far
    }
    i = j;
  }
  return out;
}

/// Appends the UTF-8 encoding of one code point (<= U+10FFFF, surrogates written as such).
inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

inline std::string utf8_encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) utf8_append(out, c);
  return out;
}

// ---- Unicode properties ---------------------------------------------------------------------------

namespace detail {

inline utf8proc_category_t category(char32_t c) {
  return c > 0x10FFFF ? UTF8PROC_CATEGORY_CN : utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

/// Runs utf8proc_map with `options` (NFC: STABLE | COMPOSE; NFKC: | COMPAT) on a code point string.
inline std::u32string utf8proc_normalize(std::u32string_view text, int options) {
  const std::string bytes = utf8_encode(text);
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(bytes.data()),
                                               static_cast<utf8proc_ssize_t>(bytes.size()), &mapped,
                                               static_cast<utf8proc_option_t>(options));
  BINDERY_CHECK(length >= 0, ValueError, "text: utf8proc normalization failed: ", utf8proc_errmsg(length));
  std::u32string out =
      utf8_decode(std::string_view(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length)));
  std::free(mapped);
  return out;
}

}  // namespace detail

/// The `regex` module's \s: the White_Space property (Python's isspace minus U+001C..U+001F).
inline bool is_regex_space(char32_t c) {
  return is_python_space(c) && !(c >= 0x1C && c <= 0x1F);
}

/// \p{L} of the `regex` module: utf8proc's letter categories plus newer letters (data/text/tables.hpp).
inline bool is_letter(char32_t c) {
  const auto k = detail::category(c);
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
         (k == UTF8PROC_CATEGORY_CN && detail::in_ranges(tables::kRegexLetterSupplement, c));
}

/// \p{N} of the `regex` module.
inline bool is_number(char32_t c) {
  const auto k = detail::category(c);
  return (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO) ||
         (k == UTF8PROC_CATEGORY_CN && detail::in_ranges(tables::kRegexNumberSupplement, c));
}

/// Which alternative of the CLIP pattern takes a code point (with IGNORECASE).
enum class SplitClass { kLetter, kNumber, kSpace, kOther, kNone };

inline SplitClass split_class(char32_t c) {
  // U+0345 COMBINING GREEK YPOGEGRAMMENI case-folds to ι, a letter: under IGNORECASE the negated
  // class [^\s\p{L}\p{N}] refuses it too, so no alternative matches and findall skips it.
  if (c == 0x345) return SplitClass::kNone;
  if (is_letter(c)) return SplitClass::kLetter;
  if (is_number(c)) return SplitClass::kNumber;
  if (is_regex_space(c)) return SplitClass::kSpace;
  return SplitClass::kOther;
}

// ---- str.lower ------------------------------------------------------------------------------------

namespace detail {

inline bool is_case_ignorable(char32_t c) {
  if (in_ranges(tables::kAssignedAfterPythonUnicode, c)) return false;  // unknown to the reference's Python
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
         k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK || in_ranges(tables::kCaseIgnorableExtra, c);
}

inline bool is_cased(char32_t c) {
  if (in_ranges(tables::kAssignedAfterPythonUnicode, c)) return false;
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT ||
         in_ranges(tables::kCasedExtra, c);
}

/// CPython's handle_capital_sigma: ς when preceded by a cased letter and not followed by one
/// (case-ignorable code points skipped on both sides).
inline char32_t lower_sigma(std::u32string_view s, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(s[j - 1])) --j;
  bool final_sigma = j > 0 && is_cased(s[j - 1]);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < s.size() && is_case_ignorable(s[k])) ++k;
    final_sigma = k == s.size() || !is_cased(s[k]);
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

}  // namespace detail

/// Python's str.lower(): simple lowercase mappings, İ (U+0130) -> "i̇", and the final sigma.
inline std::u32string python_lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == 0x130) {
      out += U"i\u0307";
    } else if (c == 0x3A3) {
      out.push_back(detail::lower_sigma(s, i));
    } else {
      out.push_back(c > 0x10FFFF ? c
                                 : static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

// ---- html.unescape ----------------------------------------------------------------------------------

namespace detail {

/// name -> value of a generated entity table ("name\037value\036" records).
inline std::unordered_map<std::string_view, std::string_view> parse_entity_table(std::string_view table) {
  std::unordered_map<std::string_view, std::string_view> map;
  size_t pos = 0;
  while (pos < table.size()) {
    const size_t unit = table.find('\037', pos), record = table.find('\036', unit);
    map.emplace(table.substr(pos, unit - pos), table.substr(unit + 1, record - unit - 1));
    pos = record + 1;
  }
  return map;
}

inline const std::unordered_map<std::string_view, std::string_view>& html5_entities() {
  static const auto map = parse_entity_table(tables::kHtml5Entities);
  return map;
}

inline const std::unordered_map<std::string_view, std::string_view>& ftfy_upper_entities() {
  static const auto map = parse_entity_table(tables::kFtfyUpperEntities);
  return map;
}

inline bool ascii_digit(char32_t c) {
  return c >= '0' && c <= '9';
}
inline bool ascii_hex(char32_t c) {
  return ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
inline bool ascii_alnum(char32_t c) {
  return ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// Windows-1252 at bytes 0x80..0x9F; its five undefined bytes map to the same code point (Python's
/// html._invalid_charrefs and ftfy's "sloppy-windows-1252" agree on this table).
inline constexpr char32_t kWindows1252[32] = {0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021,
                                              0x2C6,  0x2030, 0x160,  0x2039, 0x152,  0x8D,   0x17D,  0x8F,
                                              0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                              0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};

/// Python's html._replace_charref for a numeric reference of value `num` (saturated).
inline void append_numeric_charref(std::u32string& out, uint64_t num) {
  if (num == 0) return out.push_back(0xFFFD);
  if (num == 0x0D) return out.push_back(0x0D);
  if (num >= 0x80 && num <= 0x9F) return out.push_back(kWindows1252[num - 0x80]);
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return out.push_back(0xFFFD);
  const auto c = static_cast<char32_t>(num);
  const bool invalid = (c >= 0x1 && c <= 0x8) || (c >= 0xE && c <= 0x1F) || (c >= 0x7F && c <= 0x9F) ||
                       (c >= 0xFDD0 && c <= 0xFDEF) || c == 0xB || (c & 0xFFFE) == 0xFFFE;
  if (!invalid) out.push_back(c);
}

inline void append_utf8(std::u32string& out, std::string_view bytes) {
  out += utf8_decode(bytes);
}

}  // namespace detail

/// Python's html.unescape (3.11): named and numeric character references, HTML5 rules.
inline std::u32string html_unescape(std::u32string_view s) {
  if (s.find(U'&') == std::u32string_view::npos) return std::u32string(s);
  const auto& entities = detail::html5_entities();
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    const size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      // #[0-9]+;?  or  #[xX][0-9a-fA-F]+;?  (ASCII digits only)
      size_t k = j + 1;
      bool hex = false;
      if (k < n && detail::ascii_digit(s[k])) {
        hex = false;
      } else if (k + 1 < n && (s[k] == U'x' || s[k] == U'X') && detail::ascii_hex(s[k + 1])) {
        hex = true;
        ++k;
      } else {  // neither numeric alternative matches, and names cannot start with '#'
        out.push_back(s[i++]);
        continue;
      }
      uint64_t num = 0;
      while (k < n && (hex ? detail::ascii_hex(s[k]) : detail::ascii_digit(s[k]))) {
        const char32_t d = s[k++];
        const uint64_t v = detail::ascii_digit(d) ? d - U'0' : (d | 0x20) - U'a' + 10;
        num = std::min<uint64_t>(num * (hex ? 16 : 10) + v, 0x7FFFFFFFull);  // saturated: > 0x10FFFF anyway
      }
      if (k < n && s[k] == U';') ++k;
      detail::append_numeric_charref(out, num);
      i = k;
      continue;
    }
    // [^\t\n\f <&#;]{1,32};?
    size_t k = j;
    while (k < n && k - j < 32 && s[k] != U'\t' && s[k] != U'\n' && s[k] != U'\f' && s[k] != U' ' &&
           s[k] != U'<' && s[k] != U'&' && s[k] != U'#' && s[k] != U';')
      ++k;
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    if (k < n && s[k] == U';') ++k;
    const std::u32string_view name = s.substr(j, k - j);
    const std::string key = utf8_encode(name);
    if (const auto it = entities.find(key); it != entities.end()) {
      detail::append_utf8(out, it->second);
    } else {
      // The longest prefix (>= 2 code points) that is an entity (only the legacy names without ';').
      bool found = false;
      for (size_t x = name.size() - 1; x >= 2 && !found; --x) {
        const auto prefix = entities.find(utf8_encode(name.substr(0, x)));
        if (prefix != entities.end()) {
          detail::append_utf8(out, prefix->second);
          out += name.substr(x);
          found = true;
        }
      }
      if (!found) {
        out.push_back(U'&');
        out += name;
      }
    }
    i = k;
  }
  return out;
}

// ---- ftfy.fix_text ----------------------------------------------------------------------------------

namespace detail {

/// ftfy.fixes.unescape_html: &#?[0-9A-Za-z]{1,24}; when it names an entity (or a numeric reference
/// that html.unescape consumes whole).
inline std::u32string ftfy_unescape_html(std::u32string_view s) {
  if (s.find(U'&') == std::u32string_view::npos) return std::u32string(s);
  const auto& entities = html5_entities();
  const auto& upper = ftfy_upper_entities();
  std::u32string out;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    size_t k = i + 1;
    const bool numeric = k < n && s[k] == U'#';
    if (numeric) ++k;
    const size_t start = k;
    while (k < n && ascii_alnum(s[k]) && k - start < 25) ++k;
    if (k == start || k - start > 24 || k >= n || s[k] != U';') {
      out.push_back(s[i++]);
      continue;
    }
    const std::u32string_view match = s.substr(i, k + 1 - i);  // &...;
    const std::string name = utf8_encode(match.substr(1));
    bool replaced = false;
    if (!numeric) {
      if (const auto it = entities.find(name); it != entities.end()) {
        append_utf8(out, it->second);
        replaced = true;
      } else if (const auto up = upper.find(name); up != upper.end()) {
        append_utf8(out, up->second);
        replaced = true;
      }
    } else {
      const std::u32string decoded = html_unescape(match);
      if (decoded.find(U';') == std::u32string::npos) {
        out += decoded;
        replaced = true;
      }
    }
    if (!replaced) out += match;
    i = k + 1;
  }
  return out;
}

/// One fixed point of ftfy.fix_and_explain on one segment.
inline std::u32string ftfy_fix_segment(std::u32string text, bool unescape_html) {
  static const std::unordered_map<char32_t, std::u32string_view> kLigatures = {
      {0x132, U"IJ"},       {0x133, U"ij"},      {0x149, U"\u02bcn"}, {0x1F1, U"DZ"},      {0x1F2, U"Dz"},
      {0x1F3, U"dz"},       {0x1C4, U"D\u017d"}, {0x1C5, U"D\u017e"}, {0x1C6, U"d\u017e"}, {0x1C7, U"LJ"},
      {0x1C8, U"Lj"},       {0x1C9, U"lj"},      {0x1CA, U"NJ"},      {0x1CB, U"Nj"},      {0x1CC, U"nj"},
      {0xFB00, U"ff"},      {0xFB01, U"fi"},     {0xFB02, U"fl"},     {0xFB03, U"ffi"},    {0xFB04, U"ffl"},
      {0xFB05, U"\u017ft"}, {0xFB06, U"st"}};
  static std::mutex width_mutex;
  static std::unordered_map<char32_t, std::u32string> width_cache;
  auto width_form = [](char32_t c) -> std::u32string {
    if (c == 0x3000) return U" ";
    std::lock_guard<std::mutex> lock(width_mutex);
    auto it = width_cache.find(c);
    if (it == width_cache.end()) {
      const char32_t one[1] = {c};
      it = width_cache
               .emplace(c, utf8proc_normalize(std::u32string_view(one, 1),
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT))
               .first;
    }
    return it->second;
  };
  while (true) {
    const std::u32string original = text;
    if (unescape_html) text = ftfy_unescape_html(text);
    // fix_encoding: ASCII text, and text the badness heuristic does not flag, are left alone
    if (std::any_of(text.begin(), text.end(), [](char32_t c) { return c >= 0x80; }) && mojibake::is_bad(text))
      text = mojibake::fix_encoding(text);
    std::u32string step;
    step.reserve(text.size());
    // fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes: one code point each,
    // applied in ftfy's order (a ligature never yields a wide form or a quote, and vice versa, except
    // U+0149 -> U+02BC 'n, whose quote the next pass uncurls: kept as ftfy, which uncurls it too).
    for (char32_t c : text) {
      if (c >= 0x80 && c <= 0x9F) c = kWindows1252[c - 0x80];
      if (const auto lig = kLigatures.find(c); lig != kLigatures.end()) {
        for (char32_t d : lig->second) step.push_back(d);
        continue;
      }
      if (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF)) {
        step += width_form(c);
        continue;
      }
      step.push_back(c);
    }
    // uncurl_quotes (after the width pass, as ftfy orders them)
    for (char32_t& c : step) {
      if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B))
        c = U'\'';
      else if (c >= 0x201C && c <= 0x201F)
        c = U'"';
    }
    // fix_line_breaks
    std::u32string lines;
    lines.reserve(step.size());
    for (size_t i = 0; i < step.size(); ++i) {
      const char32_t c = step[i];
      if (c == U'\r') {
        lines.push_back(U'\n');
        if (i + 1 < step.size() && step[i + 1] == U'\n') ++i;
      } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
        lines.push_back(U'\n');
      } else {
        lines.push_back(c);
      }
    }
    // remove_terminal_escapes: \033\[(\d|;)*[a-zA-Z]  (\d: any decimal digit)
    std::u32string plain;
    plain.reserve(lines.size());
    for (size_t i = 0; i < lines.size();) {
      if (lines[i] == 0x1B && i + 1 < lines.size() && lines[i + 1] == U'[') {
        size_t k = i + 2;
        while (k < lines.size() && (lines[k] == U';' || category(lines[k]) == UTF8PROC_CATEGORY_ND)) ++k;
        if (k < lines.size() &&
            ((lines[k] >= U'a' && lines[k] <= U'z') || (lines[k] >= U'A' && lines[k] <= U'Z'))) {
          i = k + 1;
          continue;
        }
      }
      plain.push_back(lines[i++]);
    }
    // remove_control_chars
    std::u32string kept;
    kept.reserve(plain.size());
    for (char32_t c : plain) {
      const bool control = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
      if (!control) kept.push_back(c);
    }
    text = utf8proc_normalize(kept, UTF8PROC_STABLE | UTF8PROC_COMPOSE);  // NFC
    if (text == original) return text;
  }
}

}  // namespace detail

/// ftfy.fix_text with its default configuration.
inline std::u32string ftfy_fix_text(std::u32string_view text) {
  constexpr size_t kMaxSegment = 1000000;  // ftfy's max_decode_length
  std::u32string out;
  bool unescape_html = true;  // "auto": off from the first segment holding a '<' on
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find(U'\n', pos);
    end = end == std::u32string_view::npos ? text.size() : end + 1;
    end = std::min(end, pos + kMaxSegment);
    const std::u32string_view segment = text.substr(pos, end - pos);
    if (unescape_html && segment.find(U'<') != std::u32string_view::npos) unescape_html = false;
    out += detail::ftfy_fix_segment(std::u32string(segment), unescape_html);
    pos = end;
  }
  return out;
}

// ---- the reference's cleaning and splitting ---------------------------------------------------------

namespace detail {

inline std::u32string_view python_strip(std::u32string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && is_python_space(s[a])) ++a;
  while (b > a && is_python_space(s[b - 1])) --b;
  return s.substr(a, b - a);
}

}  // namespace detail

/// basic_clean: ftfy.fix_text, html.unescape twice, strip.
inline std::u32string basic_clean(std::u32string_view text) {
  const std::u32string fixed = html_unescape(html_unescape(ftfy_fix_text(text)));
  return std::u32string(detail::python_strip(fixed));
}

/// whitespace_clean: runs of \s become one space, then strip.
inline std::u32string whitespace_clean(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (is_regex_space(text[i])) {
      out.push_back(U' ');
      while (i < text.size() && is_regex_space(text[i])) ++i;
    } else {
      out.push_back(text[i++]);
    }
  }
  return std::u32string(detail::python_strip(out));
}

/// whitespace_clean(basic_clean(text)).lower(), on UTF-8 text (invalid bytes -> U+FFFD).
inline std::u32string clean_text(std::string_view utf8) {
  return python_lower(whitespace_clean(basic_clean(utf8_decode(utf8))));
}

namespace detail {

/// regex IGNORECASE comparison of a code point with an ASCII letter or symbol of the pattern:
/// simple case folding (ſ folds to s, the Kelvin sign to k).
inline bool folds_to(char32_t c, char ascii) {
  if (c == 0x17F) c = U's';
  if (c == 0x212A) c = U'k';
  if (c >= U'A' && c <= U'Z') c += 32;
  return c == static_cast<char32_t>(ascii);
}

inline bool match_literal(std::u32string_view s, size_t i, std::string_view literal) {
  if (s.size() - i < literal.size()) return false;
  for (size_t k = 0; k < literal.size(); ++k)
    if (!folds_to(s[i + k], literal[k])) return false;
  return true;
}

}  // namespace detail

/// regex.findall of the CLIP pattern (IGNORECASE) on cleaned text: the pre-BPE tokens.
inline std::vector<std::u32string> clip_split(std::u32string_view s) {
  static constexpr std::string_view kSpecials[] = {"<|startoftext|>", "<|endoftext|>"};
  static constexpr std::string_view kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  std::vector<std::u32string> tokens;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    bool matched = false;
    for (std::string_view literal : kSpecials) {
      if (!matched && detail::match_literal(s, i, literal)) {
        tokens.emplace_back(s.substr(i, literal.size()));
        i += literal.size();
        matched = true;
      }
    }
    if (!matched && s[i] == U'\'') {
      for (std::string_view literal : kContractions) {
        if (!matched && detail::match_literal(s, i, literal)) {
          tokens.emplace_back(s.substr(i, literal.size()));
          i += literal.size();
          matched = true;
        }
      }
    }
    if (matched) continue;
    const SplitClass k = split_class(s[i]);
    if (k == SplitClass::kLetter || k == SplitClass::kOther) {
      size_t j = i + 1;
      while (j < n && split_class(s[j]) == k) ++j;
      tokens.emplace_back(s.substr(i, j - i));
      i = j;
    } else if (k == SplitClass::kNumber) {
      tokens.emplace_back(s.substr(i, 1));
      ++i;
    } else {
      ++i;  // whitespace, U+0345: no alternative matches here
    }
  }
  return tokens;
}

}  // namespace bindery::data::text
