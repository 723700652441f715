#include "test_util.hpp"

#include <bindery/eval/pca.hpp>

#include <limits>

using namespace bindery;
using namespace bindery::eval;

namespace {

// An orthonormal basis of R^3: the plane spanned by u and v, its normal w = u x v.
const std::array<double, 3> kU = {2.0 / 7, 3.0 / 7, 6.0 / 7};
const std::array<double, 3> kV = {3.0 / 7, -6.0 / 7, 2.0 / 7};
const std::array<double, 3> kW = {6.0 / 7, 2.0 / 7, -3.0 / 7};
const std::array<double, 3> kCentre = {1.0, -2.0, 0.5};

struct PlaneData {
  std::vector<double> rows;  // (15, 3)
  std::vector<double> a, b;  // the in-plane coordinates of each row
};

/// Points c + a u + b v + tiny noise along w, on the grid a in {-6, -3, 0, 3, 6}, b in {-1, 0, 1}: a and
/// b are centred and uncorrelated, so the principal axes are u (variance 270 / 14) and v (10 / 14).
PlaneData plane_data(double noise) {
  PlaneData data;
  int row = 0;
  for (const double a : {-6.0, -3.0, 0.0, 3.0, 6.0}) {
    for (const double b : {-1.0, 0.0, 1.0}) {
      const double e = noise * std::sin(1.7 * row + 0.3);  // deterministic "noise"
      for (int j = 0; j < 3; ++j) data.rows.push_back(kCentre[j] + a * kU[j] + b * kV[j] + e * kW[j]);
      data.a.push_back(a);
      data.b.push_back(b);
      ++row;
    }
  }
  return data;
}

double dot(const PcaResult<double>& fit, int64_t i, const std::array<double, 3>& x) {
  return fit.component(i, 0) * x[0] + fit.component(i, 1) * x[1] + fit.component(i, 2) * x[2];
}

}  // namespace

TEST_CASE("pca: points on a plane in 3-D give the plane's axes and variances", "[eval][pca]") {
  const PlaneData data = plane_data(1e-6);
  const PcaResult<double> fit = pca(data.rows.data(), 15, 3, 3);
  REQUIRE(fit.components.size() == 9);
  REQUIRE(fit.projected.size() == 45);
  // The first two components span the plane; the third is its normal.
  CHECK(std::fabs(dot(fit, 0, kW)) < 1e-6);
  CHECK(std::fabs(dot(fit, 1, kW)) < 1e-6);
  CHECK(std::fabs(dot(fit, 2, kW)) > 1.0 - 1e-9);
  // Sign convention: the entry of largest magnitude is positive, so u stays u and v becomes -v.
  for (int j = 0; j < 3; ++j) {
    CHECK(fit.component(0, j) == Approx(kU[j]).margin(1e-9));
    CHECK(fit.component(1, j) == Approx(-kV[j]).margin(1e-9));
    CHECK(fit.component(2, j) == Approx(kW[j]).margin(1e-9));
  }
  CHECK(fit.explained_variance[0] == Approx(270.0 / 14.0).epsilon(1e-9));
  CHECK(fit.explained_variance[1] == Approx(10.0 / 14.0).epsilon(1e-9));
  CHECK(fit.explained_variance[2] < 1e-11);
  CHECK(fit.explained_variance_ratio[0] == Approx(270.0 / 280.0).epsilon(1e-9));
  CHECK(fit.explained_variance_ratio[1] == Approx(10.0 / 280.0).epsilon(1e-9));
  for (int j = 0; j < 3; ++j) CHECK(fit.mean[static_cast<size_t>(j)] == Approx(kCentre[j]).margin(1e-6));
  // Coordinates: (a, -b) for every row, and the mean projects to the origin.
  for (int64_t r = 0; r < 15; ++r) {
    CHECK(fit.coordinate(r, 0) == Approx(data.a[static_cast<size_t>(r)]).margin(1e-6));
    CHECK(fit.coordinate(r, 1) == Approx(-data.b[static_cast<size_t>(r)]).margin(1e-6));
  }
  const std::vector<double> origin = pca_project(fit, fit.mean.data(), 1);
  REQUIRE(origin.size() == 3);
  for (const double v : origin) CHECK(std::fabs(v) < 1e-12);
  // pca_project of the fitted rows reproduces `projected`.
  const std::vector<double> again = pca_project(fit, data.rows.data(), 15);
  CHECK(bindery::testing::max_abs_diff(again, fit.projected) < 1e-12);
}

TEST_CASE("pca: k < d keeps the leading components; signs do not depend on row order", "[eval][pca]") {
  const PlaneData data = plane_data(1e-6);
  const PcaResult<double> two = pca(data.rows.data(), 15, 3, 2);
  CHECK(two.k == 2);
  CHECK(two.components.size() == 6);
  CHECK(two.projected.size() == 30);
  // Reversed rows: the same components with the same signs.
  std::vector<double> reversed;
  for (int r = 14; r >= 0; --r) {
    reversed.insert(reversed.end(), data.rows.begin() + r * 3, data.rows.begin() + r * 3 + 3);
  }
  const PcaResult<double> flipped = pca(reversed.data(), 15, 3, 2);
  CHECK(bindery::testing::max_abs_diff(flipped.components, two.components) < 1e-9);
  // Negated data: the components keep their signs (the convention, not the data, fixes them).
  std::vector<double> negated = data.rows;
  for (double& v : negated) v = -v;
  const PcaResult<double> negative = pca(negated.data(), 15, 3, 2);
  CHECK(bindery::testing::max_abs_diff(negative.components, two.components) < 1e-9);
  for (int64_t i = 0; i < 2; ++i) {
    int64_t largest = 0;
    for (int64_t j = 1; j < 3; ++j) {
      if (std::fabs(two.component(i, j)) > std::fabs(two.component(i, largest))) largest = j;
    }
    CHECK(two.component(i, largest) > 0);
  }
}

