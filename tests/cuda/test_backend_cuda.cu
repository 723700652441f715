// tests/cuda/test_backend_cuda.cu — the Cuda backend itself, and CPU ≡ CUDA parity (needs a GPU).
//
// - Backend: availability, the caching allocator, copies (overlapping ones too), errors.
// - GEMM: cuBLAS against an fp64 reference on the host, |C - C_ref| <= 2 K 2^-24 (|A| |B|) for fp32
//   (2 K 2^-53 for fp64, 2 K 2^-11 with TF32 allowed), every transpose combination, padded leading
//   dimensions, beta, k == 0, batched with a broadcast (stride 0) operand.
// - Parity: every elementwise functor (fp32: |cuda - cpu| <= 1e-5 + 1.3e-6 |cpu|), reductions against
//   fp64, Philox draws (bit-identical uniforms), and every op with a CUDA kernel, forward AND
//   backward through autograd, on the same inputs on both backends; then a whole transformer Block
//   and AdamW steps.
// Tag [cuda]; main (cuda_main.cpp) exits 77 (CTest: SKIPPED) where no GPU is usable.
#include "test_util.hpp"

#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

using namespace bindery;

namespace bindery::testing {
bool cuda_tests_need_device() {
  return true;
}
bool cuda_device_available() {
  return Cuda::is_available();
}
}  // namespace bindery::testing

namespace {

using Types = std::tuple<float, double>;

template <class T>
double parity_rtol() {
  return std::is_same_v<T, double> ? 1e-9 : 2e-5;
}
template <class T>
double parity_atol() {
  return std::is_same_v<T, double> ? 1e-12 : 2e-6;
}

/// |actual - expected| <= atol + rtol |expected| elementwise; equal infinities and NaNs are equal.
template <class T, class B1, class B2>
void require_close(const Tensor<T, B1>& actual, const Tensor<T, B2>& expected, double rtol, double atol) {
  INFO("shapes " << actual.shape() << " and " << expected.shape());
  REQUIRE(actual.shape() == expected.shape());
  const std::vector<T> a = actual.to_vector(), e = expected.to_vector();
  double worst = 0.0;
  size_t worst_at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(e[i]);
    if (x == y || (std::isnan(x) && std::isnan(y))) continue;
    const double excess = std::fabs(x - y) - (atol + rtol * std::fabs(y));
    if (!(excess <= worst)) {
      worst = std::isnan(excess) ? INFINITY : excess;
      worst_at = i;
    }
  }
  INFO("worst element " << worst_at << ": " << (a.empty() ? 0.0 : double(a[worst_at])) << " vs "
                        << (e.empty() ? 0.0 : double(e[worst_at])) << " (rtol " << rtol << ", atol " << atol
                        << ")");
  REQUIRE(worst <= 0.0);
}

template <class T, class B>
std::vector<Var<T, B>> leaves(const std::vector<Tensor<T>>& host) {
  std::vector<Var<T, B>> out;
  for (const auto& t : host) out.emplace_back(t.template to<B>(), true);
  return out;
}

/// Runs f on Cpu and on Cuda with the same inputs (all requiring grad), compares the outputs, then
/// backpropagates the same random dL/dy on both and compares every input's gradient.
template <class T, class F>
void require_parity(F f, const std::vector<Tensor<T>>& inputs, double rtol = parity_rtol<T>(),
                    double atol = parity_atol<T>()) {
  const std::vector<Var<T, Cpu>> cpu_in = leaves<T, Cpu>(inputs);
  const std::vector<Var<T, Cuda>> gpu_in = leaves<T, Cuda>(inputs);
  const Var<T, Cpu> y_cpu = f(cpu_in);
  const Var<T, Cuda> y_gpu = f(gpu_in);
  {
    INFO("forward");
    require_close(y_gpu.value(), y_cpu.value(), rtol, atol);
  }
  Philox rng(99);
  const Tensor<T> g = Tensor<T>::uniform(y_cpu.shape(), rng, -1, 1);
  y_cpu.backward(g);
  y_gpu.backward(g.template to<Cuda>());
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("gradient of input " << i);
    REQUIRE(cpu_in[i].has_grad() == gpu_in[i].has_grad());
    if (cpu_in[i].has_grad()) require_close(gpu_in[i].grad(), cpu_in[i].grad(), rtol, atol);
  }
}

