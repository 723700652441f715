// tests/cuda/test_kernels_host.cu — the CUDA kernels' arithmetic, checked on the HOST (no GPU needed).
//
// Every CUDA kernel in kernels/*.cuh is a BINDERY_HOST_DEVICE functor launched one thread per item
// (Cuda::for_each) or one warp per row (launch_rows, written against a Lanes policy). Here the very
// same functors run serially on the host — run_items_on_host, and run_rows_on_host with SerialLanes
// (one lane; warp reductions become the identity) — on host memory, and are compared with the Cpu
// kernels of ops/*.hpp on random inputs, edge cases included (-inf logits, fully masked attention
// rows, overlapping convolution windows, repeated indices, broadcast batches). Block-level kernels
// (the tiled attention of kernels/attention.cuh) run through HostLaunch: every block emulated phase
// by phase with poisoned (NaN) shared memory and registers, and again with the threads of each
// phase in reverse order, which must give bit-identical results (no same-phase races). What this
// cannot check: the warp shuffles, real concurrency and the launches themselves; test_cuda covers
// those on a GPU.
#include "test_util.hpp"

#include <cmath>
#include <limits>
#include <vector>

using namespace bindery;
using bindery::testing::max_abs_diff;

namespace bindery::testing {
bool cuda_tests_need_device() {
  return false;
}
bool cuda_device_available() {
  return Cuda::is_available();
}
}  // namespace bindery::testing

namespace {

template <class T>
constexpr double tolerance() {
  return sizeof(T) == 8 ? 1e-12 : 2e-5;
}

template <class T>
std::vector<T> random_values(int64_t n, uint64_t seed, double low = -2.0, double high = 2.0) {
  Philox rng(seed);
  return Tensor<T>::uniform(Shape{n}, rng, low, high).to_vector();
}

/// |a - b| <= tol (1 + |b|) elementwise; equal infinities and NaNs count as equal.
template <class T>
void require_close(const std::vector<T>& a, const std::vector<T>& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (x == y || (std::isnan(x) && std::isnan(y))) continue;
    INFO("element " << i << ": " << x << " vs " << y);
    REQUIRE(std::fabs(x - y) <= tol * (1.0 + std::fabs(y)));
  }
}

using Types = std::tuple<float, double>;

}  // namespace

TEST_CASE("cuda_size_class: 512-byte minimum, four classes per power of two", "[cuda-host]") {
  using bindery::detail::cuda_size_class;
  CHECK(cuda_size_class(0) == 512);
  CHECK(cuda_size_class(1) == 512);
  CHECK(cuda_size_class(512) == 512);
  CHECK(cuda_size_class(513) == 640);
  CHECK(cuda_size_class(1000) == 1024);
  CHECK(cuda_size_class(1025) == 1280);
  CHECK(cuda_size_class(3 << 20) == size_t(3) << 20);
  CHECK(cuda_size_class((3 << 20) + 1) == size_t(7) << 19);
  for (size_t bytes = 1; bytes < (size_t(1) << 22); bytes = bytes * 3 / 2 + 1) {
    const size_t size = cuda_size_class(bytes);
    INFO("bytes " << bytes << " -> " << size);
    CHECK(size >= bytes);
    CHECK((size <= 512 || size * 4 <= bytes * 5 + 4 * 512));  // at most 25 % waste
    CHECK(cuda_size_class(size) == size);                     // classes are fixed points
  }
}

TEMPLATE_LIST_TEST_CASE("CUDA GEMM k == 0 functor scales C by beta", "[cuda-host]", Types) {
  using T = TestType;
  std::vector<T> c = {1, 2, 3, 4, 5, 6, 7, 8, std::numeric_limits<T>::quiet_NaN(), 10, 11, 12};
  // two (2, 2) matrices with ldc 3, 6 elements apart; beta 0 must overwrite the NaN
  bindery::detail::CudaScaleMatrix<T> scale{c.data(), 2, 3, 6, 4, T(0)};
  kernels::run_items_on_host(8, scale);
  require_close(c, std::vector<T>{0, 0, 3, 0, 0, 6, 0, 0, std::numeric_limits<T>::quiet_NaN(), 0, 0, 12}, 0);
  std::vector<T> d = {1, 2, 3, 4};
  kernels::run_items_on_host(4, bindery::detail::CudaScaleMatrix<T>{d.data(), 2, 2, 4, 4, T(2)});
  require_close(d, std::vector<T>{2, 4, 6, 8}, 0);
}

TEMPLATE_LIST_TEST_CASE("CUDA softmax functors match the Cpu kernel", "[cuda-host][softmax]", Types) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity();
  struct Case {
    int64_t outer, len, inner;
  };
  for (const Case& c : {Case{3, 7, 1}, Case{2, 70, 1}, Case{2, 5, 70}, Case{1, 1, 1}, Case{4, 3, 2}}) {
    for (const bool log : {false, true}) {
      INFO("outer " << c.outer << " len " << c.len << " inner " << c.inner << " log " << log);
      const int64_t n = c.outer * c.len * c.inner;
      std::vector<T> x = random_values<T>(n, 11, -5, 5), dy = random_values<T>(n, 12);
      if (n > 4) x[1] = -inf;  // exactly zero weight
      std::vector<T> y_cpu(x.size()), y_gpu(x.size()), dx_cpu(x.size()), dx_gpu(x.size());
      ops::SoftmaxKernel<Cpu>::forward(x.data(), y_cpu.data(), c.outer, c.len, c.inner, log);
      if (c.inner == 1) {
        kernels::run_rows_on_host(c.outer, kernels::SoftmaxRows<T>{x.data(), y_gpu.data(), c.len, log});
      } else {
        kernels::run_items_on_host(c.outer * c.inner,
                                   kernels::SoftmaxColumns<T>{x.data(), y_gpu.data(), c.len, c.inner, log});
      }
      require_close(y_gpu, y_cpu, tolerance<T>());
      ops::SoftmaxKernel<Cpu>::backward(y_cpu.data(), dy.data(), dx_cpu.data(), c.outer, c.len, c.inner, log);
      if (c.inner == 1) {
        kernels::run_rows_on_host(
            c.outer, kernels::SoftmaxBackwardRows<T>{y_cpu.data(), dy.data(), dx_gpu.data(), c.len, log});
      } else {
        kernels::run_items_on_host(
            c.outer * c.inner,
            kernels::SoftmaxBackwardColumns<T>{y_cpu.data(), dy.data(), dx_gpu.data(), c.len, c.inner, log});
      }
      require_close(dx_gpu, dx_cpu, tolerance<T>());
    }
  }
}

