// bindery/eval/pca.hpp — principal component analysis, for 2-D views of an embedding space.
//
// pca(data (n, d), k): centre the rows, form the d x d sample covariance (denominator n - 1, as
// numpy and scikit-learn), take its k largest eigenpairs (Eigen's SelfAdjointEigenSolver) and
// project. Arithmetic in double whatever T is. Each component's sign is fixed so that its entry of
// largest magnitude is positive (the first such entry on a tie): the same data gives the same
// picture, whatever the eigensolver returns.
//
// Cost: O(n d^2) for the covariance plus O(d^3) for the eigensolver: fine for embedding sizes up
// to a few thousand (d = 1024: about a second).
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/core/shape.hpp"
#include "bindery/core/tensor.hpp"

namespace bindery::eval {

/// What pca() found. Row-major vectors.
template <class T>
struct PcaResult {
  int64_t n = 0, d = 0, k = 0;
  std::vector<T> components;                ///< (k, d): orthonormal rows, by decreasing variance
  std::vector<T> explained_variance;        ///< (k): variance of the data along each component
  std::vector<T> explained_variance_ratio;  ///< (k): its share of the total variance (0 if none)
  std::vector<T> mean;                      ///< (d): the mean row that was subtracted
  std::vector<T> projected;                 ///< (n, k): the centred rows in component coordinates

  T component(int64_t i, int64_t j) const { return components[static_cast<size_t>(i * d + j)]; }
  T coordinate(int64_t row, int64_t i) const { return projected[static_cast<size_t>(row * k + i)]; }
};

/// Projects other rows onto a fitted PCA: data (m, fit.d) -> (m, fit.k), centred by fit.mean.
template <class T>
std::vector<T> pca_project(const PcaResult<T>& fit, const T* data, int64_t m) {
  BINDERY_CHECK(m >= 0 && (data != nullptr || m == 0), ValueError, "pca_project: ", m,
                " rows of data at a null pointer");
  std::vector<T> out(static_cast<size_t>(m * fit.k));
  std::vector<double> centred(static_cast<size_t>(fit.d));
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < fit.d; ++j) {
      centred[static_cast<size_t>(j)] =
          static_cast<double>(data[r * fit.d + j]) - static_cast<double>(fit.mean[static_cast<size_t>(j)]);
    }
    for (int64_t i = 0; i < fit.k; ++i) {
      double sum = 0.0;
      for (int64_t j = 0; j < fit.d; ++j)
        sum += centred[static_cast<size_t>(j)] * static_cast<double>(fit.component(i, j));
      out[static_cast<size_t>(r * fit.k + i)] = static_cast<T>(sum);
    }
  }
  return out;
}

/// PCA of n rows of d values (row-major at `data`), keeping k components (1 <= k <= d; n >= 2).
template <class T>
PcaResult<T> pca(const T* data, int64_t n, int64_t d, int64_t k) {
  BINDERY_CHECK(n >= 2 && d >= 1, ShapeError, "pca: data of shape ", Shape{n, d},
                " needs at least 2 rows and 1 column");
  BINDERY_CHECK(data != nullptr, ValueError, "pca: data of shape ", Shape{n, d}, " at a null pointer");
  BINDERY_CHECK(k >= 1 && k <= d, ValueError, "pca: k = ", k, " components for data of shape ", Shape{n, d},
                " (k must be in [1, ", d, "])");
  using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  MatrixD x(n, d);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < d; ++j) {
      const double v = static_cast<double>(data[r * d + j]);
      BINDERY_CHECK(std::isfinite(v), ValueError, "pca: data of shape ", Shape{n, d},
                    " has the non-finite value ", v, " at (", r, ", ", j, ")");
      x(r, j) = v;
    }
  }
  const Eigen::RowVectorXd mean = x.colwise().mean();
  x.rowwise() -= mean;
  const Eigen::MatrixXd covariance = (x.transpose() * x) / static_cast<double>(n - 1);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(covariance);
  BINDERY_CHECK(solver.info() == Eigen::Success, ValueError,
                "pca: the eigensolver did not converge on data of shape ", Shape{n, d});
  // Eigenvalues come in increasing order: the last k columns, reversed.
  Eigen::MatrixXd basis(d, k);  // (d, k): one component per column
  PcaResult<T> result;
  result.n = n;
  result.d = d;
  result.k = k;
  const double total = std::max(covariance.trace(), 0.0);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t source = d - 1 - i;
    Eigen::VectorXd v = solver.eigenvectors().col(source);
    int64_t largest = 0;
    for (int64_t j = 1; j < d; ++j) {
      if (std::fabs(v(j)) > std::fabs(v(largest))) largest = j;
    }
    if (v(largest) < 0) v = -v;
    basis.col(i) = v;
    const double variance = std::max(solver.eigenvalues()(source), 0.0);  // rounding can give -1e-17
    result.explained_variance.push_back(static_cast<T>(variance));
    result.explained_variance_ratio.push_back(static_cast<T>(total > 0.0 ? variance / total : 0.0));
  }
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < d; ++j) result.components.push_back(static_cast<T>(basis(j, i)));
  }
  for (int64_t j = 0; j < d; ++j) result.mean.push_back(static_cast<T>(mean(j)));
  const MatrixD projected = x * basis;  // (n, d) x (d, k) -> (n, k)
  result.projected.assign(projected.data(), projected.data() + n * k);
  return result;
}

/// PCA of the rows of x: (n, d), on any backend (copied to the host once).
template <class T, class B>
PcaResult<T> pca(const Tensor<T, B>& x, int64_t k) {
  BINDERY_CHECK(x.defined() && x.rank() == 2, ShapeError, "pca: x of shape ", x.shape(),
                " must be a matrix (n, d) of n rows");
  const std::vector<T> host = x.to_vector();
  return pca(host.data(), x.size(0), x.size(1), k);
}

}  // namespace bindery::eval