template <class T>
Tensor<T> uniform(const Shape& shape, uint64_t seed, double low = -1.0, double high = 1.0) {
  Philox rng(seed);
  return Tensor<T>::uniform(shape, rng, low, high);
}

/// Row-major C = alpha op(A) op(B) + beta C in double from the host copies, and the error scale
/// (|alpha| |op(A)| |op(B)|)_ij of each element.
struct GemmReference {
  std::vector<double> c, scale;
};
template <class T>
GemmReference gemm_reference(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                             const std::vector<T>& a, int64_t lda, const std::vector<T>& b, int64_t ldb,
                             double beta, const std::vector<T>& c, int64_t ldc) {
  GemmReference r{std::vector<double>(static_cast<size_t>(m * n)),
                  std::vector<double>(static_cast<size_t>(m * n))};
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0, scale = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double x = static_cast<double>(a[static_cast<size_t>(ta ? p * lda + i : i * lda + p)]);
        const double y = static_cast<double>(b[static_cast<size_t>(tb ? j * ldb + p : p * ldb + j)]);
        sum += x * y;
        scale += std::fabs(x * y);
      }
      const double old = beta == 0.0 ? 0.0 : beta * static_cast<double>(c[static_cast<size_t>(i * ldc + j)]);
      r.c[static_cast<size_t>(i * n + j)] = alpha * sum + old;
      r.scale[static_cast<size_t>(i * n + j)] = std::fabs(alpha) * scale + std::fabs(old);
    }
  }
  return r;
}

/// Checks |C - C_ref| <= 2 K u (|A| |B|) + tiny on the (M, N) block of the row-major c (ldc).
void require_gemm_accuracy(const std::vector<double>& c, int64_t ldc, const GemmReference& ref, int64_t m,
                           int64_t n, int64_t k, double unit) {
  double worst = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const size_t r = static_cast<size_t>(i * n + j);
      const double bound = 2.0 * static_cast<double>(std::max<int64_t>(k, 1)) * unit * ref.scale[r] + 1e-300;
      const double err = std::fabs(c[static_cast<size_t>(i * ldc + j)] - ref.c[r]);
      worst = std::max(worst, std::isnan(err) ? INFINITY : err / bound);
    }
  }
  INFO("worst error / bound = " << worst);
  REQUIRE(worst <= 1.0);
}

template <class T>
std::vector<double> as_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace

// ---- the backend -------------------------------------------------------------------------------

TEST_CASE("Cuda is available and names its device", "[cuda]") {
  REQUIRE(Cuda::is_available());
  INFO("device " << Cuda::device());
  REQUIRE(!Cuda::device_name().empty());
  REQUIRE(Cuda::stream() != nullptr);
  REQUIRE(Cuda::cublas_handle() != nullptr);
  STATIC_REQUIRE(Backend<Cuda>);
  STATIC_REQUIRE(!Cuda::kHostAccessible);
}

TEST_CASE("Cuda caching allocator reuses freed blocks and reports its bytes", "[cuda]") {
  float* p = Cuda::allocate<float>(1000);  // 4000 bytes -> the 4096-byte class
  const auto in_use = Cuda::memory_stats().in_use;
  REQUIRE(in_use >= 4096);
  Cuda::deallocate(p);
  REQUIRE(Cuda::memory_stats().in_use == in_use - 4096);
  REQUIRE(Cuda::memory_stats().cached >= 4096);
  float* q = Cuda::allocate<float>(1010);  // same class: the block just freed
  REQUIRE(q == p);
  Cuda::deallocate(q);
  Cuda::empty_cache();
  REQUIRE(Cuda::memory_stats().cached == 0);
  REQUIRE(Cuda::memory_stats().peak >= in_use);
  float* zero = Cuda::allocate<float>(0);  // never null, as on the Cpu
  REQUIRE(zero != nullptr);
  Cuda::deallocate(zero);
}