TEMPLATE_LIST_TEST_CASE("CUDA layer_norm functors match the Cpu kernel", "[cuda-host][layer_norm]", Types) {
  using T = TestType;
  for (const auto& [rows, d] : {std::pair<int64_t, int64_t>{5, 7}, {3, 64}, {130, 9}, {1, 1}}) {
    for (const bool affine : {false, true}) {
      INFO("rows " << rows << " d " << d << " affine " << affine);
      const std::vector<T> x = random_values<T>(rows * d, 21, -3, 3), dy = random_values<T>(rows * d, 22);
      const std::vector<T> w = random_values<T>(d, 23), b = random_values<T>(d, 24);
      const T* wp = affine ? w.data() : nullptr;
      const T* bp = affine ? b.data() : nullptr;
      std::vector<T> y_cpu(x.size()), y_gpu(x.size()), mean_cpu(rows), rstd_cpu(rows), mean_gpu(rows),
          rstd_gpu(rows);
      ops::LayerNormKernel<Cpu>::forward(x.data(), wp, bp, y_cpu.data(), mean_cpu.data(), rstd_cpu.data(),
                                         rows, d, 1e-5);
      kernels::run_rows_on_host(
          rows, kernels::LayerNormForwardRows<T>{x.data(), wp, bp, y_gpu.data(), mean_gpu.data(),
                                                 rstd_gpu.data(), d, 1e-5});
      require_close(y_gpu, y_cpu, tolerance<T>());
      require_close(mean_gpu, mean_cpu, tolerance<T>());
      require_close(rstd_gpu, rstd_cpu, tolerance<T>());

      std::vector<T> dx_cpu(x.size()), dw_cpu(d), db_cpu(d), dx_gpu(x.size()), dw_gpu(d), db_gpu(d);
      ops::LayerNormKernel<Cpu>::backward(dy.data(), x.data(), mean_cpu.data(), rstd_cpu.data(), wp,
                                          dx_cpu.data(), dw_cpu.data(), db_cpu.data(), rows, d);
      kernels::run_rows_on_host(
          rows, kernels::LayerNormBackwardRows<T>{dy.data(), x.data(), mean_cpu.data(), rstd_cpu.data(), wp,
                                                  dx_gpu.data(), d});
      // The column sums: LayerNormKernel<Cuda>'s chunking, serially.
      const int64_t chunks = std::min<int64_t>(rows, ops::LayerNormKernel<Cuda>::kMaxChunks);
      const int64_t chunk_rows = (rows + chunks - 1) / chunks;
      std::vector<double> partial(static_cast<size_t>(chunks * 2 * d));
      kernels::run_items_on_host(chunks * d, kernels::LayerNormColumnPartials<T>{
                                                 dy.data(), x.data(), mean_cpu.data(), rstd_cpu.data(),
                                                 partial.data(), rows, d, chunk_rows});
      kernels::run_items_on_host(
          d, kernels::LayerNormColumnTotals<T>{partial.data(), dw_gpu.data(), db_gpu.data(), chunks, d});
      require_close(dx_gpu, dx_cpu, 10 * tolerance<T>());
      require_close(dw_gpu, dw_cpu, tolerance<T>());
      require_close(db_gpu, db_cpu, tolerance<T>());
    }
  }
}

TEMPLATE_LIST_TEST_CASE("CUDA l2_normalize functors match the Cpu kernel", "[cuda-host][normalize]", Types) {
  using T = TestType;
  struct Case {
    int64_t outer, len, inner;
  };
  for (const Case& c : {Case{4, 9, 1}, Case{2, 5, 70}, Case{3, 4, 2}}) {
    for (const double eps : {1e-12, 0.5}) {
      INFO("outer " << c.outer << " len " << c.len << " inner " << c.inner << " eps " << eps);
      const int64_t n = c.outer * c.len * c.inner, slices = c.outer * c.inner;
      std::vector<T> x = random_values<T>(n, 31, -1, 1), dy = random_values<T>(n, 32);
      for (int64_t j = 0; j < c.len; ++j) x[static_cast<size_t>(j * c.inner)] = T(0);  // a zero slice
      std::vector<T> y_cpu(n), y_gpu(n), norm_cpu(slices), norm_gpu(slices), dx_cpu(n), dx_gpu(n);
      ops::NormalizeKernel<Cpu>::forward(x.data(), y_cpu.data(), norm_cpu.data(), c.outer, c.len, c.inner,
                                         eps);
      ops::NormalizeKernel<Cpu>::backward(y_cpu.data(), norm_cpu.data(), dy.data(), dx_cpu.data(), c.outer,
                                          c.len, c.inner, eps);
      if (c.inner == 1) {
        kernels::run_rows_on_host(
            c.outer, kernels::NormalizeRows<T>{x.data(), y_gpu.data(), norm_gpu.data(), c.len, eps});
        kernels::run_rows_on_host(c.outer,
                                  kernels::NormalizeBackwardRows<T>{y_cpu.data(), norm_cpu.data(), dy.data(),
                                                                    dx_gpu.data(), c.len, eps});
      } else {
        kernels::run_items_on_host(slices, kernels::NormalizeColumns<T>{
                                               x.data(), y_gpu.data(), norm_gpu.data(), c.len, c.inner, eps});
        kernels::run_items_on_host(
            slices, kernels::NormalizeBackwardColumns<T>{y_cpu.data(), norm_cpu.data(), dy.data(),
                                                         dx_gpu.data(), c.len, c.inner, eps});
      }
      require_close(y_gpu, y_cpu, tolerance<T>());
      require_close(norm_gpu, norm_cpu, tolerance<T>());
      require_close(dx_gpu, dx_cpu, tolerance<T>());
    }
  }
}

