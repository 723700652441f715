// bindery/plot/svg.hpp — a tiny, dependency-free SVG document builder (the drawing layer of
// plot/plot.hpp).
//
// - `Svg`: rect / line / polyline / circle / path / text, groups, a clip rectangle and a linear
//   gradient; `str()` returns the document. Every text and attribute value is XML-escaped.
// - Numbers are written with `format_number`: fixed precision, trailing zeros dropped, "-0" -> "0",
//   through std::to_chars (locale-independent), so the same drawing calls give the same bytes on any
//   machine and locale.
// - Markers: ten filled shapes (circle, square, triangle, ...) for scatter plots.
// - Colours: `Rgb`, the tab10 qualitative palette (`palette_color`) and two interpolated colour maps
//   (`colormap`: viridis, and a blue-white-red diverging map from ColorBrewer's RdBu).
// - `save_svg`: writes a document atomically (io::AtomicFileWriter); failures are IoErrors naming
//   the file.
//
// Why hand-written: no Debian package of the field writes SVG from C++ without pulling a GUI or a
// scripting runtime, and the subset needed for charts is small.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/io/file.hpp"

namespace bindery::eval {

/// `value` with `precision` decimals (0..17), trailing zeros and a trailing dot dropped:
/// format_number(2.50, 2) == "2.5", format_number(-0.001, 2) == "0". Locale-independent.
inline std::string format_number(double value, int precision = 2) {
  BINDERY_CHECK(std::isfinite(value), ValueError, "format_number: the value ", value, " is not finite");
  precision = std::clamp(precision, 0, 17);
  char buffer[400];  // the largest double in fixed notation: 309 digits + sign + dot + 17 decimals
  const auto result =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, precision);
  std::string text(buffer, result.ptr);
  if (text.find('.') != std::string::npos) {
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  if (text == "-0") text = "0";
  return text;
}

/// `text` with & < > " ' replaced by entities; control characters other than tab and newline
/// (invalid in XML 1.0) become '?', and so does every non-ASCII byte when `text` is not valid UTF-8.
inline std::string xml_escape(std::string_view text) {
  const bool utf8 = io::is_valid_utf8(reinterpret_cast<const unsigned char*>(text.data()),
                                      static_cast<int64_t>(text.size()));
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7F || (u >= 0x80 && !utf8)) {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

/// An sRGB colour.
struct Rgb {
  uint8_t r = 0, g = 0, b = 0;

  /// "#rrggbb", lowercase.
  std::string hex() const {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out = "#";
    for (const uint8_t v : {r, g, b}) {
      out += kDigits[v >> 4];
      out += kDigits[v & 15];
    }
    return out;
  }
  /// Relative luminance in [0, 1] (Rec. 709 weights on the gamma-encoded values: enough to pick a
  /// readable text colour on top of this one).
  double luminance() const { return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0; }
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

namespace detail {

constexpr Rgb rgb_from_hex(uint32_t v) {
  return Rgb{static_cast<uint8_t>(v >> 16), static_cast<uint8_t>((v >> 8) & 0xFF),
             static_cast<uint8_t>(v & 0xFF)};
}

/// matplotlib's tab10 qualitative palette.
inline constexpr std::array<uint32_t, 10> kTab10 = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                                    0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
/// viridis sampled at 9 evenly spaced points (0, 1/8, ..., 1).
inline constexpr std::array<uint32_t, 9> kViridis = {0x440154, 0x472c7a, 0x3b518b, 0x2c718e, 0x21908d,
                                                     0x27ad81, 0x5cc863, 0xaadc32, 0xfde725};
/// ColorBrewer RdBu (9 classes), reversed: blue for low values, near-white in the middle, red for high.
inline constexpr std::array<uint32_t, 9> kDiverging = {0x2166ac, 0x4393c3, 0x92c5de, 0xd1e5f0, 0xf7f7f7,
                                                       0xfddbc7, 0xf4a582, 0xd6604d, 0xb2182b};

}  // namespace detail

/// The i-th colour of the tab10 palette (i taken modulo 10; negative i counts from the end).
inline Rgb palette_color(int64_t index) {
  const int64_t n = static_cast<int64_t>(detail::kTab10.size());
  return detail::rgb_from_hex(detail::kTab10[static_cast<size_t>(((index % n) + n) % n)]);
}

/// The colour maps of heatmaps: sequential viridis, or diverging blue-white-red.
enum class ColorMap { kViridis, kDiverging };

/// The stops of `map`, evenly spaced over [0, 1].
inline std::vector<Rgb> colormap_stops(ColorMap map) {
  std::vector<Rgb> stops;
  const auto add = [&](const auto& table) {
    for (const uint32_t v : table) stops.push_back(detail::rgb_from_hex(v));
  };
  if (map == ColorMap::kViridis) {
    add(detail::kViridis);
  } else {
    add(detail::kDiverging);
  }
  return stops;
}

/// `map` at t in [0, 1] (clamped), interpolated linearly in sRGB between its stops, as an SVG
/// gradient through the same stops does. A NaN t is mid grey.
inline Rgb colormap(ColorMap map, double t) {
  if (std::isnan(t)) return Rgb{160, 160, 160};
  const std::vector<Rgb> stops = colormap_stops(map);
  const double position = std::clamp(t, 0.0, 1.0) * static_cast<double>(stops.size() - 1);
  const size_t i = std::min(static_cast<size_t>(position), stops.size() - 2);
  const double f = position - static_cast<double>(i);
  const auto mix = [f](uint8_t a, uint8_t b) {
    return static_cast<uint8_t>(std::lround(static_cast<double>(a) + f * (static_cast<double>(b) - a)));
  };
  return Rgb{mix(stops[i].r, stops[i + 1].r), mix(stops[i].g, stops[i + 1].g),
             mix(stops[i].b, stops[i + 1].b)};
}

/// Marker shapes, one per group (group g gets shape g % 10).
inline const std::vector<std::string>& marker_names() {
  static const std::vector<std::string> names = {"circle", "square", "triangle", "diamond",  "triangle-down",
                                                 "star",   "plus",   "cross",    "pentagon", "hexagon"};
  return names;
}

namespace detail {

/// Vertices of marker `shape` (>= 1) around the origin, for radius 1.
inline std::vector<std::pair<double, double>> marker_vertices(int64_t shape) {
  const auto regular = [](int n, double radius, double phase) {
    std::vector<std::pair<double, double>> v;
    for (int k = 0; k < n; ++k) {
      const double angle = phase + 2.0 * std::numbers::pi * k / n;
      v.emplace_back(radius * std::sin(angle), -radius * std::cos(angle));
    }
    return v;
  };
  const auto plus = [](double angle) {
    const double w = 0.38, l = 1.25;
    const std::vector<std::pair<double, double>> base = {{-w, -l}, {w, -l}, {w, -w},  {l, -w},
                                                         {l, w},   {w, w},  {w, l},   {-w, l},
                                                         {-w, w},  {-l, w}, {-l, -w}, {-w, -w}};
    std::vector<std::pair<double, double>> v;
    for (const auto& [x, y] : base) {
      v.emplace_back(x * std::cos(angle) - y * std::sin(angle), x * std::sin(angle) + y * std::cos(angle));
    }
    return v;
  };
  switch (shape % 10) {
    case 1:
      return {{-0.85, -0.85}, {0.85, -0.85}, {0.85, 0.85}, {-0.85, 0.85}};
    case 2:
      return regular(3, 1.25, 0.0);
    case 3:
      return {{0.0, -1.3}, {0.95, 0.0}, {0.0, 1.3}, {-0.95, 0.0}};
    case 4:
      return regular(3, 1.25, std::numbers::pi);
    case 5: {
      std::vector<std::pair<double, double>> v;
      for (int k = 0; k < 10; ++k) {
        const double radius = k % 2 == 0 ? 1.45 : 0.6, angle = std::numbers::pi * k / 5.0;
        v.emplace_back(radius * std::sin(angle), -radius * std::cos(angle));
      }
      return v;
    }
    case 6:
      return plus(0.0);
    case 7:
      return plus(std::numbers::pi / 4.0);
    case 8:
      return regular(5, 1.15, 0.0);
    default:
      return regular(6, 1.1, 0.0);
  }
}

}  // namespace detail

/// How a shape is painted. Colours are any SVG colour ("#1f77b4", "none", "white").
struct Style {
  std::string fill = "none";
  std::string stroke = "none";
  double stroke_width = 1.0;
  std::string dash{};       ///< stroke-dasharray, e.g. "6 4"; empty: solid
  double opacity = 1.0;     ///< written only when < 1
  std::string tooltip{};    ///< a <title> child (shown on hover by browsers); empty: none
  std::string css_class{};  ///< a class attribute; empty: none
};

/// How a text is set.
struct TextStyle {
  double size = 12.0;            ///< font size in px
  std::string anchor = "start";  ///< text-anchor: start | middle | end
  std::string baseline{};        ///< dominant-baseline ("middle", "hanging"); empty: alphabetic
  std::string fill = "#222222";
  bool bold = false;
  double rotate = 0.0;  ///< degrees, clockwise, about the anchor point (x, y)
};

/// One stop of a linear gradient: offset in [0, 1] and a colour.
struct GradientStop {
  double offset = 0.0;
  std::string color{};
};

/// Builds one SVG document. Coordinates are pixels, origin top left, y down; every number is written
/// with `precision` decimals at most. Each method appends one element and returns *this.
class Svg {
 public:
  Svg(double width, double height, int precision = 2)
      : width_(width), height_(height), precision_(precision) {
    BINDERY_CHECK(std::isfinite(width) && std::isfinite(height) && width > 0 && height > 0, ValueError,
                  "Svg: width and height must be positive and finite, got ", width, " x ", height);
  }

  double width() const { return width_; }
  double height() const { return height_; }
  /// A number as this document writes it.
  std::string num(double value) const {
    BINDERY_CHECK(std::isfinite(value), ValueError, "Svg: a coordinate or size is not finite (", value,
                  "); drop non-finite data before drawing");
    return format_number(value, precision_);
  }

  Svg& rect(double x, double y, double w, double h, const Style& style) {
    open("rect",
         {{"x", num(x)}, {"y", num(y)}, {"width", num(std::max(w, 0.0))}, {"height", num(std::max(h, 0.0))}});
    return close_shape("rect", style);
  }
  Svg& line(double x1, double y1, double x2, double y2, const Style& style) {
    open("line", {{"x1", num(x1)}, {"y1", num(y1)}, {"x2", num(x2)}, {"y2", num(y2)}});
    return close_shape("line", style);
  }
  /// points: (x, y) pairs, joined in order.
  Svg& polyline(const std::vector<std::pair<double, double>>& points, const Style& style) {
    std::string list;
    for (const auto& [x, y] : points) {
      if (!list.empty()) list += ' ';
      list += num(x) + "," + num(y);
    }
    open("polyline", {{"points", list}});
    return close_shape("polyline", style);
  }
  Svg& circle(double cx, double cy, double r, const Style& style) {
    open("circle", {{"cx", num(cx)}, {"cy", num(cy)}, {"r", num(std::max(r, 0.0))}});
    return close_shape("circle", style);
  }
  /// d: SVG path data (build it with num() for the numbers).
  Svg& path(std::string_view d, const Style& style) {
    open("path", {{"d", std::string(d)}});
    return close_shape("path", style);
  }
  /// Marker `shape` (see marker_names(); taken modulo 10) of radius about `r` centred at (x, y).
  Svg& marker(int64_t shape, double x, double y, double r, const Style& style) {
    if (shape % 10 == 0) return circle(x, y, r, style);
    std::string d;
    for (const auto& [vx, vy] : detail::marker_vertices(shape)) {
      d += (d.empty() ? "M" : " L") + num(x + r * vx) + " " + num(y + r * vy);
    }
    return path(d + " Z", style);
  }
  Svg& text(double x, double y, std::string_view content, const TextStyle& style = {}) {
    std::vector<std::pair<std::string, std::string>> attributes = {{"x", num(x)}, {"y", num(y)}};
    if (style.size != 12.0) attributes.emplace_back("font-size", num(style.size));
    if (style.anchor != "start") attributes.emplace_back("text-anchor", style.anchor);
    if (!style.baseline.empty()) attributes.emplace_back("dominant-baseline", style.baseline);
    attributes.emplace_back("fill", style.fill);
    if (style.bold) attributes.emplace_back("font-weight", "bold");
    if (style.rotate != 0.0) {
      attributes.emplace_back("transform", "rotate(" + num(style.rotate) + " " + num(x) + " " + num(y) + ")");
    }
    open("text", attributes);
    body_ += '>';
    body_ += xml_escape(content);
    body_ += "</text>\n";
    return *this;
  }

  /// Opens a <g> with these attributes (e.g. {{"class", "legend"}}); close it with end_group().
  Svg& begin_group(const std::vector<std::pair<std::string, std::string>>& attributes = {}) {
    open("g", attributes);
    body_ += ">\n";
    ++open_groups_;
    return *this;
  }
  Svg& end_group() {
    BINDERY_CHECK(open_groups_ > 0, ValueError, "Svg::end_group: no group is open");
    --open_groups_;
    body_ += "</g>\n";
    return *this;
  }
  /// Defines a clip path `id` (use as {"clip-path", "url(#id)"} on a group) that is a rectangle.
  Svg& clip_rect(std::string_view id, double x, double y, double w, double h) {
    body_ += "<defs><clipPath id=\"" + xml_escape(id) + "\"><rect x=\"" + num(x) + "\" y=\"" + num(y) +
             "\" width=\"" + num(w) + "\" height=\"" + num(h) + "\"/></clipPath></defs>\n";
    return *this;
  }
  /// Defines a linear gradient `id` (use as fill "url(#id)") from (x1, y1) to (x2, y2) in the
  /// filled box's own units: (0, 1) -> (0, 0) runs bottom to top.
  Svg& linear_gradient(std::string_view id, const std::vector<GradientStop>& stops, double x1, double y1,
                       double x2, double y2) {
    body_ += "<defs><linearGradient id=\"" + xml_escape(id) + "\" x1=\"" + num(x1) + "\" y1=\"" + num(y1) +
             "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\">";
    for (const GradientStop& stop : stops) {
      body_ += "<stop offset=\"" + format_number(stop.offset, 4) + "\" stop-color=\"" +
               xml_escape(stop.color) + "\"/>";
    }
    body_ += "</linearGradient></defs>\n";
    return *this;
  }

  /// The whole document: "<svg ...>" ... "</svg>\n". Every group must be closed.
  std::string str() const {
    BINDERY_CHECK(open_groups_ == 0, ValueError, "Svg::str: ", open_groups_, " group(s) still open");
    std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width_) + "\" height=\"" +
                      num(height_) + "\" viewBox=\"0 0 " + num(width_) + " " + num(height_) +
                      "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
    out += body_;
    out += "</svg>\n";
    return out;
  }

 private:
  void open(std::string_view tag, const std::vector<std::pair<std::string, std::string>>& attributes) {
    body_ += '<';
    body_ += tag;
    for (const auto& [name, value] : attributes) {
      body_ += ' ' + name + "=\"" + xml_escape(value) + '"';
    }
  }
  Svg& close_shape(std::string_view tag, const Style& style) {
    std::string extra;
    if (!style.css_class.empty()) extra += " class=\"" + xml_escape(style.css_class) + '"';
    extra += " fill=\"" + xml_escape(style.fill) + '"';
    if (style.stroke != "none" && !style.stroke.empty()) {
      extra += " stroke=\"" + xml_escape(style.stroke) + '"';
      if (style.stroke_width != 1.0) extra += " stroke-width=\"" + num(style.stroke_width) + '"';
      if (!style.dash.empty()) extra += " stroke-dasharray=\"" + xml_escape(style.dash) + '"';
    }
    if (style.opacity < 1.0) extra += " opacity=\"" + format_number(std::max(style.opacity, 0.0), 3) + '"';
    body_ += extra;
    if (style.tooltip.empty()) {
      body_ += "/>\n";
    } else {
      body_ += "><title>" + xml_escape(style.tooltip) + "</title></";
      body_ += tag;
      body_ += ">\n";
    }
    return *this;
  }

  double width_, height_;
  int precision_;
  std::string body_{};
  int64_t open_groups_ = 0;
};

/// Writes `svg` to `path` atomically (a temporary file in the same folder, fsync, rename): a reader
/// never sees half a file. Throws IoError naming `path` when it cannot be written.
inline void save_svg(const std::string& path, std::string_view svg) {
  io::AtomicFileWriter writer(path);
  writer.write(svg.data(), static_cast<int64_t>(svg.size()));
  writer.commit();
}

}  // namespace bindery::eval
