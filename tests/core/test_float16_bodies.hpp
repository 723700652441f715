// tests/core/test_float16_bodies.hpp — the templated test bodies of test_float16.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_core (test_float16.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_layers_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace bindery_tests::core_float16 {

// bindery reads OpenBLAS headers with their global `bfloat16` typedef renamed (backend/cpu.hpp), so
// `using namespace bindery` would work; these short aliases just keep the long tables readable.
using BF16 = bindery::bfloat16;
using F16 = bindery::float16;

TEMPLATE_LIST_TEST_CASE("16-bit tensors: creation, casts to and from float, host round trip",
                        "[core][float16]", bindery::testing::Backends) {
  using B = TestType;
  using bindery::Shape;
  using bindery::Tensor;
  const std::vector<float> values = {0.0f, 1.0f, -2.5f, 3.14159265f, 1e-3f, 65504.0f, 1e5f, -1e-8f};
  const Tensor<float, B> x = Tensor<float, B>::from_vector(values, Shape{2, 4});
  const Tensor<BF16, B> xb = x.template cast<BF16>();
  const Tensor<F16, B> xh = x.template cast<F16>();
  REQUIRE(xb.shape() == Shape{2, 4});
  const std::vector<BF16> hb = xb.to_vector();
  const std::vector<F16> hh = xh.to_vector();
  for (size_t i = 0; i < values.size(); ++i) {
    REQUIRE(hb[i].bits == BF16(values[i]).bits);
    REQUIRE(hh[i].bits == F16(values[i]).bits);
  }
  // Back to float: exact.
  const std::vector<float> back = xh.template cast<float>().to_vector();
  REQUIRE(back[3] == static_cast<float>(F16(3.14159265f)));
  REQUIRE(std::isinf(back[6]));  // 1e5 overflows F16
  REQUIRE(back[7] == 0.0f);      // -1e-8 underflows F16 (to -0)
  // Fill, zeros and a strided copy work on 16-bit storage.
  const Tensor<BF16, B> ones = Tensor<BF16, B>::full(Shape{3, 2}, BF16(1.0f));
  const Tensor<BF16, B> t = ones.transpose(0, 1).contiguous();
  for (const BF16 v : t.to_vector()) REQUIRE(static_cast<float>(v) == 1.0f);
}

