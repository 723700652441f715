// tests/ops/test_arithmetic_bodies.hpp — the templated test bodies of test_arithmetic.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_arithmetic.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

namespace bindery_tests::ops_arithmetic {

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("add, sub, mul, div forward with broadcasting", "[ops][arithmetic]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<float, B> a(Tensor<float, B>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
  Var<float, B> row(Tensor<float, B>::from_vector({10, 20, 30}, {3}));
  Var<float, B> col(Tensor<float, B>::from_vector({2, 4}, {2, 1}));
  require_values((a + row).value(), Shape{2, 3}, {11, 22, 33, 14, 25, 36});
  require_values((a - col).value(), Shape{2, 3}, {-1, 0, 1, 0, 1, 2});
  require_values((a * col).value(), Shape{2, 3}, {2, 4, 6, 16, 20, 24});
  require_values((a / col).value(), Shape{2, 3}, {0.5, 1, 1.5, 1, 1.25, 1.5});
  require_values((row * col).value(), Shape{2, 3}, {20, 40, 60, 40, 80, 120});
  require_values((a + 1.f).value(), Shape{2, 3}, {2, 3, 4, 5, 6, 7});
  require_values((2.f * a).value(), Shape{2, 3}, {2, 4, 6, 8, 10, 12});
  require_values((1.f - a).value(), Shape{2, 3}, {0, -1, -2, -3, -4, -5});
  require_values((6.f / a).value(), Shape{2, 3}, {6, 3, 2, 1.5, 1.2, 1}, 1e-6);
  require_values((a / 2.f).value(), Shape{2, 3}, {0.5, 1, 1.5, 2, 2.5, 3});
  require_values((-a).value(), Shape{2, 3}, {-1, -2, -3, -4, -5, -6});
  // strided (transposed) operands take the Indexer path
  Var<float, B> at(a.value().transpose(0, 1));  // (3, 2)
  require_values((at + at).value(), Shape{3, 2}, {2, 8, 4, 10, 6, 12});
}

TEMPLATE_LIST_TEST_CASE("pointwise forward values", "[ops][pointwise]", bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> x(Tensor<double, B>::from_vector({-2, -0.5, 0, 0.5, 2}));
  require_values(ops::exp(x).value(), Shape{5},
                 {std::exp(-2.0), std::exp(-0.5), 1, std::exp(0.5), std::exp(2.0)}, 1e-15);
  require_values(ops::tanh(x).value(), Shape{5},
                 {std::tanh(-2.0), std::tanh(-0.5), 0, std::tanh(0.5), std::tanh(2.0)}, 1e-15);
  require_values(ops::sigmoid(x).value(), Shape{5},
                 {1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(0.5)), 0.5, 1 / (1 + std::exp(-0.5)),
                  1 / (1 + std::exp(-2.0))},
                 1e-15);
  // GELU(x) = x Φ(x); Φ(0.5) = 0.691462461274013, Φ(2) = 0.977249868051821
  require_values(ops::gelu(x).value(), Shape{5},
                 {-2 * (1 - 0.977249868051821), -0.5 * (1 - 0.691462461274013), 0, 0.5 * 0.691462461274013,
                  2 * 0.977249868051821},
                 1e-14);
  require_values(ops::clamp(x, -1.0, 1.0).value(), Shape{5}, {-1, -0.5, 0, 0.5, 1});
  require_values(ops::neg(x).value(), Shape{5}, {2, 0.5, 0, -0.5, -2});
  Var<double, B> p(Tensor<double, B>::from_vector({0.25, 1, 4}));
  require_values(ops::log(p).value(), Shape{3}, {std::log(0.25), 0, std::log(4.0)}, 1e-15);
  require_values(ops::sqrt(p).value(), Shape{3}, {0.5, 1, 2});
  require_values(ops::pow(p, 1.5).value(), Shape{3}, {0.125, 1, 8}, 1e-14);
  // sigmoid stays finite at extremes
  Var<float, B> big(Tensor<float, B>::from_vector({-1000, 1000}));
  require_values(ops::sigmoid(big).value(), Shape{2}, {0, 1});
}

