#include "test_util.hpp"
#include "test_cross_entropy_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;
using ops::Reduction;

namespace {

/// -Σ_c q_c log softmax(x)_c per row, q = (1 - s) onehot + s / C, by plain loops.
std::vector<double> naive_cross_entropy(const Tensor<double>& logits, const std::vector<int64_t>& targets,
                                        double smoothing) {
  const int64_t n = logits.size(0), c = logits.size(1);
  const std::vector<double> x = logits.to_vector();
  std::vector<double> loss(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < c; ++j) max = std::max(max, x[size_t(i * c + j)]);
    for (int64_t j = 0; j < c; ++j) sum += std::exp(x[size_t(i * c + j)] - max);
    double l = 0;
    for (int64_t j = 0; j < c; ++j) {
      const double q = (j == targets[size_t(i)] ? 1 - smoothing : 0) + smoothing / double(c);
      l -= q * (x[size_t(i * c + j)] - max - std::log(sum));
    }
    loss[size_t(i)] = l;
  }
  return loss;
}

}  // namespace

TEST_CASE("cross_entropy matches loops with and without label smoothing", "[ops][cross_entropy]") {
  Philox rng(3);
  const auto logits = Tensor<double>::uniform({6, 11}, rng, -5, 5);
  const std::vector<int64_t> t = {0, 10, 3, 3, 7, 1};
  const auto targets = Tensor<int64_t>::from_vector(t);
  for (double s : {0.0, 0.1, 1.0}) {
    INFO("smoothing " << s);
    const auto expected = naive_cross_entropy(logits, t, s);
    require_values(ops::cross_entropy_forward(logits, targets, Reduction::kNone, s), Shape{6}, expected,
                   1e-12);
    require_values(ops::cross_entropy_forward(logits.cast<float>(), targets, Reduction::kNone, s), Shape{6},
                   expected, 1e-5);
  }
}

TEST_CASE("cross_entropy passes gradcheck for every reduction", "[ops][cross_entropy][gradcheck]") {
  auto logits = random_var<double>({5, 7}, 4, -3, 3);
  const auto targets = Tensor<int64_t>::from_vector({6, 0, 2, 2, 5});
  for (Reduction r : {Reduction::kNone, Reduction::kMean, Reduction::kSum}) {
    for (double s : {0.0, 0.2}) {
      INFO("reduction " << int(r) << " smoothing " << s);
      require_gradcheck<Cpu>(
          [&](const std::vector<Var<double>>& in) { return ops::cross_entropy(in[0], targets, r, s); },
          {logits});
    }
  }
}

TEST_CASE("cross_entropy backward is softmax minus the one-hot target", "[ops][cross_entropy]") {
  auto logits = random_var<double>({3, 4}, 5);
  const auto targets = Tensor<int64_t>::from_vector({1, 3, 0});
  ops::cross_entropy(logits, targets).backward();
  std::vector<double> expected = ops::softmax_forward(logits.value()).to_vector();
  for (int64_t i = 0; i < 3; ++i) expected[size_t(i * 4 + targets.at({i}))] -= 1;
  for (double& e : expected) e /= 3;
  require_values(logits.grad(), Shape{3, 4}, expected, 1e-12);
  // composite twin: -mean(Σ onehot ∘ log_softmax)
  const auto grad = logits.grad().to_vector();
  logits.zero_grad();
  std::vector<double> onehot(12, 0.0);
  for (int64_t i = 0; i < 3; ++i) onehot[size_t(i * 4 + targets.at({i}))] = 1;
  const Var<double> q(Tensor<double>::from_vector(onehot, {3, 4}));
  (-ops::mean(ops::sum(q * ops::log_softmax(logits, 1), {1}))).backward();
  REQUIRE(testing::max_abs_diff(grad, logits.grad().to_vector()) < 1e-12);
}

TEST_CASE("cross_entropy rejects bad targets and shapes", "[ops][cross_entropy]") {
  const auto logits = Tensor<float>::zeros({2, 3});
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::cross_entropy_forward(logits, Tensor<int64_t>::from_vector({0, 5})),
                                  IndexError, "target 5", "index 1", "[0, 3)", "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::cross_entropy_forward(logits, Tensor<int64_t>::from_vector({-1, 0})),
                                  IndexError, "target -1", "index 0");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::cross_entropy_forward(logits, Tensor<int64_t>::from_vector({0, 1, 2})),
                                  ShapeError, "(2, 3)", "(3,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::cross_entropy_forward(Tensor<float>::zeros({3}), Tensor<int64_t>::zeros({3})), ShapeError, "(3,)");
  REQUIRE_THROWS_AS(ops::cross_entropy_forward(logits, Tensor<int64_t>::zeros({2}), Reduction::kMean, 1.5),
                    ValueError);
}
