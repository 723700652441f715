// examples/08_detection/scenes.hpp — detection scenes: 1-4 digits pasted on a 96 x 96 page, boxes known.
//
// A glyph is one digit's ink: a coverage mask (alpha in [0, 1]) and an ink colour. Built-in glyphs
// come from the generator's 32 x 32 images (paper estimated from the image border, alpha from how much
// darker than the paper a pixel is, the ink colour from the fully covered pixels); MNIST glyphs are the
// 28 x 28 grey levels as coverage, recoloured with one of the generator's ink colours per paste.
// A scene is drawn the way the generator draws a digit image: paper of a random level and tint, the
// glyphs composited as paper * (1 - alpha) + ink * alpha at random sizes and places, a lighting
// gradient, pixel noise, then the generator's normalization. Each scene is a pure function of
// (seed, index): training draws fresh scenes every step, the test scenes are fixed.
#pragma once

#include <bindery/bindery.hpp>
#include <bindery/datasets/mnist.hpp>
#include <bindery/datasets/synth_digits.hpp>
#include <bindery/eval/detection.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace scenes {

using namespace bindery;
namespace synth = bindery::data::synth;

struct Glyph {
  int64_t side = 0, label = 0;
  std::vector<float> alpha;  // side x side
  bool own_ink = true;       // false: recoloured per paste (MNIST)
  float ink[3] = {0, 0, 0};
};

/// Glyphs of the generator's images (N, 3, S, S), normalized as the generator writes them.
inline std::vector<Glyph> synth_glyphs(const Tensor<float, Cpu>& images, const std::vector<int64_t>& labels) {
  const int64_t n = images.shape()[0], s = images.shape()[2], pixels = s * s;
  const Tensor<float, Cpu> x = images.contiguous();
  std::vector<Glyph> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* v = x.data() + i * 3 * pixels;
    std::vector<double> rgb(static_cast<size_t>(3 * pixels)), lum(static_cast<size_t>(pixels), 0.0);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < pixels; ++p) {
        const double u = v[c * pixels + p] * synth::kImageStd[static_cast<size_t>(c)] +
                         synth::kImageMean[static_cast<size_t>(c)];
        rgb[static_cast<size_t>(c * pixels + p)] = u;
        lum[static_cast<size_t>(p)] += u / 3.0;
      }
    std::vector<double> border;  // the paper: median luminance of the outermost ring
    for (int64_t p = 0; p < s; ++p)
      for (int64_t q : {int64_t{0}, s - 1}) {
        border.push_back(lum[static_cast<size_t>(p * s + q)]);
        border.push_back(lum[static_cast<size_t>(q * s + p)]);
      }
    std::nth_element(border.begin(), border.begin() + static_cast<int64_t>(border.size() / 2), border.end());
    const double paper = border[border.size() / 2];
    double darkest = paper;
    for (double l : lum) darkest = std::min(darkest, l);
    const double floor = 0.08;  // darker than the paper by less than this: lighting and pixel noise
    const double span = std::max(paper - darkest - floor, 1e-3);
    Glyph& g = out[static_cast<size_t>(i)];
    g.side = s;
    g.label = labels[static_cast<size_t>(i)];
    g.alpha.resize(static_cast<size_t>(pixels));
    double ink[3] = {0, 0, 0}, count = 0;
    for (int64_t p = 0; p < pixels; ++p) {
      const double a = std::clamp((paper - lum[static_cast<size_t>(p)] - floor) / span, 0.0, 1.0);
      g.alpha[static_cast<size_t>(p)] = static_cast<float>(a);
      if (a > 0.8) {
        for (int64_t c = 0; c < 3; ++c) ink[c] += rgb[static_cast<size_t>(c * pixels + p)];
        ++count;
      }
    }
    for (int64_t c = 0; c < 3; ++c) g.ink[c] = static_cast<float>(count > 0 ? ink[c] / count : 0.1);
  }
  return out;
}

/// Glyphs of MNIST images [first, first + count): coverage = grey level / 255, ink chosen per paste.
inline std::vector<Glyph> mnist_glyphs(const data::MnistSet& set, int64_t first, int64_t count) {
  BINDERY_CHECK(first >= 0 && first + count <= set.size(), ValueError, "mnist_glyphs: images [", first, ", ",
                first + count, ") of a set of ", set.size());
  const int64_t r = set.rows(), c = set.cols();
  const Tensor<uint8_t, Cpu> images = set.images.contiguous();
  std::vector<Glyph> out;
  for (int64_t i = first; i < first + count; ++i) {
    Glyph g;
    g.side = r;
    BINDERY_CHECK(r == c, ShapeError, "mnist_glyphs: images must be square, got ", r, " x ", c);
    g.label = set.labels[static_cast<size_t>(i)];
    g.own_ink = false;
    const uint8_t* v = images.data() + i * r * c;
    for (int64_t p = 0; p < r * c; ++p) g.alpha.push_back(static_cast<float>(v[p]) / 255.0f);
    out.push_back(std::move(g));
  }
  return out;
}

struct Object {
  int64_t label = 0;
  eval::Box box;  // the ink's tight box in scene pixels
};

struct SceneOptions {
  int64_t size = 96, min_digits = 1, max_digits = 4, min_side = 20, max_side = 44;
  double max_overlap = 0.1;  // IoU of two pasted squares at most this
  double noise = 1.0;        // the generator's nuisance scale (lighting, pixel noise)
};

