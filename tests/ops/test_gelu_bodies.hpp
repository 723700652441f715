// tests/ops/test_gelu_bodies.hpp — the templated test bodies of test_gelu.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_gelu.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

namespace bindery_tests::ops_gelu {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("gelu forward values, float and double", "[ops][gelu]", bindery::testing::Backends) {
  using B = TestType;
  // GELU(x) = x Φ(x); Φ(0.5) = 0.691462461274013, Φ(2) = 0.977249868051821, Φ(1) = 0.841344746068543
  const std::vector<double> x = {-2, -1, -0.5, 0, 0.5, 1, 2};
  const std::vector<double> expected = {
      -2 * (1 - 0.977249868051821), -(1 - 0.841344746068543), -0.5 * (1 - 0.691462461274013), 0,
      0.5 * 0.691462461274013,      0.841344746068543,        2 * 0.977249868051821};
  Var<double, B> xd(Tensor<double, B>::from_vector(x));
  require_values(ops::gelu(xd).value(), Shape{7}, expected, 1e-14);
  std::vector<float> xf(x.begin(), x.end());
  Var<float, B> xv(Tensor<float, B>::from_vector(xf));  // 7 elements: one vector and a partial one
  require_values(ops::gelu(xv).value(), Shape{7}, expected, 2e-7);
}

TEMPLATE_LIST_TEST_CASE("bias_gelu forward values", "[ops][gelu][bias_gelu]", bindery::testing::Backends) {
  using B = TestType;
  // x + bias = (-1, 0, 2 | 0.5, -2, 1): gelu of those, from Φ(1), Φ(2), Φ(0.5) above
  const double phi1 = 0.841344746068543, phi2 = 0.977249868051821, phi05 = 0.691462461274013;
  const std::vector<double> expected = {-(1 - phi1), 0, 2 * phi2, 0.5 * phi05, -2 * (1 - phi2), phi1};
  Var<double, B> x(Tensor<double, B>::from_vector({-1.5, 1, 1.5, 0, -1, 0.5}, {2, 3}));
  Var<double, B> bias(Tensor<double, B>::from_vector({0.5, -1, 0.5}));
  require_values(ops::bias_gelu(x, bias).value(), Shape{2, 3}, expected, 1e-14);
  Var<float, B> xf(Tensor<float, B>::from_vector({-1.5f, 1, 1.5f, 0, -1, 0.5f}, {2, 3}));
  Var<float, B> bias_f(Tensor<float, B>::from_vector({0.5f, -1, 0.5f}));
  require_values(ops::bias_gelu(xf, bias_f).value(), Shape{2, 3}, expected, 3e-7);
  // x of rank 3: the bias broadcasts over both leading axes
  Var<double, B> x3(Tensor<double, B>::from_vector({-1.5, 1, 1.5, 0, -1, 0.5}, {2, 1, 3}));
  require_values(ops::bias_gelu(x3, bias).value(), Shape{2, 1, 3}, expected, 1e-14);
}

}  // namespace bindery_tests::ops_gelu
