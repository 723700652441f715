#include "test_util.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("index_select forward picks rows of an axis", "[ops][index]",
                        bindery::testing::Backends) {
  using B = TestType;
  using Index = Tensor<int64_t, B>;
  const auto x = Tensor<float, B>::arange(6).reshape({3, 2});  // [[0, 1], [2, 3], [4, 5]]
  require_values(ops::index_select_forward(x, 0, Index::from_vector({2, 0, 2})), Shape{3, 2},
                 {4, 5, 0, 1, 4, 5});
  require_values(ops::index_select_forward(x, -1, Index::from_vector({1, 1, 0})), Shape{3, 3},
                 {1, 1, 0, 3, 3, 2, 5, 5, 4});
  require_values(ops::index_select_forward(x, 0, Index::zeros({0})), Shape{0, 2}, {});
  const auto y = Tensor<float, B>::arange(12).reshape({2, 3, 2});  // y[i][j][k] = 6i + 2j + k
  require_values(ops::index_select_forward(y, 1, Index::from_vector({1})), Shape{2, 1, 2}, {2, 3, 8, 9});
  // A strided x (transpose) is read correctly: x^T = [[0, 2, 4], [1, 3, 5]].
  require_values(ops::index_select_forward(x.transpose(0, 1), 1, Index::from_vector({2, 0})), Shape{2, 2},
                 {4, 0, 5, 1});
}

TEMPLATE_LIST_TEST_CASE("index_select backward accumulates repeated indices", "[ops][index]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> x(Tensor<double, B>::arange(6).reshape({3, 2}), true);
  Var<double, B> y = ops::index_select(x, 0, Tensor<int64_t, B>::from_vector({2, 0, 2}));
  y.backward(Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}));
  require_values(x.grad(), Shape{3, 2}, {3, 4, 0, 0, 6, 8});

  Var<double, B> z(Tensor<double, B>::arange(12).reshape({2, 3, 2}), true);
  Var<double, B> w = ops::index_select(z, 1, Tensor<int64_t, B>::from_vector({1, 1}));
  w.backward(Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}));
  require_values(z.grad(), Shape{2, 3, 2}, {0, 0, 4, 6, 0, 0, 0, 0, 12, 14, 0, 0});
}

TEMPLATE_LIST_TEST_CASE("index_select passes gradcheck", "[ops][index][gradcheck]",
                        bindery::testing::Backends) {
  using B = TestType;
  const auto index = Tensor<int64_t, B>::from_vector({3, 0, 3, 1, 3});
  auto x = random_var<double, B>({2, 4, 3}, 11);
  require_gradcheck<B>([&](const auto& in) { return ops::index_select(in[0], 1, index); }, {x});
  auto v = random_var<double, B>({4}, 12);
  require_gradcheck<B>([&](const auto& in) { return ops::index_select(in[0], 0, index); }, {v});
}

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

TEMPLATE_LIST_TEST_CASE("gather_rows picks one row per sample", "[ops][index][gather_rows]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> x(Tensor<double, B>::arange(12).reshape({2, 3, 2}), true);  // x[n][l][d] = 6n + 2l + d
  Var<double, B> y = ops::gather_rows(x, Tensor<int64_t, B>::from_vector({2, 0}));
  require_values(y.value(), Shape{2, 2}, {4, 5, 6, 7});
  y.backward(Tensor<double, B>::from_vector({1, 2, 3, 4}, {2, 2}));
  require_values(x.grad(), Shape{2, 3, 2}, {0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0});

  const auto index = Tensor<int64_t, B>::from_vector({1, 3, 0});
  auto z = random_var<double, B>({3, 4, 5}, 21);
  require_gradcheck<B>([&](const auto& in) { return ops::gather_rows(in[0], index); }, {z});
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
