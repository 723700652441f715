// tests/cuda/test_dist_nccl.cu — NcclProcessGroup (bindery/dist/nccl.hpp) on GPUs, one per rank.
//
// Run under mpirun with any number of ranks (scripts/gpu-check.sh: -np 1, and -np 2 on a machine with
// two GPUs), or alone (CTest: one process, an MPI singleton). Every rank runs the same cases in the
// same order; checks are CHECKs where a failed one must not skip the collectives that follow (a
// rank that stopped early would leave the others waiting until the deadline).
// - all_reduce: sum and average of float32 and float64 against an fp64 sum on the host, and the
//   result's bytes identical on every rank; max/min of int32, sum of int64, bfloat16, float16.
// - all_gather with equal counts (ncclAllGather) and unequal ones (one ncclBroadcast per rank);
//   reduce_scatter; broadcast from the last rank (float32 and uint8); barrier.
// - send/recv around the ring, 4 MiB each way (more than NCCL's buffer: only fused sends and
//   receives complete); with one rank, send to itself is refused.
// - The deadline: a collective queued behind a 2 s kernel on bindery's stream, on a group with a
//   300 ms timeout, throws DistError naming the rank, the operation and the reason; the group is
//   then failed (every call throws at once), the device and the main group still work.
// - DataParallel<float, Cuda> over a Linear layer: one backward + finish() leaves every gradient
//   equal to the mean over the ranks of each rank's own gradient (computed on the host).
// Tag [nccl]; main (cuda_main.cpp) exits 77 (CTest: SKIPPED) where no GPU is usable.
#define CATCH_CONFIG_EXTERNAL_INTERFACES  // Catch::TestEventListenerBase, for ReleaseGroups
#include "test_util.hpp"

#include <bindery/dist/data_parallel.hpp>
#include <bindery/dist/nccl.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace bindery;
using Catch::Matchers::Contains;

namespace bindery::testing {
bool cuda_tests_need_device() {
  return true;
}
bool cuda_device_available() {
  return Cuda::is_available();
}
}  // namespace bindery::testing

namespace {

/// This process's groups: made by the first case that needs them, released after the last case
/// (ReleaseGroups), while CUDA and MPI are still up.
struct Groups {
  std::shared_ptr<dist::MpiProcessGroup> mpi;
  std::shared_ptr<dist::NcclProcessGroup> nccl;
};
Groups& groups() {
  static Groups g;
  return g;
}
dist::MpiProcessGroup& mpi() {
  if (!groups().mpi) groups().mpi = std::make_shared<dist::MpiProcessGroup>();
  return *groups().mpi;
}
/// The NCCL group; every case calls it before its first Cuda tensor (it picks the device).
std::shared_ptr<dist::NcclProcessGroup> nccl() {
  if (!groups().nccl) groups().nccl = std::make_shared<dist::NcclProcessGroup>(mpi());
  return groups().nccl;
}

struct ReleaseGroups : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunEnded(const Catch::TestRunStats&) override {
    groups().nccl.reset();  // ncclCommFinalize + ncclCommDestroy
    groups().mpi.reset();   // MPI_Finalize
  }
};

/// Rank r's input: n values in [-1, 1) from Philox(salt, r); every rank can compute every rank's.
std::vector<double> input_of(int r, int64_t n, uint64_t salt) {
  Philox rng(salt * 1000 + static_cast<uint64_t>(r));
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = rng.next_uniform() * 2.0 - 1.0;
  return v;
}
template <class T>
std::vector<T> converted(const std::vector<double>& v) {
  std::vector<T> out;
  for (double x : v) out.push_back(static_cast<T>(x));
  return out;
}

/// True when `values` has the same bytes on every rank (an FNV-1a digest, gathered over MPI).
template <class T>
bool same_bytes_on_every_rank(dist::ProcessGroup& pg, const std::vector<T>& values) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size() * sizeof(T); ++i) h = (h ^ p[i]) * 1099511628211ull;
  int64_t digest = 0;
  std::memcpy(&digest, &h, sizeof(h));
  const auto all = pg.all_gather_values(std::vector<int64_t>{digest});
  for (const auto& d : all)
    if (d != all[0]) return false;
  return true;
}