TEMPLATE_LIST_TEST_CASE("sum, mean, max forward", "[ops][reduce]", bindery::testing::Backends) {
  using B = TestType;
  Var<float, B> x(Tensor<float, B>::from_vector({1, 5, 3, 4, 2, 6}, {2, 3}));
  require_values(ops::sum(x).value(), Shape{}, {21});
  require_values(ops::sum(x, {0}).value(), Shape{3}, {5, 7, 9});
  require_values(ops::sum(x, {1}, true).value(), Shape{2, 1}, {9, 12});
  require_values(ops::sum(x, {-1, 0}).value(), Shape{}, {21});
  require_values(ops::mean(x, {1}).value(), Shape{2}, {3, 4});
  require_values(ops::mean(x).value(), Shape{}, {3.5});
  require_values(ops::max(x, {1}).value(), Shape{2}, {5, 6});
  require_values(ops::max(x, {0}, true).value(), Shape{1, 3}, {4, 5, 6});
  require_values(ops::max(x).value(), Shape{}, {6});
  // reductions over a permuted 3-D view
  auto t = Tensor<float, B>::arange(24).reshape({2, 3, 4}).permute({2, 0, 1});  // (4, 2, 3)
  Var<float, B> v(t);
  // sum over axes {1, 2} of permuted = sum over original axes {0, 1} for each k: Σ_{i,j} 12i+4j+k
  require_values(ops::sum(v, {1, 2}).value(), Shape{4}, {60, 66, 72, 78});
  require_values(ops::max(v, {0, 2}).value(), Shape{2}, {11, 23});
}

TEMPLATE_LIST_TEST_CASE("split sums (few outputs, many elements) equal a double loop, on views too",
                        "[ops][reduce]", bindery::testing::Backends) {
  using B = TestType;
  // Integer-valued floats: every partial and total sum is exact in double, so the split sums must
  // equal the plain loop exactly, whatever the part layout of the backend.
  const int64_t rows = 3, cols = 100001;  // 11 · 9091
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>(static_cast<int64_t>(i * 7919 % 201) - 100);
  const Tensor<float, B> x = Tensor<float, B>::from_vector(values, Shape{rows, cols});
  std::vector<double> row_sums(static_cast<size_t>(rows), 0.0);
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c)
      row_sums[static_cast<size_t>(r)] += values[static_cast<size_t>(r * cols + c)];
    total += row_sums[static_cast<size_t>(r)];
  }
  require_values(ops::sum_forward(x, {1}), Shape{rows}, row_sums, 0.0);
  require_values(ops::sum_forward(x), Shape{}, {total}, 0.0);
  require_values(ops::sum_forward(x.transpose(0, 1), {0}), Shape{rows}, row_sums, 0.0);  // strided
  // Two reduced axes of a permuted view: the general Indexer path. (rows, 11, 9091) -> (11, rows, 9091).
  require_values(ops::sum_forward(x.reshape({rows, 11, 9091}).permute({1, 0, 2}), {0, 2}), Shape{rows},
                 row_sums, 0.0);
  std::vector<double> means = row_sums;
  for (double& m : means) m /= static_cast<double>(cols);
  require_values(ops::mean(Var<float, B>(x), {1}).value(), Shape{rows}, means, 1e-6);
}

TEMPLATE_LIST_TEST_CASE("one-axis strided and scalar-broadcast operands", "[ops][arithmetic]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> x(Tensor<double, B>::arange(8).slice(0, 0, 8, 2));  // (4,), stride 2: {0, 2, 4, 6}
  Var<double, B> s(Tensor<double, B>::scalar(10.0));
  require_values((x + s).value(), Shape{4}, {10, 12, 14, 16});
  require_values((s - x).value(), Shape{4}, {10, 8, 6, 4});
  require_values(ops::neg(x).value(), Shape{4}, {0, -2, -4, -6});
  require_values(x.value().contiguous(), Shape{4}, {0, 2, 4, 6});
  Var<double, B> w(Tensor<double, B>::from_vector({1, 2, 3, 4}), true);
  Var<double, B> total = ops::sum(ops::slice(w, 0, 0, 4, 2) * s);  // gradient through a strided slice
  total.backward();
  require_values(w.grad(), Shape{4}, {10, 0, 10, 0});
}

}  // namespace bindery_tests::ops_arithmetic