/// One scene: (3, size, size) normalized into `image`; returns its objects.
inline std::vector<Object> draw_scene(const std::vector<Glyph>& glyphs, const SceneOptions& o, uint64_t seed,
                                      uint64_t index, float* image) {
  Philox rng(seed, index);
  auto uniform = [&rng](double lo, double hi) { return lo + (hi - lo) * rng.next_uniform(); };
  const int64_t s = o.size, pixels = s * s;
  const double paper_level = uniform(0.78, 0.97);
  double paper[3];
  for (double& p : paper) p = std::min(1.0, paper_level + uniform(-0.04, 0.04));
  std::vector<double> rgb(static_cast<size_t>(3 * pixels));
  for (int64_t c = 0; c < 3; ++c) std::fill_n(rgb.begin() + c * pixels, pixels, paper[c]);
  const int64_t n =
      o.min_digits +
      static_cast<int64_t>(rng.next_below(static_cast<uint64_t>(o.max_digits - o.min_digits + 1)));
  std::vector<eval::Box> squares;
  std::vector<Object> objects;
  for (int64_t k = 0; k < n; ++k) {
    const Glyph& g = glyphs[rng.next_below(glyphs.size())];
    const int64_t side =
        o.min_side + static_cast<int64_t>(rng.next_below(static_cast<uint64_t>(o.max_side - o.min_side + 1)));
    bool placed = false;
    eval::Box sq;
    for (int attempt = 0; attempt < 30 && !placed; ++attempt) {
      const double x0 = static_cast<double>(rng.next_below(static_cast<uint64_t>(s - side + 1)));
      const double y0 = static_cast<double>(rng.next_below(static_cast<uint64_t>(s - side + 1)));
      sq = {x0, y0, x0 + static_cast<double>(side), y0 + static_cast<double>(side)};
      placed = std::all_of(squares.begin(), squares.end(),
                           [&](const eval::Box& b) { return eval::iou(sq, b) <= o.max_overlap; });
    }
    if (!placed) continue;
    squares.push_back(sq);
    double ink[3];
    if (g.own_ink) {
      for (int c = 0; c < 3; ++c) ink[c] = g.ink[c];
    } else {
      const auto& colour = synth::detail::kInkColours[rng.next_below(synth::detail::kInkColours.size())];
      for (int c = 0; c < 3; ++c) ink[c] = std::clamp(colour.rgb[c] + uniform(-0.05, 0.05), 0.0, 1.0);
    }
    // Bilinear resize of the coverage (pixel centres aligned), composited; the box bounds alpha > 0.25.
    const double scale = static_cast<double>(g.side) / static_cast<double>(side);
    const int64_t ox = static_cast<int64_t>(sq.x0), oy = static_cast<int64_t>(sq.y0);
    int64_t bx0 = side, by0 = side, bx1 = -1, by1 = -1;
    for (int64_t y = 0; y < side; ++y)
      for (int64_t x = 0; x < side; ++x) {
        const double u = std::clamp((x + 0.5) * scale - 0.5, 0.0, static_cast<double>(g.side - 1));
        const double v = std::clamp((y + 0.5) * scale - 0.5, 0.0, static_cast<double>(g.side - 1));
        const int64_t u0 = static_cast<int64_t>(u), v0 = static_cast<int64_t>(v);
        const int64_t u1 = std::min(u0 + 1, g.side - 1), v1 = std::min(v0 + 1, g.side - 1);
        const double fu = u - static_cast<double>(u0), fv = v - static_cast<double>(v0);
        auto at = [&g](int64_t yy, int64_t xx) { return g.alpha[static_cast<size_t>(yy * g.side + xx)]; };
        const double a = (1 - fv) * ((1 - fu) * at(v0, u0) + fu * at(v0, u1)) +
                         fv * ((1 - fu) * at(v1, u0) + fu * at(v1, u1));
        if (a <= 0) continue;
        const int64_t p = (oy + y) * s + ox + x;
        for (int64_t c = 0; c < 3; ++c) {
          double& value = rgb[static_cast<size_t>(c * pixels + p)];
          value = value * (1 - a) + ink[c] * a;
        }
        if (a > 0.25)
          bx0 = std::min(bx0, x), by0 = std::min(by0, y), bx1 = std::max(bx1, x), by1 = std::max(by1, y);
      }
    if (bx1 < 0) continue;  // an empty glyph: nothing to detect
    objects.push_back({g.label,
                       {static_cast<double>(ox + bx0), static_cast<double>(oy + by0),
                        static_cast<double>(ox + bx1 + 1), static_cast<double>(oy + by1 + 1)}});
  }
  const double light_x = uniform(-0.15, 0.15) * o.noise, light_y = uniform(-0.15, 0.15) * o.noise;
  std::vector<float> gauss(static_cast<size_t>(3 * pixels));
  for (size_t i = 0; i + 1 < gauss.size(); i += 2) {  // Box-Muller
    const double u1 = std::max(rng.next_uniform(), 1e-12), u2 = rng.next_uniform();
    const double r = std::sqrt(-2 * std::log(u1));
    gauss[i] = static_cast<float>(r * std::cos(6.283185307179586 * u2));
    gauss[i + 1] = static_cast<float>(r * std::sin(6.283185307179586 * u2));
  }
  for (int64_t y = 0; y < s; ++y)
    for (int64_t x = 0; x < s; ++x) {
      const double light = 1.0 + light_x * ((x + 0.5) / s - 0.5) + light_y * ((y + 0.5) / s - 0.5);
      for (int64_t c = 0; c < 3; ++c) {
        const size_t i = static_cast<size_t>(c * pixels + y * s + x);
        const double value = light * rgb[i] + 0.03 * o.noise * gauss[i];
        image[i] = static_cast<float>((value - synth::kImageMean[static_cast<size_t>(c)]) /
                                      synth::kImageStd[static_cast<size_t>(c)]);
      }
    }
  return objects;
}

}  // namespace scenes