/// all_reduce sum and average of T against an fp64 reference: within a few ulps per rank of the
/// magnitudes summed, and the same bytes on every rank.
template <class T>
void check_sum_and_average(dist::NcclProcessGroup& pg, double ulp) {
  const int64_t n = 1001;  // odd: not a multiple of NCCL's chunking
  const int size = pg.size();
  std::vector<double> sum(static_cast<size_t>(n), 0.0), magnitude(static_cast<size_t>(n), 0.0);
  for (int r = 0; r < size; ++r) {
    const std::vector<T> x = converted<T>(input_of(r, n, 1));
    for (size_t i = 0; i < x.size(); ++i) {
      sum[i] += static_cast<double>(x[i]);
      magnitude[i] += std::fabs(static_cast<double>(x[i]));
    }
  }
  for (const dist::ReduceOp op : {dist::ReduceOp::kSum, dist::ReduceOp::kAverage}) {
    INFO(dist::dtype_name(dist::dtype_of<T>())
         << " " << dist::reduce_op_name(op) << " over " << size << " ranks");
    Tensor<T, Cuda> t = Tensor<T, Cuda>::from_vector(converted<T>(input_of(pg.rank(), n, 1)), {n});
    pg.all_reduce(t, op).wait();
    const std::vector<T> got = t.to_vector();
    const double scale = op == dist::ReduceOp::kAverage ? 1.0 / size : 1.0;
    double worst = 0.0;  // in units of the bound
    for (size_t i = 0; i < got.size(); ++i) {
      const double bound = 4.0 * (size + 1) * ulp * magnitude[i] * scale + 1e-300;
      worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - sum[i] * scale) / bound);
    }
    CHECK(worst <= 1.0);
    CHECK(same_bytes_on_every_rank(pg, got));
  }
}

/// Spins on the device for `ns` nanoseconds (the global timer), then returns.
__global__ void spin_kernel(unsigned long long ns) {
  unsigned long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(100000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

}  // namespace

// At namespace scope: the macro opens an unnamed namespace, and one nested in the unnamed namespace
// above confuses nvcc's registration stub of spin_kernel ("reference ... is ambiguous").
CATCH_REGISTER_LISTENER(ReleaseGroups)

TEST_CASE("NcclProcessGroup all_reduce sum and average match fp64 with the same bits on every rank",
          "[nccl]") {
  auto pg = nccl();
  CHECK(pg->engine() == std::string("nccl"));
  CHECK(pg->device() == Cuda::device());
  check_sum_and_average<float>(*pg, std::ldexp(1.0, -24));
  check_sum_and_average<double>(*pg, std::ldexp(1.0, -53));

  const int size = pg->size(), rank = pg->rank();
  const int64_t n = 37;
  auto ints = [&](int r) {
    std::vector<int32_t> v;
    for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<int32_t>((i * 7 + r * 13) % 29 - 14));
    return v;
  };
  for (const dist::ReduceOp op : {dist::ReduceOp::kMax, dist::ReduceOp::kMin}) {
    Tensor<int32_t, Cuda> t = Tensor<int32_t, Cuda>::from_vector(ints(rank), {n});
    pg->all_reduce(t, op).wait();
    std::vector<int32_t> expected = ints(0);
    for (int r = 1; r < size; ++r)
      for (int64_t i = 0; i < n; ++i) {
        const int32_t v = ints(r)[static_cast<size_t>(i)];
        int32_t& e = expected[static_cast<size_t>(i)];
        e = op == dist::ReduceOp::kMax ? std::max(e, v) : std::min(e, v);
      }
    CHECK(t.to_vector() == expected);
  }
  // int64 beyond 2^32, and 16-bit floats on small integers (exact sums).
  Tensor<int64_t, Cuda> big = Tensor<int64_t, Cuda>::full({5}, (int64_t{1} << 40) + rank);
  pg->all_reduce(big).wait();
  CHECK(big.to_vector() ==
        std::vector<int64_t>(5, (int64_t{1} << 40) * size + int64_t{size} * (size - 1) / 2));
  Tensor<bfloat16, Cuda> b = Tensor<bfloat16, Cuda>::full({9}, bfloat16(1.0f + static_cast<float>(rank)));
  Tensor<float16, Cuda> h = Tensor<float16, Cuda>::full({9}, float16(2.0f * static_cast<float>(rank + 1)));
  pg->all_reduce(b).wait();
  pg->all_reduce(h, dist::ReduceOp::kMax).wait();
  for (bfloat16 v : b.to_vector()) CHECK(static_cast<float>(v) == static_cast<float>(size * (size + 1) / 2));
  for (float16 v : h.to_vector()) CHECK(static_cast<float>(v) == 2.0f * static_cast<float>(size));
  // Average of integers is refused, as by the MPI engine.
  CHECK_THROWS_WITH(pg->all_reduce(big, dist::ReduceOp::kAverage), Contains("average of int64"));
}

