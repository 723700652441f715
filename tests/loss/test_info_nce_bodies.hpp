// tests/loss/test_info_nce_bodies.hpp — the templated test bodies of test_info_nce.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_loss (test_info_nce.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_layers_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <cmath>

namespace bindery_tests::loss_info_nce {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_values;

/// The 2×2 case by hand: a = [[2, 0], [0, 5]] normalizes to I, b = [[3, 4], [0, 2]] to
/// [[0.6, 0.8], [0, 1]], so logits = s [[0.6, 0], [0.8, 1]] (logits[i][j] = s â_i·b̂_j).
inline double hand_loss(double s) {
  const double row0 = std::log(std::exp(0.6 * s) + 1.0) - 0.6 * s;
  const double row1 = std::log(std::exp(0.8 * s) + std::exp(s)) - s;
  const double col0 = std::log(std::exp(0.6 * s) + std::exp(0.8 * s)) - 0.6 * s;
  const double col1 = std::log(1.0 + std::exp(s)) - s;
  return ((row0 + row1) / 2 + (col0 + col1) / 2) / 2;
}

template <class T, class B>
Var<T, B> var(const std::vector<T>& v, const Shape& shape, bool requires_grad = true) {
  return Var<T, B>(Tensor<T, B>::from_vector(v, shape), requires_grad);
}

TEMPLATE_LIST_TEST_CASE("info_nce on a hand-computed 2x2 case", "[loss][info_nce]",
                        bindery::testing::Backends) {
  using B = TestType;
  const auto a = var<double, B>({2, 0, 0, 5}, {2, 2}), b = var<double, B>({3, 4, 0, 2}, {2, 2});
  for (double s : {1.0, 2.0, 10.0}) {
    INFO("scale " << s);
    CHECK(loss::info_nce(a, b, s).item() == Approx(hand_loss(s)).epsilon(1e-12));
    const auto a_norm = var<double, B>({1, 0, 0, 1}, {2, 2}),
               b_norm = var<double, B>({0.6, 0.8, 0, 1}, {2, 2});
    CHECK(loss::info_nce_normalized(a_norm, b_norm, s).item() == Approx(hand_loss(s)).epsilon(1e-12));
  }
  // float agrees with the double formula.
  const auto af = var<float, B>({2, 0, 0, 5}, {2, 2}), bf = var<float, B>({3, 4, 0, 2}, {2, 2});
  CHECK(loss::info_nce(af, bf, 2.0f).item() == Approx(hand_loss(2.0)).epsilon(1e-6));

  // The module, learnable scale initialised at 2: same loss, logits and scale for monitoring.
  loss::InfoNCE<double, B> criterion({.scale = {.init_scale = 2.0}});
  const auto out = criterion.forward(a, b);
  CHECK(out.loss.item() == Approx(hand_loss(2.0)).epsilon(1e-12));
  CHECK(out.scale == Approx(2.0));
  require_values(out.logits, Shape{2, 2}, {1.2, 0.0, 1.6, 2.0}, 1e-12);
  const loss::RetrievalAccuracy accuracy = loss::retrieval_accuracy(out.logits);
  CHECK(accuracy.a_to_b == 1.0);  // rows: argmax(1.2, 0) = 0, argmax(1.6, 2.0) = 1
  CHECK(accuracy.b_to_a == 0.5);  // columns: argmax(1.2, 1.6) = 1 (miss), argmax(0, 2) = 1
}

TEMPLATE_LIST_TEST_CASE("info_nce is symmetric in a and b", "[loss][info_nce]", bindery::testing::Backends) {
  using B = TestType;
  const auto a = random_var<double, B>({5, 4}, 1), b = random_var<double, B>({5, 4}, 2);
  CHECK(loss::info_nce(a, b, 7.0).item() == Approx(loss::info_nce(b, a, 7.0).item()).epsilon(1e-12));
  // Scaling a row of a (or b) does not change the loss: rows are normalized.
  const auto a_scaled =
      Var<double, B>(ops::mul_forward(a.value(), Tensor<double, B>::from_vector({3, 0.5, 2, 1, 9}, {5, 1})));
  CHECK(loss::info_nce(a_scaled, b, 7.0).item() == Approx(loss::info_nce(a, b, 7.0).item()).epsilon(1e-12));
  // Perfectly aligned pairs and a large scale give a loss near zero; a single pair has loss 0.
  CHECK(loss::info_nce(a, a, 100.0).item() < loss::info_nce(a, b, 100.0).item());
  const auto one_a = random_var<double, B>({1, 3}, 3), one_b = random_var<double, B>({1, 3}, 4);
  CHECK(loss::info_nce(one_a, one_b, 5.0).item() == Approx(0.0).margin(1e-12));
}

TEMPLATE_LIST_TEST_CASE("info_nce gradcheck w.r.t. a, b and log_scale", "[loss][info_nce][gradcheck]",
                        bindery::testing::Backends) {
  using B = TestType;
  const auto a = random_var<double, B>({4, 3}, 11), b = random_var<double, B>({4, 3}, 12);
  const Var<double, B> log_scale(Tensor<double, B>::scalar(std::log(3.0)), true);
  bindery::testing::require_gradcheck<B>(
      [](const std::vector<Var<double, B>>& in) {
        return loss::info_nce(in[0], in[1], loss::clamped_logit_scale(in[2]));
      },
      {a, b, log_scale});
  // The normalized variant (rows normalized outside, by the test) and the module.
  bindery::testing::require_gradcheck<B>(
      [](const std::vector<Var<double, B>>& in) { return loss::info_nce_normalized(in[0], in[1], in[2]); },
      {a, b, Var<double, B>(Tensor<double, B>::scalar(2.5), true)});
  loss::InfoNCE<double, B> criterion({.scale = {.init_scale = 4.0}});
  bindery::testing::require_gradcheck<B>(
      [&criterion](const std::vector<Var<double, B>>& in) { return criterion.forward(in[0], in[1]).loss; },
      {a, b, criterion.log_logit_scale()});
}

TEMPLATE_LIST_TEST_CASE("LogitScale clamps at max_scale with zero gradient", "[loss][info_nce]",
                        bindery::testing::Backends) {
  using B = TestType;
  loss::LogitScale<double, B> defaults;
  const auto names = defaults.named_parameters();
  REQUIRE(names.size() == 1);
  CHECK(names[0].first == "log_logit_scale");
  CHECK(names[0].second.shape() == Shape{});
  CHECK(names[0].second.item() == Approx(std::log(1.0 / 0.07)));
  CHECK(defaults.scale().item() == Approx(1.0 / 0.07));

  const auto a = random_var<double, B>({3, 4}, 21), b = random_var<double, B>({3, 4}, 22);
  // Above the clamp: scale = 100 and no gradient flows to log_logit_scale.
  loss::InfoNCE<double, B> clamped({.scale = {.init_scale = 150.0}});
  auto out = clamped.forward(a, b);
  CHECK(out.scale == 100.0);
  CHECK(out.loss.item() == Approx(loss::info_nce(a, b, 100.0).item()).epsilon(1e-12));
  out.loss.backward();
  REQUIRE(clamped.log_logit_scale().has_grad());
  CHECK(clamped.log_logit_scale().grad().item() == 0.0);
  CHECK(a.has_grad());
  // Below: the gradient is dL/dlog_s = s dL/ds, nonzero.
  loss::InfoNCE<double, B> free({.scale = {.init_scale = 50.0}});
  free.forward(a, b).loss.backward();
  CHECK(free.log_logit_scale().grad().item() != 0.0);
  // A custom clamp.
  loss::LogitScale<double, B> low({.init_scale = 10.0, .max_scale = 5.0});
  CHECK(low.scale().item() == 5.0);
  require_values(low.forward(Var<double, B>(Tensor<double, B>::ones({2}))).value(), Shape{2}, {5, 5});

  // Not learnable: a buffer named log_logit_scale, no parameter, no gradient.
  loss::InfoNCE<double, B> fixed({.scale = {.init_scale = 20.0, .learnable = false}});
  CHECK(fixed.named_parameters().empty());
  REQUIRE(fixed.named_buffers().size() == 1);
  CHECK(fixed.named_buffers()[0].first == "log_logit_scale");
  CHECK(fixed.forward(a, b).loss.item() == Approx(loss::info_nce(a, b, 20.0).item()).epsilon(1e-12));
  REQUIRE_THROWS_AS((loss::LogitScale<double, B>({.init_scale = -1.0})), ValueError);
}

TEMPLATE_LIST_TEST_CASE("info_nce rejects mismatched shapes naming them", "[loss][info_nce]",
                        bindery::testing::Backends) {
  using B = TestType;
  const auto a = random_var<double, B>({4, 8}, 1), b = random_var<double, B>({3, 8}, 2),
             c = random_var<double, B>({4, 6}, 3), v = random_var<double, B>({8}, 4);
  BINDERY_REQUIRE_THROWS_WITH_ALL(loss::info_nce(a, b, 1.0), ShapeError, "(4, 8)", "(3, 8)", "N = 4 vs 3");
  BINDERY_REQUIRE_THROWS_WITH_ALL(loss::info_nce(a, c, 1.0), ShapeError, "(4, 8)", "(4, 6)", "D = 8 vs 6");
  BINDERY_REQUIRE_THROWS_WITH_ALL(loss::info_nce_normalized(a, v, 1.0), ShapeError, "(4, 8)", "(8,)");
  loss::InfoNCE<double, B> criterion;
  BINDERY_REQUIRE_THROWS_WITH_ALL(criterion.forward(b, a), ShapeError, "(3, 8)", "(4, 8)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(loss::info_nce(a, a, random_var<double, B>({2}, 5)), ShapeError, "(2,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(loss::retrieval_accuracy(a.value()), ShapeError, "(4, 8)");
}

}  // namespace bindery_tests::loss_info_nce
