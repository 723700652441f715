// bindery/plot/axes.hpp — the axes of plot/plot.hpp's charts: scales, 1-2-5 ticks and their
// labels, log axes, and the frame (plot area, margins, grid, tick marks, axis labels).
//
// A chart's layout is computed once, as a ChartGeometry (plot area, scales, ticks), which the
// drawing uses and tests inspect. The text width of labels is estimated (0.62 em per character), not
// measured: margins and legends leave room for it, and long names are shortened with an ellipsis.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/plot/svg.hpp"

namespace bindery::eval {

/// The rectangle the data is drawn in, in pixels.
struct PlotArea {
  double left = 0.0, top = 0.0, width = 0.0, height = 0.0;
  double right() const { return left + width; }
  double bottom() const { return top + height; }
};

/// Data value -> pixel along one axis: linear, or linear in log10(value).
struct Scale {
  double domain_lo = 0.0, domain_hi = 1.0;  ///< data values at the two ends
  double range_lo = 0.0, range_hi = 1.0;    ///< their pixels (y: range_lo is the bottom)
  bool log = false;

  double operator()(double value) const {
    const double a = log ? std::log10(domain_lo) : domain_lo;
    const double b = log ? std::log10(domain_hi) : domain_hi;
    const double v = log ? std::log10(value) : value;
    return range_lo + (v - a) / (b - a) * (range_hi - range_lo);
  }
  /// True when `value` can be drawn on this scale (finite, and positive on a log scale).
  bool drawable(double value) const { return std::isfinite(value) && (!log || value > 0.0); }
};

/// Everything a chart's layout decides: plot area, scales, ticks and their labels.
struct ChartGeometry {
  PlotArea area;
  Scale x, y;
  std::vector<double> x_ticks{}, y_ticks{};  ///< labelled ticks
  std::vector<std::string> x_tick_labels{}, y_tick_labels{};
  std::vector<double> x_minor_ticks{}, y_minor_ticks{};  ///< unlabelled (log axes: 2..9 x 10^k)
};

/// A 1-2-5 step near `raw`: the smallest of {1, 2, 5, 10} x 10^k that is >= raw.
inline double nice_step(double raw) {
  BINDERY_CHECK(std::isfinite(raw) && raw > 0.0, ValueError, "nice_step: the raw step ", raw,
                " must be positive and finite");
  const double exponent = std::floor(std::log10(raw));
  const double base = std::pow(10.0, exponent);
  const double f = raw / base;
  const double m = f <= 1.0 + 1e-9 ? 1.0 : f <= 2.0 + 1e-9 ? 2.0 : f <= 5.0 + 1e-9 ? 5.0 : 10.0;
  return exponent >= 0 ? m * base : m / std::pow(10.0, -exponent);
}

namespace detail {

/// k * step, computed so that decimal steps give the nearest doubles (3 x 0.1 -> 0.3, not
/// 0.30000000000000004).
inline double tick_value(int64_t k, double step) {
  const double exponent = std::floor(std::log10(step) + 1e-9);
  if (exponent >= 0) return static_cast<double>(k) * step;
  const double scale = std::pow(10.0, -exponent);
  return static_cast<double>(k) * std::round(step * scale) / scale;
}

/// Multiples of `step` within [lo, hi] (a 1e-9 step tolerance at both ends).
inline std::vector<double> multiples_within(double lo, double hi, double step) {
  std::vector<double> ticks;
  const auto first = static_cast<int64_t>(std::ceil(lo / step - 1e-9));
  const auto last = static_cast<int64_t>(std::floor(hi / step + 1e-9));
  for (int64_t k = first; k <= last && ticks.size() < 1000; ++k) {
    const double t = tick_value(k, step);
    ticks.push_back(t == 0.0 ? 0.0 : t);  // no -0
  }
  return ticks;
}

}  // namespace detail

/// About `target` ticks with a 1-2-5 step that cover [lo, hi]: the first is <= lo, the last >= hi.
/// nice_ticks(0, 10) == {0, 2, 4, 6, 8, 10}. lo == hi gets a unit-wide range around it.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  BINDERY_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, ValueError, "nice_ticks: the range [", lo,
                ", ", hi, "] must be finite with lo <= hi");
  if (hi == lo) {
    const double pad = lo == 0.0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step((hi - lo) / std::max(target, 1));
  const double snapped_lo = detail::tick_value(static_cast<int64_t>(std::floor(lo / step + 1e-9)), step);
  const double snapped_hi = detail::tick_value(static_cast<int64_t>(std::ceil(hi / step - 1e-9)), step);
  return detail::multiples_within(snapped_lo, snapped_hi, step);
}