/// C = op(A)·op(B) in double from float copies of the 16-bit operands, and the bound
/// K·2^-24·Σ|a||b| (+ the output's own rounding for 16-bit C) that float accumulation stays within.
template <class T>
void reference_gemm(const std::vector<T>& a, const std::vector<T>& b, int64_t m, int64_t n, int64_t k,
                    bool trans_a, bool trans_b, std::vector<double>& c, std::vector<double>& bound) {
  c.assign(static_cast<size_t>(m * n), 0.0);
  bound.assign(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = static_cast<float>(a[static_cast<size_t>(trans_a ? p * m + i : i * k + p)]);
        const double bv = static_cast<float>(b[static_cast<size_t>(trans_b ? j * k + p : p * n + j)]);
        sum += av * bv;
        magnitude += std::fabs(av * bv);
      }
      c[static_cast<size_t>(i * n + j)] = sum;
      bound[static_cast<size_t>(i * n + j)] = 2.0 * static_cast<double>(k) * std::ldexp(magnitude, -24);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("16-bit GEMM: BF16 and F16 storage accumulate in float", "[core][float16][gemm]",
                        bindery::testing::Backends) {
  using B = TestType;
  using bindery::Philox;
  using bindery::Shape;
  using bindery::Tensor;
  const int64_t m = 7, n = 9, k = 300;
  for (const bool trans_a : {false, true}) {
    for (const bool trans_b : {false, true}) {
      Philox rng(11 + (trans_a ? 2 : 0) + (trans_b ? 1 : 0));
      const Tensor<float, B> af = Tensor<float, B>::uniform(trans_a ? Shape{k, m} : Shape{m, k}, rng, -1, 1);
      const Tensor<float, B> bf = Tensor<float, B>::uniform(trans_b ? Shape{n, k} : Shape{k, n}, rng, -1, 1);
      auto check = [&]<class Low>(Low) {
        const Tensor<Low, B> a = af.template cast<Low>(), b = bf.template cast<Low>();
        Tensor<Low, B> c = Tensor<Low, B>::zeros(Shape{m, n});
        B::gemm(trans_a, trans_b, m, n, k, Low(1.0f), a.data(), trans_a ? m : k, b.data(), trans_b ? k : n,
                Low(0.0f), c.data(), n);
        std::vector<double> expected, bound;
        reference_gemm(a.to_vector(), b.to_vector(), m, n, k, trans_a, trans_b, expected, bound);
        const std::vector<Low> got = c.to_vector();
        const double unit = std::is_same_v<Low, BF16> ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
        for (size_t i = 0; i < got.size(); ++i) {
          // float accumulation error, then one rounding of the result to the 16-bit format
          const double tolerance = bound[i] + unit * (std::fabs(expected[i]) + bound[i]);
          INFO("trans " << trans_a << trans_b << " element " << i);
          REQUIRE(std::fabs(static_cast<float>(got[i]) - expected[i]) <= tolerance);
        }
      };
      check(BF16{});
      check(F16{});
    }
  }
}

TEMPLATE_LIST_TEST_CASE("gemm_batched_rounded: float operands rounded to 16 bits, float result",
                        "[core][float16][gemm]", bindery::testing::Backends) {
  using B = TestType;
  using bindery::Philox;
  using bindery::Shape;
  using bindery::Tensor;
  const int64_t m = 5, n = 6, k = 257, batch = 3;
  Philox rng(5);
  const Tensor<float, B> a = Tensor<float, B>::uniform(Shape{batch, m, k}, rng, -2, 2);
  const Tensor<float, B> b = Tensor<float, B>::uniform(Shape{k, n}, rng, -2, 2);  // shared: stride 0
  auto check = [&]<class Low>(Low) {
    Tensor<float, B> c = Tensor<float, B>::full(Shape{batch, m, n}, 1.0f);
    B::template gemm_batched_rounded<Low>(false, false, m, n, k, 1.0f, a.data(), k, m * k, b.data(), n, 0,
                                          0.5f, c.data(), n, m * n, batch);
    const std::vector<float> got = c.to_vector();
    const std::vector<Low> ar = a.template cast<Low>().to_vector(), br = b.template cast<Low>().to_vector();
    for (int64_t s = 0; s < batch; ++s) {
      const std::vector<Low> as(ar.begin() + s * m * k, ar.begin() + (s + 1) * m * k);
      std::vector<double> expected, bound;
      reference_gemm(as, br, m, n, k, false, false, expected, bound);
      for (int64_t i = 0; i < m * n; ++i) {
        const double want = expected[static_cast<size_t>(i)] + 0.5;  // beta · C = 0.5
        REQUIRE(std::fabs(got[static_cast<size_t>(s * m * n + i)] - want) <=
                bound[static_cast<size_t>(i)] + 1e-6);
      }
    }
    // The rounding is real: the float GEMM of the unrounded operands differs.
    Tensor<float, B> exact = Tensor<float, B>::zeros(Shape{m, n});
    B::gemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, exact.data(), n);
    std::vector<float> exact_plus_c = exact.to_vector();
    for (float& v : exact_plus_c) v += 0.5f;
    REQUIRE(bindery::testing::max_abs_diff(exact_plus_c,
                                           std::vector<float>(got.begin(), got.begin() + m * n)) > 1e-3);
  };
  check(BF16{});
  check(F16{});
}

TEMPLATE_LIST_TEST_CASE(
    "16-bit tensors through linear, gelu, softmax, add and sum (float math, 16-bit storage)",
    "[core][float16]", bindery::testing::Backends) {
  using B = TestType;
  using bindery::Philox;
  using bindery::Shape;
  using bindery::Tensor;
  using bindery::Var;
  namespace ops = bindery::ops;
  Philox rng(1);
  const auto xf = Tensor<float, B>::normal({4, 64}, rng);
  const auto wf = Tensor<float, B>::normal({32, 64}, rng, 0, 0.1);
  const auto bf = Tensor<float, B>::normal({32}, rng);
  // Each result is compared with the float op on the same (rounded) inputs; the bound is a few
  // units of bfloat16's 2^-8 relative precision at the outputs' magnitudes.
  const auto x = xf.template cast<BF16>(), w = wf.template cast<BF16>(), b = bf.template cast<BF16>();
  const auto xr = x.template cast<float>(), wr = w.template cast<float>(), br = b.template cast<float>();
  auto near = [](const Tensor<BF16, B>& got, const Tensor<float, B>& want, double tolerance) {
    REQUIRE(got.shape() == want.shape());
    REQUIRE(bindery::testing::max_abs_diff(got.template cast<float>().to_vector(), want.to_vector()) <=
            tolerance);
  };
  near(ops::linear_forward(x, w, b), ops::linear_forward(xr, wr, br), 0.02);
  near(ops::gelu(Var<BF16, B>(x)).value(), ops::gelu(Var<float, B>(xr)).value(), 0.02);
  near(ops::softmax(Var<BF16, B>(x), -1).value(), ops::softmax(Var<float, B>(xr), -1).value(), 0.004);
  near((Var<BF16, B>(x) + Var<BF16, B>(x)).value(), (Var<float, B>(xr) + Var<float, B>(xr)).value(), 0.04);
  near(ops::sum_forward(x, {1}), ops::sum_forward(xr, {1}), 0.1);
}

}  // namespace bindery_tests::core_float16