TEST_CASE("NcclProcessGroup all_gather with equal counts and with unequal row counts in rank order",
          "[nccl]") {
  auto pg = nccl();
  const int size = pg->size(), rank = pg->rank();
  auto block = [](int r, int64_t rows) {
    std::vector<float> v;
    for (int64_t i = 0; i < rows * 3; ++i) v.push_back(static_cast<float>(r * 100 + i));
    return v;
  };
  // Equal counts through the raw call, so that one rank runs NCCL too (the Tensor method copies).
  const Tensor<float, Cuda> two = Tensor<float, Cuda>::from_vector(block(rank, 2), {2, 3});
  Tensor<float, Cuda> out = Tensor<float, Cuda>::empty({2 * size, 3});
  pg->all_gather_raw(two.data(), out.data(), std::vector<int64_t>(static_cast<size_t>(size), 6),
                     dist::DType::kFloat32, dist::Memory::kDevice)
      .wait();
  std::vector<float> expected;
  for (int r = 0; r < size; ++r) {
    const std::vector<float> b = block(r, 2);
    expected.insert(expected.end(), b.begin(), b.end());
  }
  CHECK(out.to_vector() == expected);

  // Unequal: rank r holds r + 1 rows (the row counts travel over MPI, the rows over NCCL).
  const Tensor<float, Cuda> mine = Tensor<float, Cuda>::from_vector(block(rank, rank + 1), {rank + 1, 3});
  const Tensor<float, Cuda> all = pg->all_gather(mine);
  expected.clear();
  for (int r = 0; r < size; ++r) {
    const std::vector<float> b = block(r, r + 1);
    expected.insert(expected.end(), b.begin(), b.end());
  }
  const Shape gathered{int64_t{size} * (size + 1) / 2, 3};
  CHECK(all.shape() == gathered);
  CHECK(all.to_vector() == expected);
}

TEST_CASE("NcclProcessGroup reduce_scatter and broadcast and barrier", "[nccl]") {
  auto pg = nccl();
  const int size = pg->size(), rank = pg->rank();
  // Block b of rank r holds r * 10 + b + i / 8 (exact in float): rank b receives the sum of block b.
  auto blocks = [&](int r) {
    std::vector<float> v;
    for (int b = 0; b < size; ++b)
      for (int i = 0; i < 6; ++i) v.push_back(static_cast<float>(r * 10 + b) + static_cast<float>(i) / 8.0f);
    return v;
  };
  const Tensor<float, Cuda> in = Tensor<float, Cuda>::from_vector(blocks(rank), {2 * size, 3});
  Tensor<float, Cuda> out = Tensor<float, Cuda>::empty({2, 3});
  pg->reduce_scatter_raw(in.data(), out.data(), 6, dist::DType::kFloat32, dist::ReduceOp::kSum,
                         dist::Memory::kDevice)
      .wait();
  std::vector<float> expected(6, 0.0f);
  for (int r = 0; r < size; ++r)
    for (int i = 0; i < 6; ++i)
      expected[static_cast<size_t>(i)] += blocks(r)[static_cast<size_t>(rank * 6 + i)];
  CHECK(out.to_vector() == expected);

  const int root = size - 1;
  const std::vector<float> values = converted<float>(input_of(root, 513, 2));
  Tensor<float, Cuda> f =
      rank == root ? Tensor<float, Cuda>::from_vector(values, {513}) : Tensor<float, Cuda>::zeros({513});
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 300; ++i) bytes.push_back(static_cast<uint8_t>(i * 7));
  Tensor<uint8_t, Cuda> u =
      rank == root ? Tensor<uint8_t, Cuda>::from_vector(bytes, {300}) : Tensor<uint8_t, Cuda>::zeros({300});
  dist::Work wf = pg->broadcast(f, root);
  dist::Work wu = pg->broadcast(u, root);
  wu.wait();
  wf.wait();
  CHECK(f.to_vector() == values);
  CHECK(u.to_vector() == bytes);
  pg->barrier().wait();
}

