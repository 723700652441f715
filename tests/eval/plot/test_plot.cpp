#include "test_util.hpp"

#include <bindery/plot/plot.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

using namespace bindery;
using namespace bindery::eval;

namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

/// "" when `svg` is a well-formed document of this builder's subset: starts with <svg, ends with
/// </svg>, every element opened is closed in order, attribute values are double-quoted and hold no
/// '<', every '&' starts an entity, no raw '>' in text. Otherwise what is wrong and where.
std::string check_svg(const std::string& document) {
  std::string svg = document;
  while (!svg.empty() && std::isspace(static_cast<unsigned char>(svg.back()))) svg.pop_back();
  if (svg.rfind("<svg", 0) != 0) return "does not start with <svg";
  if (svg.size() < 6 || svg.compare(svg.size() - 6, 6, "</svg>") != 0) return "does not end with </svg>";
  std::vector<std::string> open;
  const auto is_name = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == ':';
  };
  const auto check_entity = [&](size_t& i) -> std::string {
    for (const char* entity : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"}) {
      if (svg.compare(i, std::strlen(entity), entity) == 0) {
        i += std::strlen(entity);
        return "";
      }
    }
    return "bad entity at " + std::to_string(i);
  };
  size_t i = 0;
  bool root_closed = false;
  while (i < svg.size()) {
    const char c = svg[i];
    if (root_closed && !std::isspace(static_cast<unsigned char>(c))) return "content after the root element";
    if (c == '<') {
      const bool closing = svg[i + 1] == '/';
      size_t j = i + (closing ? 2 : 1);
      const size_t name_start = j;
      while (j < svg.size() && is_name(svg[j])) ++j;
      const std::string name = svg.substr(name_start, j - name_start);
      if (name.empty()) return "empty tag name at " + std::to_string(i);
      if (closing) {
        if (j >= svg.size() || svg[j] != '>') return "bad closing tag at " + std::to_string(i);
        if (open.empty() || open.back() != name)
          return "</" + name + "> closes the wrong element at " + std::to_string(i);
        open.pop_back();
        root_closed = open.empty();
        i = j + 1;
        continue;
      }
      // attributes
      while (true) {
        while (j < svg.size() && svg[j] == ' ') ++j;
        if (j >= svg.size()) return "unterminated tag " + name;
        if (svg[j] == '>') {
          open.push_back(name);
          i = j + 1;
          break;
        }
        if (svg.compare(j, 2, "/>") == 0) {
          if (open.empty()) return "self-closed root";
          i = j + 2;
          break;
        }
        const size_t attribute_start = j;
        while (j < svg.size() && is_name(svg[j])) ++j;
        if (j == attribute_start) return "bad attribute in <" + name + "> at " + std::to_string(j);
        if (svg.compare(j, 2, "=\"") != 0)
          return "unquoted attribute in <" + name + "> at " + std::to_string(j);
        j += 2;
        while (j < svg.size() && svg[j] != '"') {
          if (svg[j] == '<') return "'<' inside an attribute of <" + name + ">";
          if (svg[j] == '&') {
            if (auto problem = check_entity(j); !problem.empty()) return problem;
          } else {
            ++j;
          }
        }
        if (j >= svg.size()) return "unbalanced quote in <" + name + ">";
        ++j;
      }
    } else if (c == '&') {
      if (auto problem = check_entity(i); !problem.empty()) return problem;
    } else if (c == '>') {
      return "raw '>' in text at " + std::to_string(i);
    } else {
      ++i;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  return "";
}

/// The content of the first <g ...> whose opening tag contains `marker` (nested groups included).
std::string group(const std::string& svg, const std::string& marker) {
  const size_t at = svg.find(marker);
  if (at == std::string::npos) return "";
  const size_t start = svg.rfind("<g", at);
  size_t i = svg.find('>', at) + 1;
  int depth = 1;
  while (depth > 0 && i < svg.size()) {
    const size_t next_open = svg.find("<g", i), next_close = svg.find("</g>", i);
    if (next_close == std::string::npos) return "";
    if (next_open != std::string::npos && next_open < next_close &&
        (svg[next_open + 2] == ' ' || svg[next_open + 2] == '>')) {
      ++depth;
      i = next_open + 2;
    } else {
      --depth;
      i = next_close + 4;
    }
  }
  return svg.substr(start, i - start);
}

int64_t count(const std::string& text, const std::string& needle) {
  int64_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

/// Values of attribute `name` in order of appearance.
std::vector<std::string> attribute_values(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  const std::string key = " " + name + "=\"";
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    const size_t start = at + key.size();
    out.push_back(text.substr(start, text.find('"', start) - start));
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<Series> sample_curves() {
  Series train{.name = "train", .x = {}, .y = {}};
  Series val{.name = "val", .x = {}, .y = {}, .color = "", .dashed = true};
  for (int i = 0; i <= 10; ++i) {
    train.x.push_back(i);
    train.y.push_back(2.0 / (1.0 + i));
    val.x.push_back(i);
    val.y.push_back(2.2 / (1.0 + 0.8 * i));
  }
  return {train, val};
}

}  // namespace

TEST_CASE("plot: the SVG checker rejects malformed documents", "[eval][plot]") {
  CHECK(check_svg("<svg a=\"1\"><g><rect x=\"1\"/></g></svg>\n").empty());
  CHECK_FALSE(check_svg("<svg><g></svg>").empty());                 // unclosed group
  CHECK_FALSE(check_svg("<svg><g></text></g></svg>").empty());      // wrong close
  CHECK_FALSE(check_svg("<svg><rect x=\"1/></svg>").empty());       // unbalanced quote
  CHECK_FALSE(check_svg("<svg><text>a<b</text></svg>").empty());    // raw <
  CHECK_FALSE(check_svg("<svg><text>a & b</text></svg>").empty());  // raw &
  CHECK_FALSE(check_svg("<svg><rect x=1/></svg>").empty());         // unquoted
  CHECK_FALSE(check_svg("<?xml?><svg></svg>").empty());
}

TEST_CASE("plot: format_number is compact and locale-free, xml_escape escapes", "[eval][plot]") {
  CHECK(format_number(2.5) == "2.5");
  CHECK(format_number(3.0) == "3");
  CHECK(format_number(-0.001) == "0");
  CHECK(format_number(1234.5678) == "1234.57");
  CHECK(format_number(-12.0, 0) == "-12");
  CHECK(format_number(0.1 + 0.2, 6) == "0.3");
  BINDERY_REQUIRE_THROWS_WITH_ALL(format_number(kNan), ValueError, "not finite");
  CHECK(xml_escape("a<b & \"c\" 'd' >") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt;");
  CHECK(xml_escape("caf\xC3\xA9") == "caf\xC3\xA9");   // valid UTF-8 kept
  CHECK(xml_escape("bad\xFF") == "bad?");              // invalid UTF-8: bytes replaced
  CHECK(xml_escape("bell\x07tab\t") == "bell?tab\t");  // control characters are not XML
}

TEST_CASE("plot: nice 1-2-5 ticks", "[eval][plot]") {
  CHECK(nice_step(0.13) == 0.2);
  CHECK(nice_step(3.0) == 5.0);
  CHECK(nice_step(7.0) == 10.0);
  CHECK(nice_step(1.0) == 1.0);
  CHECK(nice_step(0.04) == 0.05);
  CHECK(nice_ticks(0, 10) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(nice_ticks(0, 1) == std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0});  // decimal steps exact
  CHECK(nice_ticks(-3.7, 12.1) == std::vector<double>{-5, 0, 5, 10, 15});
  CHECK(nice_ticks(5, 5) == std::vector<double>{4.4, 4.6, 4.8, 5.0, 5.2, 5.4, 5.6});
  BINDERY_REQUIRE_THROWS_WITH_ALL(nice_ticks(2, 1), ValueError, "[2, 1]");
}

TEST_CASE("plot: Svg builder writes escaped, well-formed elements", "[eval][plot]") {
  Svg svg(100, 50);
  svg.rect(1, 2.5, 10, 20.126,
           Style{.fill = "#ff0000", .stroke = "black", .stroke_width = 2, .opacity = 0.5});
  svg.begin_group({{"class", "g<1>"}});
  svg.line(0, 0, 1.0 / 3.0, 100, Style{.stroke = "blue", .dash = "4 2"});
  svg.polyline({{0, 0}, {1.5, 2}}, Style{.stroke = "red"});
  svg.circle(5, 5, 2, Style{.fill = "green", .tooltip = "a & b"});
  svg.path("M 0 0 L 1 1 Z", Style{.fill = "none", .stroke = "black"});
  svg.text(3, 4, "x<y & \"z\"", TextStyle{.anchor = "middle", .bold = true, .rotate = -90});
  for (int shape = 0; shape < 10; ++shape) svg.marker(shape, 50, 25, 4, Style{.fill = "#123456"});
  svg.end_group();
  const std::string doc = svg.str();
  INFO(doc);
  CHECK(check_svg(doc).empty());
  CHECK(doc.find("<rect x=\"1\" y=\"2.5\" width=\"10\" height=\"20.13\" fill=\"#ff0000\" stroke=\"black\" "
                 "stroke-width=\"2\" opacity=\"0.5\"/>") != std::string::npos);
  CHECK(doc.find("x2=\"0.33\"") != std::string::npos);
  CHECK(doc.find("points=\"0,0 1.5,2\"") != std::string::npos);
  CHECK(doc.find("<title>a &amp; b</title></circle>") != std::string::npos);
  CHECK(doc.find(">x&lt;y &amp; &quot;z&quot;</text>") != std::string::npos);
  CHECK(doc.find("class=\"g&lt;1&gt;\"") != std::string::npos);
  CHECK(doc.find("transform=\"rotate(-90 3 4)\"") != std::string::npos);
  CHECK(count(doc, "<path") == 10);  // 9 polygon markers + the path
  CHECK(marker_names().size() == 10);

  Svg unclosed(10, 10);
  unclosed.begin_group();
  BINDERY_REQUIRE_THROWS_WITH_ALL(unclosed.str(), ValueError, "still open");
  BINDERY_REQUIRE_THROWS_WITH_ALL(Svg(10, 10).end_group(), ValueError, "no group");
  BINDERY_REQUIRE_THROWS_WITH_ALL(Svg(10, 10).circle(kNan, 0, 1, {}), ValueError, "not finite");
  BINDERY_REQUIRE_THROWS_WITH_ALL(Svg(0, 10), ValueError, "0 x 10");
}

TEST_CASE("plot: colour maps and palette", "[eval][plot]") {
  CHECK(colormap(ColorMap::kViridis, 0.0).hex() == "#440154");
  CHECK(colormap(ColorMap::kViridis, 1.0).hex() == "#fde725");
  CHECK(colormap(ColorMap::kViridis, 0.5).hex() == "#21908d");
  CHECK(colormap(ColorMap::kViridis, -3.0) == colormap(ColorMap::kViridis, 0.0));  // clamped
  CHECK(colormap(ColorMap::kDiverging, 0.5).hex() == "#f7f7f7");
  // Halfway between the first two viridis stops: the channel means, rounded.
  CHECK(colormap(ColorMap::kViridis, 1.0 / 16.0) == Rgb{0x46, 0x17, 0x67});
  CHECK(palette_color(0).hex() == "#1f77b4");
  CHECK(palette_color(13) == palette_color(3));
  CHECK(palette_color(-1).hex() == "#17becf");
}

TEST_CASE("plot: line chart maps data into the plot area", "[eval][plot]") {
  const std::vector<Series> curves = sample_curves();
  const LineChartOptions options{.title = "loss", .x_label = "epoch", .y_label = "loss"};
  const ChartGeometry g = line_chart_geometry(curves, options);
  const PlotArea& a = g.area;
  CHECK(g.x.domain_lo == 0.0);
  CHECK(g.x.domain_hi == 10.0);
  CHECK(g.x(5.0) == Approx(a.left + a.width / 2));
  CHECK(g.x(0.0) == Approx(a.left));
  CHECK(g.x(10.0) == Approx(a.right()));
  CHECK(g.y(g.y.domain_lo) == Approx(a.bottom()));
  CHECK(g.y(g.y.domain_hi) == Approx(a.top));
  CHECK(a.left > 0);
  CHECK(a.right() < options.width);
  CHECK(a.bottom() < options.height);
  CHECK(g.y_ticks.front() == g.y.domain_lo);
  CHECK(g.y_ticks.back() == g.y.domain_hi);

  const std::string svg = line_chart(curves, options);
  INFO(svg);
  CHECK(check_svg(svg).empty());
  // The point (5, 2/6) of "train" is a vertex of its polyline, at the middle of the plot's width.
  const std::string vertex = format_number(a.left + a.width / 2) + "," + format_number(g.y(2.0 / 6.0));
  CHECK(group(svg, "class=\"series\"").find(vertex) != std::string::npos);
  const std::string legend = group(svg, "class=\"legend\"");
  CHECK(legend.find(">train</text>") != std::string::npos);
  CHECK(legend.find(">val</text>") != std::string::npos);
  CHECK(legend.find("stroke-dasharray") != std::string::npos);  // the dashed series
  CHECK(svg.find(">epoch</text>") != std::string::npos);
  CHECK(count(group(svg, "class=\"series\""), "<polyline") == 2);
  CHECK(count(group(svg, "class=\"series\""), "<circle") == 22);  // 11 points each: markers on

  // Fixed axis ends and a bad range.
  const ChartGeometry fixed = line_chart_geometry(curves, {.y_min = 0.0, .y_max = 1.0});
  CHECK(fixed.y.domain_lo == 0.0);
  CHECK(fixed.y.domain_hi == 1.0);
  BINDERY_REQUIRE_THROWS_WITH_ALL(line_chart(curves, {.y_min = 2.0, .y_max = 1.0}), ValueError, "2", "1");
  BINDERY_REQUIRE_THROWS_WITH_ALL(line_chart({{.name = "bad", .x = {1, 2}, .y = {1, 2, 3}}}), ShapeError,
                                  "'bad'", "2 x values", "3 y values");
}

TEST_CASE("plot: NaN breaks a line into two polylines", "[eval][plot]") {
  const Series s{.name = "loss", .x = {}, .y = {1, 2, kNan, 3, 4}};
  const std::string svg = line_chart({s}, {.markers_up_to = 0});
  INFO(svg);
  CHECK(check_svg(svg).empty());
  const std::string series = group(svg, "class=\"series\"");
  CHECK(count(series, "<polyline") == 2);
  CHECK(count(series, "<circle") == 0);
  // x empty: 0, 1, 2, ...; infinity breaks too, and an isolated point is drawn as a dot.
  const std::string isolated =
      line_chart({{.name = "", .x = {}, .y = {1, INFINITY, 2, kNan, 3, 4}}}, {.markers_up_to = 0});
  CHECK(count(group(isolated, "class=\"series\""), "<polyline") == 1);
  CHECK(count(group(isolated, "class=\"series\""), "<circle") == 2);
  CHECK(group(isolated, "class=\"legend\"").empty());  // no named series: no legend
  // All NaN: still a valid (empty) chart.
  CHECK(check_svg(line_chart({{.name = "nan", .x = {}, .y = {kNan, kNan}}})).empty());
}

TEST_CASE("plot: log-scale y ticks are powers of ten", "[eval][plot]") {
  const Series s{.name = "loss", .x = {0, 1, 2, 3}, .y = {20, 0.5, 0.02, 0.003}};
  const LineChartOptions options{.log_y = true};
  const ChartGeometry g = line_chart_geometry({s}, options);
  REQUIRE(g.y_ticks.size() == 4);
  for (const double t : g.y_ticks) {
    INFO(t);
    CHECK(std::fabs(std::log10(t) - std::round(std::log10(t))) < 1e-12);
  }
  // The ends snap out to 1-2-5 x 10^k: 0.003 -> 0.002, 20 -> 20.
  CHECK(g.y.domain_lo == Approx(2e-3));
  CHECK(g.y.domain_hi == Approx(20));
  CHECK(g.y_tick_labels == std::vector<std::string>{"0.01", "0.1", "1", "10"});
  CHECK(g.y_minor_ticks.size() == 4 * 8 + 1);  // 2..9 x 10^k for k = -3..0, and 20
  CHECK(g.y(1.0) ==
        Approx(g.area.bottom() - std::log10(500.0) / 4.0 * g.area.height));  // log10(20 / 0.002) = 4
  const std::string svg = line_chart({s}, options);
  CHECK(check_svg(svg).empty());
  CHECK(svg.find(">0.01</text>") != std::string::npos);
  // Less than two powers of ten inside 1-2-5 ends: whole decades (0.35..4.7 -> 0.1..10).
  const ChartGeometry decades = line_chart_geometry({{.name = "", .x = {0, 1}, .y = {0.35, 4.7}}}, options);
  CHECK(decades.y.domain_lo == Approx(0.1));
  CHECK(decades.y.domain_hi == Approx(10));
  CHECK(decades.y_tick_labels == std::vector<std::string>{"0.1", "1", "10"});
  // Many decades: every other decade labelled, as 1eN; a non-positive value breaks the line.
  const Series wide{.name = "grad", .x = {0, 1, 2, 3, 4}, .y = {1e-9, 1e-6, 0.0, 1e-2, 1e3}};
  const ChartGeometry w = line_chart_geometry({wide}, {.height = 300, .log_y = true});
  for (const double t : w.y_ticks) CHECK(std::fabs(std::log10(t) - std::round(std::log10(t))) < 1e-12);
  CHECK(w.y_ticks.size() < 13);
  CHECK(w.y_tick_labels.front() == "1e-9");
  const std::string wide_svg = line_chart({wide}, {.log_y = true});
  CHECK(count(group(wide_svg, "class=\"series\""), "<polyline") == 2);
  BINDERY_REQUIRE_THROWS_WITH_ALL(line_chart({s}, {.log_y = true, .y_min = 0.0}), ValueError, "log axis");
}

TEST_CASE("plot: tick labels use k/M suffixes and scientific notation at the extremes", "[eval][plot]") {
  const ChartGeometry steps = line_chart_geometry({{.name = "", .x = {0, 20000}, .y = {1, 2}}});
  CHECK(steps.x_tick_labels.back() == "20k");
  const ChartGeometry params =
      line_chart_geometry({{.name = "", .x = {1e6, 1.6e7}, .y = {0.1, 0.2}}}, {.log_x = true});
  for (const double t : params.x_ticks) CHECK(std::fabs(std::log10(t) - std::round(std::log10(t))) < 1e-12);
  CHECK(params.x_tick_labels == std::vector<std::string>{"1e6", "1e7"});
  CHECK(params.x.domain_hi == Approx(2e7));
  const ChartGeometry tiny = line_chart_geometry({{.name = "", .x = {0, 1}, .y = {0, 4e-5}}});
  CHECK(tiny.y_tick_labels.back() == "4e-5");
}

TEST_CASE("plot: heatmap colours its min and max with the ends of the colour map", "[eval][plot]") {
  const std::vector<double> values = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  const HeatmapOptions options{
      .title = "similarity", .x_label = "text", .y_label = "vision", .color_bar_label = "cosine"};
  const std::string svg = heatmap(values, 3, 3, {"a<b", "dog", "cat"}, {"x", "y", "z"}, options);
  INFO(svg);
  CHECK(check_svg(svg).empty());
  const std::vector<std::string> fills = attribute_values(group(svg, "class=\"cells\""), "fill");
  REQUIRE(fills.size() == 9);
  CHECK(fills.front() == colormap(ColorMap::kViridis, 0.0).hex());
  CHECK(fills.front() == "#440154");
  CHECK(fills.back() == "#fde725");
  CHECK(fills[4] == "#21908d");  // the middle value: the middle stop
  const std::string annotations = group(svg, "class=\"annotations\"");
  CHECK(annotations.find(">8</text>") != std::string::npos);
  CHECK(annotations.find("fill=\"white\"") != std::string::npos);  // light text on dark cells
  CHECK(svg.find(">a&lt;b</text>") != std::string::npos);
  CHECK(svg.find("<title>dog / y: 4</title>") != std::string::npos);
  CHECK(group(svg, "class=\"color-bar\"").find(">8</text>") != std::string::npos);
  const HeatmapGeometry g = heatmap_geometry(values, 3, 3, {}, {}, options);
  CHECK(g.v_min == 0.0);
  CHECK(g.v_max == 8.0);
  CHECK(g.cells.width == Approx(3 * g.cell));

  // Diverging: symmetric about 0 by default; 0 is the white middle; explicit limits clamp.
  const std::vector<double> signed_values = {-0.2, 0.0, 0.5, kNan};
  const HeatmapGeometry d =
      heatmap_geometry(signed_values, 2, 2, {}, {}, {.color_map = ColorMap::kDiverging});
  CHECK(d.v_min == -0.5);
  CHECK(d.v_max == 0.5);
  const std::string diverging = heatmap(signed_values, 2, 2, {}, {}, {.color_map = ColorMap::kDiverging});
  const std::vector<std::string> d_fills = attribute_values(group(diverging, "class=\"cells\""), "fill");
  REQUIRE(d_fills.size() == 4);
  CHECK(d_fills[1] == "#f7f7f7");
  CHECK(d_fills[2] == "#b2182b");
  CHECK(d_fills[3] == "#dddddd");  // NaN
  const std::string clamped = heatmap(values, 3, 3, {}, {}, {.v_min = 2.0, .v_max = 6.0});
  const std::vector<std::string> c_fills = attribute_values(group(clamped, "class=\"cells\""), "fill");
  CHECK(c_fills[0] == "#440154");
  CHECK(c_fills[8] == "#fde725");

  // Large matrices: no annotations, thinned labels, still well-formed.
  std::vector<double> big(40 * 40);
  std::vector<std::string> labels;
  for (int i = 0; i < 40; ++i) labels.push_back("sample " + std::to_string(i));
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::sin(0.1 * static_cast<double>(i));
  const std::string large = heatmap(big, 40, 40, labels, labels);
  CHECK(check_svg(large).empty());
  CHECK(group(large, "class=\"annotations\"").empty());

  BINDERY_REQUIRE_THROWS_WITH_ALL(heatmap(values, 2, 3), ShapeError, "(2, 3)", "9 values");
  BINDERY_REQUIRE_THROWS_WITH_ALL(heatmap(values, 3, 3, {"a"}), ShapeError, "(3, 3)", "1 row labels");
  BINDERY_REQUIRE_THROWS_WITH_ALL(heatmap(values, 3, 3, {}, {}, {.v_min = 2.0, .v_max = 1.0}), ValueError,
                                  "v_min");

  struct SmallMatrix {
    int64_t rows = 2, cols = 2;
    std::vector<double> values = {1, 2, 3, 4};
  };
  CHECK(heatmap(SmallMatrix{}) == heatmap(std::vector<double>{1, 2, 3, 4}, 2, 2));
}

TEST_CASE("plot: scatter colours by class and shapes by group, with both legends", "[eval][plot]") {
  std::vector<ScatterPoint> points;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t g = 0; g < 2; ++g) {
      for (int i = 0; i < 4; ++i) {
        points.push_back(
            {std::cos(c * 2.1 + i * 0.1) * (1 + g), std::sin(c * 2.1 + i * 0.1) * (1 + g), c, g});
      }
    }
  }
  points.push_back({kNan, 1.0, 0, 0});  // skipped
  const ScatterOptions options{.title = "PCA", .x_label = "PC1", .y_label = "PC2", .group_title = "modality"};
  const std::string svg = scatter(points, {"dog", "cat", "car"}, {"vision", "audio"}, options);
  INFO(svg);
  CHECK(check_svg(svg).empty());
  const std::string circles = group(svg, "data-shape=\"circle\"");
  const std::string squares = group(svg, "data-shape=\"square\"");
  CHECK(count(circles, "<circle") == 12);
  CHECK(count(squares, "<path") == 12);
  CHECK(count(circles, "fill=\"#1f77b4\"") == 4);  // class 0
  CHECK(count(circles, "fill=\"#2ca02c\"") == 4);  // class 2
  const std::string legend = group(svg, "class=\"legend\"");
  for (const char* name : {">dog<", ">cat<", ">car<", ">vision<", ">audio<", ">modality<", ">class<"}) {
    INFO(name);
    CHECK(legend.find(name) != std::string::npos);
  }
  const ChartGeometry g = scatter_geometry(points, {}, {}, options);
  for (const ScatterPoint& p : points) {
    if (!std::isfinite(p.x)) continue;
    CHECK(g.x(p.x) > g.area.left);
    CHECK(g.x(p.x) < g.area.right());
    CHECK(g.y(p.y) > g.area.top);
    CHECK(g.y(p.y) < g.area.bottom());
  }
  // Unnamed classes are listed by index; many groups get distinct shapes.
  std::vector<ScatterPoint> many;
  for (int64_t k = 0; k < 12; ++k) many.push_back({static_cast<double>(k), static_cast<double>(k * k), k, k});
  const std::string many_svg = scatter(many);
  CHECK(check_svg(many_svg).empty());
  CHECK(group(many_svg, "class=\"legend\"").find(">11<") != std::string::npos);
  CHECK(many_svg.find("data-shape=\"hexagon\"") != std::string::npos);
  BINDERY_REQUIRE_THROWS_WITH_ALL(scatter({{0.0, 0.0, -1, 0}}), ValueError, "class -1");
}

TEST_CASE("plot: bar chart with value labels and dashed reference lines", "[eval][plot]") {
  const std::vector<std::string> categories = {"vision", "text", "audio", "depth", "thermal", "imu"};
  const std::vector<BarSeries> series = {
      {.name = "zero-shot", .values = {0.72, 0.65, 0.41, 0.33, 0.28, 0.19}},
      {.name = "supervised", .values = {0.91, 0.88, 0.75, 0.6, 0.55, kNan}}};
  const std::vector<ReferenceLine> references = {{.label = "chance 10%", .value = 0.1}};
  const BarChartOptions options{.title = "accuracy", .y_label = "top-1"};
  const ChartGeometry g = bar_chart_geometry(categories, series, references, options);
  CHECK(g.y.domain_lo == 0.0);
  CHECK(g.y.domain_hi >= 0.91);
  CHECK(g.x(0.0) == Approx(g.area.left + g.area.width / 12));  // centre of the first of 6 groups
  const std::string svg = bar_chart(categories, series, references, options);
  INFO(svg);
  CHECK(check_svg(svg).empty());
  const std::string bars = group(svg, "class=\"bars\"");
  CHECK(count(bars, "<rect") == 11);  // the NaN draws no bar
  // The first bar's top is at y(0.72) and its bottom on the 0 line.
  CHECK(bars.find("y=\"" + format_number(g.y(0.72)) + "\"") != std::string::npos);
  CHECK(group(svg, "class=\"values\"").find(">0.72</text>") != std::string::npos);
  const std::string refs = group(svg, "class=\"references\"");
  CHECK(refs.find("stroke-dasharray=\"6 4\"") != std::string::npos);
  CHECK(refs.find(">chance 10%</text>") != std::string::npos);
  CHECK(refs.find("y1=\"" + format_number(g.y(0.1)) + "\"") != std::string::npos);
  const std::string legend = group(svg, "class=\"legend\"");
  CHECK(legend.find(">zero-shot<") != std::string::npos);
  CHECK(legend.find(">supervised<") != std::string::npos);
  for (const std::string& c : categories)
    CHECK(group(svg, "class=\"categories\"").find(">" + c + "<") != std::string::npos);

  // Percent values with a suffix; negative values extend the axis below 0.
  const std::string percent = bar_chart({"a", "b"}, {{.name = "", .values = {80, 12.5}}}, {},
                                        {.value_precision = 1, .value_suffix = "%"});
  CHECK(percent.find(">12.5%</text>") != std::string::npos);
  CHECK(group(percent, "class=\"legend\"").empty());
  const ChartGeometry negative = bar_chart_geometry({"a", "b"}, {{.name = "", .values = {-1, 2}}});
  CHECK(negative.y.domain_lo < -1.0 + 1e-12);
  BINDERY_REQUIRE_THROWS_WITH_ALL(bar_chart(categories, {{.name = "short", .values = {1, 2}}}), ShapeError,
                                  "'short'", "2 values", "6 categories");
}

TEST_CASE("plot: hostile names are escaped everywhere and output is deterministic", "[eval][plot]") {
  const std::string evil = "<&>\"'";
  const std::string escaped = "&lt;&amp;&gt;&quot;&apos;";
  std::vector<Series> curves = sample_curves();
  curves[0].name = evil;
  const std::vector<std::string> charts = {
      line_chart(curves, {.title = evil, .x_label = evil, .y_label = evil}),
      heatmap({1, 2, 3, 4}, 2, 2, {evil, "b"}, {"c", evil}, {.title = evil, .color_bar_label = evil}),
      scatter({{0, 0, 0, 0}, {1, 1, 1, 1}}, {evil}, {evil}, {.title = evil, .class_title = evil}),
      bar_chart({evil, "b"}, {{.name = evil, .values = {1, 2}}, {.name = "x", .values = {2, 1}}},
                {{.label = evil, .value = 1.5}}, {.title = evil})};
  for (const std::string& svg : charts) {
    INFO(svg);
    CHECK(check_svg(svg).empty());
    CHECK(svg.find(escaped) != std::string::npos);
  }
  CHECK(line_chart(sample_curves()) == line_chart(sample_curves()));
  CHECK(heatmap({1, 2, 3, 4}, 2, 2) == heatmap({1, 2, 3, 4}, 2, 2));
  CHECK(scatter({{0, 0, 0, 0}, {1, 2, 1, 1}}) == scatter({{0, 0, 0, 0}, {1, 2, 1, 1}}));
  CHECK(bar_chart({"a"}, {{.name = "s", .values = {1}}}) == bar_chart({"a"}, {{.name = "s", .values = {1}}}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(line_chart(curves, {.width = 100}), ValueError, "160 x 120");
}

TEST_CASE("plot: save_svg writes the file atomically and names the file on failure", "[eval][plot]") {
  const std::filesystem::path folder =
      std::filesystem::temp_directory_path() / ("bindery_plot_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  const std::string path = (folder / "curve.svg").string();
  const std::string svg = line_chart(sample_curves());
  save_svg(path, svg);
  CHECK(read_text(path) == svg);
  save_svg(path, "<svg></svg>\n");  // replaces
  CHECK(read_text(path) == "<svg></svg>\n");
  CHECK(std::distance(std::filesystem::directory_iterator(folder), std::filesystem::directory_iterator()) ==
        1);
  std::filesystem::remove_all(folder);
  const std::string bad = "/nonexistent-bindery-folder/plot.svg";
  BINDERY_REQUIRE_THROWS_WITH_ALL(save_svg(bad, svg), IoError, bad);
}
