// tests/ops/test_dropout_bodies.hpp — the templated test bodies of test_dropout.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_dropout.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_dropout {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("dropout is the identity in eval mode and for p == 0", "[ops][dropout]",
                        bindery::testing::Backends) {
  using B = TestType;
  Philox rng(1);
  auto x = random_var<float, B>({3, 4}, 2);
  REQUIRE(ops::dropout(x, 0.5, false, rng).node() == x.node());
  REQUIRE(ops::dropout(x, 0.0, true, rng).node() == x.node());
  REQUIRE(ops::drop_path(x, 0.5, false, rng).node() == x.node());
  REQUIRE(ops::drop_path(x, 0.0, true, rng).node() == x.node());
  REQUIRE(rng.offset() == 0);  // nothing drawn
}

TEMPLATE_LIST_TEST_CASE("dropout keeps exactly the elements its Philox draws say", "[ops][dropout]",
                        bindery::testing::Backends) {
  using B = TestType;
  const double p = 0.3;
  const uint64_t seed = 77;
  Philox rng(seed, 5);  // a generator already 5 counters in
  Var<double, B> x(Tensor<double, B>::arange(1.0, 41.0), true);
  Var<double, B> y = ops::dropout(x, p, true, rng);
  REQUIRE(rng.offset() == 45);
  // The documented contract, computed independently: element i is kept iff
  // uniform01<double>(philox(first + i, seed)) < 1 - p, and then scaled by 1 / (1 - p).
  std::vector<double> expected;
  for (uint64_t i = 0; i < 40; ++i) {
    const double u = bindery::detail::philox_uniform01<double>(bindery::detail::philox4x32_10(5 + i, seed));
    expected.push_back(u < 1.0 - p ? static_cast<double>(i + 1) / (1.0 - p) : 0.0);
  }
  require_values(y.value(), Shape{40}, expected, 1e-12);
  y.backward(Tensor<double, B>::ones({40}));
  for (double& e : expected) e = e == 0.0 ? 0.0 : 1.0 / (1.0 - p);
  require_values(x.grad(), Shape{40}, expected, 1e-12);
}

TEMPLATE_LIST_TEST_CASE("dropout is reproducible, dtype-independent and drops about p", "[ops][dropout]",
                        bindery::testing::Backends) {
  using B = TestType;
  const int64_t n = 1 << 20;
  const double p = 0.25;
  Philox a(123), b(123);
  const auto ones_f = Var<float, B>(Tensor<float, B>::ones({n}));
  const auto ones_d = Var<double, B>(Tensor<double, B>::ones({n}));
  const std::vector<float> first = ops::dropout(ones_f, p, true, a).value().to_vector();
  const std::vector<double> again = ops::dropout(ones_d, p, true, b).value().to_vector();
  REQUIRE(a == b);
  int64_t dropped = 0;
  bool same_mask = true, scaled = true;
  for (int64_t i = 0; i < n; ++i) {
    const float v = first[static_cast<size_t>(i)];
    if (v == 0.f) ++dropped;
    scaled = scaled && (v == 0.f || v == static_cast<float>(1.0 / 0.75));
    same_mask = same_mask && ((v == 0.f) == (again[static_cast<size_t>(i)] == 0.0));
  }
  REQUIRE(scaled);
  REQUIRE(same_mask);  // float and double draw the same mask from the same seed
  const double fraction = static_cast<double>(dropped) / static_cast<double>(n);
  INFO("dropped fraction " << fraction);
  REQUIRE(std::fabs(fraction - p) < 0.005);  // ~10 standard deviations at n = 2^20
  // The generator moved on: the next mask differs.
  REQUIRE(ops::dropout(ones_f, p, true, a).value().to_vector() != first);

  // p == 1 drops everything (and its gradient).
  Var<float, B> x(Tensor<float, B>::ones({4, 5}), true);
  Var<float, B> zero = ops::dropout(x, 1.0, true, a);
  require_values(zero.value(), Shape{4, 5}, std::vector<double>(20, 0.0), 0.0);
  zero.backward(Tensor<float, B>::ones({4, 5}));
  require_values(x.grad(), Shape{4, 5}, std::vector<double>(20, 0.0), 0.0);
}

TEMPLATE_LIST_TEST_CASE("dropout passes gradcheck with a fixed generator", "[ops][dropout][gradcheck]",
                        bindery::testing::Backends) {
  using B = TestType;
  const Philox base(2024);
  auto x = random_var<double, B>({3, 5, 2}, 8);
  require_gradcheck<B>(
      [base](const auto& in) {
        Philox rng = base;  // the same mask on every evaluation
        return ops::dropout(in[0], 0.4, true, rng);
      },
      {x});
  require_gradcheck<B>(
      [base](const auto& in) {
        Philox rng = base;
        return ops::drop_path(in[0], 0.5, true, rng);
      },
      {x});
}

TEMPLATE_LIST_TEST_CASE("drop_path drops whole samples with probability p", "[ops][dropout][drop_path]",
                        bindery::testing::Backends) {
  using B = TestType;
  const int64_t samples = 20000;
  const double p = 0.3;
  Philox rng(9), replay(9);
  const Var<float, B> x(Tensor<float, B>::ones({samples, 2, 3}));
  const std::vector<float> y = ops::drop_path(x, p, true, rng).value().to_vector();
  REQUIRE(rng.offset() == static_cast<uint64_t>(samples));  // one draw per sample
  REQUIRE(ops::drop_path(x, p, true, replay).value().to_vector() == y);
  int64_t dropped = 0;
  bool uniform_per_sample = true;
  const float kept = static_cast<float>(1.0 / 0.7);
  for (int64_t s = 0; s < samples; ++s) {
    const float first = y[static_cast<size_t>(s * 6)];
    uniform_per_sample = uniform_per_sample && (first == 0.f || first == kept);
    for (int64_t k = 1; k < 6; ++k)
      uniform_per_sample = uniform_per_sample && y[static_cast<size_t>(s * 6 + k)] == first;
    if (first == 0.f) ++dropped;
  }
  REQUIRE(uniform_per_sample);
  const double fraction = static_cast<double>(dropped) / static_cast<double>(samples);
  INFO("dropped fraction " << fraction);
  REQUIRE(std::fabs(fraction - p) < 0.02);  // ~6 standard deviations at 20,000 samples

  // Gradient: each sample's dL/dy scaled by that sample's factor.
  Var<double, B> v(Tensor<double, B>::arange(1.0, 9.0).reshape({4, 2}), true);
  Philox r(3);
  Var<double, B> out = ops::drop_path(v, 0.5, true, r);
  out.backward(Tensor<double, B>::ones({4, 2}));
  const std::vector<double> values = out.value().to_vector(), grads = v.grad().to_vector();
  for (size_t i = 0; i < values.size(); ++i) {
    REQUIRE(values[i] == grads[i] * static_cast<double>(i + 1));  // y = x * factor, dL/dx = factor
    REQUIRE((grads[i] == 0.0 || grads[i] == 2.0));
  }
  // p == 1 drops every sample.
  Philox all(4);
  require_values(ops::drop_path(x, 1.0, true, all).value().reshape({-1}).slice(0, 0, 6), Shape{6},
                 std::vector<double>(6, 0.0), 0.0);
}

}  // namespace bindery_tests::ops_dropout