TEMPLATE_LIST_TEST_CASE("CUDA cross_entropy functors match the Cpu kernel", "[cuda-host][cross_entropy]",
                        Types) {
  using T = TestType;
  const int64_t n = 6, c = 11;
  const std::vector<T> x = random_values<T>(n * c, 41, -8, 8), g = random_values<T>(n, 42);
  const std::vector<int64_t> targets = {0, 10, 3, 3, 7, 1};
  for (const double smoothing : {0.0, 0.1}) {
    INFO("smoothing " << smoothing);
    std::vector<T> loss_cpu(n), max_cpu(n), ls_cpu(n), loss_gpu(n), max_gpu(n), ls_gpu(n);
    REQUIRE(ops::CrossEntropyKernel<Cpu>::forward(x.data(), targets.data(), loss_cpu.data(), max_cpu.data(),
                                                  ls_cpu.data(), n, c, smoothing) == -1);
    const T keep = static_cast<T>(1.0 - smoothing), spread = static_cast<T>(smoothing / c);
    kernels::run_rows_on_host(
        n, kernels::CrossEntropyRows<T>{x.data(), targets.data(), loss_gpu.data(), max_gpu.data(),
                                        ls_gpu.data(), c, keep, spread});
    require_close(loss_gpu, loss_cpu, tolerance<T>());
    require_close(max_gpu, max_cpu, 0);
    require_close(ls_gpu, ls_cpu, tolerance<T>());
    for (const int64_t g_stride : {0, 1}) {
      std::vector<T> dx_cpu(n * c), dx_gpu(n * c);
      ops::CrossEntropyKernel<Cpu>::backward(x.data(), targets.data(), max_cpu.data(), ls_cpu.data(),
                                             g.data(), g_stride, T(0.5), dx_cpu.data(), n, c, smoothing);
      kernels::run_items_on_host(n * c, kernels::CrossEntropyBackward<T>{
                                            x.data(), targets.data(), max_cpu.data(), ls_cpu.data(), g.data(),
                                            g_stride, T(0.5), dx_gpu.data(), c, keep, spread});
      require_close(dx_gpu, dx_cpu, tolerance<T>());
    }
  }
}

TEMPLATE_LIST_TEST_CASE("CUDA symmetric_cross_entropy functors match the Cpu kernel",
                        "[cuda-host][symmetric_cross_entropy]", Types) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity();
  for (const int64_t n : {int64_t(1), int64_t(2), int64_t(5), int64_t(37), int64_t(130)}) {
    std::vector<T> x = random_values<T>(n * n, uint64_t(80 + n), -8, 8);
    if (n >= 5) {  // off-diagonal -inf logits; column 2 is -inf in rows 0 and 1 (a whole chunk of 2)
      x[size_t(1)] = -inf;
      x[size_t(2)] = -inf;
      x[size_t(n + 2)] = -inf;
      x[size_t(4 * n + 3)] = -inf;
    }
    std::vector<T> stats_cpu(4 * n), terms_cpu(n);
    T* s = stats_cpu.data();
    ops::SymmetricCrossEntropyKernel<Cpu>::forward(x.data(), s, s + n, s + 2 * n, s + 3 * n, terms_cpu.data(),
                                                   n);
    const kernels::SymmetricCrossEntropyChunks planned = kernels::symmetric_cross_entropy_chunks(n);
    CHECK(planned.chunks * planned.chunk_rows >= n);
    CHECK((planned.chunks - 1) * planned.chunk_rows < n);  // no empty chunk
    CHECK(planned.chunk_rows >= std::min<int64_t>(n, kernels::SymmetricCrossEntropyChunks::kMinRows));
    for (const int64_t chunk_rows : {int64_t(1), int64_t(2), int64_t(16), n, planned.chunk_rows}) {
      INFO("N " << n << " chunk_rows " << chunk_rows);
      const int64_t chunks = (n + chunk_rows - 1) / chunk_rows;
      std::vector<T> stats_gpu(4 * n), terms_gpu(n), partial(2 * chunks * n);
      T* d = stats_gpu.data();
      kernels::run_rows_on_host(n, kernels::SymmetricCrossEntropyRows<T>{x.data(), d, d + n, n});
      kernels::run_items_on_host(chunks * n,
                                 kernels::SymmetricCrossEntropyColumnPartials<T>{
                                     x.data(), partial.data(), partial.data() + chunks * n, n, chunk_rows});
      kernels::run_items_on_host(n, kernels::SymmetricCrossEntropyColumnTotals<T>{
                                        x.data(), partial.data(), partial.data() + chunks * n, d, d + n,
                                        d + 2 * n, d + 3 * n, terms_gpu.data(), n, chunks});
      require_close(stats_gpu, stats_cpu, tolerance<T>());
      require_close(terms_gpu, terms_cpu, 10 * tolerance<T>());
    }
    const std::vector<T> g = {T(1.3)};
    const T g_scale = T(1) / static_cast<T>(2 * n);
    std::vector<T> dx_cpu(n * n), dx_gpu(n * n);
    ops::SymmetricCrossEntropyKernel<Cpu>::backward(x.data(), s, s + n, s + 2 * n, s + 3 * n, g.data(),
                                                    g_scale, dx_cpu.data(), n);
    kernels::run_items_on_host(
        n * n, kernels::SymmetricCrossEntropyBackward<T>{x.data(), s, s + n, s + 2 * n, s + 3 * n, g.data(),
                                                         g_scale, dx_gpu.data(), n});
    require_close(dx_gpu, dx_cpu, tolerance<T>());
  }
  // the planned split: 16-row chunks up to ~64k threads, one chunk for large N
  CHECK(kernels::symmetric_cross_entropy_chunks(256).chunks == 16);
  CHECK(kernels::symmetric_cross_entropy_chunks(4096).chunk_rows == 256);
  CHECK(kernels::symmetric_cross_entropy_chunks(17).chunks == 1);
  CHECK(kernels::symmetric_cross_entropy_chunks(100000).chunks == 1);
}

