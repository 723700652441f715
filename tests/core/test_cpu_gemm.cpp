// The Cpu backend's own fp32 A·Bᵀ kernel (backend/cpu_gemm_nt.hpp) against an fp64 loop and
// against the BLAS path it replaces: edges of every tile size, K slices, strides, alpha/beta,
// beta = 0 over NaN, threads.
#include "test_util.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace bindery;

namespace {

struct Problem {
  int64_t m, n, k, lda, ldb, ldc;
  float alpha, beta;
};

/// Runs C = alpha A Bᵀ + beta C through Cpu::gemm and checks every element against fp64 loops with
/// the bound |error| <= 2 K u Σ_p |a b| (u = 2^-24), plus |beta c| rounding.
void check_problem(const Problem& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(p.m * p.lda)), b(static_cast<size_t>(p.n * p.ldb)),
      c(static_cast<size_t>(p.m * p.ldc));
  for (auto& v : a) v = uni(rng);
  for (auto& v : b) v = uni(rng);
  for (auto& v : c) v = p.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : uni(rng);
  std::vector<float> expected_c = c;
  Cpu::gemm(false, true, p.m, p.n, p.k, p.alpha, a.data(), p.lda, b.data(), p.ldb, p.beta, c.data(), p.ldc);
  const double u = std::ldexp(1.0, -24);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t q = 0; q < p.k; ++q) {
        const double prod = double(a[i * p.lda + q]) * double(b[j * p.ldb + q]);
        sum += prod;
        magnitude += std::fabs(prod);
      }
      const double old = p.beta == 0.0f ? 0.0 : double(expected_c[i * p.ldc + j]);
      const double want = double(p.alpha) * sum + double(p.beta) * old;
      const double bound =
          2.0 * double(p.k + 2) * u * (std::fabs(p.alpha) * magnitude + std::fabs(p.beta * old));
      const double got = c[i * p.ldc + j];
      INFO("m " << p.m << " n " << p.n << " k " << p.k << " at (" << i << ", " << j << ")");
      REQUIRE(std::isfinite(got));
      REQUIRE(std::fabs(got - want) <= bound);
    }
    // columns past N in a padded C are untouched
    for (int64_t j = p.n; j < p.ldc; ++j)
      REQUIRE(std::isnan(c[i * p.ldc + j]) == std::isnan(expected_c[i * p.ldc + j]));
  }
}

}  // namespace

TEST_CASE("Cpu gemm A·Bᵀ kernel: every tile edge, K slices, strides and alpha/beta", "[core][gemm]") {
  if (!detail::gemm_nt_supported()) {
    WARN("SKIPPED: this CPU has no AVX-512F/DQ; Cpu::gemm uses the BLAS for every shape");
    return;
  }
  REQUIRE(Cpu::set_gemm_nt_kernel(true));
  uint64_t seed = 1;
  // every row edge (MR = 3) and column edge (NR = 8), K with a masked tail
  for (int64_t m : {1, 2, 3, 4, 7}) {
    for (int64_t n : {1, 5, 8, 9, 15, 17}) {
      for (int64_t k : {128, 131, 200}) check_problem({m, n, k, k, k, n, 1.0f, 0.0f}, seed++);
    }
  }
  // K split into slices (> 1024), with row strides wider than the rows and a row stride of 4 KiB
  check_problem({5, 19, 1500, 1504, 1530, 23, 0.5f, 2.0f}, seed++);
  check_problem({9, 24, 2048, 2048, 2048, 24, 1.0f, 1.0f}, seed++);
  check_problem({4, 16, 3000, 3000, 3000, 16, -1.5f, 0.0f}, seed++);
  // a beta = 1 accumulation as ops::linear does with the bias in C
  check_problem({30, 40, 256, 256, 256, 40, 1.0f, 1.0f}, seed++);
}

TEST_CASE("Cpu gemm A·Bᵀ kernel: the same results on 1 and 2 threads, close to the BLAS path",
          "[core][gemm]") {
  if (!detail::gemm_nt_supported()) {
    WARN("SKIPPED: this CPU has no AVX-512F/DQ");
    return;
  }
  const int64_t m = 77, n = 200, k = 384;  // N splits between the threads at a tile boundary
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> a(m * k), b(n * k);
  for (auto& v : a) v = uni(rng);
  for (auto& v : b) v = uni(rng);
  const int threads_before = Cpu::num_threads();
  auto run = [&](int threads, bool own) {
    Cpu::set_num_threads(threads);
    Cpu::set_gemm_nt_kernel(own);
    std::vector<float> c(m * n);
    Cpu::gemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
    return c;
  };
  const auto one = run(1, true), two = run(2, true), blas = run(1, false);
  Cpu::set_num_threads(threads_before);
  Cpu::set_gemm_nt_kernel(true);
  REQUIRE(one == two);  // each element is summed by one thread in one order
  double worst = 0;
  for (size_t i = 0; i < one.size(); ++i) worst = std::max(worst, double(std::fabs(one[i] - blas[i])));
  REQUIRE(worst <= 2.0 * k * std::ldexp(1.0, -24) * k);  // |a b| <= 1 per term
  REQUIRE(worst > 0.0);  // a different summation order: proves the two paths both ran
}

TEST_CASE("Cpu gemm A·Bᵀ kernel: the switch falls back to the BLAS", "[core][gemm]") {
  const bool supported = detail::gemm_nt_supported();
  REQUIRE(Cpu::set_gemm_nt_kernel(false) == false);
  REQUIRE_FALSE(detail::gemm_nt_applies(100, 100, 512));
  REQUIRE(Cpu::set_gemm_nt_kernel(true) == supported);
  REQUIRE(detail::gemm_nt_applies(100, 100, 512) == supported);
  REQUIRE_FALSE(detail::gemm_nt_applies(100, 100, 64));  // attention's head dimension: the BLAS
}

namespace {

/// C = alpha op(A) op(B) + beta C through Cpu::gemm on `threads` threads (x·Wᵀ kernel off: the BLAS
/// or Eigen path), with C's padding columns and beta = 0's C filled with NaN.
std::vector<float> general_gemm(int threads, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                                float beta, uint64_t seed, std::vector<float>* a_out = nullptr,
                                std::vector<float>* b_out = nullptr, std::vector<float>* c_in = nullptr) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
  std::vector<float> a(static_cast<size_t>((ta ? k : m) * lda)), b(static_cast<size_t>((tb ? n : k) * ldb)),
      c(static_cast<size_t>(m * ldc));
  for (auto& v : a) v = uni(rng);
  for (auto& v : b) v = uni(rng);
  for (auto& v : c) v = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : uni(rng);
  if (a_out != nullptr) *a_out = a;
  if (b_out != nullptr) *b_out = b;
  if (c_in != nullptr) *c_in = c;
  const int before = Cpu::num_threads();
  Cpu::set_num_threads(threads);
  Cpu::set_gemm_nt_kernel(false);
  Cpu::gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  Cpu::set_gemm_nt_kernel(true);
  Cpu::set_num_threads(before);
  return c;
}

}  // namespace

