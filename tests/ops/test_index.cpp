#include "test_util.hpp"
#include "test_index_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEST_CASE("index_select scatter-add is exact under heavy repetition (parallel, race-free)", "[ops][index]") {
  // 200,000 picks of 7 rows: every target row is hit ~28,000 times from many threads' ranges.
  const int64_t picks = 200000, rows = 7, dim = 48;
  Philox rng(99);
  std::vector<int64_t> ids(picks);
  std::vector<int64_t> counts(rows, 0);
  for (auto& id : ids) {
    id = static_cast<int64_t>(rng.next_below(rows));
    ++counts[static_cast<size_t>(id)];
  }
  Var<float> x(Tensor<float>::zeros({rows, dim}), true);
  Var<float> y = ops::index_select(x, 0, Tensor<int64_t>::from_vector(ids));
  REQUIRE(y.shape() == Shape{picks, dim});
  y.backward(Tensor<float>::ones({picks, dim}));  // integer sums below 2^24: exact in float
  std::vector<double> expected;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < dim; ++k) expected.push_back(static_cast<double>(counts[static_cast<size_t>(r)]));
  }
  require_values(x.grad(), Shape{rows, dim}, expected, 0.0);
}

TEST_CASE("index ops reject bad indices and shapes", "[ops][index][errors]") {
  const auto x = Tensor<float>::zeros({3, 2});
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::index_select_forward(x, 0, Tensor<int64_t>::from_vector({0, 3})),
                                  IndexError, "index 3", "(3, 2)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::index_select_forward(x, 1, Tensor<int64_t>::from_vector({-1})),
                                  IndexError, "index -1", "(3, 2)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::index_select_forward(x, 0, Tensor<int64_t>::zeros({2, 2})), ShapeError,
                                  "(2, 2)", "(3, 2)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::index_select_forward(x, 2, Tensor<int64_t>::zeros({1})), IndexError,
                                  "(3, 2)");

  const Var<float> seq(Tensor<float>::zeros({2, 3, 4}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::gather_rows(seq, Tensor<int64_t>::from_vector({1, 5})), IndexError,
                                  "index 5", "(2, 3, 4)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::gather_rows(seq, Tensor<int64_t>::from_vector({1, 1, 1})), ShapeError,
                                  "(2, 3, 4)", "(3,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::gather_rows(Var<float>(x), Tensor<int64_t>::from_vector({1, 1, 1})),
                                  ShapeError, "(3, 2)", "(3,)");
}