TEST_CASE("Cuda failures throw BackendError with CUDA's message", "[cuda]") {
  // 2^50 bytes: no device has them; the error names cudaMalloc and the sizes, and is not sticky.
  BINDERY_REQUIRE_THROWS_WITH_ALL(Cuda::allocate<float>(int64_t(1) << 48), BackendError, "cudaMalloc",
                                  "1125899906842624 bytes");
  const auto t = Tensor<float, Cuda>::full({3}, 2.f);
  REQUIRE(t.to_vector() == std::vector<float>{2.f, 2.f, 2.f});
  BINDERY_REQUIRE_THROWS_WITH_ALL(Cuda::allocate<float>(-1), ValueError, "negative");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      Cuda::gemm<float>(false, false, int64_t(1) << 32, 1, 1, 1.f, nullptr, 1, nullptr, 1, 0.f, nullptr, 1),
      BackendError, "int range", "4294967296");
}

TEMPLATE_LIST_TEST_CASE("Cuda copies: host round trip, device copies, overlap, strided views", "[cuda]",
                        Types) {
  using T = TestType;
  std::vector<T> values(10);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<T>(i);
  auto t = Tensor<T, Cuda>::from_vector(values);
  REQUIRE(t.to_vector() == values);
  REQUIRE(t.clone().to_vector() == values);
  Cuda::copy(t.data() + 2, t.data(), 6);  // overlapping ranges: memmove semantics
  REQUIRE(t.to_vector() == std::vector<T>{0, 1, 0, 1, 2, 3, 4, 5, 8, 9});
  Cuda::copy(t.data(), t.data() + 3, 5);
  REQUIRE(t.to_vector() == std::vector<T>{1, 2, 3, 4, 5, 3, 4, 5, 8, 9});
  // strided copies, fill, arange, cast, item/at: the Cpu results
  const auto x = uniform<T>({5, 7, 3}, 1);
  const auto xg = x.template to<Cuda>();
  require_close(xg.permute({2, 0, 1}).contiguous(), x.permute({2, 0, 1}).contiguous(), 0, 0);
  require_close(xg.slice(1, 1, 7, 2).contiguous(), x.slice(1, 1, 7, 2).contiguous(), 0, 0);
  auto y = Tensor<T, Cuda>::zeros({3, 4});
  y.slice(1, 1, 3).fill_(T(5));
  REQUIRE(y.to_vector() == std::vector<T>{0, 5, 5, 0, 0, 5, 5, 0, 0, 5, 5, 0});
  REQUIRE(Tensor<T, Cuda>::arange(0.5, 3.0).to_vector() == std::vector<T>{T(0.5), T(1.5), T(2.5)});
  REQUIRE(xg.template cast<int64_t>().to_vector() == x.template cast<int64_t>().to_vector());
  REQUIRE(xg.at({4, 6, 2}) == x.at({4, 6, 2}));
  REQUIRE(Tensor<uint8_t, Cuda>::from_vector({1, 0, 7}).to_vector() == std::vector<uint8_t>{1, 0, 7});
}

TEMPLATE_LIST_TEST_CASE("Philox draws are the same on Cpu and Cuda", "[cuda]", Types) {
  using T = TestType;
  Philox a(5), b(5);
  // uniforms: integer arithmetic, then one rounding: bit-identical
  require_close(Tensor<T, Cuda>::uniform({1000}, b, -3, 2), Tensor<T>::uniform({1000}, a, -3, 2), 0, 0);
  // normals use log and cos: the device's and glibc's may differ in the last bit
  require_close(Tensor<T, Cuda>::normal({1000}, b, 1, 2), Tensor<T>::normal({1000}, a, 1, 2), 1e-6, 1e-12);
  require_close(Tensor<T, Cuda>::truncated_normal({1000}, b, 0, 1, -2, 2),
                Tensor<T>::truncated_normal({1000}, a, 0, 1, -2, 2), 1e-6, 1e-12);
  REQUIRE(a == b);
}

