// tests/data/image_test_util.hpp — shared by the visual-preprocessing tests (test_image*.cpp,
// test_depth.cpp, test_thermal.cpp, test_video.cpp): fixture paths, the procedural test image that
// tests/reference/make_image_fixtures.py also generates, and the parity statistics.
#pragma once

#include "test_util.hpp"

#include <bindery/data/image.hpp>

#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

namespace bindery::testing {

// (Appended piecewise: GCC 12 reports a false -Warray-bounds on `string(literal) + "..." + name`.)
inline std::string image_fixture(const std::string& name) {
  std::string path = BINDERY_TEST_DATA;
  path += "/reference/image/";
  path += name;
  return path;
}
inline std::string shared_asset(const std::string& name) {
  std::string path = BINDERY_SHARED_DATA;
  path += "/imagebind_assets/";
  path += name;
  return path;
}

/// The twin of make_image_fixtures.py's procedural(): gradients, wrapping stripes, hash noise.
inline data::Image procedural_image(int64_t height, int64_t width, int64_t channels, uint64_t seed) {
  data::Image image{height, width, channels,
                    std::vector<uint8_t>(static_cast<size_t>(height * width * channels))};
  constexpr uint64_t kMask = 0xFFFFFFFFu;
  for (uint64_t y = 0; y < static_cast<uint64_t>(height); ++y) {
    for (uint64_t x = 0; x < static_cast<uint64_t>(width); ++x) {
      for (uint64_t c = 0; c < static_cast<uint64_t>(channels); ++c) {
        uint64_t k = (x * 2654435761u + y * 40503u + c * 97u + seed * 7919u) & kMask;
        k ^= k >> 15;
        k = (k * 2246822519u) & kMask;
        k ^= k >> 13;
        const uint64_t noise = k & 31;
        const uint64_t grad = x * 255 / static_cast<uint64_t>(std::max<int64_t>(width - 1, 1)) +
                              y * 128 / static_cast<uint64_t>(std::max<int64_t>(height - 1, 1));
        const uint64_t stripes = ((x / 8 + y / 11 + c) % 3) == 0 ? 64 : 0;
        image.pixels[static_cast<size_t>(
            (y * static_cast<uint64_t>(width) + x) * static_cast<uint64_t>(channels) + c)] =
            static_cast<uint8_t>((grad + stripes + noise) & 255);
      }
    }
  }
  return image;
}

/// An .npy fixture as a host vector (any stored dtype converted to T) and its shape.
template <class T>
std::vector<T> read_fixture(const std::string& name, Shape* shape = nullptr) {
  const Tensor<T> tensor = io::read_npy<T>(image_fixture(name));
  if (shape != nullptr) *shape = tensor.shape();
  return tensor.to_vector();
}

/// How close two byte images are: the parity statistics.
struct PixelStats {
  int64_t total = 0;
  int64_t equal = 0;
  int max_diff = 0;
  double equal_fraction() const {
    return total == 0 ? 0.0 : static_cast<double>(equal) / static_cast<double>(total);
  }
};

inline PixelStats compare_pixels(const std::vector<uint8_t>& ours, const std::vector<uint8_t>& reference) {
  PixelStats stats;
  REQUIRE(ours.size() == reference.size());
  stats.total = static_cast<int64_t>(ours.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    const int diff = std::abs(static_cast<int>(ours[i]) - static_cast<int>(reference[i]));
    stats.equal += diff == 0 ? 1 : 0;
    stats.max_diff = std::max(stats.max_diff, diff);
  }
  return stats;
}

/// Prints one line of the parity report (shown with -s or in the CTest log) and appends it to
/// $BINDERY_PARITY_REPORT when that is set.
inline void report_parity(const std::string& what, const PixelStats& stats,
                          double max_normalized_error = -1.0) {
  std::ostringstream line;
  line << std::fixed << std::setprecision(4) << "[parity] " << what << ": " << 100.0 * stats.equal_fraction()
       << "% of " << stats.total << " uint8 values equal, max diff " << stats.max_diff;
  if (max_normalized_error >= 0)
    line << std::scientific << std::setprecision(2) << ", max normalized error " << max_normalized_error;
  std::cout << line.str() << "\n";
  if (const char* path = std::getenv("BINDERY_PARITY_REPORT"))
    std::ofstream(path, std::ios::app) << line.str() << "\n";
}

}  // namespace bindery::testing