namespace detail {

inline constexpr double kTickFont = 11.0, kLabelFont = 13.0, kTitleFont = 16.0, kLegendFont = 12.0;
inline constexpr double kLegendRow = 18.0;
inline const std::string kInk = "#222222", kAxisInk = "#444444", kGridInk = "#e6e6e6",
                         kMinorGridInk = "#f3f3f3";

inline int64_t code_points(std::string_view s) {
  return std::count_if(s.begin(), s.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}
/// Estimated width in px of `s` set at `size` px.
inline double text_width(std::string_view s, double size) {
  return 0.62 * size * static_cast<double>(code_points(s));
}
/// `s`, cut at a code point boundary with "…" so that it fits in about `max_width` px.
inline std::string fit_text(std::string_view s, double max_width, double size) {
  if (text_width(s, size) <= max_width + 1e-6) return std::string(s);
  const int64_t keep = std::max<int64_t>(1, static_cast<int64_t>(max_width / (0.62 * size)) - 1);
  std::string out;
  int64_t points = 0;
  for (const char c : s) {
    const bool starts = (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    if (starts && ++points > keep) break;
    out += c;
  }
  return out + "\xE2\x80\xA6";
}
inline double max_text_width(const std::vector<std::string>& texts, double size) {
  double widest = 0.0;
  for (const std::string& t : texts) widest = std::max(widest, text_width(t, size));
  return widest;
}

/// Decimals that show every multiple of `step` exactly (step = m x 10^k, m in {1, 2, 5}).
inline int decimals_of(double step) {
  return std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 12);
}
/// "2.00e-05" -> "2e-5": trailing mantissa zeros, exponent sign "+" and leading zeros dropped.
inline std::string compact_scientific(double value, int precision) {
  char buffer[64];
  const auto result =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific, precision);
  std::string s(buffer, result.ptr);
  const size_t e = s.find('e');
  std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
  if (mantissa.find('.') != std::string::npos) {
    while (mantissa.back() == '0') mantissa.pop_back();
    if (mantissa.back() == '.') mantissa.pop_back();
  }
  const bool negative = exponent[0] == '-';
  exponent = exponent.substr(exponent[0] == '-' || exponent[0] == '+' ? 1 : 0);
  while (exponent.size() > 1 && exponent[0] == '0') exponent.erase(0, 1);
  return mantissa + "e" + (negative ? "-" : "") + exponent;
}

/// Labels of linear ticks spaced `step`: "2k"/"1.5M" from 10^4 up, "2e-5" below 10^-3, plain decimals
/// otherwise, the same style for the whole axis.
inline std::vector<std::string> linear_tick_labels(const std::vector<double>& ticks, double step) {
  double biggest = 0.0;
  for (const double t : ticks) biggest = std::max(biggest, std::fabs(t));
  std::vector<std::string> labels;
  for (const double t : ticks) {
    const double v = std::fabs(t) < step * 1e-6 ? 0.0 : t;
    if (biggest >= 1e4) {
      const double divisor = biggest >= 1e9 ? 1e9 : biggest >= 1e6 ? 1e6 : 1e3;
      const char* suffix = biggest >= 1e9 ? "G" : biggest >= 1e6 ? "M" : "k";
      labels.push_back(v == 0.0 ? "0" : format_number(v / divisor, decimals_of(step / divisor)) + suffix);
    } else if (biggest < 1e-3 && biggest > 0.0) {
      const int precision = std::clamp(
          static_cast<int>(std::floor(std::log10(biggest) + 1e-9) - std::floor(std::log10(step) + 1e-9)), 0,
          6);
      labels.push_back(v == 0.0 ? "0" : compact_scientific(v, precision));
    } else {
      labels.push_back(format_number(v, decimals_of(step)));
    }
  }
  return labels;
}

/// Labels of log ticks: powers of ten as plain numbers when all lie in 10^-3..10^4, else "1e-5";
/// other values with 3 significant digits.
inline std::vector<std::string> log_tick_labels(const std::vector<double>& ticks) {
  bool plain = true;
  for (const double t : ticks) {
    const double e = std::log10(t);
    plain = plain && e >= -3.0 - 1e-9 && e <= 4.0 + 1e-9;
  }
  std::vector<std::string> labels;
  for (const double t : ticks) {
    const double e = std::round(std::log10(t));
    const bool power = std::fabs(t / std::pow(10.0, e) - 1.0) < 1e-9;
    if (power && !plain) {
      labels.push_back("1e" + format_number(e, 0));
    } else {
      const int decimals = std::max(0, 2 - static_cast<int>(std::floor(std::log10(t) + 1e-9)));
      labels.push_back(format_number(t, power ? std::max(0, -static_cast<int>(e)) : decimals));
    }
  }
  return labels;
}

/// One axis, decided: domain, ticks, labels.
struct AxisLayout {
  double lo = 0.0, hi = 1.0;
  std::vector<double> ticks{}, minor{};
  std::vector<std::string> labels{};
};

/// The axis of `values` (the non-drawable ones ignored): ends from the data (`pad` x span added, then
/// snapped out to a tick) unless fixed by `fixed_lo` / `fixed_hi`; about `target` labelled ticks.
inline AxisLayout layout_axis(const std::vector<double>& values, bool log, std::optional<double> fixed_lo,
                              std::optional<double> fixed_hi, int target, double pad, const char* what) {
  BINDERY_CHECK(!fixed_lo || !fixed_hi || *fixed_lo < *fixed_hi, ValueError, what, ": the axis minimum ",
                *fixed_lo, " must be below its maximum ", fixed_hi.value_or(0.0));
  BINDERY_CHECK(!log || ((!fixed_lo || *fixed_lo > 0.0) && (!fixed_hi || *fixed_hi > 0.0)), ValueError, what,
                ": the limits of a log axis must be positive");
  double lo = INFINITY, hi = -INFINITY;
  for (const double v : values) {
    if (std::isfinite(v) && (!log || v > 0.0)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (!(lo <= hi)) {  // nothing drawable: a default range
    lo = log ? 1.0 : 0.0;
    hi = log ? 10.0 : 1.0;
  }
  if (fixed_lo) lo = *fixed_lo;
  if (fixed_hi) hi = *fixed_hi;
  if (!(lo < hi)) {  // one value (or fixed ends that cut off the data): widen the free end(s)
    if (log) {
      if (!fixed_lo) lo = fixed_hi ? hi / 10.0 : lo / 10.0;
      if (!fixed_hi) hi = lo * 100.0;
    } else {
      const double width = lo == 0.0 ? 1.0 : std::fabs(lo) * 0.1;
      if (!fixed_lo) lo = (fixed_hi ? hi : lo) - width;
      if (!fixed_hi) hi = lo + 2.0 * width;
    }
  }
  AxisLayout axis;
  if (!log) {
    const double span = hi - lo;
    if (!fixed_lo) lo -= pad * span;
    if (!fixed_hi) hi += pad * span;
    const double step = nice_step((hi - lo) / std::max(target, 1));
    if (!fixed_lo) lo = tick_value(static_cast<int64_t>(std::floor(lo / step + 1e-9)), step);
    if (!fixed_hi) hi = tick_value(static_cast<int64_t>(std::ceil(hi / step - 1e-9)), step);
    axis.ticks = multiples_within(lo, hi, step);
    axis.labels = linear_tick_labels(axis.ticks, step);
  } else {
    // Free ends snap out to {1, 2, 5} x 10^k when at least two powers of ten stay inside (a
    // 1e6..3e8 sweep spans 1e6..5e8, not 1e6..1e9), else to whole decades (0.35..4.7 -> 0.1..10).
    const double span = std::log10(hi) - std::log10(lo);
    if (!fixed_lo) lo /= std::pow(10.0, pad * span);
    if (!fixed_hi) hi *= std::pow(10.0, pad * span);
    const auto snap = [](double v, bool up, bool decades_only) {
      const double decade = std::pow(10.0, std::floor(std::log10(v) + 1e-9));
      if (decades_only) return up ? (v > decade * (1 + 1e-9) ? decade * 10.0 : decade) : decade;
      for (const double m : up ? std::vector<double>{1, 2, 5, 10} : std::vector<double>{5, 2, 1}) {
        if (up ? m * decade >= v * (1 - 1e-9) : m * decade <= v * (1 + 1e-9)) return m * decade;
      }
      return decade;
    };
    const auto powers_inside = [](double a, double b) {
      return std::floor(std::log10(b) + 1e-9) - std::ceil(std::log10(a) - 1e-9) + 1.0;
    };
    const double fine_lo = fixed_lo ? lo : snap(lo, false, false),
                 fine_hi = fixed_hi ? hi : snap(hi, true, false);
    if (powers_inside(fine_lo, fine_hi) >= 2.0) {
      lo = fine_lo;
      hi = fine_hi;
    } else {
      if (!fixed_lo) lo = snap(lo, false, true);
      if (!fixed_hi) hi = snap(hi, true, true);
    }
    const double e_lo = std::log10(lo), e_hi = std::log10(hi);
    const double decades = std::ceil(e_hi - 1e-9) - std::floor(e_lo + 1e-9);
    const auto every = static_cast<int64_t>(std::max(1.0, std::ceil(decades / std::max(target, 1))));
    for (auto e = static_cast<int64_t>(std::floor(e_lo + 1e-9));
         e <= static_cast<int64_t>(std::ceil(e_hi - 1e-9)); ++e) {
      const double power = std::pow(10.0, static_cast<double>(e));
      if (e % every == 0 && power >= lo * (1 - 1e-9) && power <= hi * (1 + 1e-9)) axis.ticks.push_back(power);
      if (every == 1 && decades <= 6) {
        for (int m = 2; m <= 9; ++m) {
          const double minor = m * power;
          if (minor >= lo * (1 - 1e-9) && minor <= hi * (1 + 1e-9)) axis.minor.push_back(minor);
        }
      }
    }
    if (axis.ticks.size() < 2) {  // less than a decade: label the minor ticks and the ends
      axis.ticks.insert(axis.ticks.end(), axis.minor.begin(), axis.minor.end());
      axis.minor.clear();
      if (axis.ticks.empty()) axis.ticks = {lo, hi};
      std::sort(axis.ticks.begin(), axis.ticks.end());
    }
    axis.labels = log_tick_labels(axis.ticks);
  }
  axis.lo = lo;
  axis.hi = hi;
  return axis;
}

/// What a frame's margins must hold, besides the tick labels.
struct FrameText {
  std::string_view title{}, x_label{}, y_label{};
  double width = 720.0, height = 440.0;
  double extra_right = 0.0;   ///< legend (outside, right)
  double extra_top = 0.0;     ///< legend rows under the title
  double extra_bottom = 0.0;  ///< rotated category labels
};

/// The geometry of an x-y frame for these data (x_values may be empty: the x axis is fixed by
/// x_fixed_lo/hi, as for bar charts).
struct AxisRequest {
  std::vector<double> values{};
  bool log = false;
  std::optional<double> lo{}, hi{};
  double pad = 0.0;
  bool categorical = false;  ///< bar charts: no numeric ticks, the domain is [lo, hi] as given
};

inline ChartGeometry frame_geometry(const AxisRequest& x_request, const AxisRequest& y_request,
                                    const FrameText& text, const char* what) {
  BINDERY_CHECK(
      std::isfinite(text.width) && std::isfinite(text.height) && text.width >= 160.0 && text.height >= 120.0,
      ValueError, what, ": the chart must be at least 160 x 120 px, got ", text.width, " x ", text.height);
  ChartGeometry g;
  PlotArea& area = g.area;
  const double top = (text.title.empty() ? 16.0 : 42.0) + text.extra_top;
  const double bottom = (text.x_label.empty() ? 34.0 : 54.0) + text.extra_bottom;
  area.top = top;
  area.height = std::max(40.0, text.height - top - bottom);
  const int y_target = std::clamp(static_cast<int>(std::lround(area.height / 55.0)), 2, 10);
  const AxisLayout y_axis =
      layout_axis(y_request.values, y_request.log, y_request.lo, y_request.hi, y_target, y_request.pad, what);
  const double left =
      10.0 + (text.y_label.empty() ? 0.0 : 22.0) + max_text_width(y_axis.labels, kTickFont) + 10.0;
  area.left = left;
  const double right = std::max(16.0, text.extra_right + 12.0);
  area.width = std::max(40.0, text.width - left - right);
  AxisLayout x_axis;
  if (x_request.categorical) {
    x_axis.lo = *x_request.lo;
    x_axis.hi = *x_request.hi;
  } else {
    // Fewer x ticks until their labels fit side by side.
    for (int x_target = std::clamp(static_cast<int>(std::lround(area.width / 90.0)), 2, 10);; --x_target) {
      x_axis = layout_axis(x_request.values, x_request.log, x_request.lo, x_request.hi, x_target,
                           x_request.pad, what);
      const double per_tick = area.width / static_cast<double>(std::max<size_t>(x_axis.ticks.size(), 2) - 1);
      if (x_target <= 2 || max_text_width(x_axis.labels, kTickFont) + 12.0 <= per_tick) break;
    }
  }
  g.x = Scale{x_axis.lo, x_axis.hi, area.left, area.right(), x_request.log};
  g.y = Scale{y_axis.lo, y_axis.hi, area.bottom(), area.top, y_request.log};
  g.x_ticks = x_axis.ticks;
  g.x_tick_labels = x_axis.labels;
  g.x_minor_ticks = x_axis.minor;
  g.y_ticks = y_axis.ticks;
  g.y_tick_labels = y_axis.labels;
  g.y_minor_ticks = y_axis.minor;
  return g;
}

/// Background, title, grid, frame, ticks and axis labels of `g`.
inline void draw_frame(Svg& svg, const ChartGeometry& g, const FrameText& text, bool vertical_grid) {
  const PlotArea& a = g.area;
  svg.rect(0, 0, svg.width(), svg.height(), Style{.fill = "white"});
  if (!text.title.empty()) {
    svg.text(a.left + a.width / 2, 26, text.title,
             TextStyle{.size = kTitleFont, .anchor = "middle", .fill = kInk, .bold = true});
  }
  svg.begin_group({{"class", "grid"}});
  for (const double t : g.y_minor_ticks) {
    svg.line(a.left, g.y(t), a.right(), g.y(t), Style{.stroke = kMinorGridInk});
  }
  for (const double t : g.y_ticks) svg.line(a.left, g.y(t), a.right(), g.y(t), Style{.stroke = kGridInk});
  if (vertical_grid) {
    for (const double t : g.x_minor_ticks) {
      svg.line(g.x(t), a.top, g.x(t), a.bottom(), Style{.stroke = kMinorGridInk});
    }
    for (const double t : g.x_ticks) svg.line(g.x(t), a.top, g.x(t), a.bottom(), Style{.stroke = kGridInk});
  }
  svg.end_group();
  svg.begin_group({{"class", "axes"}});
  svg.rect(a.left, a.top, a.width, a.height, Style{.stroke = kAxisInk});
  const TextStyle tick_style{.size = kTickFont, .anchor = "middle", .fill = kAxisInk};
  for (size_t i = 0; i < g.x_ticks.size(); ++i) {
    const double x = g.x(g.x_ticks[i]);
    svg.line(x, a.bottom(), x, a.bottom() + 5, Style{.stroke = kAxisInk});
    svg.text(x, a.bottom() + 19, g.x_tick_labels[i], tick_style);
  }
  TextStyle y_tick_style = tick_style;
  y_tick_style.anchor = "end";
  for (size_t i = 0; i < g.y_ticks.size(); ++i) {
    const double y = g.y(g.y_ticks[i]);
    svg.line(a.left - 5, y, a.left, y, Style{.stroke = kAxisInk});
    svg.text(a.left - 8, y + 4, g.y_tick_labels[i], y_tick_style);
  }
  if (!text.x_label.empty()) {
    svg.text(a.left + a.width / 2, a.bottom() + text.extra_bottom + 41, text.x_label,
             TextStyle{.size = kLabelFont, .anchor = "middle", .fill = kInk});
  }
  if (!text.y_label.empty()) {
    svg.text(23, a.top + a.height / 2, text.y_label,
             TextStyle{.size = kLabelFont, .anchor = "middle", .fill = kInk, .rotate = -90});
  }
  svg.end_group();
}

}  // namespace detail

}  // namespace bindery::eval
