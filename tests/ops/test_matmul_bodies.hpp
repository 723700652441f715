// tests/ops/test_matmul_bodies.hpp — the templated test bodies of test_matmul.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_matmul.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_matmul {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

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

}  // namespace bindery_tests::ops_matmul