// ---- GEMM --------------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("Cuda::gemm matches an fp64 reference within 2 K u |A||B|", "[cuda][gemm]", Types) {
  using T = TestType;
  const double unit = std::is_same_v<T, float> ? 0x1p-24 : 0x1p-53;
  struct Case {
    int64_t m, n, k, pad;
  };
  uint64_t seed = 10;
  for (const Case& c : {Case{1, 1, 1, 0}, Case{3, 5, 7, 0}, Case{64, 64, 64, 3}, Case{129, 257, 65, 0},
                        Case{513, 96, 1000, 1}, Case{1, 300, 2000, 0}}) {
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        for (const auto& [alpha, beta] : {std::pair<double, double>{1.0, 0.0}, {0.5, 1.0}}) {
          INFO("m " << c.m << " n " << c.n << " k " << c.k << " trans " << ta << tb << " alpha " << alpha
                    << " beta " << beta);
          const int64_t lda = (ta ? c.m : c.k) + c.pad, ldb = (tb ? c.k : c.n) + c.pad, ldc = c.n + c.pad;
          const auto a = uniform<T>({(ta ? c.k : c.m) * lda}, ++seed);
          const auto b = uniform<T>({(tb ? c.n : c.k) * ldb}, ++seed);
          auto cg = uniform<T>({c.m * ldc}, ++seed);
          if (beta == 0.0) cg.fill_(std::numeric_limits<T>::quiet_NaN());  // beta 0 ignores C
          const auto ref = gemm_reference(ta, tb, c.m, c.n, c.k, alpha, a.to_vector(), lda, b.to_vector(),
                                          ldb, beta, cg.to_vector(), ldc);
          auto ad = a.template to<Cuda>(), bd = b.template to<Cuda>(), cd = cg.template to<Cuda>();
          Cuda::gemm(ta, tb, c.m, c.n, c.k, static_cast<T>(alpha), ad.data(), lda, bd.data(), ldb,
                     static_cast<T>(beta), cd.data(), ldc);
          require_gemm_accuracy(as_double(cd.to_vector()), ldc, ref, c.m, c.n, c.k, unit);
        }
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("Cuda::gemm_batched: strides, broadcast operands, k == 0", "[cuda][gemm]", Types) {
  using T = TestType;
  const double unit = std::is_same_v<T, float> ? 0x1p-24 : 0x1p-53;
  const int64_t batch = 3, m = 17, n = 31, k = 45;
  const auto a = uniform<T>({batch, m, k}, 20), b = uniform<T>({k, n}, 21);  // b shared: stride 0
  auto cd = Tensor<T, Cuda>::empty({batch, m, n});
  const auto ad = a.template to<Cuda>(), bd = b.template to<Cuda>();
  Cuda::gemm_batched(false, false, m, n, k, T(1), ad.data(), k, m * k, bd.data(), n, 0, T(0), cd.data(), n,
                     m * n, batch);
  const std::vector<T> c_all = cd.to_vector(), a_all = a.to_vector(), b_all = b.to_vector();
  for (int64_t i = 0; i < batch; ++i) {
    const std::vector<T> ai(a_all.begin() + i * m * k, a_all.begin() + (i + 1) * m * k);
    const std::vector<T> ci(c_all.begin() + i * m * n, c_all.begin() + (i + 1) * m * n);
    const auto ref = gemm_reference(false, false, m, n, k, 1.0, ai, k, b_all, n, 0.0, ci, n);
    require_gemm_accuracy(as_double(ci), n, ref, m, n, k, unit);
  }
  // k == 0: C = beta C, and beta == 0 clears NaN
  auto c0 = Tensor<T, Cuda>::full({2, 3}, T(3));
  Cuda::gemm_batched(false, false, 2, 3, 0, T(1), ad.data(), 1, 0, bd.data(), 3, 0, T(2), c0.data(), 3, 0, 1);
  REQUIRE(c0.to_vector() == std::vector<T>(6, T(6)));
  c0.fill_(std::numeric_limits<T>::quiet_NaN());
  Cuda::gemm(false, false, 2, 3, 0, T(1), ad.data(), 1, bd.data(), 3, T(0), c0.data(), 3);
  REQUIRE(c0.to_vector() == std::vector<T>(6, T(0)));
}

TEST_CASE("Cuda::allow_tf32 trades fp32 GEMM accuracy for speed, off by default", "[cuda][gemm]") {
  REQUIRE(!Cuda::tf32_allowed());
  const int64_t m = 129, n = 257, k = 300;
  const auto a = uniform<float>({m, k}, 30), b = uniform<float>({k, n}, 31);
  const auto ref = gemm_reference(false, false, m, n, k, 1.0, a.to_vector(), k, b.to_vector(), n, 0.0,
                                  std::vector<float>(m * n), n);
  Cuda::allow_tf32(true);
  const auto c = ops::matmul_forward(a.to<Cuda>(), b.to<Cuda>());
  Cuda::allow_tf32(false);
  require_gemm_accuracy(as_double(c.to_vector()), n, ref, m, n, k, 0x1p-11);
}

TEMPLATE_LIST_TEST_CASE("matmul with broadcast batches and transposed views matches the Cpu", "[cuda][gemm]",
                        Types) {
  using T = TestType;
  require_parity<T>([](const auto& in) { return ops::matmul(in[0], in[1]); },
                    {uniform<T>({2, 1, 5, 7}, 40), uniform<T>({3, 7, 4}, 41)});
  require_parity<T>(
      [](const auto& in) { return ops::matmul(ops::transpose(in[0], -1, -2), in[1], false, true); },
      {uniform<T>({4, 9, 6}, 42), uniform<T>({4, 5, 9}, 43)});
  require_parity<T>([](const auto& in) { return ops::linear(in[0], in[1], in[2]); },
                    {uniform<T>({3, 4, 16}, 44), uniform<T>({8, 16}, 45), uniform<T>({8}, 46)});
}

// ---- elementwise and reductions ------------------------------------------------------------------

TEST_CASE("every elementwise functor: fp32 Cuda equals Cpu within 1e-5 + 1.3e-6 |cpu|",
          "[cuda][elementwise]") {
  const double rtol = 1.3e-6, atol = 1e-5;
  const auto x = uniform<float>({37, 41}, 50, -4, 4), pos = uniform<float>({37, 41}, 51, 0.01, 4);
  const auto row = uniform<float>({41}, 52, -2, 2);
  const auto xg = x.to<Cuda>(), posg = pos.to<Cuda>(), rowg = row.to<Cuda>();
  auto unary = [&](auto f, bool positive) {
    require_close(ops::map(positive ? posg : xg, f), ops::map(positive ? pos : x, f), rtol, atol);
    // a strided view takes the row-wise path
    require_close(ops::map(xg.transpose(0, 1), f), ops::map(x.transpose(0, 1), f), rtol, atol);
  };
  unary(functors::Neg{}, false);
  unary(functors::Exp{}, false);
  unary(functors::Log{}, true);
  unary(functors::Sqrt{}, true);
  unary(functors::Tanh{}, false);
  unary(functors::Sigmoid{}, false);
  unary(functors::Gelu{}, false);
  unary(functors::AddScalar<float>{1.5f}, false);
  unary(functors::MulScalar<float>{-2.f}, false);
  unary(functors::RsubScalar<float>{3.f}, false);
  unary(functors::RdivScalar<float>{3.f}, true);
  unary(functors::PowScalar<float>{2.5f}, true);
  unary(functors::Clamp<float>{-1.f, 1.f}, false);
  auto binary = [&](auto f) {
    require_close(ops::zip(xg, posg, f), ops::zip(x, pos, f), rtol, atol);
    require_close(ops::zip(xg, rowg, f), ops::zip(x, row, f), rtol, atol);  // broadcast
    require_close(ops::zip(xg.transpose(0, 1), posg.transpose(0, 1), f),
                  ops::zip(x.transpose(0, 1), pos.transpose(0, 1), f), rtol, atol);
  };
  binary(functors::Add{});
  binary(functors::Sub{});
  binary(functors::Mul{});
  binary(functors::Div{});
  binary(functors::DivGradB{});
  binary(functors::Maximum{});
  binary(functors::LogGrad{});
  binary(functors::SqrtGrad{});
  binary(functors::TanhGrad{});
  binary(functors::SigmoidGrad{});
  binary(functors::GeluGrad{});
  binary(functors::PowScalarGrad<float>{2.5f});
  binary(functors::ClampGrad<float>{-1.f, 1.f});
}

TEST_CASE("fp32 reductions on Cuda are within K 2^-24 sum|x| of fp64", "[cuda][reduce]") {
  const int64_t rows = 64, cols = 513;
  const auto x = uniform<float>({rows, cols}, 60);
  const std::vector<float> v = x.to_vector();
  const auto xg = x.to<Cuda>();
  for (const std::vector<int64_t>& axes : {std::vector<int64_t>{}, {0}, {1}}) {
    const std::vector<float> got = ops::sum_forward(xg, axes).to_vector();
    const int64_t outputs = static_cast<int64_t>(got.size());
    for (int64_t o = 0; o < outputs; ++o) {
      double sum = 0.0, magnitude = 0.0;
      int64_t count = 0;
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) {
          const bool member = axes.empty() || (axes[0] == 0 ? j == o : i == o);
          if (!member) continue;
          sum += v[static_cast<size_t>(i * cols + j)];
          magnitude += std::fabs(v[static_cast<size_t>(i * cols + j)]);
          ++count;
        }
      }
      INFO("axes " << (axes.empty() ? -1 : axes[0]) << " output " << o);
      REQUIRE(std::fabs(got[static_cast<size_t>(o)] - sum) <= 2.0 * count * 0x1p-24 * magnitude);
    }
  }
  require_parity<float>([](const auto& in) { return ops::mean(in[0], {1}, true); }, {x});
  require_parity<float>([](const auto& in) { return ops::max(in[0], {0}); }, {x});
}