TEST_CASE("Cpu gemm through the BLAS: products split over the team equal one call, every transpose",
          "[core][gemm]") {
  struct Case {
    int64_t m, n, k;
    float alpha, beta;
  };
  // rows split (M > N), columns split in 16s with a ragged end (N > M, N % 16 != 0), a product under
  // the 4 MFLOP split threshold, and alpha / beta over NaN
  const Case cases[] = {{301, 37, 200, 1.0f, 0.0f}, {19, 533, 210, 0.5f, 1.5f}, {40, 40, 40, -1.0f, 0.0f}};
  uint64_t seed = 100;
  for (const Case& p : cases) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        std::vector<float> a, b, c0;
        const auto one = general_gemm(1, ta, tb, p.m, p.n, p.k, p.alpha, p.beta, seed, &a, &b, &c0);
        const auto two = general_gemm(2, ta, tb, p.m, p.n, p.k, p.alpha, p.beta, seed);
        ++seed;
        INFO("m " << p.m << " n " << p.n << " k " << p.k << " ta " << ta << " tb " << tb);
        REQUIRE(one.size() == two.size());
        // each element is summed by one call in the same K order: the same bits on 1 and 2 threads
        for (size_t i = 0; i < one.size(); ++i) {
          REQUIRE((std::isnan(one[i]) == std::isnan(two[i])));
          if (!std::isnan(one[i])) REQUIRE(one[i] == two[i]);
        }
        // and against fp64 (the padding columns stay as they were)
        const int64_t lda = (ta ? p.m : p.k) + 3, ldb = (tb ? p.k : p.n) + 5, ldc = p.n + 2;
        const double u = std::ldexp(1.0, -24);
        for (int64_t i = 0; i < p.m; ++i) {
          for (int64_t j = 0; j < p.n; ++j) {
            double sum = 0, magnitude = 0;
            for (int64_t q = 0; q < p.k; ++q) {
              const double x = ta ? a[q * lda + i] : a[i * lda + q], y = tb ? b[j * ldb + q] : b[q * ldb + j];
              sum += x * y;
              magnitude += std::fabs(x * y);
            }
            const double old = p.beta == 0.0f ? 0.0 : double(c0[i * ldc + j]);
            const double want = double(p.alpha) * sum + double(p.beta) * old;
            const double bound =
                2.0 * double(p.k + 2) * u * (std::fabs(p.alpha) * magnitude + std::fabs(p.beta * old));
            REQUIRE(std::fabs(double(two[i * ldc + j]) - want) <= bound);
          }
          for (int64_t j = p.n; j < ldc; ++j)
            REQUIRE(std::isnan(two[i * ldc + j]) == std::isnan(c0[i * ldc + j]));
        }
      }
    }
  }
#if defined(BINDERY_WITH_BLAS)
  // the pthreads OpenBLAS is kept on one thread, even after someone raised its count
  if (detail::blas_has_own_threads()) {
    openblas_set_num_threads(2);
    general_gemm(2, false, false, 64, 64, 64, 1.0f, 0.0f, 7);
    REQUIRE(openblas_get_num_threads() == 1);
    REQUIRE(detail::blas_nests_in_openmp());
  }
#endif
}

TEST_CASE("Cpu allocations: large freed blocks are reused, small ones are not cached", "[core][allocator]") {
  auto& cache = detail::HostBlockCache::instance();
  Cpu::empty_cache();
  REQUIRE(cache.cached_bytes() == 0);
  const int64_t n = 300000;  // 1.2 MB
  float* p = Cpu::allocate<float>(n);
  REQUIRE(reinterpret_cast<uintptr_t>(p) % Cpu::kAlignment == 0);
  p[0] = 1.0f;
  p[n - 1] = 2.0f;
  Cpu::deallocate(p);
  const size_t cached = cache.cached_bytes();
  REQUIRE(cached >= size_t(n) * sizeof(float));
  float* q = Cpu::allocate<float>(n - 1000);  // within 1/8 of the cached block: reuses it
  REQUIRE(q == p);
  REQUIRE(cache.cached_bytes() == 0);
  float* r = Cpu::allocate<float>(n / 2);  // half the size: a fresh block
  REQUIRE(r != q);
  Cpu::deallocate(q);
  Cpu::deallocate(r);
  REQUIRE(cache.cached_bytes() > cached);
  float* small = Cpu::allocate<float>(100);
  Cpu::deallocate(small);
  const size_t before_empty = cache.cached_bytes();
  REQUIRE(before_empty == cached + (size_t(n / 2) * sizeof(float) + 63) / 64 * 64);
  Cpu::empty_cache();
  REQUIRE(cache.cached_bytes() == 0);
  // a tensor's storage goes through the same path
  { auto t = Tensor<float>::zeros({600, 600}); }
  REQUIRE(cache.cached_bytes() >= 600 * 600 * sizeof(float));
  auto t2 = Tensor<float>::zeros({600, 600});  // reused block, still zeroed by zeros()
  REQUIRE(t2.at({599, 599}) == 0.0f);
}

// ---- the AVX2 fp32 kernel, and the bf16 / int8 weight kernels (backend/cpu_gemm_lowp.hpp) ----

