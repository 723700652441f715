// benchmarks/bench_gemm.cpp — fp32 GEMM: bindery's default Cpu::gemm next to Eigen and OpenBLAS.
//
// Every shape runs three ways in the same process, so their ratio is measured under the same load:
//   bindery   Cpu::gemm, whatever this build selected: for x·Wᵀ with K >= 128 on an AVX-512 CPU its own
//             kernel (backend/cpu_gemm_nt.hpp), else OpenBLAS with BINDERY_BLAS (single-threaded
//             calls split over the OpenMP team), Eigen otherwise
//   eigen     detail::eigen_gemm, compiled with this build's flags
//   openblas  cblas_sgemm called directly, with OpenBLAS's own threads (the reference)
// Square shapes are C = A B; the transformer shapes are nn.Linear's y = x W^T with W stored (out, in),
// i.e. trans_b. Counter GFLOP/s = 2 M N K / wall time. Also: one ViT MLP block (fc1, GELU through
// Cpu::for_each, fc2) to see how each GEMM's threads share the cores with OpenMP loops,
// Cpu::gemm_batched on attention-score shapes, and GEMMs called from inside Cpu::for_each.
// gemm_nt_kernels/: the x·Wᵀ kernels side by side on the transformer shapes (issue 16): fp32 AVX-512
// (detail::gemm_nt_f32_avx512), fp32 AVX2 (gemm_nt_f32_avx2), OpenBLAS, bf16 weights
// (gemm_nt_bf16, vdpbf16ps) and int8 weights (gemm_nt_i8, vpdpbusd; the activations' quantization
// is timed, the weights' conversion is not: it happens once at load), and the same two on their AVX2
// kernels (bf16_avx2, int8_avx2: the ISA capped at AVX2, as on a CPU without AVX-512), and the
// packed fp32 weight of frozen layers (gemm_nt_f32_packed: f32_packed, and f32_packed_avx2 capped at
// AVX2). GFLOP/s counts 2 M N K for all.
//
//   bench_gemm --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   benchmarks/run_gemm_compare.sh      # the markdown table of medians
#include <cblas.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/backend/cpu_gemm_f32_packed.hpp"
#include "bindery/backend/cpu_gemm_lowp.hpp"
#include "bindery/ops/functors.hpp"

namespace {

using bindery::Cpu;

/// 64-byte aligned host buffer of n floats in [-1, 1], a cheap deterministic pattern per seed (GEMM
/// speed does not depend on the values; Google Benchmark sets each case up several times).
struct Buffer {
  explicit Buffer(int64_t n, uint32_t seed = 1) : data(Cpu::allocate<float>(n)) {
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t h = (static_cast<uint32_t>(i) + seed * 7919u) * 2654435761u;
      data.get()[i] = static_cast<float>(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
  }
  float* get() const { return data.get(); }
  struct Free {
    void operator()(float* p) const noexcept { Cpu::deallocate(p); }
  };
  std::unique_ptr<float, Free> data;
};

enum class Impl { kBindery, kEigen, kOpenBlas };
const char* impl_name(Impl impl) {
  switch (impl) {
    case Impl::kBindery:
      return "bindery";
    case Impl::kEigen:
      return "eigen";
    case Impl::kOpenBlas:
      return "openblas";
  }
  return "?";
}

/// Sets OpenBLAS's thread count for a benchmark of `impl`: the reference (openblas) runs with
/// OpenBLAS's own threads, as a program calling it directly would; bindery's Cpu::gemm keeps the
/// pthreads OpenBLAS on one thread and splits products over its OpenMP team (Cpu::set_num_threads
/// restores that). Called before each benchmark's loop, outside any parallel region.
void threads_for(Impl impl) {
  if (impl == Impl::kOpenBlas) {
    openblas_set_num_threads(Cpu::num_threads());
  } else {
    Cpu::set_num_threads(Cpu::num_threads());
  }
}

/// Row-major C(M,N) = op(A) op(B) (alpha 1, beta 0) through one implementation.
void gemm(Impl impl, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float* c, int64_t ldc) {
  switch (impl) {
    case Impl::kBindery:
      Cpu::gemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
      break;
    case Impl::kEigen:
      bindery::detail::eigen_gemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
      break;
    case Impl::kOpenBlas:
      cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                  int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), 0.0f, c, int(ldc));
      break;
  }
}