TEST_CASE("pca: random data gives orthonormal components and the covariance's total variance",
          "[eval][pca]") {
  const int64_t n = 60, d = 5;
  Philox rng(7);
  const auto x = Tensor<double, Cpu>::normal(Shape{n, d}, rng);
  std::vector<double> values = x.to_vector();
  for (int64_t r = 0; r < n; ++r) values[static_cast<size_t>(r * d)] *= 3.0;  // a dominant direction
  const PcaResult<double> fit = pca(values.data(), n, d, d);
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t k = 0; k < d; ++k) {
      double s = 0.0;
      for (int64_t j = 0; j < d; ++j) s += fit.component(i, j) * fit.component(k, j);
      CHECK(s == Approx(i == k ? 1.0 : 0.0).margin(1e-12));
    }
    if (i > 0)
      CHECK(fit.explained_variance[static_cast<size_t>(i)] <=
            fit.explained_variance[static_cast<size_t>(i - 1)]);
  }
  // Total variance by a direct loop: sum over columns of the sample variance.
  double total = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    double mean = 0.0;
    for (int64_t r = 0; r < n; ++r) mean += values[static_cast<size_t>(r * d + j)] / n;
    for (int64_t r = 0; r < n; ++r) {
      total += std::pow(values[static_cast<size_t>(r * d + j)] - mean, 2) / (n - 1);
    }
  }
  double sum = 0.0, ratio = 0.0;
  for (int64_t i = 0; i < d; ++i) {
    sum += fit.explained_variance[static_cast<size_t>(i)];
    ratio += fit.explained_variance_ratio[static_cast<size_t>(i)];
  }
  CHECK(sum == Approx(total).epsilon(1e-12));
  CHECK(ratio == Approx(1.0).epsilon(1e-12));
  // The variance of each projected column is its explained variance.
  for (int64_t i = 0; i < d; ++i) {
    double s = 0.0, m = 0.0;
    for (int64_t r = 0; r < n; ++r) m += fit.coordinate(r, i) / n;
    CHECK(std::fabs(m) < 1e-12);
    for (int64_t r = 0; r < n; ++r) s += std::pow(fit.coordinate(r, i), 2) / (n - 1);
    CHECK(s == Approx(fit.explained_variance[static_cast<size_t>(i)]).epsilon(1e-10));
  }
}

TEST_CASE("pca: float tensors and identical points", "[eval][pca]") {
  const PlaneData data = plane_data(1e-6);
  std::vector<float> rows(data.rows.begin(), data.rows.end());
  const auto x = Tensor<float, Cpu>::from_vector(rows, Shape{15, 3});
  const PcaResult<float> fit = pca(x, 2);
  CHECK(fit.n == 15);
  CHECK(fit.d == 3);
  for (int j = 0; j < 3; ++j) {
    CHECK(fit.component(0, j) == Approx(kU[j]).margin(1e-5));
    CHECK(fit.component(1, j) == Approx(-kV[j]).margin(1e-5));
  }
  CHECK(fit.explained_variance[0] == Approx(270.0 / 14.0).epsilon(1e-5));
  // A strided view works (copied to the host in row order).
  const PcaResult<float> transposed = pca(x.transpose(0, 1).transpose(0, 1), 2);
  CHECK(transposed.components == fit.components);
  // All rows equal: zero variance, ratios 0 (not NaN), coordinates 0.
  const std::vector<double> same = {1, 2, 1, 2, 1, 2};
  const PcaResult<double> flat = pca(same.data(), 3, 2, 2);
  for (const double v : flat.explained_variance) CHECK(v == 0.0);
  for (const double v : flat.explained_variance_ratio) CHECK(v == 0.0);
  for (const double v : flat.projected) CHECK(v == 0.0);
}

TEST_CASE("pca: bad arguments name the shape", "[eval][pca]") {
  const PlaneData data = plane_data(0.0);
  BINDERY_REQUIRE_THROWS_WITH_ALL(pca(data.rows.data(), 15, 3, 4), ValueError, "(15, 3)", "k = 4");
  BINDERY_REQUIRE_THROWS_WITH_ALL(pca(data.rows.data(), 15, 3, 0), ValueError, "(15, 3)", "k = 0");
  BINDERY_REQUIRE_THROWS_WITH_ALL(pca(data.rows.data(), 1, 3, 1), ShapeError, "(1, 3)", "2 rows");
  BINDERY_REQUIRE_THROWS_WITH_ALL(pca(data.rows.data(), 5, 0, 1), ShapeError, "(5, 0)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(pca(static_cast<const double*>(nullptr), 5, 3, 1), ValueError, "(5, 3)",
                                  "null");
  std::vector<double> bad = {1, 2, 3, 4, 5, std::numeric_limits<double>::quiet_NaN()};
  BINDERY_REQUIRE_THROWS_WITH_ALL(pca(bad.data(), 2, 3, 1), ValueError, "(2, 3)", "(1, 2)");
  const auto vector = Tensor<double, Cpu>::zeros(Shape{6});
  BINDERY_REQUIRE_THROWS_WITH_ALL(pca(vector, 1), ShapeError, "(6,)");
}
