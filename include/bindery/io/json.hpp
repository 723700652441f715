// bindery/io/json.hpp — JSON read from files (checkpoint manifests, model configs, optimizer state),
// parsed through one checked entry point.
//
// nlohmann::json parses iteratively, but copying, comparing and dump()ing a value recurse once per
// nesting level: a 20 KB manifest of 10,000 nested '[' overflowed the stack in an error message's
// dump(). parse_json refuses a text nested deeper than a limit BEFORE nlohmann builds anything (a
// linear pre-scan of the brackets outside strings), and json_excerpt keeps values quoted in error
// messages short. Every JSON text bindery reads from a file goes through parse_json; the
// safetensors header keeps its own, tighter check (io/safetensors.hpp: 8 levels, duplicate keys).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bindery/core/error.hpp"

namespace bindery::io {

/// Deepest nesting of arrays and objects parse_json accepts by default. bindery's own files are
/// under 10 levels deep (a checkpoint manifest with optimizer state: 5; a model config: 3); 64
/// leaves room for user metadata while keeping the recursion of copies and dumps shallow. Pass a
/// larger `max_depth` to parse_json where a file legitimately needs more.
inline constexpr int kJsonMaxDepth = 64;

namespace detail {

/// The byte offset where `text` first exceeds `max_depth` levels of '[' / '{' outside strings, or
/// -1 when it never does. Linear, no recursion; malformed text is left to the parser.
inline int64_t json_depth_violation(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return static_cast<int64_t>(i);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return -1;
}

}  // namespace detail

/// Throws what parse_json throws for `text` nested deeper than `max_depth` levels (for callers
/// that parse with nlohmann's non-throwing mode themselves).
inline void check_json_depth(std::string_view text, std::string_view where, int max_depth = kJsonMaxDepth) {
  const int64_t deep = detail::json_depth_violation(text, max_depth);
  if (deep >= 0) {
    throw FormatError(::bindery::detail::concat(
        where, ": at byte ", deep, ": JSON nested deeper than ", max_depth,
        " levels (the limit io::kJsonMaxDepth; pass max_depth to io::parse_json to raise it)"));
  }
}

/// Parses `text` (the content of a file) as JSON. `where` names it in errors ("model.ckpt:
/// checkpoint manifest"). Throws FormatError naming `where` and the byte offset when the text is
/// nested deeper than `max_depth` levels (checked before parsing) or is not valid JSON.
template <class Json = nlohmann::json>
Json parse_json(std::string_view text, std::string_view where, int max_depth = kJsonMaxDepth) {
  check_json_depth(text, where, max_depth);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(::bindery::detail::concat(where, ": at byte ", e.byte > 0 ? e.byte - 1 : 0,
                                                ": invalid JSON: ", e.what()));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(::bindery::detail::concat(where, ": invalid JSON: ", e.what()));
  }
}

/// `value` as an int64_t when it is an integer that fits, or a float holding a whole number that
/// fits (a writer may print 2.0); otherwise nullopt. nlohmann's get<int64_t>() casts any number,
/// which is undefined behaviour for a float such as 2.2e79 (found by fuzz/fuzz_config.cpp) and
/// wraps an unsigned value past INT64_MAX: read integers from files through this instead.
template <class Json>
std::optional<int64_t> json_int64(const Json& value) {
  if (value.is_number_unsigned()) {
    const auto u = value.template get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (value.is_number_integer()) return value.template get<int64_t>();
  if (value.is_number_float()) {
    const double d = value.template get<double>();
    // [-2^63, 2^63): both bounds are exact doubles; NaN and infinities fail the comparisons.
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || std::trunc(d) != d)
      return std::nullopt;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

/// `value` as compact JSON for an error message, cut to about `max_chars` characters ("..." marks
/// the cut). Containers of containers are summarized ("an array of 3 elements") rather than dumped,
/// so quoting a value never recurses deeply nor copies a large one.
template <class Json>
std::string json_excerpt(const Json& value, size_t max_chars = 120) {
  if (value.is_array() || value.is_object()) {
    bool flat = value.size() <= 16;
    for (auto it = value.begin(); flat && it != value.end(); ++it) flat = !it->is_structured();
    if (!flat) {
      return ::bindery::detail::concat(value.is_array() ? "an array of " : "an object of ", value.size(),
                                       value.is_array() ? " elements" : " members");
    }
  }
  // error_handler_t::replace: a cut inside a UTF-8 sequence must not make dump() throw.
  constexpr auto kReplace = Json::error_handler_t::replace;
  if (value.is_string() && value.template get_ref<const std::string&>().size() > max_chars) {
    return Json(value.template get_ref<const std::string&>().substr(0, max_chars))
               .dump(-1, ' ', false, kReplace) +
           "...";
  }
  std::string text = value.dump(-1, ' ', false, kReplace);
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

}  // namespace bindery::io