namespace {

/// Caps the kernels' instruction set for one scope (BINDERY_CPU_ISA's setter).
struct IsaLimit {
  explicit IsaLimit(detail::CpuIsa limit) : before(detail::set_cpu_isa_limit(limit)) {}
  ~IsaLimit() { detail::set_cpu_isa_limit(before); }
  IsaLimit(const IsaLimit&) = delete;
  IsaLimit& operator=(const IsaLimit&) = delete;
  detail::CpuIsa before;
};

struct LowpProblem {
  int64_t m, n, k, lda, ldc;
  float alpha, beta;
  bool bias;
};

struct LowpData {
  std::vector<float> a, w, c, bias;
};

/// Random operands: A and W in [-1, 1] with one large value per row of A (an outlier), C random
/// (NaN when beta = 0: it must be ignored), and a bias when asked.
LowpData lowp_data(const LowpProblem& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  LowpData d;
  d.a.resize(static_cast<size_t>(p.m * p.lda));
  d.w.resize(static_cast<size_t>(p.n * p.k));
  d.c.resize(static_cast<size_t>(p.m * p.ldc));
  for (auto& v : d.a) v = uni(rng);
  for (int64_t i = 0; i < p.m; ++i) d.a[i * p.lda + (i * 7) % p.k] = 6.0f;
  for (auto& v : d.w) v = uni(rng);
  for (auto& v : d.c) v = p.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : uni(rng);
  if (p.bias) {
    d.bias.resize(static_cast<size_t>(p.n));
    for (auto& v : d.bias) v = uni(rng);
  }
  return d;
}

/// The bf16 product checked element by element against fp64 sums: of the bf16-rounded operands
/// with fp32 summation's bound 2(K+4)·2⁻²⁴·(|alpha|Σ|ab| + |beta c| + |bias|), and of the fp32
/// operands with that plus bf16 rounding's (2·2⁻⁸ + 2⁻¹⁶)·|alpha|Σ|ab|. Returns C.
std::vector<float> check_bf16(const LowpProblem& p, const LowpData& d, int threads) {
  const Bf16Weight w(d.w.data(), p.n, p.k, p.k);
  REQUIRE(w.bytes() == size_t((p.n + 15) / 16 * 16 * ((p.k + 1) / 2)) * 4);
  for (int64_t j = 0; j < p.n; j += std::max<int64_t>(1, p.n / 5))
    for (int64_t q = 0; q < p.k; ++q) REQUIRE(w.at(j, q).bits == bfloat16(d.w[j * p.k + q]).bits);
  std::vector<float> c = d.c;
  detail::gemm_nt_bf16(p.m, p.alpha, d.a.data(), p.lda, w, p.beta, c.data(), p.ldc,
                       p.bias ? d.bias.data() : nullptr, threads);
  const double u = std::ldexp(1.0, -24), u_bf16 = std::ldexp(1.0, -8);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double rounded = 0, exact = 0, magnitude = 0;
      for (int64_t q = 0; q < p.k; ++q) {
        const float x = d.a[i * p.lda + q], y = d.w[j * p.k + q];
        rounded += double(float(bfloat16(x))) * double(float(bfloat16(y)));
        exact += double(x) * double(y);
        magnitude += std::fabs(double(x) * double(y));
      }
      const double old = p.beta == 0.0f ? 0.0 : double(d.c[i * p.ldc + j]);
      const double add = double(p.beta) * old + (p.bias ? double(d.bias[j]) : 0.0);
      const double fp32_bound = 2.0 * double(p.k + 4) * u *
                                (std::fabs(p.alpha) * magnitude * (1 + 3 * u_bf16) +
                                 std::fabs(double(p.beta) * old) + (p.bias ? std::fabs(d.bias[j]) : 0.0));
      const double got = c[i * p.ldc + j];
      INFO("bf16 m " << p.m << " n " << p.n << " k " << p.k << " at (" << i << ", " << j << ")");
      REQUIRE(std::isfinite(got));
      REQUIRE(std::fabs(got - (p.alpha * rounded + add)) <= fp32_bound);
      REQUIRE(std::fabs(got - (p.alpha * exact + add)) <=
              fp32_bound + (2 * u_bf16 + u_bf16 * u_bf16) * std::fabs(p.alpha) * magnitude);
    }
    for (int64_t j = p.n; j < p.ldc; ++j)
      REQUIRE(std::isnan(c[i * p.ldc + j]) == std::isnan(d.c[i * p.ldc + j]));
  }
  return c;
}

/// The int8 product checked element by element: bit for bit against the int64 dot product of the
/// quantized operands (quantize_row_u8, the kernel's own quantizer) put through the documented
/// epilogue, and against fp64 of the fp32 operands within the quantization bound
/// |alpha|Σ(|a|Δw + |w|Δa + ΔaΔw), Δ = s/2 + 8·2⁻²⁴(|x| + s), plus fp32 rounding. Returns C.
std::vector<float> check_i8(const LowpProblem& p, const LowpData& d, int threads) {
  const Int8Weight w(d.w.data(), p.n, p.k, p.k);
  std::vector<float> c = d.c;
  detail::gemm_nt_i8(p.m, p.alpha, d.a.data(), p.lda, w, p.beta, c.data(), p.ldc,
                     p.bias ? d.bias.data() : nullptr, threads);
  const double u = std::ldexp(1.0, -24);
  std::vector<uint8_t> qa(static_cast<size_t>(p.k)), qw(static_cast<size_t>(p.k));
  for (int64_t i = 0; i < p.m; ++i) {
    const float sa = detail::quantize_row_u8(d.a.data() + i * p.lda, p.k, qa.data());
    for (int64_t j = 0; j < p.n; ++j) {
      const float sw = detail::quantize_row_u8(d.w.data() + j * p.k, p.k, qw.data());
      REQUIRE(sw == w.scales()[j]);
      int64_t dot = 0;
      double exact = 0, quant_bound = 0, magnitude = 0;
      for (int64_t q = 0; q < p.k; ++q) {
        REQUIRE(int(qw[q]) - 128 == int(w.at(j, q)));
        dot += (int64_t(qa[q]) - 128) * (int64_t(qw[q]) - 128);
        const double x = d.a[i * p.lda + q], y = d.w[j * p.k + q];
        exact += x * y;
        magnitude += std::fabs(x * y);
        const double dx = 0.5 * sa + 8 * u * (std::fabs(x) + sa), dy = 0.5 * sw + 8 * u * (std::fabs(y) + sw);
        quant_bound += std::fabs(x) * dy + std::fabs(y) * dx + dx * dy;
      }
      REQUIRE(std::llabs(dot) < (int64_t(1) << 31));
      float& out = c[i * p.ldc + j];
      const float old = d.c[i * p.ldc + j];
      const float want_bits = detail::i8_epilogue(static_cast<int32_t>(dot), p.alpha * sa, sw, p.beta, old,
                                                  p.bias ? d.bias.data() + j : nullptr);
      INFO("int8 m " << p.m << " n " << p.n << " k " << p.k << " at (" << i << ", " << j << ")");
      REQUIRE(std::isfinite(out));
      REQUIRE(out == want_bits);
      const double add = (p.beta == 0.0f ? 0.0 : double(p.beta) * old) + (p.bias ? double(d.bias[j]) : 0.0);
      const double rounding = 4 * u *
                              (std::fabs(p.alpha) * (magnitude + quant_bound) + std::fabs(add) +
                               (p.beta == 0.0f ? 0.0 : std::fabs(p.beta * old)));
      REQUIRE(std::fabs(double(out) - (p.alpha * exact + add)) <=
              std::fabs(p.alpha) * quant_bound + rounding);
    }
    for (int64_t j = p.n; j < p.ldc; ++j)
      REQUIRE(std::isnan(c[i * p.ldc + j]) == std::isnan(d.c[i * p.ldc + j]));
  }
  return c;
}

/// Every tile edge (MR = 3, NR = 8), K tails of the 32-element (bf16) and 64-byte (int8) steps,
/// strides, alpha/beta, bias, and K slices of the bf16 kernel.
std::vector<LowpProblem> lowp_problems() {
  std::vector<LowpProblem> problems;
  for (int64_t m : {1, 2, 3, 4, 7})
    for (int64_t n : {1, 5, 8, 9, 17})
      for (int64_t k : {1, 31, 33, 64, 200}) problems.push_back({m, n, k, k, n, 1.0f, 0.0f, false});
  problems.push_back({5, 19, 300, 310, 23, 0.5f, 2.0f, true});
  problems.push_back({8, 24, 4500, 4500, 24, -1.5f, 1.0f, true});  // long K in the tile's registers
  problems.push_back({30, 40, 256, 256, 40, 1.0f, 0.0f, true});
  problems.push_back({13, 130, 96, 100, 131, 1.0f, 0.5f, true});  // 6 x 64 tiles: 2 + 1 rows, 2 + 2 columns
  return problems;
}

}  // namespace