TEMPLATE_LIST_TEST_CASE("CUDA index functors match the Cpu kernels", "[cuda-host][index]", Types) {
  using T = TestType;
  const int64_t outer = 2, n = 5, inner = 3;
  const std::vector<int64_t> index = {4, 0, 4, 2, 4, 0};  // repeats, row 1 and 3 never picked
  const int64_t m = static_cast<int64_t>(index.size());
  const std::vector<T> x = random_values<T>(outer * n * inner, 51);
  std::vector<T> out_cpu(outer * m * inner), out_gpu(out_cpu.size());
  ops::IndexSelectKernel<Cpu>::gather(x.data(), index.data(), m, out_cpu.data(), outer, n, inner);
  kernels::run_items_on_host(outer * m * inner,
                             kernels::IndexGather<T>{x.data(), index.data(), out_gpu.data(), m, n, inner});
  require_close(out_gpu, out_cpu, 0);

  const std::vector<T> src = random_values<T>(outer * m * inner, 52);
  std::vector<T> dst_cpu = random_values<T>(outer * n * inner, 53), dst_gpu = dst_cpu;  // accumulates
  ops::IndexSelectKernel<Cpu>::scatter_add(index.data(), m, src.data(), dst_cpu.data(), outer, n, inner);
  const kernels::ScatterBuckets buckets = kernels::bucket_by_target(index, n);
  REQUIRE(buckets.targets == std::vector<int64_t>{0, 2, 4});
  const int64_t distinct = static_cast<int64_t>(buckets.targets.size());
  kernels::run_items_on_host(
      outer * distinct * inner,
      kernels::IndexScatterAddSorted<T>{buckets.targets.data(), buckets.first.data(), buckets.order.data(),
                                        src.data(), dst_gpu.data(), m, n, inner, distinct});
  require_close(dst_gpu, dst_cpu, 0);  // the same additions in the same order
  BINDERY_REQUIRE_THROWS_WITH_ALL(kernels::bucket_by_target({0, 5}, 5), IndexError, "index 5", "[0, 5)");

  const int64_t batch = 3, length = 4, dim = 2;
  const std::vector<int64_t> rows = {3, 0, 3};
  const std::vector<T> seq = random_values<T>(batch * length * dim, 54);
  std::vector<T> picked_cpu(batch * dim), picked_gpu(batch * dim);
  ops::GatherRowsKernel<Cpu>::forward(seq.data(), rows.data(), picked_cpu.data(), batch, length, dim);
  kernels::run_items_on_host(
      batch * dim, kernels::GatherRowsForward<T>{seq.data(), rows.data(), picked_gpu.data(), length, dim});
  require_close(picked_gpu, picked_cpu, 0);
  std::vector<T> dseq_cpu(seq.size(), T(0)), dseq_gpu(seq.size(), T(0));
  ops::GatherRowsKernel<Cpu>::backward(picked_cpu.data(), rows.data(), dseq_cpu.data(), batch, length, dim);
  kernels::run_items_on_host(batch * dim, kernels::GatherRowsBackward<T>{picked_cpu.data(), rows.data(),
                                                                         dseq_gpu.data(), length, dim});
  require_close(dseq_gpu, dseq_cpu, 0);
}

TEMPLATE_LIST_TEST_CASE("CUDA im2col / col2im functors match the Cpu kernel", "[cuda-host][conv]", Types) {
  using T = TestType;
  std::vector<ops::ConvGeometry> geometries;
  // conv2d with padding and unequal strides; overlapping windows (the audio stem's kind); conv3d
  geometries.push_back(ops::detail::make_conv_geometry<2>("conv2d", Shape{2, 3, 7, 6}, Shape{4, 3, 3, 2},
                                                          nullptr, std::array<int64_t, 2>{2, 1},
                                                          std::array<int64_t, 2>{1, 0}));
  geometries.push_back(ops::detail::make_conv_geometry<2>("conv2d", Shape{1, 1, 12, 11}, Shape{2, 1, 4, 4},
                                                          nullptr, std::array<int64_t, 2>{2, 3},
                                                          std::array<int64_t, 2>{0, 1}));
  geometries.push_back(
      ops::detail::make_conv_geometry<3>("conv3d", Shape{2, 2, 4, 5, 5}, Shape{3, 2, 2, 3, 3}, nullptr,
                                         std::array<int64_t, 3>{1, 2, 2}, std::array<int64_t, 3>{0, 1, 1}));
  for (const ops::ConvGeometry& g : geometries) {
    INFO("in " << g.in[0] << "x" << g.in[1] << "x" << g.in[2] << " kernel " << g.kernel[0] << "x"
               << g.kernel[1] << "x" << g.kernel[2]);
    const int64_t inputs = g.batch * g.channels * g.in_volume();
    const int64_t cols_size = g.batch * g.out_volume() * g.col_width();
    const std::vector<T> x = random_values<T>(inputs, 61), dcols = random_values<T>(cols_size, 62);
    std::vector<T> cols_cpu(cols_size), cols_gpu(cols_size), dx_cpu(inputs), dx_gpu(inputs);
    ops::Im2ColKernel<Cpu>::im2col(x.data(), g, cols_cpu.data());
    kernels::run_items_on_host(cols_size, kernels::Im2Col<T>{x.data(), cols_gpu.data(), g});
    require_close(cols_gpu, cols_cpu, 0);
    ops::Im2ColKernel<Cpu>::col2im(dcols.data(), g, dx_cpu.data());
    kernels::run_items_on_host(inputs, kernels::Col2Im<T>{dcols.data(), dx_gpu.data(), g});
    require_close(dx_gpu, dx_cpu, 0);  // same terms, same order
  }
}