// ---- every op with a CUDA kernel: forward and backward --------------------------------------------

TEMPLATE_LIST_TEST_CASE("softmax and log_softmax: Cuda equals Cpu on every axis", "[cuda][softmax]", Types) {
  using T = TestType;
  const auto x = uniform<T>({3, 70, 5}, 70, -6, 6);
  for (const int64_t axis : {0, 1, 2}) {
    INFO("axis " << axis);
    require_parity<T>([axis](const auto& in) { return ops::softmax(in[0], axis); }, {x});
    require_parity<T>([axis](const auto& in) { return ops::log_softmax(in[0], axis); }, {x});
  }
  require_parity<T>([](const auto& in) { return ops::softmax(in[0], -1); },
                    {uniform<T>({4, 3000}, 71, -9, 9)});
}

TEMPLATE_LIST_TEST_CASE("layer_norm: Cuda equals Cpu (affine and not, many rows)", "[cuda][layer_norm]",
                        Types) {
  using T = TestType;
  require_parity<T>([](const auto& in) { return ops::layer_norm(in[0], in[1], in[2], 1e-6); },
                    {uniform<T>({3, 50, 96}, 80, -3, 3), uniform<T>({96}, 81), uniform<T>({96}, 82)});
  require_parity<T>(
      [](const auto& in) {
        using V = std::decay_t<decltype(in[0])>;
        return ops::layer_norm(in[0], V(), V());
      },
      {uniform<T>({200, 33}, 83, -3, 3)});
}