TEST_CASE("Cpu gemm A·Bᵀ AVX2 kernel (forced): every tile edge, K slices, strides, alpha/beta",
          "[core][gemm]") {
  if (detail::gemm_nt_cpu_isa() < detail::CpuIsa::kAvx2) {
    WARN("SKIPPED: this CPU has no AVX2+FMA");
    return;
  }
  IsaLimit avx2(detail::CpuIsa::kAvx2);
  REQUIRE(Cpu::set_gemm_nt_kernel(true));
  REQUIRE(detail::gemm_nt_isa() == detail::CpuIsa::kAvx2);
  uint64_t seed = 100;
  for (int64_t m : {1, 2, 3, 4, 7}) {  // MR = 3, NR = 4, 8-float steps
    for (int64_t n : {1, 3, 4, 5, 9, 17}) {
      for (int64_t k : {128, 131, 200}) check_problem({m, n, k, k, k, n, 1.0f, 0.0f}, seed++);
    }
  }
  check_problem({5, 19, 1500, 1504, 1530, 23, 0.5f, 2.0f}, seed++);
  check_problem({9, 24, 2048, 2048, 2048, 24, 1.0f, 1.0f}, seed++);
  check_problem({4, 16, 3000, 3000, 3000, 16, -1.5f, 0.0f}, seed++);
  check_problem({30, 40, 256, 256, 256, 40, 1.0f, 1.0f}, seed++);

  // 1 vs 2 threads bit for bit, and a different order from the AVX-512 kernel's
  const int64_t m = 77, n = 200, k = 384;
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> a(m * k), b(n * k);
  for (auto& v : a) v = uni(rng);
  for (auto& v : b) v = uni(rng);
  auto run = [&](int threads) {
    std::vector<float> c(m * n);
    detail::gemm_nt_f32(m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n, threads);
    return c;
  };
  const auto one = run(1), two = run(2);
  REQUIRE(one == two);
  if (detail::gemm_nt_cpu_isa() == detail::CpuIsa::kAvx512) {
    detail::set_cpu_isa_limit(detail::CpuIsa::kAvx512);
    REQUIRE(run(1) != one);  // the AVX-512 kernel sums in another order: both paths ran
  }
}

TEST_CASE("Cpu gemm A·Bᵀ kernel with a bias epilogue: the bits of the bias fill + beta = 1 product",
          "[core][gemm][linear]") {
  // ops::linear's fp32 forward on the Cpu: Cpu::gemm_nt_bias adds the bias in the tile epilogue;
  // before, C was filled with the bias and the product accumulated into it (beta = 1). The two must
  // agree bit for bit on every kernel (AVX-512, AVX2, the plain loop), tile edge and K slice.
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const auto check = [&](int64_t m, int64_t n, int64_t k, int threads) {
    std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(n * k)),
        bias(static_cast<size_t>(n));
    for (auto& v : a) v = uni(rng);
    for (auto& v : b) v = uni(rng);
    for (auto& v : bias) v = uni(rng) * 4.0f;
    std::vector<float> fused(static_cast<size_t>(m * n), std::numeric_limits<float>::quiet_NaN()),
        filled(fused);
    detail::gemm_nt_f32(m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, fused.data(), n, threads, bias.data());
    for (int64_t i = 0; i < m; ++i) std::copy(bias.begin(), bias.end(), filled.begin() + i * n);
    detail::gemm_nt_f32(m, n, k, 1.0f, a.data(), k, b.data(), k, 1.0f, filled.data(), n, threads);
    INFO("m " << m << " n " << n << " k " << k << " threads " << threads);
    REQUIRE(std::memcmp(fused.data(), filled.data(), fused.size() * sizeof(float)) == 0);
  };
  const auto sweep = [&] {
    for (int64_t m : {1, 3, 4, 7})
      for (int64_t n : {1, 5, 8, 9, 17}) check(m, n, 131, 1);
    check(5, 19, 1500, 1);   // two K slices: the bias goes with the first only
    check(64, 200, 384, 2);  // split over 2 threads
  };
  if (detail::gemm_nt_cpu_isa() >= detail::CpuIsa::kAvx2) {
    IsaLimit avx2(detail::CpuIsa::kAvx2);
    sweep();
  }
  sweep();  // the widest kernel (or the loop)
  {
    IsaLimit portable(detail::CpuIsa::kPortable);
    check(3, 9, 131, 1);
  }
  // Cpu::gemm_nt_bias takes the kernel's shapes only (K >= 128), and says so
  std::vector<float> a(4 * 64, 1.0f), b(6 * 64, 1.0f), bias(6, 0.5f), c(4 * 6, 0.0f);
  REQUIRE_FALSE(Cpu::gemm_nt_bias(4, 6, 64, a.data(), 64, b.data(), 64, bias.data(), c.data(), 6));
  REQUIRE(c == std::vector<float>(4 * 6, 0.0f));
  if (detail::gemm_nt_supported()) {
    std::vector<float> a2(4 * 128, 1.0f), b2(6 * 128, 1.0f);
    REQUIRE(Cpu::gemm_nt_bias(4, 6, 128, a2.data(), 128, b2.data(), 128, bias.data(), c.data(), 6));
    REQUIRE(c == std::vector<float>(4 * 6, 128.5f));
  }
}