TEMPLATE_LIST_TEST_CASE("CUDA attention functors match the Cpu kernel", "[cuda-host][attention]", Types) {
  using T = TestType;
  using Tn = Tensor<T>;
  const T inf = std::numeric_limits<T>::infinity();
  Philox rng(71);
  struct Case {
    const char* name;
    Tn q, k, v, mask;
  };
  std::vector<Case> cases;
  cases.push_back({"plain", Tn::uniform({2, 3, 5, 4}, rng, -1, 1), Tn::uniform({2, 3, 7, 4}, rng, -1, 1),
                   Tn::uniform({2, 3, 7, 6}, rng, -1, 1), Tn()});
  {  // additive (Lq, Lk) mask with -inf entries and one fully masked query row
    Tn mask = Tn::uniform({5, 7}, rng, -1, 1);
    std::vector<T> m = mask.to_vector();
    m[2] = -inf;
    m[10] = -inf;
    for (int j = 0; j < 7; ++j) m[static_cast<size_t>(3 * 7 + j)] = -inf;  // row 3: attends to nothing
    cases.push_back({"masked", Tn::uniform({2, 5, 4}, rng, -1, 1), Tn::uniform({2, 7, 4}, rng, -1, 1),
                     Tn::uniform({2, 7, 3}, rng, -1, 1), Tn::from_vector(m, {5, 7})});
  }
  {  // key padding (B, 1, 1, Lk) and broadcast batch axes
    std::vector<T> pad(2 * 40, T(0));
    for (int j = 33; j < 40; ++j) pad[static_cast<size_t>(40 + j)] = -inf;
    cases.push_back({"padding", Tn::uniform({2, 1, 37, 8}, rng, -1, 1),
                     Tn::uniform({1, 3, 40, 8}, rng, -1, 1), Tn::uniform({2, 3, 40, 5}, rng, -1, 1),
                     Tn::from_vector(pad, {2, 1, 1, 40})});
  }
  {  // a q with padded rows (a slice: read in place, row stride 10), a mask broadcast along the keys
    cases.push_back({"strided", Tn::uniform({3, 9, 10}, rng, -1, 1).slice(2, 2, 8),
                     Tn::uniform({3, 33, 6}, rng, -1, 1), Tn::uniform({3, 33, 6}, rng, -1, 1),
                     Tn::uniform({9, 1}, rng, -1, 1)});
  }
  for (const Case& c : cases) {
    INFO("case " << c.name);
    const auto plan = ops::detail::plan_attention(c.q, c.k, c.v, c.mask, 0.0);
    const ops::AttentionArgs<T>& a = plan.args;
    std::vector<T> out_cpu(a.batch * a.lq * a.dv), out_gpu(out_cpu.size()), lse_cpu(a.batch * a.lq),
        lse_gpu(lse_cpu.size());
    ops::AttentionKernel<Cpu>::forward(a, out_cpu.data(), lse_cpu.data());
    kernels::run_items_on_host(a.batch * a.lq,
                               kernels::AttentionForwardRows<T>{a, out_gpu.data(), lse_gpu.data()});
    require_close(out_gpu, out_cpu, 10 * tolerance<T>());
    require_close(lse_gpu, lse_cpu, 10 * tolerance<T>());

    const std::vector<T> dout = random_values<T>(a.batch * a.lq * a.dv, 72);
    std::vector<T> dq_cpu(a.batch * a.lq * a.d), dk_cpu(a.batch * a.lk * a.d), dv_cpu(a.batch * a.lk * a.dv),
        dm_cpu(a.batch * a.lq * a.lk);
    std::vector<T> dq_gpu(dq_cpu.size()), dk_gpu(dk_cpu.size()), dv_gpu(dv_cpu.size()), dm_gpu(dm_cpu.size()),
        row_dot(a.batch * a.lq);
    ops::AttentionKernel<Cpu>::backward(a, out_cpu.data(), lse_cpu.data(), dout.data(), dq_cpu.data(),
                                        dk_cpu.data(), dv_cpu.data(), dm_cpu.data());
    kernels::run_items_on_host(
        a.batch * a.lq, kernels::AttentionBackwardQueryRows<T>{a, out_cpu.data(), lse_cpu.data(), dout.data(),
                                                               row_dot.data(), dq_gpu.data(), dm_gpu.data()});
    kernels::run_items_on_host(
        a.batch * a.lk, kernels::AttentionBackwardKeyRows<T>{a, lse_cpu.data(), dout.data(), row_dot.data(),
                                                             dk_gpu.data(), dv_gpu.data()});
    require_close(dq_gpu, dq_cpu, 10 * tolerance<T>());
    require_close(dk_gpu, dk_cpu, 10 * tolerance<T>());
    require_close(dv_gpu, dv_cpu, 10 * tolerance<T>());
    require_close(dm_gpu, dm_cpu, 10 * tolerance<T>());
  }
}

// ---- the tiled attention kernels, every block emulated on the host ----------------------------------

