// tests/ops/test_symmetric_cross_entropy_bodies.hpp — the templated test bodies of
// test_symmetric_cross_entropy.cpp, one instance per backend of bindery::testing::Backends: Cpu in test_ops
// (test_symmetric_cross_entropy.cpp includes this file), Cpu and Cuda in test_cuda
// (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_symmetric_cross_entropy {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

/// The reference: two cross_entropy calls, on the logits and on a transposed copy.
template <class T, class B>
Var<T, B> composite(const Var<T, B>& logits) {
  const Tensor<int64_t, B> targets = Tensor<int64_t, B>::arange(logits.size(0));
  const Var<T, B> rows = ops::cross_entropy(logits, targets);
  const Var<T, B> cols = ops::cross_entropy(ops::contiguous(ops::transpose(logits, 0, 1)), targets);
  return (rows + cols) * static_cast<T>(0.5);
}

template <class T, class B>
void require_matches_composite(int64_t n, uint64_t seed, double low, double high, double tolerance) {
  INFO("N " << n << " logits in [" << low << ", " << high << ")");
  const Var<T, B> fused_in = random_var<T, B>({n, n}, seed, low, high);
  const Var<T, B> composite_in(fused_in.value().clone(), true);
  const Var<T, B> fused_loss = ops::symmetric_cross_entropy(fused_in) * T(3);  // g = 3
  const Var<T, B> composite_loss = composite(composite_in) * T(3);
  REQUIRE(fused_loss.shape() == Shape{});
  CHECK(double(fused_loss.item()) == Approx(double(composite_loss.item())).epsilon(tolerance));
  fused_loss.backward();
  composite_loss.backward();
  REQUIRE(fused_in.grad().shape() == Shape{n, n});
  CHECK(testing::max_abs_diff(fused_in.grad().to_vector(), composite_in.grad().to_vector()) <=
        tolerance / double(n));
}

TEMPLATE_LIST_TEST_CASE("symmetric_cross_entropy forward: hand-computed values",
                        "[ops][symmetric_cross_entropy]", bindery::testing::Backends) {
  using B = TestType;
  // l = [[log 2, 0], [log 3, 0]]: rows log(3/2) and log 4, columns log(5/2) and log 2, so
  // loss = ((log 1.5 + log 4) / 2 + (log 2.5 + log 2) / 2) / 2 = (log 6 + log 5) / 4 = log(30) / 4.
  const auto logits = Tensor<double, B>::from_vector({std::log(2.0), 0, std::log(3.0), 0}, {2, 2});
  require_values(ops::symmetric_cross_entropy_forward(logits), Shape{}, {std::log(30.0) / 4}, 1e-12);
  require_values(ops::symmetric_cross_entropy(Var<double, B>(logits)).value(), Shape{}, {std::log(30.0) / 4},
                 1e-12);
  // N = 1: the only candidate is the right one, loss 0.
  require_values(ops::symmetric_cross_entropy_forward(Tensor<double, B>::from_vector({5.0}, {1, 1})), Shape{},
                 {0.0}, 0);
  // float, with large logits (no overflow): every row and column is uniform over 2 -> log 2.
  const auto big = Tensor<float, B>::from_vector({1000, 1000, 1000, 1000}, {2, 2});
  require_values(ops::symmetric_cross_entropy_forward(big), Shape{}, {std::log(2.0)}, 1e-6);
  // a transposed (non-contiguous) view gives the same value: the loss is symmetric under transposition
  const auto x = random_var<double, B>({5, 5}, 7, -3, 3).value();
  CHECK(ops::symmetric_cross_entropy_forward(x.transpose(0, 1)).item() ==
        Approx(ops::symmetric_cross_entropy_forward(x).item()).epsilon(1e-12));
}

TEMPLATE_LIST_TEST_CASE("symmetric_cross_entropy equals the two-cross_entropy composite",
                        "[ops][symmetric_cross_entropy]", bindery::testing::Backends) {
  using B = TestType;
  for (const int64_t n : {int64_t(1), int64_t(2), int64_t(9), int64_t(67)}) {
    require_matches_composite<double, B>(n, uint64_t(20 + n), -4, 4, 1e-12);
    require_matches_composite<float, B>(n, uint64_t(30 + n), -4, 4, 1e-5);
    // InfoNCE's range: cosine similarities times the clamped scale 100
    require_matches_composite<float, B>(n, uint64_t(40 + n), -100, 100, 1e-5);
  }
}

TEMPLATE_LIST_TEST_CASE("symmetric_cross_entropy passes gradcheck",
                        "[ops][symmetric_cross_entropy][gradcheck]", bindery::testing::Backends) {
  using B = TestType;
  for (const int64_t n : {int64_t(1), int64_t(4), int64_t(6)}) {
    INFO("N " << n);
    require_gradcheck<B>(
        [](const std::vector<Var<double, B>>& in) { return ops::symmetric_cross_entropy(in[0]); },
        {random_var<double, B>({n, n}, uint64_t(50 + n), -3, 3)});
    // through a transposed view and an upstream op, so g != 1 reaches the kernel
    require_gradcheck<B>(
        [](const std::vector<Var<double, B>>& in) {
          return ops::symmetric_cross_entropy(ops::transpose(in[0], 0, 1) * 1.5) * 0.7;
        },
        {random_var<double, B>({n, n}, uint64_t(60 + n), -3, 3)});
  }
}

TEMPLATE_LIST_TEST_CASE("symmetric_cross_entropy records no graph when no gradient is needed",
                        "[ops][symmetric_cross_entropy]", bindery::testing::Backends) {
  using B = TestType;
  const auto x = random_var<float, B>({3, 3}, 8, -1, 1, false);
  CHECK_FALSE(ops::symmetric_cross_entropy(x).requires_grad());
  const auto y = random_var<float, B>({3, 3}, 9);
  const NoGrad no_grad;
  CHECK_FALSE(ops::symmetric_cross_entropy(y).requires_grad());
}

TEMPLATE_LIST_TEST_CASE("symmetric_cross_entropy rejects non-square, 1-D and empty logits",
                        "[ops][symmetric_cross_entropy]", bindery::testing::Backends) {
  using B = TestType;
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::symmetric_cross_entropy_forward(Tensor<float, B>::zeros({2, 3})),
                                  ShapeError, "symmetric_cross_entropy", "(2, 3)", "square");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::symmetric_cross_entropy(Var<float, B>(Tensor<float, B>::zeros({3}))),
                                  ShapeError, "(3,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::symmetric_cross_entropy_forward(Tensor<double, B>::zeros({0, 0})),
                                  ShapeError, "(0, 0)", "N >= 1");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::symmetric_cross_entropy_forward(Tensor<double, B>::zeros({2, 2, 2})),
                                  ShapeError, "(2, 2, 2)");
}

}  // namespace bindery_tests::ops_symmetric_cross_entropy