TEST_CASE("bf16-weight x·Wᵀ: fp64 references with the rounding bounds, tile edges, kernel and fallback",
          "[core][gemm]") {
  const bool kernel = detail::gemm_bf16_kernel_supported();
  if (!kernel) WARN("this CPU has no AVX512_BF16: the AVX-512 kernel is not tested");
  const bool avx2 = detail::gemm_nt_cpu_isa() >= detail::CpuIsa::kAvx2;
  if (!avx2) WARN("SKIPPED: this CPU has no AVX2+FMA: the AVX2 kernel is not tested");
  uint64_t seed = 200;
  for (const LowpProblem& p : lowp_problems()) {
    const LowpData d = lowp_data(p, seed++);
    const auto fast = check_bf16(p, d, 2);
    std::vector<float> mid;
    {
      IsaLimit limit(detail::CpuIsa::kAvx2);
      REQUIRE_FALSE(detail::gemm_bf16_kernel_supported());
      REQUIRE(detail::gemm_lowp_avx2_supported() == avx2);
      mid = check_bf16(p, d, 2);
    }
    IsaLimit portable(detail::CpuIsa::kPortable);
    REQUIRE_FALSE(detail::gemm_lowp_avx2_supported());
    const auto loops = check_bf16(p, d, 1);
    if (p.k > 1000) {  // the FMA sums and vdpbf16ps's differ from the loops' mul + add: all three ran
      if (kernel) REQUIRE(fast != loops);
      if (avx2) REQUIRE(mid != loops);
    }
  }
  // 1 vs 2 threads bit for bit (N splits at a tile boundary), on every path
  for (const detail::CpuIsa isa :
       {detail::CpuIsa::kAvx512, detail::CpuIsa::kAvx2, detail::CpuIsa::kPortable}) {
    IsaLimit limit(isa);
    const LowpProblem p{77, 200, 384, 384, 200, 1.0f, 0.0f, true};
    const LowpData d = lowp_data(p, 9);
    const Bf16Weight w(d.w.data(), p.n, p.k, p.k);
    std::vector<float> one(p.m * p.n), two(p.m * p.n);
    detail::gemm_nt_bf16(p.m, 1.0f, d.a.data(), p.k, w, 0.0f, one.data(), p.n, d.bias.data(), 1);
    detail::gemm_nt_bf16(p.m, 1.0f, d.a.data(), p.k, w, 0.0f, two.data(), p.n, d.bias.data(), 2);
    REQUIRE(one == two);
  }
#if BINDERY_HOST_SIMD_X86
  if (kernel) {  // the AVX-512 activation rounding = float_to_bfloat16_bits, bit for bit
    std::vector<uint32_t> bits = {
        0x00000000u, 0x80000000u, 0x00000001u, 0x807FFFFFu,  // zeros, subnormals
        0x3F808000u, 0x3F818000u, 0x3F80FFFFu, 0x3F817FFFu,  // ties to even, near ties
        0x7F7FFFFFu, 0xFF7F8000u, 0x7F800000u, 0xFF800000u,  // max -> inf, inf
        0x7F800001u, 0xFFC00000u, 0x7FBFFFFFu, 0xFFFFFFFFu,  // NaNs (signalling too)
        0x7F7F7FFFu, 0x3F7FFFFFu};
    std::mt19937 gen(23);
    for (int i = 0; i < 4000; ++i) bits.push_back(gen());
    std::vector<float> x(bits.size());
    std::memcpy(x.data(), bits.data(), bits.size() * sizeof(float));
    for (int64_t k : {int64_t(0), int64_t(1), int64_t(15), int64_t(17), int64_t(x.size())}) {
      std::vector<uint16_t> scalar(static_cast<size_t>(k) + 1, 7), vector(static_cast<size_t>(k) + 1, 7);
      for (int64_t p = 0; p < k; ++p) scalar[p] = detail::float_to_bfloat16_bits(x[p]);
      detail::bf16_row_avx512(x.data(), k, vector.data());
      INFO("k " << k);
      REQUIRE(scalar == vector);  // the element past k untouched
      if (avx2) {                 // the AVX2 rounding, kept as floats: the same bits
        std::vector<float> floats(static_cast<size_t>(k) + 1, 7.0f);
        detail::bf16_row_f32_avx2(x.data(), k, floats.data());
        REQUIRE(floats[static_cast<size_t>(k)] == 7.0f);
        for (int64_t p = 0; p < k; ++p) {
          uint32_t got;
          std::memcpy(&got, &floats[static_cast<size_t>(p)], sizeof(got));
          REQUIRE(got == uint32_t(scalar[static_cast<size_t>(p)]) << 16);
        }
      }
    }
  }
#endif
}

namespace {

/// The packed fp32 product checked element by element against fp64 sums of the same operands with
/// fp32 summation's bound 2(K+4)·2⁻²⁴·(|alpha|Σ|ab| + |beta c| + |bias|). Returns C.
std::vector<float> check_f32_packed(const LowpProblem& p, const LowpData& d, int threads) {
  const F32Weight w(d.w.data(), p.n, p.k, p.k);
  REQUIRE(w.bytes() == size_t((p.n + 15) / 16 * 16 * p.k) * 4);
  for (int64_t j = 0; j < p.n; ++j)
    for (int64_t q = 0; q < p.k; ++q) REQUIRE(w.at(j, q) == d.w[j * p.k + q]);
  std::vector<float> c = d.c;
  detail::gemm_nt_f32_packed(p.m, p.alpha, d.a.data(), p.lda, w, p.beta, c.data(), p.ldc,
                             p.bias ? d.bias.data() : nullptr, threads);
  const double u = std::ldexp(1.0, -24);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double exact = 0, magnitude = 0;
      for (int64_t q = 0; q < p.k; ++q) {
        const double prod = double(d.a[i * p.lda + q]) * double(d.w[j * p.k + q]);
        exact += prod;
        magnitude += std::fabs(prod);
      }
      const double old = p.beta == 0.0f ? 0.0 : double(d.c[i * p.ldc + j]);
      const double add = double(p.beta) * old + (p.bias ? double(d.bias[j]) : 0.0);
      const double bound = 2.0 * double(p.k + 4) * u *
                           (std::fabs(p.alpha) * magnitude + std::fabs(double(p.beta) * old) +
                            (p.bias ? std::fabs(d.bias[j]) : 0.0));
      const double got = c[i * p.ldc + j];
      INFO("packed fp32 m " << p.m << " n " << p.n << " k " << p.k << " at (" << i << ", " << j << ")");
      REQUIRE(std::isfinite(got));
      REQUIRE(std::fabs(got - (p.alpha * exact + add)) <= bound);
    }
    for (int64_t j = p.n; j < p.ldc; ++j)
      REQUIRE(std::isnan(c[i * p.ldc + j]) == std::isnan(d.c[i * p.ldc + j]));
  }
  return c;
}

}  // namespace

TEST_CASE(
    "packed fp32 x·Wᵀ (frozen layers): fp64 bound, tile edges, the same bits on every path and thread "
    "count",
    "[core][gemm]") {
  const bool kernel = detail::gemm_f32_packed_kernel_supported();
  if (!kernel) WARN("SKIPPED: this CPU has no AVX-512F: the AVX-512 packed tile is not tested");
  const bool avx2 = detail::gemm_nt_cpu_isa() >= detail::CpuIsa::kAvx2;
  if (!avx2) WARN("SKIPPED: this CPU has no AVX2+FMA: the AVX2 packed tile is not tested");
  uint64_t seed = 700;
  std::vector<LowpProblem> problems = lowp_problems();
  problems.push_back({23, 200, 128, 130, 200, 1.0f, 0.0f, true});  // 6 x 64 tiles and a 12-row AVX2 edge
  // the AVX2 path's K slices (3, the last short) over 2 row blocks and 2 column blocks
  problems.push_back({140, 150, 1100, 1100, 150, 1.0f, 0.5f, true});
  for (const LowpProblem& p : problems) {
    const LowpData d = lowp_data(p, seed++);
    const auto fast = check_f32_packed(p, d, 2);
    std::vector<float> mid;
    {
      IsaLimit limit(detail::CpuIsa::kAvx2);
      REQUIRE_FALSE(detail::gemm_f32_packed_kernel_supported());
      REQUIRE(detail::gemm_lowp_avx2_supported() == avx2);
      mid = check_f32_packed(p, d, 2);
    }
    IsaLimit portable(detail::CpuIsa::kPortable);
    REQUIRE_FALSE(detail::gemm_lowp_avx2_supported());
    const auto loops = check_f32_packed(p, d, 1);
    // one FMA chain per element in K order on every path: the same bits (NaN where C is padding)
    INFO("m " << p.m << " n " << p.n << " k " << p.k);
    REQUIRE(std::memcmp(fast.data(), loops.data(), fast.size() * sizeof(float)) == 0);
    REQUIRE(std::memcmp(mid.data(), loops.data(), mid.size() * sizeof(float)) == 0);
  }
  // 1 vs 2 threads bit for bit (N splits at a tile boundary), on every path
  for (const detail::CpuIsa isa :
       {detail::CpuIsa::kAvx512, detail::CpuIsa::kAvx2, detail::CpuIsa::kPortable}) {
    IsaLimit limit(isa);
    const LowpProblem p{77, 200, 384, 384, 200, 1.0f, 0.0f, true};
    const LowpData d = lowp_data(p, 11);
    const F32Weight w(d.w.data(), p.n, p.k, p.k);
    std::vector<float> one(p.m * p.n), two(p.m * p.n);
    detail::gemm_nt_f32_packed(p.m, 1.0f, d.a.data(), p.k, w, 0.0f, one.data(), p.n, d.bias.data(), 1);
    detail::gemm_nt_f32_packed(p.m, 1.0f, d.a.data(), p.k, w, 0.0f, two.data(), p.n, d.bias.data(), 2);
    REQUIRE(one == two);
  }
  // K = 0: C = beta·C + bias on every path
  for (const detail::CpuIsa isa :
       {detail::CpuIsa::kAvx512, detail::CpuIsa::kAvx2, detail::CpuIsa::kPortable}) {
    IsaLimit limit(isa);
    const F32Weight empty(nullptr, 20, 0, 0);
    const std::vector<float> bias(20, 0.25f);
    std::vector<float> out(3 * 20, 2.0f);
    detail::gemm_nt_f32_packed(3, 1.0f, nullptr, 0, empty, 0.5f, out.data(), 20, bias.data(), 1);
    REQUIRE(out == std::vector<float>(3 * 20, 1.25f));
  }
  // a C that does not fit: ShapeError naming the shapes
  const std::vector<float> a(6, 1.0f), wv(6, 1.0f);
  const F32Weight w(wv.data(), 3, 2, 2);
  std::vector<float> c(6);
  REQUIRE_THROWS_AS(detail::gemm_nt_f32_packed(3, 1.0f, a.data(), 2, w, 0.0f, c.data(), 2, nullptr, 1),
                    ShapeError);
  REQUIRE_THROWS_AS(F32Weight(wv.data(), 3, 2, 1), ShapeError);
}

