// tests/ops/test_autocast_bodies.hpp — the templated test bodies of test_autocast.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_ops (test_autocast.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_ops_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <cmath>
#include <vector>

namespace bindery_tests::ops_autocast {

using namespace bindery;

/// Host values of t rounded through Low (bfloat16 or half) and back, as double.
template <class Low, class B>
std::vector<double> rounded(const Tensor<float, B>& t) {
  std::vector<double> out;
  for (const float v : t.contiguous().to_vector()) out.push_back(static_cast<float>(Low(v)));
  return out;
}

/// Row-major (m, k)·(k, n) in double with the float-accumulation bound 2·K·2^-24·Σ|a||b| per element.
inline void product(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t n,
                    int64_t k, std::vector<double>& c, std::vector<double>& bound) {
  c.assign(static_cast<size_t>(m * n), 0.0);
  bound.assign(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double t = a[static_cast<size_t>(i * k + p)] * b[static_cast<size_t>(p * n + j)];
        sum += t;
        magnitude += std::fabs(t);
      }
      c[static_cast<size_t>(i * n + j)] = sum;
      bound[static_cast<size_t>(i * n + j)] =
          2.0 * static_cast<double>(k) * std::ldexp(magnitude, -24) + 1e-7;
    }
  }
}

inline std::vector<double> transposed(const std::vector<double>& x, int64_t rows, int64_t cols) {
  std::vector<double> t(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      t[static_cast<size_t>(c * rows + r)] = x[static_cast<size_t>(r * cols + c)];
  return t;
}

inline void require_within(const std::vector<float>& got, const std::vector<double>& want,
                           const std::vector<double>& bound, const char* what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(what << " element " << i << ": " << got[i] << " vs " << want[i] << " bound " << bound[i]);
    REQUIRE(std::fabs(got[i] - want[i]) <= bound[i]);
  }
}

TEMPLATE_LIST_TEST_CASE("autocast: linear forward and both gradients multiply 16-bit operands",
                        "[ops][autocast]", bindery::testing::Backends) {
  using B = TestType;
  const int64_t rows = 6, in = 300, out = 7;
  auto x = bindery::testing::random_var<float, B>({rows, in}, 1, -2, 2);
  auto w = bindery::testing::random_var<float, B>({out, in}, 2, -0.5, 0.5);
  auto b = bindery::testing::random_var<float, B>({out}, 3);
  const auto c = bindery::testing::random_var<float, B>({rows, out}, 4, -1, 1, false);  // dL/dy
  auto run = [&]<class Low>(Low, Precision precision) {
    x.zero_grad();
    w.zero_grad();
    b.zero_grad();
    Var<float, B> y, loss;
    {
      Autocast autocast(precision);
      REQUIRE(autocast_precision() == precision);
      y = ops::linear(x, w, b);
      loss = ops::sum(ops::mul(y, c));
    }
    REQUIRE(autocast_precision() == Precision::kFloat32);
    loss.backward();  // after the scope: the nodes remember their precision
    const std::vector<double> xr = rounded<Low>(x.value()), wr = rounded<Low>(w.value());
    const std::vector<double> cr = rounded<Low>(c.value());
    std::vector<double> want, bound;
    // y = round(x)·round(W)ᵀ + b
    product(xr, transposed(wr, out, in), rows, out, in, want, bound);
    const std::vector<float> bias = b.value().to_vector();
    for (size_t i = 0; i < want.size(); ++i) want[i] += bias[i % static_cast<size_t>(out)];
    require_within(y.value().to_vector(), want, bound, "y");
    // dL/dx = round(c)·round(W), dL/dW = round(c)ᵀ·round(x), dL/db = Σ_rows round(c)
    product(cr, wr, rows, in, out, want, bound);
    require_within(x.grad().to_vector(), want, bound, "dL/dx");
    product(transposed(cr, rows, out), xr, out, in, rows, want, bound);
    require_within(w.grad().to_vector(), want, bound, "dL/dW");
    std::vector<double> db(static_cast<size_t>(out), 0.0);
    for (size_t i = 0; i < cr.size(); ++i) db[i % static_cast<size_t>(out)] += cr[i];
    require_within(b.grad().to_vector(), db, std::vector<double>(db.size(), 1e-5), "dL/db");
    // The rounding is real: the fp32 result differs by far more than float rounding.
    const std::vector<float> fp32 = ops::linear_forward(x.value(), w.value(), b.value()).to_vector();
    REQUIRE(bindery::testing::max_abs_diff(fp32, y.value().to_vector()) > 1e-4);
  };
  run(bfloat16{}, Precision::kBFloat16);
  run(float16{}, Precision::kFloat16);
}

TEMPLATE_LIST_TEST_CASE("autocast: batched matmul and conv2d round their operands", "[ops][autocast]",
                        bindery::testing::Backends) {
  using B = TestType;
  // Batched matmul (attention-shaped): equals the fp32 product of pre-rounded operands.
  const Tensor<float, B> a = bindery::testing::random_var<float, B>({2, 3, 5, 64}, 7).value();
  const Tensor<float, B> bt = bindery::testing::random_var<float, B>({2, 3, 6, 64}, 8).value();
  auto round_tensor = [](const Tensor<float, B>& t, Precision precision) {
    return precision == Precision::kBFloat16 ? t.template cast<bfloat16>().template cast<float>()
                                             : t.template cast<float16>().template cast<float>();
  };
  for (const Precision precision : {Precision::kBFloat16, Precision::kFloat16}) {
    INFO(precision_name(precision));
    Tensor<float, B> got;
    {
      Autocast autocast(precision);
      got = ops::matmul_forward(a, bt, false, true);
    }
    const Tensor<float, B> want =
        ops::matmul_forward(round_tensor(a, precision), round_tensor(bt, precision), false, true);
    REQUIRE(got.shape() == Shape{2, 3, 5, 6});
    REQUIRE(bindery::testing::max_abs_diff(got.to_vector(), want.to_vector()) <= 2e-5);
    REQUIRE(bindery::testing::max_abs_diff(got.to_vector(),
                                           ops::matmul_forward(a, bt, false, true).to_vector()) > 1e-4);

    const auto x = bindery::testing::random_var<float, B>({2, 3, 9, 9}, 9);
    const auto w = bindery::testing::random_var<float, B>({4, 3, 3, 3}, 10);
    const auto bias = bindery::testing::random_var<float, B>({4}, 11);
    Var<float, B> y;
    {
      Autocast autocast(precision);
      y = ops::conv2d(x, w, bias, {2, 2}, {1, 1});
    }
    const Var<float, B> y_ref =
        ops::conv2d(Var<float, B>(round_tensor(x.value(), precision)),
                    Var<float, B>(round_tensor(w.value(), precision)), bias, {2, 2}, {1, 1});
    REQUIRE(bindery::testing::max_abs_diff(y.value().to_vector(), y_ref.value().to_vector()) <= 2e-5);
  }
}

}  // namespace bindery_tests::ops_autocast
