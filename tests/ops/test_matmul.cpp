#include "test_util.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

namespace {

/// Reference product by plain loops: a, b of rank >= 2, batch axes broadcast.
template <class T, class B>
std::vector<double> naive_matmul(const Tensor<T, B>& a, const Tensor<T, B>& b, bool ta, bool tb,
                                 Shape* shape) {
  const Tensor<T, B> a2 = ta ? a.transpose(-1, -2) : a, b2 = tb ? b.transpose(-1, -2) : b;
  const int64_t m = a2.size(-2), k = a2.size(-1), n = b2.size(-1);
  std::vector<int64_t> ba(a2.shape().begin(), a2.shape().end() - 2),
      bb(b2.shape().begin(), b2.shape().end() - 2);
  const Shape batch = broadcast_shapes(Shape(ba), Shape(bb));
  std::vector<int64_t> da(batch.begin(), batch.end()), db = da, dc = da;
  da.insert(da.end(), {m, k});
  db.insert(db.end(), {k, n});
  dc.insert(dc.end(), {m, n});
  const std::vector<T> va = a2.expand(Shape(da)).contiguous().to_vector();
  const std::vector<T> vb = b2.expand(Shape(db)).contiguous().to_vector();
  std::vector<double> out(static_cast<size_t>(batch.numel() * m * n), 0.0);
  for (int64_t p = 0; p < batch.numel(); ++p)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t q = 0; q < k; ++q)
          acc += double(va[size_t((p * m + i) * k + q)]) * vb[size_t((p * k + q) * n + j)];
        out[size_t((p * m + i) * n + j)] = acc;
      }
  *shape = Shape(dc);
  return out;
}

template <class T, class B>
void require_matches_naive(const Tensor<T, B>& a, const Tensor<T, B>& b, bool ta, bool tb, double tol) {
  Shape shape;
  const std::vector<double> expected = naive_matmul(a, b, ta, tb, &shape);
  INFO("a " << a.shape() << " trans " << ta << ", b " << b.shape() << " trans " << tb);
  require_values(ops::matmul_forward(a, b, ta, tb), shape, expected, tol);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("matmul forward: hand-computed 2-D, vectors and scalar result", "[ops][matmul]",
                        bindery::testing::Backends) {
  using B = TestType;
  const auto a = Tensor<float, B>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  const auto b = Tensor<float, B>::from_vector({1, 0, 0, 1, 2, -1}, {3, 2});
  // [1 2 3; 4 5 6] · [1 0; 0 1; 2 -1] = [7 -1; 16 -1]
  require_values(ops::matmul_forward(a, b), Shape{2, 2}, {7, -1, 16, -1});
  // aᵀ·a through trans_a: (3, 2)·(2, 3)
  require_values(ops::matmul_forward(a, a, true, false), Shape{3, 3}, {17, 22, 27, 22, 29, 36, 27, 36, 45});
  // a aᵀ through trans_b
  require_values(ops::matmul_forward(a, a, false, true), Shape{2, 2}, {14, 32, 32, 77});
  const auto v = Tensor<float, B>::from_vector({1, -1, 2});
  require_values(ops::matmul_forward(a, v), Shape{2}, {5, 11});  // (2,3)·(3) -> (2)
  require_values(ops::matmul_forward(Tensor<float, B>::from_vector({1, 2}), a), Shape{3}, {9, 12, 15});
  require_values(ops::matmul_forward(v, v), Shape{}, {6});  // dot product
}

TEMPLATE_LIST_TEST_CASE("matmul forward matches loops for layouts, transposes and broadcasts",
                        "[ops][matmul]", bindery::testing::Backends) {
  using B = TestType;
  Philox rng(7);
  auto rand = [&](const Shape& s) { return Tensor<double, B>::uniform(s, rng, -1, 1); };
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const Shape sa = ta ? Shape{2, 3, 5, 4} : Shape{2, 3, 4, 5};
      const Shape sb = tb ? Shape{6, 5} : Shape{5, 6};
      require_matches_naive(rand(sa), rand(sb), ta, tb, 1e-12);  // batched a, shared b
      const Shape sb3 = tb ? Shape{3, 6, 5} : Shape{3, 5, 6};
      require_matches_naive(rand(sa), rand(sb3), ta, tb, 1e-12);  // b broadcast over axis 0
      const Shape sa2 = ta ? Shape{5, 4} : Shape{4, 5};
      require_matches_naive(rand(sa2), rand(sb3), ta, tb, 1e-12);  // shared a, batched b
      const Shape sa3 = ta ? Shape{2, 1, 5, 4} : Shape{2, 1, 4, 5};
      const Shape sb4 = tb ? Shape{1, 3, 6, 5} : Shape{1, 3, 5, 6};
      require_matches_naive(rand(sa3), rand(sb4), ta, tb, 1e-12);  // both broadcast: (2,3)
    }
  }
  // Transposed views (column-major last axes) are read in place through the trans flag.
  const auto x = rand({3, 5, 4});
  const auto w = rand({6, 5});
  require_matches_naive(x.transpose(-1, -2), w.transpose(0, 1), false, false, 1e-12);
  require_matches_naive(x.transpose(-1, -2), rand({6, 4}), true, true, 1e-12);
  // Permuted batch axes and sliced (strided, non-GEMM-able) views.
  const auto big = rand({4, 3, 6, 8});
  require_matches_naive(big.permute({1, 0, 2, 3}), rand({8, 2}), false, false, 1e-12);
  require_matches_naive(big.slice(3, 0, 8, 2), rand({3, 4, 5}), false, false, 1e-12);  // (4,3,6,4)·(3,4,5)
  require_matches_naive(big.slice(2, 1, 5), rand({1, 3, 8, 2}), false, false, 1e-12);
  // An expanded (stride-0) batch operand.
  require_matches_naive(rand({1, 4, 5}).expand({3, 4, 5}), rand({3, 5, 2}), false, false, 1e-12);
  // float accuracy
  Philox frng(3);
  const auto fa = Tensor<float, B>::uniform({2, 7, 9}, frng, -1, 1);
  const auto fb = Tensor<float, B>::uniform({9, 3}, frng, -1, 1);
  require_matches_naive(fa, fb, false, false, 1e-5);
}

