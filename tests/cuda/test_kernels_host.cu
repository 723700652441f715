// tests/cuda/test_kernels_host.cu — the CUDA kernels' arithmetic, checked on the HOST (no GPU needed).
//
// Every CUDA kernel in kernels/*.cuh is a BINDERY_HOST_DEVICE functor launched one thread per item
// (Cuda::for_each) or one warp per row (launch_rows, written against a Lanes policy). Here the very
// same functors run serially on the host — run_items_on_host, and run_rows_on_host with SerialLanes
// (one lane; warp reductions become the identity) — on host memory, and are compared with the Cpu
// kernels of ops/*.hpp on random inputs, edge cases included (-inf logits, fully masked attention
// rows, overlapping convolution windows, repeated indices, broadcast batches). What this cannot
// check: the warp shuffles and the launches themselves; test_cuda covers those on a GPU.
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
