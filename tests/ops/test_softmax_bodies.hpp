// tests/ops/test_softmax_bodies.hpp — the templated test bodies of test_softmax.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_softmax.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <limits>

namespace bindery_tests::ops_softmax {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

/// Softmax along `axis` by plain loops over a contiguous copy.
inline std::vector<double> naive_softmax(const Tensor<double>& x, int64_t axis, bool log) {
  const std::vector<double> v = x.contiguous().to_vector();
  const Shape& s = x.shape();
  axis = s.normalize_axis(axis);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= s[d];
  for (int64_t d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const int64_t len = s[axis];
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return size_t((o * len + j) * inner + i); };
      double max = -INFINITY, sum = 0;
      for (int64_t j = 0; j < len; ++j) max = std::max(max, v[at(j)]);
      for (int64_t j = 0; j < len; ++j) sum += std::exp(v[at(j)] - max);
      for (int64_t j = 0; j < len; ++j)
        out[at(j)] = log ? v[at(j)] - max - std::log(sum) : std::exp(v[at(j)] - max) / sum;
    }
  return out;
}

TEMPLATE_LIST_TEST_CASE("softmax forward: hand-computed values", "[ops][softmax]",
                        bindery::testing::Backends) {
  using B = TestType;
  // exp(log k) = k: rows {1,2,3,4}/10 and {1,1}/2 ...
  const auto x =
      Tensor<double, B>::from_vector({std::log(1.), std::log(2.), std::log(3.), std::log(4.)}, {1, 4});
  require_values(ops::softmax_forward(x), Shape{1, 4}, {0.1, 0.2, 0.3, 0.4}, 1e-12);
  require_values(ops::log_softmax_forward(x), Shape{1, 4},
                 {std::log(0.1), std::log(0.2), std::log(0.3), std::log(0.4)}, 1e-12);
  // axis 0 of a (2, 2): columns (0, log 3) -> (1/4, 3/4) and (5, 5) -> (1/2, 1/2)
  const auto y = Tensor<float, B>::from_vector({0.f, 5.f, std::log(3.f), 5.f}, {2, 2});
  require_values(ops::softmax_forward(y, 0), Shape{2, 2}, {0.25, 0.5, 0.75, 0.5}, 1e-6);
  // huge logits do not overflow; -inf gets exactly zero weight
  const float inf = std::numeric_limits<float>::infinity();
  const float big = 1000.f, shifted = 1000.f + std::log(2.f);
  const double e = std::exp(double(shifted - big));  // exactly representable difference, ~2
  const auto z = Tensor<float, B>::from_vector({big, big, -inf, shifted}, {4});
  const auto pz = ops::softmax_forward(z).to_vector();
  REQUIRE(pz[2] == 0.f);
  require_values(ops::softmax_forward(z), Shape{4}, {1 / (2 + e), 1 / (2 + e), 0, e / (2 + e)}, 1e-6);
  const auto lz = ops::log_softmax_forward(z).to_vector();
  REQUIRE(lz[2] == -inf);
  REQUIRE(lz[0] == Approx(-std::log(2 + e)));
}

TEMPLATE_LIST_TEST_CASE("softmax forward matches loops on every axis", "[ops][softmax]",
                        bindery::testing::Backends) {
  using B = TestType;
  Philox rng(3);
  // inner extents above and below the kernel's column slab
  for (const Shape& shape : {Shape{3, 5, 7}, Shape{2, 9, 130}, Shape{1}, Shape{4, 1, 3}}) {
    const auto x = Tensor<double, B>::uniform(shape, rng, -4, 4);
    for (int64_t axis = 0; axis < shape.rank(); ++axis) {
      INFO("shape " << shape << " axis " << axis);
      const Tensor<double> host = x.template to<Cpu>();
      require_values(ops::softmax_forward(x, axis), shape, naive_softmax(host, axis, false), 1e-12);
      require_values(ops::log_softmax_forward(x, axis), shape, naive_softmax(host, axis, true), 1e-12);
      const auto xf = x.template cast<float>();
      require_values(ops::softmax_forward(xf, axis), shape, naive_softmax(host, axis, false), 1e-6);
      require_values(ops::log_softmax_forward(xf, axis), shape, naive_softmax(host, axis, true), 2e-6);
    }
  }
  // a strided (transposed) input
  const auto x = Tensor<double, B>::uniform({4, 6}, rng, -2, 2);
  require_values(ops::softmax_forward(x.transpose(0, 1), 1), Shape{6, 4},
                 naive_softmax(x.transpose(0, 1).contiguous().template to<Cpu>(), 1, false), 1e-12);
}

}  // namespace bindery_tests::ops_softmax