TEST_CASE(
    "inference x·Wᵀ with GELU in the epilogue: the bits of the product then ops::simd::gelu, every "
    "precision, path and thread count",
    "[core][gemm]") {
  // (m, n, k, lda, ldc, alpha, beta, bias): 6 × 64 tiles with row and column edges, a C wider than
  // N (its padding must stay untouched), beta ≠ 0, and the AVX2 fp32 path's K slices
  const std::vector<LowpProblem> problems = {
      {23, 200, 130, 130, 203, 1.0f, 0.0f, true},
      {7, 17, 33, 40, 17, 0.5f, 0.75f, false},
      {140, 150, 1100, 1100, 150, 1.0f, 0.5f, true},
  };
  uint64_t seed = 900;
  for (const LowpProblem& p : problems) {
    const LowpData d = lowp_data(p, seed++);
    const F32Weight wf(d.w.data(), p.n, p.k, p.k);
    const Bf16Weight wb(d.w.data(), p.n, p.k, p.k);
    const Int8Weight wi(d.w.data(), p.n, p.k, p.k);
    const float* bias = p.bias ? d.bias.data() : nullptr;
    const auto run = [&](int which, int threads, detail::GemmActivation act) {
      std::vector<float> c = d.c;
      if (which == 0)
        detail::gemm_nt_f32_packed(p.m, p.alpha, d.a.data(), p.lda, wf, p.beta, c.data(), p.ldc, bias,
                                   threads, act);
      if (which == 1)
        detail::gemm_nt_bf16(p.m, p.alpha, d.a.data(), p.lda, wb, p.beta, c.data(), p.ldc, bias, threads,
                             act);
      if (which == 2)
        detail::gemm_nt_i8(p.m, p.alpha, d.a.data(), p.lda, wi, p.beta, c.data(), p.ldc, bias, threads, act);
      return c;
    };
    for (const detail::CpuIsa isa :
         {detail::CpuIsa::kAvx512, detail::CpuIsa::kAvx2, detail::CpuIsa::kPortable}) {
      IsaLimit limit(isa);
      for (int which = 0; which < 3; ++which) {
        INFO("m " << p.m << " n " << p.n << " k " << p.k << " isa " << int(isa) << " weight " << which);
        std::vector<float> want = run(which, 1, detail::GemmActivation::kNone);
        const std::vector<float> plain = want;
        for (int64_t i = 0; i < p.m; ++i) ops::simd::gelu(&want[i * p.ldc], &want[i * p.ldc], p.n);
        const std::vector<float> one = run(which, 1, detail::GemmActivation::kGelu);
        const std::vector<float> two = run(which, 2, detail::GemmActivation::kGelu);
        REQUIRE(std::memcmp(one.data(), want.data(), want.size() * sizeof(float)) == 0);
        REQUIRE(std::memcmp(two.data(), want.data(), want.size() * sizeof(float)) == 0);
        REQUIRE(std::memcmp(one.data(), plain.data(), plain.size() * sizeof(float)) != 0);  // GELU ran
      }
    }
  }
}

