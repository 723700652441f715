#include "test_util.hpp"
#include "test_matmul_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

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
