// bindery/plot/plot.hpp — the charts of an evaluation run, as self-contained SVG text.
//
//   line_chart   curves (loss, accuracy, a scaling sweep): legend, 1-2-5 ticks, optional log axes;
//                a NaN or infinite point (or a non-positive one on a log axis) breaks the line.
//   heatmap      a rows x cols matrix (cross-modal similarities): viridis or a diverging map, a
//                colour bar with ticks, the values written in the cells when the matrix is small.
//   scatter      points coloured by class and shaped by group (a 2-D PCA of the joint embedding
//                space: one colour per class, one marker per modality), with both legends.
//   bar_chart    grouped bars with their values on top and dashed reference lines (chance level,
//                a supervised model); the y axis starts at 0.
//
// Each chart returns the document as a std::string (write it with save_svg). The layout of line
// charts, scatters and bar charts is computed once by a *_geometry function (plot area, scales,
// ticks; plot/axes.hpp) that the drawing uses and tests can inspect. Same input, same bytes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/plot/axes.hpp"
#include "bindery/plot/heatmap.hpp"
#include "bindery/plot/svg.hpp"

namespace bindery::eval {
// ---------------------------------------------------------------------------------------------
// Line chart

/// One curve. `x` empty: 0, 1, 2, ... `color` empty: the palette's next colour.
struct Series {
  std::string name{};
  std::vector<double> x{}, y{};
  std::string color{};
  bool dashed = false;
};

struct LineChartOptions {
  std::string title{}, x_label{}, y_label{};
  double width = 720.0, height = 440.0;
  bool log_x = false, log_y = false;
  std::optional<double> x_min{}, x_max{}, y_min{}, y_max{};  ///< fixed axis ends (default: from the data)
  int64_t markers_up_to = 40;  ///< a series with at most this many points gets a dot at each
  double line_width = 1.8;
};

namespace detail {
inline std::vector<double> series_x(const Series& s) {
  if (!s.x.empty()) return s.x;
  std::vector<double> x(s.y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  return x;
}
inline double line_legend_width(const std::vector<Series>& series, double width) {
  double widest = 0.0;
  for (const Series& s : series) widest = std::max(widest, text_width(s.name, kLegendFont));
  if (widest == 0.0) return 0.0;
  return 30.0 + std::min(widest, 0.3 * width);
}
}  // namespace detail

/// The layout line_chart draws with.
inline ChartGeometry line_chart_geometry(const std::vector<Series>& series,
                                         const LineChartOptions& options = {}) {
  detail::AxisRequest x{.log = options.log_x, .lo = options.x_min, .hi = options.x_max};
  detail::AxisRequest y{.log = options.log_y, .lo = options.y_min, .hi = options.y_max};
  for (const Series& s : series) {
    BINDERY_CHECK(s.x.empty() || s.x.size() == s.y.size(), ShapeError, "line_chart: series '", s.name,
                  "' has ", s.x.size(), " x values and ", s.y.size(), " y values");
    const std::vector<double> xs = detail::series_x(s);
    x.values.insert(x.values.end(), xs.begin(), xs.end());
    y.values.insert(y.values.end(), s.y.begin(), s.y.end());
  }
  return detail::frame_geometry(x, y,
                                {options.title, options.x_label, options.y_label, options.width,
                                 options.height, detail::line_legend_width(series, options.width)},
                                "line_chart");
}

/// Curves with a legend (series with an empty name are left out of it).
inline std::string line_chart(const std::vector<Series>& series, const LineChartOptions& options = {}) {
  const ChartGeometry g = line_chart_geometry(series, options);
  const PlotArea& a = g.area;
  const double legend_width = detail::line_legend_width(series, options.width);
  Svg svg(options.width, options.height);
  detail::draw_frame(svg, g, {options.title, options.x_label, options.y_label}, true);
  svg.clip_rect("plot-area", a.left, a.top, a.width, a.height);
  svg.begin_group({{"class", "series"}, {"clip-path", "url(#plot-area)"}});
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const std::string color = s.color.empty() ? palette_color(static_cast<int64_t>(i)).hex() : s.color;
    const std::vector<double> xs = detail::series_x(s);
    const Style line{.stroke = color, .stroke_width = options.line_width, .dash = s.dashed ? "6 4" : ""};
    std::vector<std::pair<double, double>> run;
    std::vector<std::pair<double, double>> dots;
    const auto flush = [&] {
      if (run.size() >= 2) svg.polyline(run, line);
      if (run.size() == 1) dots.push_back(run[0]);  // an isolated point: still visible
      run.clear();
    };
    int64_t drawable = 0;
    for (size_t j = 0; j < xs.size(); ++j) drawable += g.x.drawable(xs[j]) && g.y.drawable(s.y[j]);
    for (size_t j = 0; j < xs.size(); ++j) {
      if (!g.x.drawable(xs[j]) || !g.y.drawable(s.y[j])) {
        flush();
        continue;
      }
      run.emplace_back(g.x(xs[j]), g.y(s.y[j]));
      if (drawable <= options.markers_up_to) dots.push_back(run.back());
    }
    flush();
    for (const auto& [px, py] : dots) svg.circle(px, py, 2.6, Style{.fill = color});
  }
  svg.end_group();
  if (legend_width > 0.0) {
    svg.begin_group({{"class", "legend"}});
    double y = a.top + 10;
    for (size_t i = 0; i < series.size(); ++i) {
      const Series& s = series[i];
      if (s.name.empty()) continue;
      const std::string color = s.color.empty() ? palette_color(static_cast<int64_t>(i)).hex() : s.color;
      const double x = a.right() + 14;
      svg.line(x, y, x + 20, y, Style{.stroke = color, .stroke_width = 2.2, .dash = s.dashed ? "5 3" : ""});
      svg.text(x + 26, y + 4, detail::fit_text(s.name, legend_width - 30.0, detail::kLegendFont),
               TextStyle{.fill = detail::kInk});
      y += detail::kLegendRow;
    }
    svg.end_group();
  }
  return svg.str();
}

// ---------------------------------------------------------------------------------------------
// Scatter

/// One point: position, class (colour) and group (marker shape), both >= 0.
struct ScatterPoint {
  double x = 0.0, y = 0.0;
  int64_t cls = 0, group = 0;
};

struct ScatterOptions {
  std::string title{}, x_label{}, y_label{};
  double width = 720.0, height = 440.0;
  std::string class_title = "class", group_title = "group";  ///< legend headings
  double marker_radius = 4.0;
  double opacity = 0.85;
  std::optional<double> x_min{}, x_max{}, y_min{}, y_max{};
};

namespace detail {

/// Sorted distinct values of a member.
template <class F>
std::vector<int64_t> distinct(const std::vector<ScatterPoint>& points, F member) {
  std::vector<int64_t> out;
  for (const ScatterPoint& p : points) out.push_back(member(p));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

inline std::string name_of(const std::vector<std::string>& names, int64_t index) {
  return index < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(index)]
                                                    : std::to_string(index);
}

struct ScatterLegend {
  std::vector<int64_t> classes{}, groups{};
  bool show_classes = false, show_groups = false;
  double width = 0.0;
};

inline ScatterLegend scatter_legend(const std::vector<ScatterPoint>& points,
                                    const std::vector<std::string>& class_names,
                                    const std::vector<std::string>& group_names,
                                    const ScatterOptions& options) {
  ScatterLegend legend;
  legend.classes = distinct(points, [](const ScatterPoint& p) { return p.cls; });
  legend.groups = distinct(points, [](const ScatterPoint& p) { return p.group; });
  legend.show_classes = !class_names.empty() || legend.classes.size() > 1;
  legend.show_groups = !group_names.empty() || legend.groups.size() > 1;
  double widest = 0.0;
  if (legend.show_classes) {
    widest = std::max(widest, text_width(options.class_title, kLegendFont) - 20.0);
    for (const int64_t c : legend.classes)
      widest = std::max(widest, text_width(name_of(class_names, c), kLegendFont));
  }
  if (legend.show_groups) {
    widest = std::max(widest, text_width(options.group_title, kLegendFont) - 20.0);
    for (const int64_t g : legend.groups)
      widest = std::max(widest, text_width(name_of(group_names, g), kLegendFont));
  }
  legend.width =
      legend.show_classes || legend.show_groups ? 24.0 + std::min(widest, 0.3 * options.width) : 0.0;
  return legend;
}

}  // namespace detail

/// The layout scatter draws with.
inline ChartGeometry scatter_geometry(const std::vector<ScatterPoint>& points,
                                      const std::vector<std::string>& class_names = {},
                                      const std::vector<std::string>& group_names = {},
                                      const ScatterOptions& options = {}) {
  detail::AxisRequest x{.lo = options.x_min, .hi = options.x_max, .pad = 0.03};
  detail::AxisRequest y{.lo = options.y_min, .hi = options.y_max, .pad = 0.03};
  for (const ScatterPoint& p : points) {
    BINDERY_CHECK(p.cls >= 0 && p.group >= 0, ValueError, "scatter: class ", p.cls, " and group ", p.group,
                  " of the point (", p.x, ", ", p.y, ") must be >= 0");
    x.values.push_back(p.x);
    y.values.push_back(p.y);
  }
  const detail::ScatterLegend legend = detail::scatter_legend(points, class_names, group_names, options);
  return detail::frame_geometry(
      x, y, {options.title, options.x_label, options.y_label, options.width, options.height, legend.width},
      "scatter");
}

/// Points coloured by class (tab10, repeating after 10 classes) and shaped by group, with a legend
/// for each (names from class_names / group_names, else the index). Non-finite points are skipped.
inline std::string scatter(const std::vector<ScatterPoint>& points,
                           const std::vector<std::string>& class_names = {},
                           const std::vector<std::string>& group_names = {},
                           const ScatterOptions& options = {}) {
  const ChartGeometry g = scatter_geometry(points, class_names, group_names, options);
  const detail::ScatterLegend legend = detail::scatter_legend(points, class_names, group_names, options);
  const PlotArea& a = g.area;
  Svg svg(options.width, options.height);
  detail::draw_frame(svg, g, {options.title, options.x_label, options.y_label}, true);
  svg.clip_rect("plot-area", a.left, a.top, a.width, a.height);
  svg.begin_group({{"class", "points"}, {"clip-path", "url(#plot-area)"}});
  for (const int64_t group : legend.groups) {
    svg.begin_group({{"class", "markers"},
                     {"data-group", std::to_string(group)},
                     {"data-shape", marker_names()[static_cast<size_t>(group % 10)]},
                     {"opacity", format_number(options.opacity, 3)},
                     {"stroke", "white"},
                     {"stroke-width", "0.6"}});
    for (const ScatterPoint& p : points) {
      if (p.group != group || !g.x.drawable(p.x) || !g.y.drawable(p.y)) continue;
      svg.marker(group, g.x(p.x), g.y(p.y), options.marker_radius, Style{.fill = palette_color(p.cls).hex()});
    }
    svg.end_group();
  }
  svg.end_group();
  if (legend.show_classes || legend.show_groups) {
    svg.begin_group({{"class", "legend"}});
    const double x = a.right() + 14, text_room = legend.width - 24.0;
    double y = a.top + 10;
    const int64_t rows_available = static_cast<int64_t>((options.height - a.top - 10.0) / detail::kLegendRow);
    int64_t rows_used = 0;
    const auto block = [&](const std::string& title, const std::vector<int64_t>& entries,
                           const std::vector<std::string>& names, bool classes) {
      svg.text(x, y + 4, detail::fit_text(title, text_room + 20.0, detail::kLegendFont),
               TextStyle{.fill = detail::kInk, .bold = true});
      y += detail::kLegendRow;
      ++rows_used;
      for (size_t k = 0; k < entries.size(); ++k) {
        const int64_t left = static_cast<int64_t>(entries.size() - k);
        if (rows_used + 1 >= rows_available && left > 1) {
          svg.text(x, y + 4, "+" + std::to_string(left) + " more", TextStyle{.fill = detail::kAxisInk});
          y += detail::kLegendRow;
          ++rows_used;
          break;
        }
        const int64_t e = entries[k];
        svg.marker(classes ? 0 : e, x + 6, y, 4.5,
                   Style{.fill = classes ? palette_color(e).hex() : "#555555"});
        svg.text(x + 18, y + 4, detail::fit_text(detail::name_of(names, e), text_room, detail::kLegendFont),
                 TextStyle{.fill = detail::kInk});
        y += detail::kLegendRow;
        ++rows_used;
      }
      y += 8;
    };
    if (legend.show_classes) block(options.class_title, legend.classes, class_names, true);
    if (legend.show_groups) block(options.group_title, legend.groups, group_names, false);
    svg.end_group();
  }
  return svg.str();
}

// ---------------------------------------------------------------------------------------------
// Bar chart

/// One bar per category.
struct BarSeries {
  std::string name{};
  std::vector<double> values{};
  std::string color{};  ///< empty: the palette's colour for this series
};

/// A dashed horizontal line across the plot, labelled in the right margin ("chance 10%").
struct ReferenceLine {
  std::string label{};
  double value = 0.0;
  std::string color{};  ///< empty: dark grey
};

struct BarChartOptions {
  std::string title{}, x_label{}, y_label{};
  double width = 720.0, height = 440.0;
  std::optional<double> y_max{};  ///< default: from the data and the reference lines
  bool value_labels = true;       ///< each bar's value on top of it
  int value_precision = 2;
  std::string value_suffix{};  ///< appended to the value labels ("%")
};

namespace detail {

struct BarLayout {
  bool legend = false;
  std::vector<double> legend_x{};  ///< left of each legend entry
  std::vector<int64_t> legend_row{};
  double legend_height = 0.0, reference_width = 0.0, category_width = 0.0;
  bool rotate_categories = false;
};

inline BarLayout bar_layout(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                            const std::vector<ReferenceLine>& references, const BarChartOptions& options) {
  BarLayout layout;
  layout.legend = series.size() > 1 || (series.size() == 1 && !series[0].name.empty());
  if (layout.legend) {
    double x = 0.0;
    int64_t row = 0;
    for (const BarSeries& s : series) {
      const double w = 12.0 + 6.0 + std::min(text_width(s.name, kLegendFont), 0.4 * options.width) + 18.0;
      if (x > 0.0 && x + w > options.width - 40.0) {
        x = 0.0;
        ++row;
      }
      layout.legend_x.push_back(x);
      layout.legend_row.push_back(row);
      x += w;
    }
    layout.legend_height = 20.0 * static_cast<double>(row + 1) + 4.0;
  }
  for (const ReferenceLine& r : references) {
    layout.reference_width = std::max(layout.reference_width,
                                      std::min(text_width(r.label, kTickFont), 0.25 * options.width) + 12.0);
  }
  layout.category_width = std::min(max_text_width(categories, kTickFont), 0.3 * options.height);
  const double group_width = (options.width - 110.0 - layout.reference_width) /
                             static_cast<double>(std::max<size_t>(categories.size(), 1));
  layout.rotate_categories = layout.category_width > group_width - 6.0;
  return layout;
}

}  // namespace detail

/// The layout bar_chart draws with: category k is centred at x(k) (x's domain is [-0.5, C - 0.5]).
inline ChartGeometry bar_chart_geometry(const std::vector<std::string>& categories,
                                        const std::vector<BarSeries>& series,
                                        const std::vector<ReferenceLine>& references = {},
                                        const BarChartOptions& options = {}) {
  BINDERY_CHECK(!categories.empty(), ValueError, "bar_chart: no categories");
  detail::AxisRequest y{.values = {0.0}, .hi = options.y_max, .pad = options.value_labels ? 0.06 : 0.0};
  double lowest = 0.0;
  for (const BarSeries& s : series) {
    BINDERY_CHECK(s.values.size() == categories.size(), ShapeError, "bar_chart: series '", s.name, "' has ",
                  s.values.size(), " values for ", categories.size(), " categories");
    for (const double v : s.values) {
      y.values.push_back(v);
      if (std::isfinite(v)) lowest = std::min(lowest, v);
    }
  }
  for (const ReferenceLine& r : references) y.values.push_back(r.value);
  if (lowest >= 0.0) y.lo = 0.0;
  const detail::BarLayout layout = detail::bar_layout(categories, series, references, options);
  const double n = static_cast<double>(categories.size());
  return detail::frame_geometry(
      detail::AxisRequest{.lo = -0.5, .hi = n - 0.5, .categorical = true}, y,
      {options.title, options.x_label, options.y_label, options.width, options.height, layout.reference_width,
       layout.legend_height, layout.rotate_categories ? 0.5 * layout.category_width : 0.0},
      "bar_chart");
}

/// Grouped bars: one group per category, one bar per series, with value labels and reference lines.
/// The y axis starts at 0 (or below, for negative values). NaN values draw no bar.
inline std::string bar_chart(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                             const std::vector<ReferenceLine>& references = {},
                             const BarChartOptions& options = {}) {
  const ChartGeometry g = bar_chart_geometry(categories, series, references, options);
  const detail::BarLayout layout = detail::bar_layout(categories, series, references, options);
  const PlotArea& a = g.area;
  const double extra_bottom = layout.rotate_categories ? 0.5 * layout.category_width : 0.0;
  Svg svg(options.width, options.height);
  detail::draw_frame(svg, g, {options.title, options.x_label, options.y_label, 0, 0, 0, 0, extra_bottom},
                     false);
  // Category labels.
  svg.begin_group({{"class", "categories"}});
  for (size_t k = 0; k < categories.size(); ++k) {
    const double x = g.x(static_cast<double>(k));
    const std::string label = detail::fit_text(categories[k], layout.category_width, detail::kTickFont);
    if (layout.rotate_categories) {
      svg.text(
          x + 4, a.bottom() + 14, label,
          TextStyle{.size = detail::kTickFont, .anchor = "end", .fill = detail::kAxisInk, .rotate = -30});
    } else {
      svg.text(x, a.bottom() + 19, label,
               TextStyle{.size = detail::kTickFont, .anchor = "middle", .fill = detail::kAxisInk});
    }
  }
  svg.end_group();
  // Bars, then their value labels (outside the clip, so a clipped bar still shows its value).
  const double group_width = a.width / static_cast<double>(categories.size());
  const double bar_width = 0.8 * group_width / static_cast<double>(std::max<size_t>(series.size(), 1));
  const double zero = g.y(std::clamp(0.0, g.y.domain_lo, g.y.domain_hi));
  svg.clip_rect("plot-area", a.left, a.top, a.width, a.height);
  svg.begin_group({{"class", "bars"}, {"clip-path", "url(#plot-area)"}});
  for (size_t s = 0; s < series.size(); ++s) {
    const std::string color =
        series[s].color.empty() ? palette_color(static_cast<int64_t>(s)).hex() : series[s].color;
    for (size_t k = 0; k < categories.size(); ++k) {
      const double v = series[s].values[k];
      if (!std::isfinite(v)) continue;
      const double x =
          a.left + (static_cast<double>(k) + 0.1) * group_width + static_cast<double>(s) * bar_width;
      const double top = std::min(g.y(v), zero), bottom = std::max(g.y(v), zero);
      svg.rect(x + 0.5, top, std::max(bar_width - 1.0, 0.5), bottom - top,
               Style{.fill = color,
                     .tooltip = (series[s].name.empty() ? "" : series[s].name + " / ") + categories[k] +
                                ": " + format_number(v, options.value_precision) + options.value_suffix});
    }
  }
  svg.end_group();
  if (options.value_labels) {
    svg.begin_group({{"class", "values"}});
    for (size_t s = 0; s < series.size(); ++s) {
      for (size_t k = 0; k < categories.size(); ++k) {
        const double v = series[s].values[k];
        if (!std::isfinite(v)) continue;
        const std::string label = format_number(v, options.value_precision) + options.value_suffix;
        const double size =
            std::min(10.0, (bar_width - 1.0) / (0.62 * static_cast<double>(detail::code_points(label))));
        if (size < 6.0) continue;
        const double x = a.left + (static_cast<double>(k) + 0.1) * group_width +
                         (static_cast<double>(s) + 0.5) * bar_width;
        const double y = v >= 0.0 ? std::max(g.y(v), a.top) - 4.0 : std::min(g.y(v), a.bottom()) + size + 2.0;
        svg.text(x, y, label, TextStyle{.size = size, .anchor = "middle", .fill = detail::kInk});
      }
    }
    svg.end_group();
  }
  // Reference lines: dashed, each its own dash pattern; labels in the right margin, pushed apart.
  if (!references.empty()) {
    static const char* const kDashes[] = {"6 4", "2 3", "10 3 2 3", "4 2"};
    svg.begin_group({{"class", "references"}});
    std::vector<std::pair<double, size_t>> label_y;
    for (size_t r = 0; r < references.size(); ++r) {
      const ReferenceLine& ref = references[r];
      if (!g.y.drawable(ref.value) || ref.value < g.y.domain_lo || ref.value > g.y.domain_hi) continue;
      const std::string color = ref.color.empty() ? "#555555" : ref.color;
      svg.line(a.left, g.y(ref.value), a.right(), g.y(ref.value),
               Style{.stroke = color, .stroke_width = 1.4, .dash = kDashes[r % 4]});
      label_y.emplace_back(g.y(ref.value) + 4.0, r);
    }
    std::sort(label_y.begin(), label_y.end());
    for (size_t i = 1; i < label_y.size(); ++i)
      label_y[i].first = std::max(label_y[i].first, label_y[i - 1].first + 13.0);
    for (const auto& [y, r] : label_y) {
      const ReferenceLine& ref = references[r];
      svg.text(a.right() + 6, y,
               detail::fit_text(ref.label, layout.reference_width - 10.0, detail::kTickFont),
               TextStyle{.size = detail::kTickFont, .fill = ref.color.empty() ? "#555555" : ref.color});
    }
    svg.end_group();
  }
  if (layout.legend) {
    svg.begin_group({{"class", "legend"}});
    double row_width = 0.0;  // centre the first row over the plot
    for (size_t s = 0; s < series.size() && layout.legend_row[s] == 0; ++s) {
      row_width = layout.legend_x[s] + 12.0 + 6.0 +
                  std::min(detail::text_width(series[s].name, detail::kLegendFont), 0.4 * options.width);
    }
    const double x0 = std::max(10.0, a.left + (a.width - row_width) / 2.0);
    const double y0 = (options.title.empty() ? 16.0 : 42.0) + 2.0;
    for (size_t s = 0; s < series.size(); ++s) {
      const std::string color =
          series[s].color.empty() ? palette_color(static_cast<int64_t>(s)).hex() : series[s].color;
      const double x = x0 + layout.legend_x[s], y = y0 + 20.0 * static_cast<double>(layout.legend_row[s]);
      svg.rect(x, y, 12, 12, Style{.fill = color});
      svg.text(x + 18, y + 10, detail::fit_text(series[s].name, 0.4 * options.width, detail::kLegendFont),
               TextStyle{.fill = detail::kInk});
    }
    svg.end_group();
  }
  return svg.str();
}

}  // namespace bindery::eval