TEST_CASE(
    "inference x·Wᵀ over weights side by side (q | k | v): the bits of one product per weight, every "
    "precision, path and thread count",
    "[core][gemm]") {
  const int64_t m = 29, k = 70;
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(m * k));
  for (auto& x : a) x = uni(rng);
  // whole 64-column tiles (one region), and boundaries inside a tile (run one by one)
  for (const std::vector<int64_t>& rows :
       {std::vector<int64_t>{128, 64, 192}, std::vector<int64_t>{40, 17, 64}}) {
    std::vector<std::vector<float>> wv, bv;
    int64_t n = 0;
    for (const int64_t r : rows) {
      wv.emplace_back(static_cast<size_t>(r * k));
      bv.emplace_back(static_cast<size_t>(r));
      for (auto& x : wv.back()) x = uni(rng);
      for (auto& x : bv.back()) x = uni(rng);
      n += r;
    }
    std::vector<F32Weight> wf;
    std::vector<Bf16Weight> wb;
    std::vector<Int8Weight> wi;
    for (size_t b = 0; b < rows.size(); ++b) {
      wf.emplace_back(wv[b].data(), rows[b], k, k);
      wb.emplace_back(wv[b].data(), rows[b], k, k);
      wi.emplace_back(wv[b].data(), rows[b], k, k);
    }
    const float* biases[3] = {bv[0].data(), nullptr, bv[2].data()};  // block 1 without a bias
    const int64_t ldc = n + 5;
    for (const detail::CpuIsa isa :
         {detail::CpuIsa::kAvx512, detail::CpuIsa::kAvx2, detail::CpuIsa::kPortable}) {
      IsaLimit limit(isa);
      for (int which = 0; which < 3; ++which) {
        for (const int threads : {1, 2}) {
          INFO("rows " << rows[0] << " isa " << int(isa) << " weight " << which << " threads " << threads);
          std::vector<float> apart(static_cast<size_t>(m * ldc), 7.0f), together = apart;
          int64_t offset = 0;
          for (size_t b = 0; b < rows.size(); offset += rows[b], ++b) {
            float* c = apart.data() + offset;
            if (which == 0)
              detail::gemm_nt_f32_packed(m, 1.0f, a.data(), k, wf[b], 0.0f, c, ldc, biases[b], threads);
            if (which == 1)
              detail::gemm_nt_bf16(m, 1.0f, a.data(), k, wb[b], 0.0f, c, ldc, biases[b], threads);
            if (which == 2) detail::gemm_nt_i8(m, 1.0f, a.data(), k, wi[b], 0.0f, c, ldc, biases[b], threads);
          }
          const F32Weight* pf[3] = {&wf[0], &wf[1], &wf[2]};
          const Bf16Weight* pb[3] = {&wb[0], &wb[1], &wb[2]};
          const Int8Weight* pi[3] = {&wi[0], &wi[1], &wi[2]};
          if (which == 0)
            detail::gemm_nt_f32_packed_blocks(3, pf, biases, m, 1.0f, a.data(), k, 0.0f, together.data(), ldc,
                                              threads);
          if (which == 1)
            detail::gemm_nt_bf16_blocks(3, pb, biases, m, 1.0f, a.data(), k, 0.0f, together.data(), ldc,
                                        threads);
          if (which == 2)
            detail::gemm_nt_i8_blocks(3, pi, biases, m, 1.0f, a.data(), k, 0.0f, together.data(), ldc,
                                      threads);
          REQUIRE(std::memcmp(apart.data(), together.data(), apart.size() * sizeof(float)) == 0);
          REQUIRE(together[static_cast<size_t>(ldc - 1)] == 7.0f);  // past N: untouched
        }
      }
    }
  }
  // weights of different K: ShapeError naming the weight
  std::vector<float> wv(64 * 8, 0.5f);
  const Bf16Weight w8(wv.data(), 64, 8, 8), w7(wv.data(), 64, 7, 8);
  const Bf16Weight* mixed[2] = {&w8, &w7};
  const float* none[2] = {nullptr, nullptr};
  std::vector<float> c(4 * 128);
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      detail::gemm_nt_bf16_blocks(2, mixed, none, 4, 1.0f, wv.data(), 8, 0.0f, c.data(), 128, 1), ShapeError,
      "weight 1 has 7 inputs");
}

TEST_CASE(
    "bf16 A·B with B in pair layout (attention's kernel): fp64 bound, tile edges, offsets, kernel and loops",
    "[core][gemm]") {
  const bool kernel = detail::gemm_bf16_kernel_supported();
  if (!kernel) WARN("this CPU has no AVX512_BF16: only the loops are tested");
  const double u = std::ldexp(1.0, -24);
  uint64_t seed = 400;
  // (m, n, k): 6-row tiles and 16/64-column groups with every remainder, odd K (a half pair), long K
  for (const auto& [m, n, k] : std::vector<std::array<int64_t, 3>>{{1, 1, 1},
                                                                   {5, 15, 3},
                                                                   {6, 16, 64},
                                                                   {7, 17, 33},
                                                                   {13, 70, 48},
                                                                   {12, 64, 80},
                                                                   {3, 130, 257},
                                                                   {64, 48, 500}}) {
    std::mt19937_64 rng(seed++);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    // B is the middle of a wider (k + 2) × (n + 21) matrix: the product reads it from column 5 and
    // pair 1 on, as attention reads its key tiles.
    const int64_t bk = k + 2, bn = n + 21, col0 = 5;
    std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(bk * bn));
    for (auto& x : a) x = uni(rng);
    for (auto& x : b) x = uni(rng);
    detail::Bf16Pairs packed;
    detail::pack_bf16_pairs(b.data(), bk, bn, bn, 1, packed);
    REQUIRE(packed.pairs() == (bk + 1) / 2);
    REQUIRE(packed.ld % 16 == 0);
    detail::LowpA prep;
    detail::prepare_a_bf16(m, k, a.data(), k, prep, false);
    for (const float beta : {0.0f, 0.5f}) {
      const int64_t ldc = n + 3;
      std::vector<float> c0(static_cast<size_t>(m * ldc));
      for (auto& x : c0) x = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : uni(rng);
      std::vector<std::vector<float>> results;
      for (const bool fast : {false, true}) {
        if (fast && !kernel) continue;
        std::vector<float> c = c0;
        detail::gemm_bf16_nn(fast, m, n, (k + 1) / 2, 0.75f, prep.bf16.data(), prep.ld, packed.row(1) + col0,
                             packed.ld, beta, c.data(), ldc);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            double want = 0, magnitude = 0;
            for (int64_t p = 0; p < k; ++p) {
              const double x =
                  double(float(bfloat16(a[i * k + p]))) * double(float(bfloat16(b[(p + 2) * bn + col0 + j])));
              want += x;
              magnitude += std::fabs(x);
            }
            const double old = beta == 0.0f ? 0.0 : double(c0[i * ldc + j]);
            want = 0.75 * want + double(beta) * old;
            const double bound = 2.0 * double(k + 4) * u * (0.75 * magnitude + std::fabs(double(beta) * old));
            INFO("m " << m << " n " << n << " k " << k << " beta " << beta << " at (" << i << ", " << j << ")"
                      << (fast ? " kernel" : " loops"));
            REQUIRE(std::fabs(double(c[i * ldc + j]) - want) <= bound);
          }
          for (int64_t j = n; j < ldc; ++j)  // past N: untouched
            REQUIRE(std::isnan(c[i * ldc + j]) == std::isnan(c0[i * ldc + j]));
        }
        results.push_back(c);
      }
      if (results.size() == 2 && k >= 257) REQUIRE(results[0] != results[1]);  // both paths ran
    }
  }
  // an odd K's last pair has a zero high half; a zero-size product writes nothing
  detail::Bf16Pairs one;
  const float three[3] = {1.0f, 2.0f, 3.0f};
  detail::pack_bf16_pairs(three, 3, 1, 1, 1, one);
  REQUIRE(one.words[0] == (uint32_t(detail::float_to_bfloat16_bits(1.0f)) |
                           (uint32_t(detail::float_to_bfloat16_bits(2.0f)) << 16)));
  REQUIRE(one.words[static_cast<size_t>(one.ld)] == uint32_t(detail::float_to_bfloat16_bits(3.0f)));
  float untouched = 7.0f;
  detail::gemm_bf16_nn(kernel, 0, 1, 1, 1.0f, nullptr, 1, one.words.data(), one.ld, 0.0f, &untouched, 1);
  REQUIRE(untouched == 7.0f);
}