namespace {

/// Two phases that a barrier must separate: thread t writes s[t], then reads s[t + 1]. With
/// `barrier` false the phases are not separated by a sync; with `same_phase` the write and the read
/// share one phase (a race that the thread order exposes); `overrun` writes one element too far.
struct BlockProbe {
  static constexpr int kThreads = 4;
  struct Registers {
    float x;
  };
  float* out;
  bool barrier = true, same_phase = false, overrun = false;
  template <class Block>
  BINDERY_HOST_DEVICE void operator()(Block& block, int64_t) const {
    float* s = static_cast<float*>(block.shared());
    const bool shift = overrun;
    if (same_phase) {
      block.each([=, this](int t, Registers&) {
        s[t] = static_cast<float>(t);
        out[t] = s[(t + 1) % kThreads];
      });
      block.sync();
      return;
    }
    block.each([=](int t, Registers& r) {
      s[t + (shift ? 1 : 0)] = static_cast<float>(t);
      r.x = static_cast<float>(10 * t);
    });
    if (barrier) block.sync();
    block.each([=, this](int t, Registers& r) { out[t] = s[(t + 1) % kThreads] + r.x; });
    block.sync();
  }
};

template <class T>
struct AttentionCase {
  std::string name;
  Tensor<T> q, k, v, mask;
  double scale = 0.0;
};

/// Cases for the tiled kernels: lengths around and between the tile sizes (32, 64), head dims
/// that are multiples of nothing, both head bounds and the fallback, every mask layout.
template <class T>
std::vector<AttentionCase<T>> tiled_attention_cases() {
  using Tn = Tensor<T>;
  const T inf = std::numeric_limits<T>::infinity();
  Philox rng(91);
  std::vector<AttentionCase<T>> cases;
  cases.push_back({"plain, Lq < Lk", Tn::uniform({2, 3, 5, 4}, rng, -1, 1),
                   Tn::uniform({2, 3, 7, 4}, rng, -1, 1), Tn::uniform({2, 3, 7, 6}, rng, -1, 1), Tn()});
  {  // (Lq, Lk) mask: scattered -inf, a fully masked row, a row whose first 40 keys (a whole key
     // tile and more) are masked, large logits (the online softmax rescales), broadcast batches
    const int64_t lq = 67, lk = 45;
    std::vector<T> m = Tn::uniform({lq, lk}, rng, -2, 2).to_vector();
    for (size_t e = 0; e < m.size(); e += 7) m[e] = -inf;
    for (int64_t j = 0; j < lk; ++j) m[static_cast<size_t>(3 * lk + j)] = -inf;
    for (int64_t j = 0; j < 40; ++j) m[static_cast<size_t>(64 * lk + j)] = -inf;
    cases.push_back({"odd sizes, (Lq, Lk) mask", Tn::uniform({2, 1, lq, 37}, rng, -3, 3),
                     Tn::uniform({1, 3, lk, 37}, rng, -3, 3), Tn::uniform({2, 3, lk, 53}, rng, -1, 1),
                     Tn::from_vector(m, {lq, lk}), 0.3});
  }
  {  // key padding (B, 1, 1, Lk): batch item 1 keeps only its first 30 keys
    std::vector<T> pad(2 * 40, T(0));
    for (int j = 30; j < 40; ++j) pad[static_cast<size_t>(40 + j)] = -inf;
    cases.push_back({"key padding, broadcast batches", Tn::uniform({2, 1, 37, 8}, rng, -1, 1),
                     Tn::uniform({1, 3, 40, 8}, rng, -1, 1), Tn::uniform({2, 3, 40, 5}, rng, -1, 1),
                     Tn::from_vector(pad, {2, 1, 1, 40})});
  }
  cases.push_back({"strided q, mask broadcast along the keys",
                   Tn::uniform({3, 9, 10}, rng, -1, 1).slice(2, 2, 8), Tn::uniform({3, 33, 6}, rng, -1, 1),
                   Tn::uniform({3, 33, 6}, rng, -1, 1), Tn::uniform({9, 1}, rng, -1, 1)});
  cases.push_back({"long: Lq 70, Lk 90", Tn::uniform({2, 4, 70, 16}, rng, -1, 1),
                   Tn::uniform({2, 4, 90, 16}, rng, -1, 1), Tn::uniform({2, 4, 90, 8}, rng, -1, 1), Tn()});
  {  // mask broadcast along the queries (1, Lk): keys 32..63 (the second key tile) masked out
    std::vector<T> m = Tn::uniform({1, 100}, rng, -1, 1).to_vector();
    for (int j = 32; j < 64; ++j) m[static_cast<size_t>(j)] = -inf;
    cases.push_back({"head 128: D 100, Dv 128, a masked key tile", Tn::uniform({2, 33, 100}, rng, -1, 1),
                     Tn::uniform({2, 100, 100}, rng, -1, 1), Tn::uniform({2, 100, 128}, rng, -1, 1),
                     Tn::from_vector(m, {1, 100})});
  }
  cases.push_back({"exact tiles: D = Dv = 64, Lq = Lk = 64", Tn::uniform({2, 64, 64}, rng, -1, 1),
                   Tn::uniform({2, 64, 64}, rng, -1, 1), Tn::uniform({2, 64, 64}, rng, -1, 1), Tn()});
  cases.push_back({"D 65, Dv 3, Lq 129, Lk 1", Tn::uniform({129, 65}, rng, -1, 1),
                   Tn::uniform({1, 65}, rng, -1, 1), Tn::uniform({1, 3}, rng, -1, 1), Tn()});
  cases.push_back({"many keys: Lq 3, Lk 200", Tn::uniform({2, 3, 24}, rng, -2, 2),
                   Tn::uniform({2, 200, 24}, rng, -2, 2), Tn::uniform({2, 200, 20}, rng, -1, 1),
                   Tn::uniform({2, 3, 200}, rng, -3, 3)});
  cases.push_back({"one of everything", Tn::uniform({1, 1}, rng, -1, 1), Tn::uniform({1, 1}, rng, -1, 1),
                   Tn::uniform({1, 1}, rng, -1, 1), Tn()});
  {  // q, k and v as views of one fused qkv projection (read in place)
    const Tn qkv = Tn::uniform({2, 33, 48}, rng, -1, 1).reshape({2, 33, 3, 2, 8}).permute({2, 0, 3, 1, 4});
    cases.push_back({"qkv views", qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2), Tn()});
  }
  cases.push_back({"fallback: D 130", Tn::uniform({2, 9, 130}, rng, -1, 1),
                   Tn::uniform({2, 11, 130}, rng, -1, 1), Tn::uniform({2, 11, 7}, rng, -1, 1), Tn()});
  return cases;
}

