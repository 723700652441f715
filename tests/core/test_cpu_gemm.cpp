// The Cpu backend's own fp32 A·Bᵀ kernel (backend/cpu_gemm_nt.hpp) against an fp64 loop and
// against the BLAS path it replaces: edges of every tile size, K slices, strides, alpha/beta,
// beta = 0 over NaN, threads.
#include "test_util.hpp"

#include <cmath>
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