TEST_CASE(
    "int8-weight x·Wᵀ: exact integer sums, the quantization bound, tile edges, kernel = fallback bit for bit",
    "[core][gemm]") {
  const bool kernel = detail::gemm_i8_kernel_supported();
  if (!kernel) WARN("this CPU has no AVX512-VNNI: the AVX-512 kernel is not tested");
  const bool avx2 = detail::gemm_nt_cpu_isa() >= detail::CpuIsa::kAvx2;
  if (!avx2) WARN("SKIPPED: this CPU has no AVX2+FMA: the AVX2 kernel is not tested");
  auto same = [](const std::vector<float>& x, const std::vector<float>& y) {
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i) REQUIRE((x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i]))));
  };
  uint64_t seed = 300;
  for (const LowpProblem& p : lowp_problems()) {
    const LowpData d = lowp_data(p, seed++);
    const auto fast = check_i8(p, d, 2);
    {
      IsaLimit limit(detail::CpuIsa::kAvx2);
      REQUIRE_FALSE(detail::gemm_i8_kernel_supported());
      REQUIRE(detail::gemm_lowp_avx2_supported() == avx2);
      same(check_i8(p, d, 2), fast);
    }
    IsaLimit portable(detail::CpuIsa::kPortable);
    REQUIRE_FALSE(detail::gemm_lowp_avx2_supported());
    same(check_i8(p, d, 1), fast);
  }
  // the kernels' own tile edges: 6 or 3 rows, 16-column groups, 64-column tiles, K not a multiple
  // of 4; the three paths give the same bytes (the NaN padding past N too), on 1 and 2 threads
  for (int64_t m : {5, 6, 13})
    for (int64_t n : {15, 16, 17, 64, 65, 130})
      for (int64_t k : {3, 102}) {
        const LowpProblem p{m, n, k, k + 1, n + 3, 0.75f, n % 2 == 0 ? 0.0f : 0.5f, n % 3 != 0};
        const LowpData d = lowp_data(p, seed++);
        const auto fast = check_i8(p, d, 1);
        for (const detail::CpuIsa isa : {detail::CpuIsa::kAvx2, detail::CpuIsa::kPortable}) {
          IsaLimit limit(isa);
          const auto other = check_i8(p, d, isa == detail::CpuIsa::kAvx2 ? 2 : 1);
          REQUIRE(std::memcmp(fast.data(), other.data(), fast.size() * sizeof(float)) == 0);
        }
      }
#if BINDERY_HOST_SIMD_X86
  if (kernel) {  // the AVX-512 activation quantizer = the scalar one, bit for bit: ties, tails, 0, NaN, inf
    std::mt19937 gen(17);
    std::uniform_real_distribution<float> uni(-3.0f, 3.0f);
    for (int64_t k = 0; k <= 70; ++k)
      for (int kind = 0; kind < 6; ++kind) {
        std::vector<float> x(static_cast<size_t>(k));
        for (auto& v : x) v = uni(gen);
        if (k > 0 && kind == 1)  // exact ties: max 127, values n + 0.5
          for (int64_t p = 0; p < k; ++p) x[p] = p == 0 ? 127.0f : float(p % 50) - 24.5f;
        if (kind == 2) std::fill(x.begin(), x.end(), 0.0f);
        if (kind == 3) std::fill(x.begin(), x.end(), -0.0f);
        if (k > 0 && kind == 4) x[k / 2] = std::numeric_limits<float>::quiet_NaN();
        if (k > 0 && kind == 5) x[k - 1] = -std::numeric_limits<float>::infinity();
        std::vector<uint8_t> scalar(static_cast<size_t>(k) + 1, 7), vector(static_cast<size_t>(k) + 1, 7);
        const float s1 = detail::quantize_row_u8(x.data(), k, scalar.data());
        const float s2 = detail::quantize_row_u8_avx512(x.data(), k, vector.data());
        INFO("k " << k << " kind " << kind);
        REQUIRE(std::memcmp(&s1, &s2, sizeof(float)) == 0);
        REQUIRE(scalar == vector);  // the byte past k untouched in both
        if (avx2) {                 // the AVX2 quantizer: the same scale, q = byte - 128 as int16
          std::vector<int16_t> wide(static_cast<size_t>(k) + 1, 7);
          const float s3 = detail::quantize_row_s16_avx2(x.data(), k, wide.data());
          REQUIRE(std::memcmp(&s1, &s3, sizeof(float)) == 0);
          REQUIRE(wide[static_cast<size_t>(k)] == 7);
          for (int64_t p = 0; p < k; ++p)
            REQUIRE(int(wide[static_cast<size_t>(p)]) == int(scalar[static_cast<size_t>(p)]) - 128);
        }
      }
  }
#endif
  {  // 1 vs 2 threads bit for bit
    const LowpProblem p{77, 200, 384, 384, 200, 1.0f, 0.0f, true};
    const LowpData d = lowp_data(p, 10);
    const Int8Weight w(d.w.data(), p.n, p.k, p.k);
    std::vector<float> one(p.m * p.n), two(p.m * p.n);
    detail::gemm_nt_i8(p.m, 1.0f, d.a.data(), p.k, w, 0.0f, one.data(), p.n, d.bias.data(), 1);
    detail::gemm_nt_i8(p.m, 1.0f, d.a.data(), p.k, w, 0.0f, two.data(), p.n, d.bias.data(), 2);
    REQUIRE(one == two);
  }
  {  // an all-zero row of A gives the bias; a row with a NaN gives NaN, as fp32 would
    const int64_t k = 100, n = 9;
    std::vector<float> a(3 * k, 0.5f), wv(n * k, 0.25f), bias(n, 3.0f), c(3 * n);
    std::fill_n(a.begin(), k, 0.0f);
    a[2 * k + 5] = std::numeric_limits<float>::quiet_NaN();
    const Int8Weight w(wv.data(), n, k, k);
    detail::gemm_nt_i8(3, 1.0f, a.data(), k, w, 0.0f, c.data(), n, bias.data(), 1);
    for (int64_t j = 0; j < n; ++j) {
      REQUIRE(c[j] == 3.0f);
      REQUIRE(std::fabs(c[n + j] - (3.0f + 0.5f * 0.25f * k)) < 1e-4f);
      REQUIRE(std::isnan(c[2 * n + j]));
    }
    wv[7] = std::numeric_limits<float>::infinity();
    REQUIRE_THROWS_AS(Int8Weight(wv.data(), n, k, k), ValueError);
    REQUIRE_THROWS_AS(Int8Weight(wv.data(), 1, detail::kGemmI8MaxK + 1, detail::kGemmI8MaxK + 1), ValueError);
    REQUIRE_THROWS_AS(detail::gemm_nt_i8(3, 1.0f, a.data(), k - 1, w, 0.0f, c.data(), n, nullptr, 1),
                      ShapeError);
  }
}

TEST_CASE("BINDERY_CPU_ISA values", "[core][gemm]") {
  REQUIRE(detail::parse_cpu_isa("avx2") == detail::CpuIsa::kAvx2);
  REQUIRE(detail::parse_cpu_isa("avx512") == detail::CpuIsa::kAvx512);
  REQUIRE(detail::parse_cpu_isa("portable") == detail::CpuIsa::kPortable);
  REQUIRE_THROWS_AS(detail::parse_cpu_isa("avx-2"), ValueError);
  IsaLimit portable(detail::CpuIsa::kPortable);
  REQUIRE_FALSE(detail::gemm_nt_applies(100, 100, 512));  // no fp32 kernel: Cpu::gemm takes the BLAS
}
