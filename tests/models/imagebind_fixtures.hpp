// tests/models/imagebind_fixtures.hpp — reading the ImageBind parity fixtures (tests/reference/model/,
// written by tests/reference/make_model_fixtures.py) and comparing against them.
#pragma once

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <bindery/io/npy.hpp>
#include <bindery/models/imagebind/imagebind.hpp>

namespace bindery::testing {

namespace ib = ::bindery::models::imagebind;

inline std::string model_fixture(const std::string& name) {
  return std::string(BINDERY_TEST_DATA) + "/reference/model/" + name;
}

/// One fixture case: a name and the modality it feeds (cases.txt).
struct FixtureCase {
  std::string name;
  ib::Modality modality;
};

inline std::vector<FixtureCase> fixture_cases() {
  std::ifstream in(model_fixture("cases.txt"));
  REQUIRE(in.good());
  std::vector<FixtureCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    cases.push_back({line.substr(0, tab), ib::modality_from_name(line.substr(tab + 1))});
  }
  REQUIRE(cases.size() >= 9);
  return cases;
}

/// The input of a case: int64 ids for text, else values converted to T.
template <class T>
ib::ModalityInput<T, Cpu> fixture_input(const FixtureCase& c) {
  const std::string path = model_fixture(c.name + "_input.npy");
  if (c.modality == ib::Modality::kText) return ib::ModalityInput<T, Cpu>(io::read_npy<int64_t>(path));
  return ib::ModalityInput<T, Cpu>(io::read_npy<T>(path));
}

/// max |actual - expected| / max |expected|: the error relative to the output's scale.
template <class T>
double relative_error(const Tensor<T, Cpu>& actual, const Tensor<T, Cpu>& expected) {
  if (!(actual.shape() == expected.shape())) return INFINITY;
  const std::vector<T> a = actual.to_vector(), b = expected.to_vector();
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (!(d <= diff)) diff = d;  // NaN wins
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

/// The smallest cosine similarity between corresponding rows of two (N, D) tensors.
template <class T>
double min_row_cosine(const Tensor<T, Cpu>& actual, const Tensor<T, Cpu>& expected) {
  if (!(actual.shape() == expected.shape()) || actual.rank() != 2) return -INFINITY;
  const std::vector<T> a = actual.to_vector(), b = expected.to_vector();
  const int64_t rows = actual.size(0), cols = actual.size(1);
  double worst = 1.0;
  for (int64_t r = 0; r < rows; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double x = a[static_cast<size_t>(r * cols + c)], y = b[static_cast<size_t>(r * cols + c)];
      ab += x * y, aa += x * x, bb += y * y;
    }
    const double cosine = ab / std::sqrt(aa * bb);
    if (!(cosine >= worst)) worst = cosine;  // NaN wins
  }
  return worst;
}

/// The huge key list dumped by the fixture script: (key, shape) in state_dict order, and the
/// per-modality parameter counts of its header.
struct HugeKeys {
  std::vector<std::pair<std::string, Shape>> keys;
  std::vector<std::pair<std::string, int64_t>> counts;
};

inline HugeKeys read_huge_keys() {
  std::ifstream in(std::string(BINDERY_TEST_DATA) + "/reference/imagebind_huge_keys.txt");
  REQUIRE(in.good());
  HugeKeys out;
  std::string line;
  const std::string count_prefix = "# parameters per modality: ";
  while (std::getline(in, line)) {
    if (line.rfind(count_prefix, 0) == 0) {
      std::istringstream items(line.substr(count_prefix.size()));
      std::string item;
      while (items >> item) {
        const size_t eq = item.find('=');
        out.counts.emplace_back(item.substr(0, eq), std::stoll(item.substr(eq + 1)));
      }
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    std::vector<int64_t> dims;
    std::istringstream extents(line.substr(tab + 1));
    std::string extent;
    while (std::getline(extents, extent, ',')) dims.push_back(std::stoll(extent));
    out.keys.emplace_back(line.substr(0, tab), Shape(dims));
  }
  return out;
}

}  // namespace bindery::testing