TEMPLATE_LIST_TEST_CASE("matmul handles empty extents", "[ops][matmul]", bindery::testing::Backends) {
  using B = TestType;
  require_values(ops::matmul_forward(Tensor<float, B>::ones({2, 0}), Tensor<float, B>::ones({0, 3})),
                 Shape{2, 3}, {0, 0, 0, 0, 0, 0});
  REQUIRE(ops::matmul_forward(Tensor<float, B>::ones({0, 2, 4}), Tensor<float, B>::ones({4, 3})).shape() ==
          Shape{0, 2, 3});
}

TEST_CASE("matmul gradients pass gradcheck", "[ops][matmul][gradcheck]") {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {4, 2}, false, false},    {{4, 3}, {4, 2}, true, false},
      {{3, 4}, {2, 4}, false, true},     {{4, 3}, {2, 4}, true, true},
      {{2, 3, 4}, {4, 2}, false, false}, {{2, 4, 3}, {2, 4}, true, true},
      {{3, 4}, {2, 4, 5}, false, false}, {{2, 1, 3, 4}, {1, 3, 4, 2}, false, false},
      {{4}, {4, 3}, false, false},       {{2, 3, 4}, {4}, false, false},
      {{4}, {4}, false, false},          {{2, 4, 3}, {2, 2, 4}, true, true},
  };
  for (const Case& c : cases) {
    INFO("a " << c.a << " trans " << c.ta << ", b " << c.b << " trans " << c.tb);
    auto a = random_var<double>(c.a, 11);
    auto b = random_var<double>(c.b, 12);
    require_gradcheck<Cpu>(
        [&](const std::vector<Var<double>>& in) { return ops::matmul(in[0], in[1], c.ta, c.tb); }, {a, b});
  }
  // Gradient through a transposed view input.
  auto w = random_var<double>({5, 3}, 13);
  auto x = random_var<double>({2, 3, 5}, 14);
  require_gradcheck<Cpu>(
      [](const std::vector<Var<double>>& in) {
        return ops::matmul(ops::transpose(in[0], -1, -2), in[1], false, true);
      },
      {x, w});
}

TEST_CASE("matmul computes only the gradients that are needed", "[ops][matmul]") {
  Var<double> a(Tensor<double>::from_vector({1, 2, 3, 4}, {2, 2}), true);
  Var<double> b(Tensor<double>::from_vector({1, 0, 0, 1}, {2, 2}), false);
  ops::sum(ops::matmul(a, b)).backward();
  require_values(a.grad(), Shape{2, 2}, {1, 1, 1, 1});
  REQUIRE_FALSE(b.has_grad());
}

TEST_CASE("matmul rejects mismatched shapes", "[ops][matmul]") {
  const auto a = Tensor<float>::ones({2, 3});
  const auto b = Tensor<float>::ones({4, 5});
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::matmul_forward(a, b), ShapeError, "(2, 3)", "(4, 5)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::matmul_forward(Tensor<float>::ones({2, 2, 3}), Tensor<float>::ones({3, 3, 4})), ShapeError,
      "(2, 2, 3)", "(3, 3, 4)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::matmul_forward(Tensor<float>::scalar(1.f), b), ShapeError, "()",
                                  "(4, 5)");
  Var<float> va(a, true), vb(b, true);
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::matmul(va, vb, false, true), ShapeError, "(2, 3)", "(4, 5)");
}

TEST_CASE("matmul reads row- and column-major operands in place", "[ops][matmul]") {
  const auto x = Tensor<float>::ones({3, 4, 5});
  auto row = ops::detail::gemm_operand(x, false);
  REQUIRE((row.tensor.shares_storage_with(x) && !row.trans && row.ld == 5));
  auto col = ops::detail::gemm_operand(x.transpose(-1, -2), false);  // (3, 5, 4) column-major
  REQUIRE((col.tensor.shares_storage_with(x) && col.trans && col.ld == 5));
  auto col_t = ops::detail::gemm_operand(x.transpose(-1, -2), true);
  REQUIRE((col_t.tensor.shares_storage_with(x) && !col_t.trans));
  auto padded = ops::detail::gemm_operand(x.slice(2, 0, 3), false);  // rows of 3 at pitch 5
  REQUIRE((padded.tensor.shares_storage_with(x) && padded.ld == 5));
  auto strided = ops::detail::gemm_operand(x.slice(2, 0, 5, 2), false);  // no unit stride: copied
  REQUIRE_FALSE(strided.tensor.shares_storage_with(x));
}