TEMPLATE_LIST_TEST_CASE("l2_normalize: Cuda equals Cpu on rows and columns", "[cuda][normalize]", Types) {
  using T = TestType;
  require_parity<T>([](const auto& in) { return ops::l2_normalize(in[0], -1); }, {uniform<T>({9, 130}, 90)});
  require_parity<T>([](const auto& in) { return ops::l2_normalize(in[0], 1); }, {uniform<T>({4, 6, 70}, 91)});
}

TEMPLATE_LIST_TEST_CASE("cross_entropy: Cuda equals Cpu, bad targets named", "[cuda][cross_entropy]", Types) {
  using T = TestType;
  const auto targets = Tensor<int64_t>::from_vector({3, 0, 9, 9, 1});
  for (const double smoothing : {0.0, 0.2}) {
    for (const auto reduction : {ops::Reduction::kMean, ops::Reduction::kNone}) {
      require_parity<T>(
          [&](const auto& in) {
            using B = typename std::decay_t<decltype(in[0])>::backend_type;
            return ops::cross_entropy(in[0], targets.template to<B>(), reduction, smoothing);
          },
          {uniform<T>({5, 10}, 100, -20, 20)});
    }
  }
  const auto bad = Tensor<int64_t, Cuda>::from_vector({3, 10});
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::cross_entropy_forward(Tensor<T, Cuda>::zeros({2, 10}), bad),
                                  IndexError, "target 10", "index 1", "(2, 10)");
}