struct GemmShape {
  const char* name;
  int64_t m, n, k;
  bool trans_b;
};

void run_gemm(benchmark::State& state, Impl impl, GemmShape s) {
  const Buffer a(s.m * s.k, 1), b(s.k * s.n, 2), c(s.m * s.n, 3);
  const int64_t ldb = s.trans_b ? s.k : s.n;
  threads_for(impl);
  for (auto _ : state) {
    gemm(impl, false, s.trans_b, s.m, s.n, s.k, a.get(), s.k, b.get(), ldb, c.get(), s.n);
    benchmark::DoNotOptimize(c.get());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(s.m) * double(s.n) * double(s.k),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

/// ViT-H MLP block on `rows` tokens: h = gelu(x W1^T) (1280 -> 5120), y = h W2^T (5120 -> 1280).
/// The GELU runs through Cpu::for_each (OpenMP), between two GEMMs of the implementation under test.
void run_mlp(benchmark::State& state, Impl impl, int64_t rows) {
  constexpr int64_t kDim = 1280, kHidden = 5120;
  const Buffer x(rows * kDim, 1), w1(kHidden * kDim, 2), w2(kDim * kHidden, 3), h(rows * kHidden, 4),
      y(rows * kDim, 5);
  float* hp = h.get();
  threads_for(impl);
  for (auto _ : state) {
    gemm(impl, false, true, rows, kHidden, kDim, x.get(), kDim, w1.get(), kDim, hp, kHidden);
    Cpu::for_each(rows * kHidden, [hp](int64_t i) { hp[i] = bindery::functors::Gelu{}(hp[i]); });
    gemm(impl, false, true, rows, kDim, kHidden, hp, kHidden, w2.get(), kHidden, y.get(), kDim);
    benchmark::DoNotOptimize(y.get());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(4e-9 * double(rows) * double(kDim) * double(kHidden),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

/// Attention scores S_i = Q_i K_i^T for `batch` (L x d) heads: Cpu::gemm_batched (bindery), one
/// single-threaded Eigen product per OpenMP thread (eigen), one cblas_sgemm per head (openblas).
void run_batched(benchmark::State& state, Impl impl, int64_t batch, int64_t len, int64_t dim) {
  const Buffer q(batch * len * dim, 1), k(batch * len * dim, 2), s(batch * len * len, 3);
  auto one = [&](Impl one_impl, int64_t i) {
    gemm(one_impl, false, true, len, len, dim, q.get() + i * len * dim, dim, k.get() + i * len * dim, dim,
         s.get() + i * len * len, len);
  };
  threads_for(impl);
  for (auto _ : state) {
    switch (impl) {
      case Impl::kBindery:
        Cpu::gemm_batched(false, true, len, len, dim, 1.0f, q.get(), dim, len * dim, k.get(), dim, len * dim,
                          0.0f, s.get(), len, len * len, batch);
        break;
      case Impl::kEigen:
        Cpu::for_each(
            batch, [&](int64_t i) { one(Impl::kEigen, i); }, 1);
        break;
      case Impl::kOpenBlas:
        for (int64_t i = 0; i < batch; ++i) one(Impl::kOpenBlas, i);
        break;
    }
    benchmark::DoNotOptimize(s.get());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * double(batch) * double(len) * double(len) * double(dim),
                         benchmark::Counter::kIsIterationInvariantRate);
}

/// GEMMs called from inside an OpenMP team, as the fused attention kernel does: `tasks` products
/// S_t = Q_t K_t^T of (rows x dim) . (len x dim)^T run through Cpu::for_each with grain 1. bindery:
/// Cpu::gemm (which picks what may nest); eigen: Eigen, single-threaded in the team; openblas:
/// cblas_sgemm called there directly (its pthreads build then starts threads of its own).
void run_nested(benchmark::State& state, Impl impl, int64_t tasks, int64_t rows, int64_t len, int64_t dim) {
  const Buffer q(tasks * rows * dim, 1), k(tasks * len * dim, 2), s(tasks * rows * len, 3);
  threads_for(impl);
  for (auto _ : state) {
    Cpu::for_each(
        tasks,
        [&](int64_t t) {
          gemm(impl, false, true, rows, len, dim, q.get() + t * rows * dim, dim, k.get() + t * len * dim, dim,
               s.get() + t * rows * len, len);
        },
        1);
    benchmark::DoNotOptimize(s.get());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * double(tasks) * double(rows) * double(len) * double(dim),
                         benchmark::Counter::kIsIterationInvariantRate);
}

enum class NtImpl {
  kAvx512,
  kAvx2,
  kOpenBlas,
  kBf16,
  kInt8,
  kBf16Avx2,
  kInt8Avx2,
  kF32Packed,
  kF32PackedAvx2
};
const char* nt_impl_name(NtImpl impl) {
  switch (impl) {
    case NtImpl::kAvx512:
      return "f32_avx512";
    case NtImpl::kAvx2:
      return "f32_avx2";
    case NtImpl::kOpenBlas:
      return "openblas";
    case NtImpl::kBf16:
      return "bf16";
    case NtImpl::kInt8:
      return "int8";
    case NtImpl::kBf16Avx2:
      return "bf16_avx2";
    case NtImpl::kInt8Avx2:
      return "int8_avx2";
    case NtImpl::kF32Packed:
      return "f32_packed";
    case NtImpl::kF32PackedAvx2:
      return "f32_packed_avx2";
  }
  return "?";
}

/// y = x·Wᵀ (M x K times (N x K)ᵀ) through one of the x·Wᵀ kernels, on Cpu::num_threads() threads.
void run_nt(benchmark::State& state, NtImpl impl, GemmShape s) {
  namespace d = bindery::detail;
  const bool runs = impl == NtImpl::kAvx512      ? d::gemm_nt_cpu_isa() >= d::CpuIsa::kAvx512
                    : impl == NtImpl::kAvx2      ? d::gemm_nt_cpu_isa() >= d::CpuIsa::kAvx2
                    : impl == NtImpl::kBf16      ? d::gemm_bf16_kernel_supported()
                    : impl == NtImpl::kInt8      ? d::gemm_i8_kernel_supported()
                    : impl == NtImpl::kF32Packed ? d::gemm_f32_packed_kernel_supported()
                    : impl == NtImpl::kBf16Avx2 || impl == NtImpl::kInt8Avx2 || impl == NtImpl::kF32PackedAvx2
                        ? d::gemm_nt_cpu_isa() >= d::CpuIsa::kAvx2
                        : true;
  if (!runs) {
    state.SkipWithError("this CPU lacks the instructions (the fallback loops are not benchmarked)");
    return;
  }
  const Buffer a(s.m * s.k, 1), b(s.k * s.n, 2), c(s.m * s.n, 3);
  const int threads = Cpu::num_threads();
  bindery::Bf16Weight w16;
  bindery::Int8Weight w8;
  if (impl == NtImpl::kBf16 || impl == NtImpl::kBf16Avx2) w16 = bindery::Bf16Weight(b.get(), s.n, s.k, s.k);
  if (impl == NtImpl::kInt8 || impl == NtImpl::kInt8Avx2) w8 = bindery::Int8Weight(b.get(), s.n, s.k, s.k);
  bindery::F32Weight w32;
  if (impl == NtImpl::kF32Packed || impl == NtImpl::kF32PackedAvx2)
    w32 = bindery::F32Weight(b.get(), s.n, s.k, s.k);
  // The AVX2 inference kernels run where the AVX-512 ones do not: cap the ISA for the case.
  const bool capped =
      impl == NtImpl::kBf16Avx2 || impl == NtImpl::kInt8Avx2 || impl == NtImpl::kF32PackedAvx2;
  const d::CpuIsa before = capped ? d::set_cpu_isa_limit(d::CpuIsa::kAvx2) : d::cpu_isa_limit();
  threads_for(impl == NtImpl::kOpenBlas ? Impl::kOpenBlas : Impl::kBindery);
  for (auto _ : state) {
    switch (impl) {
      case NtImpl::kAvx512:
        d::gemm_nt_f32_avx512(s.m, s.n, s.k, 1.0f, a.get(), s.k, b.get(), s.k, 0.0f, c.get(), s.n, threads);
        break;
      case NtImpl::kAvx2:
        d::gemm_nt_f32_avx2(s.m, s.n, s.k, 1.0f, a.get(), s.k, b.get(), s.k, 0.0f, c.get(), s.n, threads);
        break;
      case NtImpl::kOpenBlas:
        gemm(Impl::kOpenBlas, false, true, s.m, s.n, s.k, a.get(), s.k, b.get(), s.k, c.get(), s.n);
        break;
      case NtImpl::kBf16:
      case NtImpl::kBf16Avx2:
        d::gemm_nt_bf16(s.m, 1.0f, a.get(), s.k, w16, 0.0f, c.get(), s.n, nullptr, threads);
        break;
      case NtImpl::kInt8:
      case NtImpl::kInt8Avx2:
        d::gemm_nt_i8(s.m, 1.0f, a.get(), s.k, w8, 0.0f, c.get(), s.n, nullptr, threads);
        break;
      case NtImpl::kF32Packed:
      case NtImpl::kF32PackedAvx2:
        d::gemm_nt_f32_packed(s.m, 1.0f, a.get(), s.k, w32, 0.0f, c.get(), s.n, nullptr, threads);
        break;
    }
    benchmark::DoNotOptimize(c.get());
    benchmark::ClobberMemory();
  }
  d::set_cpu_isa_limit(before);
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(s.m) * double(s.n) * double(s.k),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

const std::vector<GemmShape>& gemm_shapes() {
  static const std::vector<GemmShape> shapes = {
      {"square_256", 256, 256, 256, false},
      {"square_512", 512, 512, 512, false},
      {"square_1024", 1024, 1024, 1024, false},
      {"square_2048", 2048, 2048, 2048, false},
      // ImageBind huge, nn.Linear: (tokens x in) . (out x in)^T
      {"vision_qkv_257x1280x3840", 257, 3840, 1280, true},
      {"vision_fc1_257x1280x5120", 257, 5120, 1280, true},
      {"vision_fc2_257x5120x1280", 257, 1280, 5120, true},
      {"vision_b8_fc1_2056x1280x5120", 2056, 5120, 1280, true},
      {"text_qkv_77x1024x3072", 77, 3072, 1024, true},
      {"text_fc1_77x1024x4096", 77, 4096, 1024, true},
      {"text_fc2_77x4096x1024", 77, 1024, 4096, true},
      {"text_b8_fc1_616x1024x4096", 616, 4096, 1024, true},
      {"audio_fc1_229x768x3072", 229, 3072, 768, true},
      {"audio_fc2_229x3072x768", 229, 768, 3072, true},
      {"depth_qkv_197x384x1152", 197, 1152, 384, true},
      {"depth_fc1_197x384x1536", 197, 1536, 384, true},
      {"depth_fc2_197x1536x384", 197, 384, 1536, true},
      {"depth_b8_fc1_1576x384x1536", 1576, 1536, 384, true},
      {"imu_fc1_251x512x2048", 251, 2048, 512, true},
      {"imu_fc2_251x2048x512", 251, 512, 2048, true},
  };
  return shapes;
}

/// Wall time (the GEMMs are multi-threaded), milliseconds, and a "max" aggregate beside the median:
/// for the GFLOP/s counter it is the best repetition, the one least disturbed by other load.
void configure(benchmark::internal::Benchmark* b) {
  b->UseRealTime()->Unit(benchmark::kMillisecond)->ComputeStatistics("max", [](const std::vector<double>& v) {
    return *std::max_element(v.begin(), v.end());
  });
}

std::string build_description() {
  std::string s = "Cpu::gemm=";
#if defined(BINDERY_WITH_BLAS)
  s += bindery::detail::blas_nests_in_openmp() ? "OpenBLAS (also inside OpenMP teams)"
                                               : "OpenBLAS (Eigen inside OpenMP teams)";
#else
  s += "Eigen";
#endif
  if (bindery::detail::gemm_nt_requested().load() && bindery::detail::gemm_nt_supported())
    s += ", x W^T with K >= 128: bindery's AVX-512 kernel";
  s += "; Eigen SIMD=";
  s += Eigen::SimdInstructionSetsInUse();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const Impl impls[] = {Impl::kBindery, Impl::kEigen, Impl::kOpenBlas};
  for (const GemmShape& s : gemm_shapes()) {
    for (Impl impl : impls) {
      const std::string name = std::string("gemm_f32/") + s.name + "/" + impl_name(impl);
      benchmark::RegisterBenchmark(name.c_str(), run_gemm, impl, s)->Apply(configure);
    }
  }
  for (const GemmShape& s : gemm_shapes()) {
    if (!s.trans_b) continue;
    for (NtImpl impl : {NtImpl::kAvx512, NtImpl::kAvx2, NtImpl::kOpenBlas, NtImpl::kBf16, NtImpl::kInt8,
                        NtImpl::kBf16Avx2, NtImpl::kInt8Avx2, NtImpl::kF32Packed, NtImpl::kF32PackedAvx2}) {
      const std::string name = std::string("gemm_nt_kernels/") + s.name + "/" + nt_impl_name(impl);
      benchmark::RegisterBenchmark(name.c_str(), run_nt, impl, s)->Apply(configure);
    }
  }
  for (int64_t rows : {int64_t(257), int64_t(2056)}) {
    for (Impl impl : impls) {
      const std::string name =
          "mlp_block_f32/vision_" + std::to_string(rows) + "x1280x5120/" + impl_name(impl);
      benchmark::RegisterBenchmark(name.c_str(), run_mlp, impl, rows)->Apply(configure);
    }
  }
  struct BatchedShape {
    const char* name;
    int64_t batch, len, dim;
  };
  for (const BatchedShape& s :
       {BatchedShape{"vision_scores_16x257x257x80", 16, 257, 80},
        BatchedShape{"vision_b8_scores_128x257x257x80", 128, 257, 80},
        BatchedShape{"text_scores_16x77x77x64", 16, 77, 64}, BatchedShape{"small_64x32x32x32", 64, 32, 32},
        BatchedShape{"small_64x16x16x16", 64, 16, 16}}) {
    for (Impl impl : impls) {
      const std::string name = std::string("gemm_batched_f32/") + s.name + "/" + impl_name(impl);
      benchmark::RegisterBenchmark(name.c_str(), run_batched, impl, s.batch, s.len, s.dim)->Apply(configure);
    }
  }

  for (Impl impl : impls) {
    const std::string name = std::string("gemm_in_for_each_f32/vision_tiles_80x64x257x80/") + impl_name(impl);
    benchmark::RegisterBenchmark(name.c_str(), run_nested, impl, int64_t(80), int64_t(64), int64_t(257),
                                 int64_t(80))
        ->Apply(configure);
  }

  benchmark::AddCustomContext("bindery", build_description());
  benchmark::AddCustomContext("openmp_threads", std::to_string(Cpu::num_threads()));
  benchmark::AddCustomContext("openblas", openblas_get_config());
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("openblas_threads", std::to_string(openblas_get_num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