template <class T>
std::vector<T> nan_vector(int64_t n) {
  return std::vector<T>(static_cast<size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

}  // namespace

TEST_CASE("CUDA block emulator: barriers, same-phase races, shared memory overruns", "[cuda-host][blocks]") {
  std::vector<float> out(4), again(4);
  const size_t bytes = 4 * sizeof(float);
  BlockProbe probe{out.data()};
  const kernels::HostBlockReport report = kernels::run_blocks_on_host(2, bytes, probe);
  CHECK(report.blocks == 2);
  CHECK(report.phases == 4);
  require_close(out, std::vector<float>{1, 12, 23, 30}, 0);
  kernels::run_blocks_on_host(1, bytes, BlockProbe{again.data()}, true);  // thread order is irrelevant
  require_close(again, out, 0);

  BlockProbe no_barrier{out.data()};
  no_barrier.barrier = false;
  REQUIRE_THROWS_AS(kernels::run_blocks_on_host(1, bytes, no_barrier), std::logic_error);
  BlockProbe overrun{out.data()};
  overrun.overrun = true;
  REQUIRE_THROWS_AS(kernels::run_blocks_on_host(1, bytes, overrun), std::logic_error);

  // A same-phase race: thread order changes the result, and unwritten shared memory reads as NaN.
  BlockProbe race{out.data()};
  race.same_phase = true;
  kernels::run_blocks_on_host(1, bytes, race);
  BlockProbe reversed_race{again.data()};
  reversed_race.same_phase = true;
  kernels::run_blocks_on_host(1, bytes, reversed_race, true);
  CHECK(std::isnan(out[0]));
  CHECK(again[0] == 1.0f);
}

TEST_CASE("CUDA tiled attention: tile sizes and shared memory", "[cuda-host][attention]") {
  using F32 = kernels::AttentionForwardTiles<float, 128>;
  using F64 = kernels::AttentionForwardTiles<double, 128>;
  CHECK(F32::kBr == 64);
  CHECK(F32::kBc == 32);
  CHECK(F64::kBr == 32);
  CHECK(kernels::AttentionBackwardQueryTiles<float, 64>::kBr == 32);
  CHECK(kernels::AttentionBackwardKeyTiles<float, 64>::kBc == 32);
  CHECK(kernels::attention_head_bound(64, 1) == 64);
  CHECK(kernels::attention_head_bound(3, 65) == 128);
  CHECK(kernels::attention_head_bound(128, 128) == 128);
  CHECK(kernels::attention_head_bound(129, 8) == 0);
  // The numbers quoted in kernels/attention.cuh's file comment.
  CHECK(kernels::AttentionForwardTiles<float, 64>::shared_bytes(64, 64) == 47872);
  CHECK(F32::shared_bytes(128, 128) == 80640);
  CHECK(kernels::AttentionForwardTiles<double, 64>::shared_bytes(64, 64) == 65536);
  CHECK(F64::shared_bytes(128, 128) == 114688);
  CHECK(kernels::AttentionBackwardQueryTiles<float, 64>::shared_bytes(64, 64) == 37760);
  CHECK(kernels::AttentionBackwardQueryTiles<float, 128>::shared_bytes(128, 128) == 70528);
  CHECK(kernels::AttentionBackwardKeyTiles<float, 64>::shared_bytes(64, 64) == 41984);
  CHECK(kernels::AttentionBackwardKeyTiles<float, 128>::shared_bytes(128, 128) == 74752);
  CHECK(kernels::AttentionBackwardKeyTiles<double, 128>::shared_bytes(128, 128) == 2 * 74752);
}

TEMPLATE_LIST_TEST_CASE("CUDA tiled attention forward matches the Cpu kernel (host-emulated blocks)",
                        "[cuda-host][attention]", Types) {
  using T = TestType;
  for (const AttentionCase<T>& c : tiled_attention_cases<T>()) {
    INFO("case " << c.name);
    const auto plan = ops::detail::plan_attention(c.q, c.k, c.v, c.mask, c.scale);
    const ops::AttentionArgs<T>& a = plan.args;
    const int64_t rows = a.batch * a.lq;
    std::vector<T> out_cpu(rows * a.dv), lse_cpu(rows);
    ops::AttentionKernel<Cpu>::forward(a, out_cpu.data(), lse_cpu.data());

    std::vector<T> out = nan_vector<T>(rows * a.dv), lse = nan_vector<T>(rows);
    kernels::HostLaunch launch;
    kernels::attention_forward(launch, a, out.data(), lse.data());
    require_close(out, out_cpu, 10 * tolerance<T>());
    require_close(lse, lse_cpu, 10 * tolerance<T>());
    const int head = kernels::attention_head_bound(a.d, a.dv);
    if (head == 0) {
      CHECK(launch.block_launches == 0);
      CHECK(launch.item_launches == 1);
    } else {
      CHECK(launch.block_launches == 1);
      CHECK(launch.item_launches == 0);
      const int64_t br = head == 64 ? kernels::AttentionForwardTiles<T, 64>::kBr
                                    : kernels::AttentionForwardTiles<T, 128>::kBr;
      const int64_t blocks = a.batch * ((a.lq + br - 1) / br), key_tiles = (a.lk + 31) / 32;
      CHECK(launch.blocks_run.blocks == blocks);
      CHECK(launch.blocks_run.phases == blocks * (2 + 3 * key_tiles));
    }

    // Threads in reverse order within every phase: bit-identical (no same-phase races).
    std::vector<T> out_reversed = nan_vector<T>(rows * a.dv), lse_reversed = nan_vector<T>(rows);
    kernels::HostLaunch reversed;
    reversed.reverse_threads = true;
    kernels::attention_forward(reversed, a, out_reversed.data(), lse_reversed.data());
    require_close(out_reversed, out, 0);
    require_close(lse_reversed, lse, 0);

    // A device without the shared memory: the thread-per-row kernel.
    std::vector<T> out_rows = nan_vector<T>(rows * a.dv), lse_rows = nan_vector<T>(rows);
    kernels::HostLaunch small;
    small.shared_bytes = 0;
    kernels::attention_forward(small, a, out_rows.data(), lse_rows.data());
    CHECK(small.block_launches == 0);
    require_close(out_rows, out_cpu, 10 * tolerance<T>());
    require_close(lse_rows, lse_cpu, 10 * tolerance<T>());
  }
}

TEMPLATE_LIST_TEST_CASE("CUDA tiled attention backward matches the Cpu kernel (host-emulated blocks)",
                        "[cuda-host][attention]", Types) {
  using T = TestType;
  uint64_t seed = 300;
  for (const AttentionCase<T>& c : tiled_attention_cases<T>()) {
    INFO("case " << c.name);
    const auto plan = ops::detail::plan_attention(c.q, c.k, c.v, c.mask, c.scale);
    const ops::AttentionArgs<T>& a = plan.args;
    const int64_t rows = a.batch * a.lq;
    std::vector<T> out(rows * a.dv), lse(rows);
    ops::AttentionKernel<Cpu>::forward(a, out.data(), lse.data());
    const std::vector<T> dout = random_values<T>(rows * a.dv, ++seed);
    const int64_t nq = rows * a.d, nk = a.batch * a.lk * a.d, nv = a.batch * a.lk * a.dv, nm = rows * a.lk;
    std::vector<T> dq_cpu(nq), dk_cpu(nk), dv_cpu(nv), dm_cpu(nm);
    ops::AttentionKernel<Cpu>::backward(a, out.data(), lse.data(), dout.data(), dq_cpu.data(), dk_cpu.data(),
                                        dv_cpu.data(), dm_cpu.data());
    struct Grads {
      std::vector<T> dq, dk, dv, dm;
    };
    // Runs the schedule for the wanted gradients (the others null); unwanted ones stay NaN.
    auto run = [&](kernels::HostLaunch& launch, bool q, bool k, bool v, bool m) {
      Grads g{nan_vector<T>(nq), nan_vector<T>(nk), nan_vector<T>(nv), nan_vector<T>(nm)};
      kernels::attention_backward(launch, a, out.data(), lse.data(), dout.data(), q ? g.dq.data() : nullptr,
                                  k ? g.dk.data() : nullptr, v ? g.dv.data() : nullptr,
                                  m ? g.dm.data() : nullptr);
      return g;
    };
    kernels::HostLaunch launch;
    const Grads all = run(launch, true, true, true, true);
    const double tol = 10 * tolerance<T>();
    require_close(all.dq, dq_cpu, tol);
    require_close(all.dk, dk_cpu, tol);
    require_close(all.dv, dv_cpu, tol);
    require_close(all.dm, dm_cpu, tol);
    const bool tiled = kernels::attention_head_bound(a.d, a.dv) != 0;
    CHECK(launch.block_launches == (tiled ? 2 : 0));
    CHECK(launch.row_launches == (tiled ? 1 : 0));

    kernels::HostLaunch reversed;
    reversed.reverse_threads = true;
    const Grads again = run(reversed, true, true, true, true);
    require_close(again.dq, all.dq, 0);
    require_close(again.dk, all.dk, 0);
    require_close(again.dv, all.dv, 0);
    require_close(again.dm, all.dm, 0);

    // Subsets of the gradients: the same values, nothing else written.
    const std::vector<T> untouched_q = nan_vector<T>(nq), untouched_k = nan_vector<T>(nk),
                         untouched_v = nan_vector<T>(nv), untouched_m = nan_vector<T>(nm);
    kernels::HostLaunch l1, l2, l3;
    const Grads only_q = run(l1, true, false, false, false);
    require_close(only_q.dq, all.dq, 0);
    require_close(only_q.dk, untouched_k, 0);
    require_close(only_q.dv, untouched_v, 0);
    require_close(only_q.dm, untouched_m, 0);
    const Grads only_kv = run(l2, false, true, true, false);
    require_close(only_kv.dk, all.dk, 0);
    require_close(only_kv.dv, all.dv, 0);
    require_close(only_kv.dq, untouched_q, 0);
    require_close(only_kv.dm, untouched_m, 0);
    const Grads only_mv = run(l3, false, false, true, true);
    require_close(only_mv.dm, all.dm, 0);
    require_close(only_mv.dv, all.dv, 0);
    require_close(only_mv.dq, untouched_q, 0);
    require_close(only_mv.dk, untouched_k, 0);
    if (tiled) {
      CHECK(l1.block_launches == 1);
      CHECK(l2.block_launches == 1);
      CHECK(l3.block_launches == 2);
    }

    kernels::HostLaunch small;
    small.shared_bytes = 0;
    const Grads rows_path = run(small, true, true, true, true);
    CHECK(small.block_launches == 0);
    require_close(rows_path.dq, dq_cpu, tol);
    require_close(rows_path.dk, dk_cpu, tol);
    require_close(rows_path.dv, dv_cpu, tol);
    require_close(rows_path.dm, dm_cpu, tol);
  }
}