TEMPLATE_LIST_TEST_CASE("index_select, embedding, gather_rows: Cuda equals Cpu", "[cuda][index]", Types) {
  using T = TestType;
  const auto index = Tensor<int64_t>::from_vector({4, 0, 4, 2, 4});
  require_parity<T>(
      [&](const auto& in) {
        using B = typename std::decay_t<decltype(in[0])>::backend_type;
        return ops::index_select(in[0], 1, index.template to<B>());
      },
      {uniform<T>({2, 5, 3}, 110)});
  const auto ids = Tensor<int64_t>::from_vector({1, 7, 7, 0, 3, 1}, {2, 3});
  require_parity<T>(
      [&](const auto& in) {
        using B = typename std::decay_t<decltype(in[0])>::backend_type;
        return ops::embedding(ids.template to<B>(), in[0]);
      },
      {uniform<T>({8, 16}, 111)});
  const auto rows = Tensor<int64_t>::from_vector({3, 0, 3});
  require_parity<T>(
      [&](const auto& in) {
        using B = typename std::decay_t<decltype(in[0])>::backend_type;
        return ops::gather_rows(in[0], rows.template to<B>());
      },
      {uniform<T>({3, 4, 6}, 112)});
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::index_select_forward(Tensor<T, Cuda>::zeros({2, 3}), 1, Tensor<int64_t, Cuda>::from_vector({3})),
      IndexError, "index 3", "(2, 3)");
}

TEMPLATE_LIST_TEST_CASE("conv2d and conv3d: Cuda equals Cpu (padding, overlapping windows)", "[cuda][conv]",
                        Types) {
  using T = TestType;
  require_parity<T>(
      [](const auto& in) {
        return ops::conv2d(in[0], in[1], in[2], {2, 1}, {1, 0});
      },
      {uniform<T>({2, 3, 9, 8}, 120), uniform<T>({4, 3, 3, 2}, 121), uniform<T>({4}, 122)});
  require_parity<T>(
      [](const auto& in) {
        return ops::conv2d(in[0], in[1], in[2], {3, 3}, {0, 0});
      },
      {uniform<T>({1, 1, 16, 20}, 123), uniform<T>({5, 1, 5, 5}, 124), uniform<T>({5}, 125)});
  require_parity<T>(
      [](const auto& in) {
        using V = std::decay_t<decltype(in[0])>;
        return ops::conv3d(in[0], in[1], V(), {2, 3, 3}, {0, 1, 0});
      },
      {uniform<T>({2, 2, 4, 9, 9}, 126), uniform<T>({3, 2, 2, 3, 3}, 127)});
}