TEST_CASE("NcclProcessGroup send and recv around the ring complete in both directions", "[nccl]") {
  auto pg = nccl();
  const int size = pg->size(), rank = pg->rank();
  const int64_t n = int64_t{1} << 20;  // 4 MiB: more than NCCL's buffer, the receive must run
  auto payload = [&](int r) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(r * 1000 + i % 997);
    return v;
  };
  const Tensor<float, Cuda> x = Tensor<float, Cuda>::from_vector(payload(rank), {n});
  if (size == 1) {
    CHECK_THROWS_WITH(pg->send(x, 0), Contains("is not another rank of the group"));
    return;
  }
  Tensor<float, Cuda> y = Tensor<float, Cuda>::zeros({n});
  const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  // Every rank sends first, then receives: deadlocks unless the two are launched together.
  dist::Work s = pg->send(x, next);
  dist::Work r = pg->recv(y, prev);
  s.wait();
  r.wait();
  CHECK(y.to_vector() == payload(prev));
}

TEST_CASE("NcclProcessGroup past its deadline throws DistError naming rank and operation then stays failed",
          "[nccl]") {
  auto pg = nccl();  // binds the device before any tensor
  dist::NcclOptions options;
  options.timeout = std::chrono::milliseconds(300);          // wait()'s deadline
  options.setup_timeout = std::chrono::milliseconds(60000);  // init and connecting: not what is tested
  auto group = std::make_shared<dist::NcclProcessGroup>(mpi(), options);
  Tensor<float, Cuda> t = Tensor<float, Cuda>::ones({64});
  group->all_reduce(t).wait();  // healthy first
  // A 2 s kernel on bindery's stream: the collective waits for it (stream order) and times out.
  // clang-format off
  spin_kernel<<<1, 1, 0, Cuda::stream()>>>(2000000000ull);
  // clang-format on
  bindery::detail::cuda_check(cudaGetLastError(), "spin_kernel launch");
  const std::string where = "dist: rank " + std::to_string(pg->rank()) + "/" + std::to_string(pg->size()) +
                            " (nccl) all_reduce failed: no completion after 0.3 s";
  CHECK_THROWS_WITH(group->all_reduce(t).wait(), Contains(where) && Contains("communicator aborted"));
  CHECK(group->failed());
  CHECK_THROWS_WITH(group->barrier(), Contains("the group failed earlier") && Contains("no completion"));
  CHECK_THROWS_WITH(group->broadcast(t, 0), Contains("failed earlier"));
  group.reset();  // a failed group's destructor blocks on nothing
  // The device and the other communicator are unharmed.
  Cuda::synchronize();
  CHECK(t.to_vector().size() == 64);
  Tensor<float, Cuda> one = Tensor<float, Cuda>::ones({3});
  pg->all_reduce(one).wait();
  CHECK(one.to_vector() == std::vector<float>(3, static_cast<float>(pg->size())));
}

TEST_CASE("NcclProcessGroup under DataParallel leaves the mean gradient of the ranks after one step",
          "[nccl]") {
  auto pg = nccl();
  const int size = pg->size(), rank = pg->rank();
  const int64_t rows = 4, in = 5, out = 3;
  nn::Linear<float, Cuda> layer(in, out, nn::LinearOptions{.seed = 7});
  dist::DataParallel<float, Cuda> dp(pg, layer);
  const Tensor<float, Cuda> x =
      Tensor<float, Cuda>::from_vector(converted<float>(input_of(rank, rows * in, 3)), {rows, in});
  ops::sum(layer.forward(Var<float, Cuda>(x))).backward();
  dp.finish();
  // d sum(x W^T + b) / dW[o][i] = sum over rows of x[row][i]; / db[o] = rows. Mean over the ranks:
  std::vector<double> column_sums(static_cast<size_t>(in), 0.0);
  for (int r = 0; r < size; ++r) {
    const std::vector<float> xr = converted<float>(input_of(r, rows * in, 3));
    for (int64_t j = 0; j < rows * in; ++j)
      column_sums[static_cast<size_t>(j % in)] += xr[static_cast<size_t>(j)];
  }
  const std::vector<float> weight_grad = layer.weight().grad().to_vector();
  const std::vector<float> bias_grad = layer.bias().grad().to_vector();
  CHECK(weight_grad.size() == static_cast<size_t>(out * in));  // CHECK: the collectives below must run
  double worst = 0.0;
  for (size_t k = 0; k < weight_grad.size(); ++k)
    worst = std::max(worst, std::fabs(weight_grad[k] - column_sums[k % static_cast<size_t>(in)] / size));
  CHECK(worst <= 1e-5);
  for (float g : bias_grad) CHECK(std::fabs(g - static_cast<float>(rows)) <= 1e-5f);
  CHECK(same_bytes_on_every_rank(*pg, weight_grad));
  CHECK(same_bytes_on_every_rank(*pg, bias_grad));
}
