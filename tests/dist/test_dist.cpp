// Distributed training: every collective, the gathered InfoNCE, data parallelism and the Trainer
// across ranks. CTest runs this binary alone (a group of one) and under mpirun -np 2 and -np 3.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "dist_test_util.hpp"

using namespace bindery;
using namespace bindery::testing;
using dist::ReduceOp;

namespace {
dist::ProcessGroup& G() {
  return *dist_group();
}
int P() {
  return G().size();
}
int R() {
  return G().rank();
}

/// A folder every rank agrees on (rank 0 creates it).
std::string shared_temp_dir(const std::string& name) {
  std::string path;
  if (R() == 0) {
    path =
        (std::filesystem::temp_directory_path() / ("bindery_dist_" + name + "_" + std::to_string(::getpid())))
            .string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  return G().broadcast_string(path, 0);
}
}  // namespace

TEST_CASE("dist: all_reduce sum, average, max and min", "[dist]") {
  std::vector<float> v{1.0f * (R() + 1), -2.0f * (R() + 1), 0.5f};
  Tensor<float> t = Tensor<float>::from_vector(v);
  G().all_reduce(t, ReduceOp::kSum).wait();
  const double tri = P() * (P() + 1) / 2.0;
  CHECK(t.to_vector() ==
        std::vector<float>{static_cast<float>(tri), static_cast<float>(-2 * tri), 0.5f * P()});
  Tensor<double> d = Tensor<double>::from_vector({static_cast<double>(R()), 3.0});
  G().all_reduce(d, ReduceOp::kAverage).wait();
  CHECK(d.to_vector()[0] == Approx((P() - 1) / 2.0));
  CHECK(d.to_vector()[1] == 3.0);
  Tensor<int64_t> i = Tensor<int64_t>::from_vector({R(), -R()});
  G().all_reduce(i, ReduceOp::kMax).wait();
  CHECK(i.to_vector() == std::vector<int64_t>{P() - 1, 0});
  Tensor<int64_t> j = Tensor<int64_t>::from_vector({R(), -R()});
  G().all_reduce(j, ReduceOp::kMin).wait();
  CHECK(j.to_vector() == std::vector<int64_t>{0, 1 - P()});
  CHECK(G().all_reduce_value<int64_t>(R() + 1) == P() * (P() + 1) / 2);
}

TEST_CASE("dist: a floating-point all_reduce gives every rank the same bits", "[dist]") {
  // 1001 values (not a multiple of the group size) with rank-dependent magnitudes: any difference
  // in summation order between ranks would show in the last bits.
  std::vector<float> v = same_everywhere(1001, 40 + static_cast<uint64_t>(R()), 1e3 * (R() + 1));
  Tensor<float> t = Tensor<float>::from_vector(v);
  G().all_reduce(t, ReduceOp::kAverage).wait();
  std::vector<int32_t> bits(1001);
  std::memcpy(bits.data(), t.data(), bits.size() * 4);
  const auto all = G().all_gather_values(bits);
  for (const auto& theirs : all) CHECK(theirs == bits);
  // And the value is the mean (to rounding).
  double worst = 0;
  for (int64_t k = 0; k < 1001; ++k) {
    double mean = 0;
    for (int r = 0; r < P(); ++r)
      mean += same_everywhere(1001, 40 + static_cast<uint64_t>(r), 1e3 * (r + 1))[k];
    mean /= P();
    worst = std::max(worst, std::fabs(mean - t.to_vector()[static_cast<size_t>(k)]) / (1e3 * P()));
  }
  CHECK(worst < 1e-6);
}

TEST_CASE("dist: all_gather of equal and unequal row counts", "[dist]") {
  // Rank r holds r + 1 rows of 3 values r*100 + row*10 + col.
  std::vector<float> v;
  for (int row = 0; row <= R(); ++row)
    for (int col = 0; col < 3; ++col) v.push_back(static_cast<float>(R() * 100 + row * 10 + col));
  const Tensor<float> all = G().all_gather(Tensor<float>::from_vector(v, {R() + 1, 3}));
  REQUIRE(all.shape() == Shape{P() * (P() + 1) / 2, 3});
  std::vector<float> expected;
  for (int r = 0; r < P(); ++r)
    for (int row = 0; row <= r; ++row)
      for (int col = 0; col < 3; ++col) expected.push_back(static_cast<float>(r * 100 + row * 10 + col));
  CHECK(all.to_vector() == expected);
  // Equal rows, and scalars.
  const Tensor<double> equal = G().all_gather(Tensor<double>::full({2, 2}, R()));
  CHECK(equal.shape() == Shape{2 * P(), 2});
  CHECK(equal.to_vector()[static_cast<size_t>(4 * (P() - 1))] == P() - 1);
  const Tensor<float> scalars = G().all_gather(Tensor<float>::scalar(static_cast<float>(R())));
  CHECK(scalars.shape() == Shape{P()});
  const auto values = G().all_gather_values(std::vector<int64_t>(static_cast<size_t>(R()), R()));
  REQUIRE(static_cast<int>(values.size()) == P());
  for (int r = 0; r < P(); ++r)
    CHECK(values[static_cast<size_t>(r)] == std::vector<int64_t>(static_cast<size_t>(r), r));
}

TEST_CASE("dist: reduce_scatter, broadcast, barrier, send and recv", "[dist]") {
  // reduce_scatter: block k of every rank's input is (k, r); rank k receives (P k, sum r).
  std::vector<float> in;
  for (int k = 0; k < P(); ++k) in.insert(in.end(), {static_cast<float>(k), static_cast<float>(R())});
  const Tensor<float> mine = G().reduce_scatter(Tensor<float>::from_vector(in, {P(), 2}));
  CHECK(mine.shape() == Shape{1, 2});
  CHECK(mine.to_vector() ==
        std::vector<float>{static_cast<float>(P() * R()), static_cast<float>(P() * (P() - 1) / 2)});
  const Tensor<float> mean = G().reduce_scatter(Tensor<float>::from_vector(in, {P(), 2}), ReduceOp::kAverage);
  CHECK(mean.to_vector()[0] == static_cast<float>(R()));
  for (int root = 0; root < P(); ++root) {
    Tensor<int64_t> b = Tensor<int64_t>::from_vector({R() * 7, 1});
    G().broadcast(b, root).wait();
    CHECK(b.to_vector() == std::vector<int64_t>{root * 7, 1});
  }
  CHECK(G().broadcast_string(R() == 0 ? "from rank 0" : "x") == "from rank 0");
  G().barrier().wait();
  if (P() > 1) {  // a ring: r sends to r + 1
    Tensor<float> out = Tensor<float>::full({4}, static_cast<float>(R()));
    Tensor<float> got = Tensor<float>::zeros({4});
    dist::Work s = G().send(out, (R() + 1) % P(), 5);
    dist::Work r = G().recv(got, (R() + P() - 1) % P(), 5);
    r.wait();
    s.wait();
    CHECK(got.to_vector() == std::vector<float>(4, static_cast<float>((R() + P() - 1) % P())));
  }
}

TEST_CASE("dist: asynchronous handles complete in any order of waiting", "[dist]") {
  std::vector<Tensor<float>> ts;
  for (int k = 0; k < 3; ++k)
    ts.push_back(Tensor<float>::full({1000 * (k + 1)}, static_cast<float>(k + R())));
  std::vector<dist::Work> works;
  for (auto& t : ts) works.push_back(G().all_reduce(t, ReduceOp::kSum));
  // Poll the last one to completion first, then wait for the others in reverse.
  while (!works[2].is_completed()) G().poll();
  works[1].wait();
  works[0].wait();
  for (int k = 0; k < 3; ++k) {
    const float expected = static_cast<float>(P() * k + P() * (P() - 1) / 2);
    CHECK(ts[static_cast<size_t>(k)].to_vector() ==
          std::vector<float>(static_cast<size_t>(1000 * (k + 1)), expected));
  }
  {  // a handle dropped unwaited waits in its destructor
    Tensor<float> t = Tensor<float>::full({10}, 1.0f);
    { dist::Work dropped = G().all_reduce(t, ReduceOp::kSum); }
    CHECK(t.to_vector()[0] == static_cast<float>(P()));
  }
}

TEST_CASE("dist: errors name the rank and the operation", "[dist]") {
  Tensor<float> x = Tensor<float>::zeros({3, 4});
  Tensor<float> strided = x.transpose(0, 1);
  CHECK_THROWS_AS(G().all_reduce(strided).wait(), dist::DistError);
  CHECK_THROWS_WITH(G().all_reduce(strided).wait(),
                    Catch::Contains("rank " + std::to_string(R())) && Catch::Contains("not contiguous"));
  CHECK_THROWS_AS(G().send(x, R()).wait(), dist::DistError);
  Tensor<int64_t> ints = Tensor<int64_t>::zeros({2});
  if (P() > 1) CHECK_THROWS_WITH(G().all_reduce(ints, ReduceOp::kAverage).wait(), Catch::Contains("average"));
  // Ranks that disagree on the row shape: every rank gets the error (nobody hangs).
  const Tensor<float> odd = Tensor<float>::zeros({2, R() == 0 ? 3 : 4});
  if (P() > 1) CHECK_THROWS_WITH(G().all_gather(odd), Catch::Contains("row shape"));
  CHECK_THROWS_AS(dist::all_gather(Var<float>(Tensor<float>::scalar(1.0f)), G()), ShapeError);
}

namespace {
/// The global batch of the InfoNCE tests: rows[r] rows on rank r, D columns.
struct GlobalBatch {
  std::vector<int64_t> rows;
  int64_t total = 0, offset = 0, D = 5;
  Tensor<double> a, b;
  explicit GlobalBatch(std::vector<int64_t> r) : rows(std::move(r)) {
    for (int q = 0; q < P(); ++q) {
      if (q < R()) offset += rows[static_cast<size_t>(q)];
      total += rows[static_cast<size_t>(q)];
    }
    const std::vector<float> va = same_everywhere(total * D, 70), vb = same_everywhere(total * D, 71);
    a = Tensor<double>::from_vector(std::vector<double>(va.begin(), va.end()), {total, D});
    b = Tensor<double>::from_vector(std::vector<double>(vb.begin(), vb.end()), {total, D});
  }
  int64_t mine() const { return rows[static_cast<size_t>(R())]; }
  template <class T>
  Tensor<T> local(const Tensor<double>& x) const {
    const std::vector<double> all = x.to_vector();
    return Tensor<T>::from_vector(
        std::vector<T>(all.begin() + offset * D, all.begin() + (offset + mine()) * D), {mine(), D});
  }
};

template <class T>
Tensor<T> cast(const Tensor<double>& x) {
  const std::vector<double> v = x.to_vector();
  return Tensor<T>::from_vector(std::vector<T>(v.begin(), v.end()), x.shape());
}
template <class T>
std::vector<double> as_double(const Tensor<T>& t) {
  const std::vector<T> v = t.to_vector();
  return {v.begin(), v.end()};
}
double rel(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < b.size(); ++i) {
    worst = std::max(worst, std::fabs(a.at(i) - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return worst / scale;
}

template <class T>
void check_gathered_info_nce(const GlobalBatch& g, double tolerance) {
  // One process, the whole global batch.
  loss::InfoNCE<T> single({.scale = {.init_scale = 12.0}});
  Var<T> A(cast<T>(g.a), true), B(cast<T>(g.b), true);
  const auto ref = single.forward(A, B);
  ref.loss.backward();
  // Across the ranks: this rank's rows only.
  loss::InfoNCE<T> gathered({.scale = {.init_scale = 12.0}});
  gathered.set_process_group(dist_group());
  Var<T> a(g.template local<T>(g.a), true), b(g.template local<T>(g.b), true);
  const auto out = gathered.forward(a, b);
  out.loss.backward();
  CHECK(out.logits.shape() == Shape{g.mine(), g.total});
  const double loss = G().all_reduce_value<double>(static_cast<double>(out.loss.item()), ReduceOp::kAverage);
  CHECK(std::fabs(loss - static_cast<double>(ref.loss.item())) <= tolerance * std::fabs(ref.loss.item()));
  // Local input gradients are P times the single-process rows (see dist/functional.hpp).
  const std::vector<double> ga = as_double(a.grad()), gb = as_double(b.grad());
  const std::vector<double> ra = as_double(A.grad().slice(0, g.offset, g.offset + g.mine()).contiguous());
  const std::vector<double> rb = as_double(B.grad().slice(0, g.offset, g.offset + g.mine()).contiguous());
  std::vector<double> ga_p(ga.size()), gb_p(gb.size());
  for (size_t i = 0; i < ga.size(); ++i) ga_p[i] = ga[i] / P(), gb_p[i] = gb[i] / P();
  CHECK(rel(ga_p, ra) <= tolerance);
  CHECK(rel(gb_p, rb) <= tolerance);
  // The logit scale's gradient, averaged over the ranks (as DataParallel does).
  const double gs = G().all_reduce_value<double>(
      static_cast<double>(gathered.log_logit_scale().grad().item()), ReduceOp::kAverage);
  const double rs = static_cast<double>(single.log_logit_scale().grad().item());
  CHECK(std::fabs(gs - rs) <= tolerance * std::max(std::fabs(rs), 1e-3));
}
}  // namespace

TEST_CASE("dist: the gathered InfoNCE equals the single-process loss on the global batch", "[dist][loss]") {
  SECTION("equal rows, float") {
    check_gathered_info_nce<float>(GlobalBatch(std::vector<int64_t>(static_cast<size_t>(P()), 4)), 1e-6);
  }
  SECTION("unequal rows, float") {
    std::vector<int64_t> rows;
    for (int r = 0; r < P(); ++r) rows.push_back(r + 2);
    check_gathered_info_nce<float>(GlobalBatch(rows), 1e-6);
  }
  SECTION("unequal rows, double") {
    std::vector<int64_t> rows;
    for (int r = 0; r < P(); ++r) rows.push_back(3 - r % 2);
    check_gathered_info_nce<double>(GlobalBatch(rows), 1e-12);
  }
}

TEST_CASE("dist: fp64 gradient check of the gathered InfoNCE across ranks", "[dist][loss]") {
  // The function: L = mean over ranks of the gathered loss, of every rank's inputs. Each
  // coordinate of the global batch is perturbed by its owner; every rank evaluates.
  std::vector<int64_t> rows;
  for (int r = 0; r < P(); ++r) rows.push_back(2 + (r == 0));
  const GlobalBatch g(rows);
  loss::InfoNCE<double> criterion({.scale = {.init_scale = 5.0}});
  criterion.set_process_group(dist_group());
  Tensor<double> a = g.local<double>(g.a), b = g.local<double>(g.b);
  auto global_loss = [&] {
    NoGrad no_grad;
    const double mine = criterion.forward(Var<double>(a), Var<double>(b)).loss.item();
    return G().all_reduce_value<double>(mine, ReduceOp::kAverage);
  };
  Var<double> va(a, true), vb(b, true);
  criterion.forward(va, vb).loss.backward();
  const std::vector<double> grad_a = va.grad().to_vector(), grad_b = vb.grad().to_vector();
  const double h = 1e-6;
  double worst = 0;
  for (int owner = 0; owner < P(); ++owner) {
    for (int which = 0; which < 2; ++which) {
      const int64_t n = rows[static_cast<size_t>(owner)] * g.D;
      for (int64_t k = 0; k < n; ++k) {
        Tensor<double>& x = which == 0 ? a : b;
        double saved = 0;
        if (R() == owner) saved = x.data()[k], x.data()[k] = saved + h;
        const double up = global_loss();
        if (R() == owner) x.data()[k] = saved - h;
        const double down = global_loss();
        if (R() == owner) x.data()[k] = saved;
        const double numeric = (up - down) / (2 * h);
        // The owner's analytic value, divided by P (the data-parallel convention), sent to all.
        double analytic = R() == owner ? (which == 0 ? grad_a : grad_b)[static_cast<size_t>(k)] / P() : 0.0;
        analytic = G().all_reduce_value<double>(analytic, ReduceOp::kSum);
        worst = std::max(worst, std::fabs(numeric - analytic) / std::max(1.0, std::fabs(numeric)));
      }
    }
  }
  CHECK(worst < 1e-7);
}

TEST_CASE("dist: DataParallel averages gradients, starts buckets during backward, honours no_sync",
          "[dist][data_parallel]") {
  Tower<float> model(8, 32, 8, 5);
  dist::DataParallel<float> dp(dist_group(), model, {.bucket_bytes = 1024});
  const std::vector<float> x = same_everywhere(4 * 8, 90 + static_cast<uint64_t>(R()));
  auto local_grad = [&](int passes) {
    model.zero_grad();
    for (int k = 0; k < passes; ++k) {
      Var<float> out = model.forward(Var<float>(Tensor<float>::from_vector(x, {4, 8})));
      Var<float> loss = ops::sum(out * out);
      if (k + 1 < passes) {
        auto guard = dp.no_sync();
        loss.backward();
      } else {
        loss.backward();
      }
    }
  };
  // The expected mean: every rank's local gradient, computed without communication, averaged.
  std::vector<float> local;
  {
    local_grad(1);
    for (const auto& p : model.parameters()) {
      const auto v = p.grad().to_vector();
      local.insert(local.end(), v.begin(), v.end());
    }
  }
  // (the pass above synced too; redo the comparison on a fresh pass)
  dp.finish();
  local_grad(2);  // two passes: the first without sync
  dp.finish();
  std::vector<float> mean;
  for (const auto& p : model.parameters()) {
    const auto v = p.grad().to_vector();
    mean.insert(mean.end(), v.begin(), v.end());
  }
  const auto all_local = G().all_gather_values(local);
  std::vector<float> expected(local.size(), 0.0f);
  for (const auto& theirs : all_local)
    for (size_t i = 0; i < expected.size(); ++i) expected[i] += 2.0f * theirs[i] / static_cast<float>(P());
  CHECK(relative_error(mean, expected) < 1e-6);
  if (P() > 1) {
    CHECK(dp.num_buckets() >= 3);
    CHECK(dp.started_during_backward() >= 1);  // fc2's bucket starts before fc1's gradient exists
  }
}

TEST_CASE("dist: DataParallel keeps no gradient where no rank had one", "[dist][data_parallel]") {
  auto used = std::make_shared<nn::Linear<float>>(3, 2, nn::LinearOptions{.seed = 1});
  auto unused = std::make_shared<nn::Linear<float>>(3, 2, nn::LinearOptions{.seed = 2});
  auto rank0_only = std::make_shared<nn::Linear<float>>(3, 2, nn::LinearOptions{.seed = 3});
  nn::Module<float> root;
  root.register_module("used", used);
  root.register_module("unused", unused);
  root.register_module("rank0_only", rank0_only);
  dist::DataParallel<float> dp(dist_group(), root, {.bucket_bytes = 16});
  Var<float> x(Tensor<float>::full({1, 3}, 1.0f));
  Var<float> loss = ops::sum(used->forward(x));
  if (R() == 0) loss = loss + ops::sum(rank0_only->forward(x));
  loss.backward();
  dp.finish();
  CHECK(used->parameters()[0].has_grad());
  CHECK_FALSE(unused->parameters()[0].has_grad());
  REQUIRE(rank0_only->parameters()[0].has_grad());
  CHECK(rank0_only->parameters()[0].grad().to_vector()[0] == Approx(1.0 / P()));
}

TEST_CASE("dist: 20 AdamW steps across the ranks equal 20 steps of one process on the global batch",
          "[dist][trainer]") {
  const std::string dir = shared_temp_dir("trainer");
  train::TrainerOptions o;
  o.steps = 20;
  o.group = dist_group();
  TwoTowerJob job(o);
  const train::TrainResult r = job.trainer->run();
  const std::vector<float> params = job.parameters();
  // Bit-identical replicas.
  const auto all = G().all_gather_values(params);
  for (const auto& theirs : all) CHECK(std::memcmp(theirs.data(), params.data(), params.size() * 4) == 0);
  // The same job in this process alone.
  train::TrainerOptions single = o;
  single.group = nullptr;
  TwoTowerJob reference(single);
  const train::TrainResult rr = reference.trainer->run();
  CHECK(relative_error(params, reference.parameters()) <= 1e-5);
  CHECK(std::fabs(r.final_loss.at("pairs") - rr.final_loss.at("pairs")) <= 1e-5 * rr.final_loss.at("pairs"));
  // Checkpointed and resumed on the same number of ranks: bit for bit.
  train::TrainerOptions first = o;
  first.checkpoint_dir = dir;
  first.checkpoint_every = 4;
  first.stop_at = 10;
  TwoTowerJob part1(first);
  part1.trainer->run();
  train::TrainerOptions second = first;
  second.stop_at = -1;
  second.resume = true;
  TwoTowerJob part2(second);
  const train::TrainResult r2 = part2.trainer->run();
  CHECK(r2.start_step == 10);
  CHECK(digest(part2.parameters()) == digest(params));
  G().barrier().wait();
  if (R() == 0) std::filesystem::remove_all(dir);
}

TEST_CASE("dist: the distributed sampler cuts the single-process batch into disjoint rank shares",
          "[dist][trainer]") {
  train::EpochSampler single(50, 12, 9);
  std::vector<train::DistributedSampler> ranks;
  for (int r = 0; r < 3; ++r) ranks.emplace_back(50, 12, 9, r, 3);
  for (int64_t step = 0; step < 10; ++step) {  // crosses epochs (4 batches of 12 per epoch of 50)
    std::vector<int64_t> joined;
    for (auto& s : ranks) {
      const std::vector<int64_t> mine = s.batch(step);
      CHECK(mine.size() == 4u);
      joined.insert(joined.end(), mine.begin(), mine.end());
    }
    CHECK(joined == single.batch(step));
  }
  CHECK_THROWS_AS(train::DistributedSampler(50, 10, 9, 0, 3), ValueError);
  train::TrainerOptions o;
  o.group = dist_group();
  o.batch_size = 12 * P() + 1;
  if (P() > 1) CHECK_THROWS_WITH(TwoTowerJob(o), Catch::Contains("divisible"));
}
