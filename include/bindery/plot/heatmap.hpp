// bindery/plot/heatmap.hpp — heatmap(): a rows x cols matrix as coloured cells (part of
// plot/plot.hpp; include that).
//
// Square cells, row 0 at the top; viridis or a diverging blue-white-red map (symmetric about 0 by
// default); a colour bar with ticks; the values written in the cells up to 12 x 12; every cell has a
// tooltip "row / column: value"; long column labels are rotated, and only every n-th label is drawn
// when the cells are smaller than the text.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/plot/axes.hpp"
#include "bindery/plot/svg.hpp"

namespace bindery::eval {

struct HeatmapOptions {
  std::string title{}, x_label{}, y_label{};  ///< x: the columns' axis, y: the rows'
  double width = 720.0, height = 440.0;
  ColorMap color_map = ColorMap::kViridis;
  /// Colour range; default: the data's (kDiverging: symmetric about 0).
  std::optional<double> v_min{}, v_max{};
  bool annotate = true;  ///< write each value in its cell (matrices up to 12 x 12)
  int annotate_precision = 2;
  std::string color_bar_label{};
};

/// The layout heatmap draws with: square cells from `cells`' top left, the colour bar, the range.
struct HeatmapGeometry {
  PlotArea cells;
  double cell = 0.0;  ///< side of one cell
  PlotArea color_bar;
  double v_min = 0.0, v_max = 1.0;
  bool rotate_column_labels = false;
  int64_t label_every = 1;  ///< draw every n-th row/column label when the cells are small
};

inline HeatmapGeometry heatmap_geometry(const std::vector<double>& values, int64_t rows, int64_t cols,
                                        const std::vector<std::string>& row_labels,
                                        const std::vector<std::string>& col_labels,
                                        const HeatmapOptions& options = {}) {
  BINDERY_CHECK(rows > 0 && cols > 0 && static_cast<int64_t>(values.size()) == rows * cols, ShapeError,
                "heatmap: ", values.size(), " values for a matrix of shape (", rows, ", ", cols, ")");
  BINDERY_CHECK(row_labels.empty() || static_cast<int64_t>(row_labels.size()) == rows, ShapeError,
                "heatmap: ", row_labels.size(), " row labels for a matrix of shape (", rows, ", ", cols, ")");
  BINDERY_CHECK(col_labels.empty() || static_cast<int64_t>(col_labels.size()) == cols, ShapeError,
                "heatmap: ", col_labels.size(), " column labels for a matrix of shape (", rows, ", ", cols,
                ")");
  BINDERY_CHECK(options.width >= 160.0 && options.height >= 120.0, ValueError,
                "heatmap: the chart must be at least 160 x 120 px, got ", options.width, " x ",
                options.height);
  HeatmapGeometry g;
  double lo = INFINITY, hi = -INFINITY;
  for (const double v : values) {
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (!(lo <= hi)) lo = 0.0, hi = 1.0;
  if (options.color_map == ColorMap::kDiverging && !options.v_min && !options.v_max) {
    hi = std::max(std::fabs(lo), std::fabs(hi));
    lo = -hi;
  }
  g.v_min = options.v_min.value_or(lo);
  g.v_max = options.v_max.value_or(hi);
  BINDERY_CHECK(g.v_min <= g.v_max, ValueError, "heatmap: v_min ", g.v_min, " must not exceed v_max ",
                g.v_max);
  if (g.v_min == g.v_max) {
    const double pad = g.v_min == 0.0 ? 1.0 : std::fabs(g.v_min) * 0.1;
    if (!options.v_min) g.v_min -= pad;
    if (!options.v_max || g.v_min == g.v_max) g.v_max += pad;
  }
  const double row_label_width =
      std::min(detail::max_text_width(row_labels, detail::kTickFont), 0.3 * options.width);
  const double col_label_width =
      std::min(detail::max_text_width(col_labels, detail::kTickFont), 0.3 * options.height);
  const std::vector<double> bar_ticks = nice_ticks(g.v_min, g.v_max, 5);
  const double bar_label_width = detail::max_text_width(
      detail::linear_tick_labels(bar_ticks, bar_ticks.size() > 1 ? bar_ticks[1] - bar_ticks[0] : 1.0),
      detail::kTickFont);
  const double left = 10.0 + (options.y_label.empty() ? 0.0 : 22.0) + row_label_width + 8.0;
  const double right =
      18.0 + 14.0 + 8.0 + bar_label_width + (options.color_bar_label.empty() ? 0.0 : 24.0) + 10.0;
  const double top = options.title.empty() ? 14.0 : 42.0;
  const auto layout = [&](bool rotated) {
    const double labels = col_labels.empty() ? 0.0 : rotated ? 0.72 * col_label_width + 20.0 : 20.0;
    const double bottom = labels + (options.x_label.empty() ? 8.0 : 30.0);
    const double available_w = std::max(20.0, options.width - left - right);
    const double available_h = std::max(20.0, options.height - top - bottom);
    return std::min(available_w / static_cast<double>(cols), available_h / static_cast<double>(rows));
  };
  g.cell = layout(false);
  g.label_every = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(13.0 / g.cell)));
  if (col_label_width > g.cell * static_cast<double>(g.label_every) - 4.0) {
    g.rotate_column_labels = true;
    g.cell = layout(true);
    g.label_every = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(13.0 / g.cell)));
  }
  // Centre the block (row labels, cells, colour bar) when the height limits the cells.
  const double slack = std::max(0.0, options.width - left - right - g.cell * static_cast<double>(cols));
  g.cells =
      PlotArea{left + slack / 2, top, g.cell * static_cast<double>(cols), g.cell * static_cast<double>(rows)};
  g.color_bar = PlotArea{g.cells.right() + 18.0, top, 14.0, g.cells.height};
  return g;
}

