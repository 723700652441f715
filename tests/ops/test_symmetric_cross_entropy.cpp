#include "test_util.hpp"
#include "test_symmetric_cross_entropy_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

namespace {

/// 0.5 (mean_i [lse_row_i - l_ii] + mean_j [lse_col_j - l_jj]) by plain loops in double.
double naive_symmetric_cross_entropy(const std::vector<double>& x, int64_t n) {
  auto at = [&](int64_t i, int64_t j) { return x[size_t(i * n + j)]; };
  double rows = 0, cols = 0;
  for (int64_t k = 0; k < n; ++k) {
    double row_max = -INFINITY, col_max = -INFINITY;
    for (int64_t m = 0; m < n; ++m) {
      row_max = std::max(row_max, at(k, m));
      col_max = std::max(col_max, at(m, k));
    }
    double row_sum = 0, col_sum = 0;
    for (int64_t m = 0; m < n; ++m) {
      row_sum += std::exp(at(k, m) - row_max);
      col_sum += std::exp(at(m, k) - col_max);
    }
    rows += row_max + std::log(row_sum) - at(k, k);
    cols += col_max + std::log(col_sum) - at(k, k);
  }
  return 0.5 * (rows / double(n) + cols / double(n));
}

}  // namespace

TEST_CASE("symmetric_cross_entropy matches independent loops", "[ops][symmetric_cross_entropy]") {
  for (const int64_t n : {int64_t(1), int64_t(3), int64_t(7), int64_t(70), int64_t(130)}) {
    INFO("N " << n);
    Philox rng(uint64_t(11 + n));
    const auto logits = Tensor<double>::uniform({n, n}, rng, -20, 20);
    const double expected = naive_symmetric_cross_entropy(logits.to_vector(), n);
    require_values(ops::symmetric_cross_entropy_forward(logits), Shape{}, {expected}, 1e-12 * (1 + expected));
    require_values(ops::symmetric_cross_entropy_forward(logits.cast<float>()), Shape{}, {expected},
                   1e-5 * (1 + expected));
  }
}