TEMPLATE_LIST_TEST_CASE("fused attention: Cuda equals Cpu (masks, broadcast batches, long sequences)",
                        "[cuda][attention]", Types) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity();
  auto sdpa = [](const auto& in) {
    using V = std::decay_t<decltype(in[0])>;
    return ops::scaled_dot_product_attention(in[0], in[1], in[2], in.size() > 3 ? in[3] : V());
  };
  require_parity<T>(sdpa, {uniform<T>({2, 4, 70, 16}, 130), uniform<T>({2, 4, 90, 16}, 131),
                           uniform<T>({2, 4, 90, 8}, 132)});
  // broadcast batch axes and key padding with -inf
  std::vector<T> pad(2 * 40, T(0));
  for (int j = 30; j < 40; ++j) pad[static_cast<size_t>(40 + j)] = -inf;
  require_parity<T>(sdpa, {uniform<T>({2, 1, 37, 8}, 133), uniform<T>({1, 3, 40, 8}, 134),
                           uniform<T>({2, 3, 40, 5}, 135), Tensor<T>::from_vector(pad, {2, 1, 1, 40})});
  // a learnable additive (Lq, Lk) bias with one fully masked row (zero output, zero gradients)
  std::vector<T> bias = uniform<T>({5, 7}, 136).to_vector();
  for (int j = 0; j < 7; ++j) bias[static_cast<size_t>(14 + j)] = -inf;
  require_parity<T>(sdpa, {uniform<T>({3, 5, 4}, 137), uniform<T>({3, 7, 4}, 138), uniform<T>({3, 7, 3}, 139),
                           Tensor<T>::from_vector(bias, {5, 7})});
  // q, k, v as views of one fused qkv projection (read in place)
  require_parity<T>(
      [](const auto& in) {
        const auto qkv =
            ops::permute(ops::reshape(in[0], {2, 33, 3, 2, 8}), {2, 0, 3, 1, 4});  // (3, B, H, L, D)
        return ops::scaled_dot_product_attention(ops::select(qkv, 0, 0), ops::select(qkv, 0, 1),
                                                 ops::select(qkv, 0, 2));
      },
      {uniform<T>({2, 33, 48}, 140)});
}

TEMPLATE_LIST_TEST_CASE("dropout masks are identical on Cpu and Cuda", "[cuda][dropout]", Types) {
  using T = TestType;
  const auto x = uniform<T>({50, 40}, 150);
  Philox a(7), b(7);
  const Var<T> yc = ops::dropout(Var<T>(x), 0.3, true, a);
  const Var<T, Cuda> yg = ops::dropout(Var<T, Cuda>(x.template to<Cuda>()), 0.3, true, b);
  require_close(yg.value(), yc.value(), 0, 0);
}

TEMPLATE_LIST_TEST_CASE("a transformer Block and AdamW steps: Cuda equals Cpu", "[cuda][nn]", Types) {
  using T = TestType;
  nn::BlockConfig config;
  config.dim = 32;
  config.num_heads = 4;
  config.seed = 5;
  nn::Block<T, Cpu> cpu_block(config);
  nn::Block<T, Cuda> gpu_block(config);
  const auto cpu_params = cpu_block.parameters();
  const auto gpu_params = gpu_block.parameters();
  REQUIRE(cpu_params.size() == gpu_params.size());
  for (size_t i = 0; i < cpu_params.size(); ++i) {  // Philox init: the same weights on both
    require_close(gpu_params[i].value(), cpu_params[i].value(), 1e-6, 1e-7);
  }
  const auto x = uniform<T>({2, 9, 32}, 160);
  optim::AdamW<T, Cpu> cpu_opt(cpu_params, {.lr = 1e-2});
  optim::AdamW<T, Cuda> gpu_opt(gpu_params, {.lr = 1e-2});
  const double rtol = std::is_same_v<T, double> ? 1e-8 : 1e-4,
               atol = std::is_same_v<T, double> ? 1e-10 : 1e-5;
  for (int step = 0; step < 3; ++step) {
    INFO("step " << step);
    const Var<T, Cpu> yc = cpu_block.forward(Var<T, Cpu>(x));
    const Var<T, Cuda> yg = gpu_block.forward(Var<T, Cuda>(x.template to<Cuda>()));
    require_close(yg.value(), yc.value(), rtol, atol);
    ops::sum(ops::mul(yc, yc)).backward();
    ops::sum(ops::mul(yg, yg)).backward();
    for (size_t i = 0; i < cpu_params.size(); ++i) {
      INFO("parameter " << i);
      require_close(gpu_params[i].grad(), cpu_params[i].grad(), rtol, atol);
    }
    cpu_opt.step();
    gpu_opt.step();
    cpu_opt.zero_grad();
    gpu_opt.zero_grad();
  }
  for (size_t i = 0; i < cpu_params.size(); ++i)
    require_close(gpu_params[i].value(), cpu_params[i].value(), rtol, atol);
}