/// A rows x cols matrix (row-major `values`; row 0 at the top) as coloured cells. NaN cells are grey.
inline std::string heatmap(const std::vector<double>& values, int64_t rows, int64_t cols,
                           const std::vector<std::string>& row_labels = {},
                           const std::vector<std::string>& col_labels = {},
                           const HeatmapOptions& options = {}) {
  const HeatmapGeometry g = heatmap_geometry(values, rows, cols, row_labels, col_labels, options);
  const PlotArea& c = g.cells;
  Svg svg(options.width, options.height);
  svg.rect(0, 0, options.width, options.height, Style{.fill = "white"});
  if (!options.title.empty()) {
    svg.text(c.left + c.width / 2, 26, options.title,
             TextStyle{.size = detail::kTitleFont, .anchor = "middle", .fill = detail::kInk, .bold = true});
  }
  const bool annotate = options.annotate && rows <= 12 && cols <= 12;
  // Annotations: as large as the widest one allows (at most 11 px), none below 6 px.
  int64_t widest_annotation = 1;
  for (const double v : values) {
    if (annotate && std::isfinite(v)) {
      widest_annotation =
          std::max(widest_annotation, detail::code_points(format_number(v, options.annotate_precision)));
    }
  }
  const double annotation_size =
      std::min({11.0, g.cell * 0.4, (g.cell - 4.0) / (0.62 * static_cast<double>(widest_annotation))});
  svg.begin_group({{"class", "cells"}, {"shape-rendering", "crispEdges"}});  // no seams between cells
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const double v = values[static_cast<size_t>(i * cols + j)];
      const Rgb color = std::isfinite(v) ? colormap(options.color_map, (v - g.v_min) / (g.v_max - g.v_min))
                                         : Rgb{221, 221, 221};
      std::string tooltip = (row_labels.empty() ? std::to_string(i) : row_labels[static_cast<size_t>(i)]) +
                            " / " +
                            (col_labels.empty() ? std::to_string(j) : col_labels[static_cast<size_t>(j)]) +
                            ": " + (std::isfinite(v) ? format_number(v, 4) : "nan");
      svg.rect(c.left + static_cast<double>(j) * g.cell, c.top + static_cast<double>(i) * g.cell, g.cell,
               g.cell, Style{.fill = color.hex(), .tooltip = std::move(tooltip)});
    }
  }
  svg.end_group();
  if (annotate && annotation_size >= 6.0) {
    svg.begin_group({{"class", "annotations"}});
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        const double v = values[static_cast<size_t>(i * cols + j)];
        if (!std::isfinite(v)) continue;
        const Rgb color = colormap(options.color_map, (v - g.v_min) / (g.v_max - g.v_min));
        svg.text(c.left + (static_cast<double>(j) + 0.5) * g.cell,
                 c.top + (static_cast<double>(i) + 0.5) * g.cell + annotation_size * 0.35,
                 format_number(v, options.annotate_precision),
                 TextStyle{.size = annotation_size,
                           .anchor = "middle",
                           .fill = color.luminance() < 0.5 ? "white" : detail::kInk});
      }
    }
    svg.end_group();
  }
  svg.begin_group({{"class", "labels"}});
  const double label_room =
      std::min(0.3 * options.width, detail::max_text_width(row_labels, detail::kTickFont));
  for (int64_t i = 0; i < static_cast<int64_t>(row_labels.size()); i += g.label_every) {
    svg.text(c.left - 6, c.top + (static_cast<double>(i) + 0.5) * g.cell + 4,
             detail::fit_text(row_labels[static_cast<size_t>(i)], label_room, detail::kTickFont),
             TextStyle{.size = detail::kTickFont, .anchor = "end", .fill = detail::kAxisInk});
  }
  const double col_room =
      std::min(0.3 * options.height, detail::max_text_width(col_labels, detail::kTickFont));
  for (int64_t j = 0; j < static_cast<int64_t>(col_labels.size()); j += g.label_every) {
    const double x = c.left + (static_cast<double>(j) + 0.5) * g.cell;
    const std::string label =
        detail::fit_text(col_labels[static_cast<size_t>(j)], col_room, detail::kTickFont);
    if (g.rotate_column_labels) {
      svg.text(
          x + 3, c.bottom() + 10, label,
          TextStyle{.size = detail::kTickFont, .anchor = "end", .fill = detail::kAxisInk, .rotate = -45});
    } else {
      svg.text(x, c.bottom() + 15, label,
               TextStyle{.size = detail::kTickFont, .anchor = "middle", .fill = detail::kAxisInk});
    }
  }
  const double labels_height = col_labels.empty()       ? 0.0
                               : g.rotate_column_labels ? 0.72 * col_room + 20.0
                                                        : 20.0;
  if (!options.x_label.empty()) {
    svg.text(c.left + c.width / 2, c.bottom() + labels_height + 14, options.x_label,
             TextStyle{.size = detail::kLabelFont, .anchor = "middle", .fill = detail::kInk});
  }
  if (!options.y_label.empty()) {
    svg.text(c.left - 12 - label_room, c.top + c.height / 2, options.y_label,
             TextStyle{.size = detail::kLabelFont, .anchor = "middle", .fill = detail::kInk, .rotate = -90});
  }
  svg.end_group();
  // Colour bar: one gradient through the map's stops (the same interpolation as the cells).
  const PlotArea& b = g.color_bar;
  std::vector<GradientStop> stops;
  const std::vector<Rgb> map_stops = colormap_stops(options.color_map);
  for (size_t k = 0; k < map_stops.size(); ++k) {
    stops.push_back({static_cast<double>(k) / static_cast<double>(map_stops.size() - 1), map_stops[k].hex()});
  }
  svg.linear_gradient("color-bar", stops, 0, 1, 0, 0);
  svg.begin_group({{"class", "color-bar"}});
  svg.rect(b.left, b.top, b.width, b.height, Style{.fill = "url(#color-bar)", .stroke = detail::kAxisInk});
  const std::vector<double> ticks = nice_ticks(g.v_min, g.v_max, 5);
  const std::vector<std::string> tick_labels =
      detail::linear_tick_labels(ticks, ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0);
  for (size_t k = 0; k < ticks.size(); ++k) {
    if (ticks[k] < g.v_min - 1e-12 * (g.v_max - g.v_min) || ticks[k] > g.v_max + 1e-12 * (g.v_max - g.v_min))
      continue;
    const double y = b.bottom() - (ticks[k] - g.v_min) / (g.v_max - g.v_min) * b.height;
    svg.line(b.right(), y, b.right() + 4, y, Style{.stroke = detail::kAxisInk});
    svg.text(b.right() + 7, y + 4, tick_labels[k],
             TextStyle{.size = detail::kTickFont, .fill = detail::kAxisInk});
  }
  if (!options.color_bar_label.empty()) {
    svg.text(b.right() + 7 + detail::max_text_width(tick_labels, detail::kTickFont) + 18,
             b.top + b.height / 2, options.color_bar_label,
             TextStyle{.size = detail::kLabelFont, .anchor = "middle", .fill = detail::kInk, .rotate = -90});
  }
  svg.end_group();
  return svg.str();
}

/// heatmap of any matrix type with rows, cols and row-major values members (eval::Matrix).
template <class M>
requires requires(const M& m) {
  m.rows;
  m.cols;
  m.values;
}
std::string heatmap(const M& matrix, const std::vector<std::string>& row_labels = {},
                    const std::vector<std::string>& col_labels = {}, const HeatmapOptions& options = {}) {
  return heatmap(matrix.values, matrix.rows, matrix.cols, row_labels, col_labels, options);
}

}  // namespace bindery::eval
