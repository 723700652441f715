// The main of test_dist: joins the group (MPI under mpirun, else a single process), then either
// runs the Catch2 cases (every rank the same cases in the same order) or, with "train", one
// scenario of the two-tower job that the CTest scripts drive across separate launches:
//
//   test_dist train --dir D --steps N [--stop-at K] [--resume] [--kill-rank R --kill-at S]
//                   [--check-single]
//
// It prints "params digest: <hex>" (rank 0) so scripts can compare runs bit for bit, and with
// --check-single compares the final parameters against the same job trained in this one process
// on the global batch (relative error <= 1e-5), exiting 1 when they differ.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "dist_test_util.hpp"

namespace bindery::testing {
std::shared_ptr<dist::ProcessGroup>& dist_group() {
  static std::shared_ptr<dist::ProcessGroup> group;
  return group;
}
}  // namespace bindery::testing

namespace {

using namespace bindery;
using namespace bindery::testing;

int run_train(int argc, char** argv) {
  std::string dir;
  int64_t steps = 20, stop_at = -1, kill_at = -1;
  int kill_rank = -1;
  bool resume = false, check_single = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError("test_dist train: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--dir")
      dir = next();
    else if (a == "--steps")
      steps = std::stoll(next());
    else if (a == "--stop-at")
      stop_at = std::stoll(next());
    else if (a == "--kill-rank")
      kill_rank = std::stoi(next());
    else if (a == "--kill-at")
      kill_at = std::stoll(next());
    else if (a == "--resume")
      resume = true;
    else if (a == "--check-single")
      check_single = true;
    else
      throw ValueError("test_dist train: unknown argument " + a);
  }
  auto group = dist_group();
  train::TrainerOptions o;
  o.label = "two towers";
  o.steps = steps;
  o.stop_at = stop_at;
  o.checkpoint_dir = dir;
  o.checkpoint_every = 2;
  o.keep_last = 2;
  o.resume = resume;
  o.group = group;
  TwoTowerJob job(o);
  job.on_step = [&](int64_t step) {
    if (group->rank() == kill_rank && step == kill_at) {
      std::fprintf(stderr, "rank %d: killing myself (SIGKILL) at step %lld\n", group->rank(),
                   static_cast<long long>(step));
      std::fflush(stderr);
      raise(SIGKILL);
    }
  };
  const train::TrainResult r = job.trainer->run();
  const std::vector<float> params = job.parameters();
  // Every rank must hold the same bits.
  const auto all = group->all_gather_values(std::vector<uint64_t>{digest(params)});
  for (const auto& d : all)
    if (d.at(0) != all[0].at(0)) {
      std::fprintf(stderr, "rank %d: parameters differ between ranks\n", group->rank());
      return 1;
    }
  if (group->rank() == 0)
    std::printf("ranks %d, steps %lld..%lld, params digest: %016llx\n", group->size(),
                static_cast<long long>(r.start_step), static_cast<long long>(r.start_step + r.steps),
                static_cast<unsigned long long>(digest(params)));
  if (check_single && (stop_at < 0 || stop_at >= steps)) {
    train::TrainerOptions single = o;
    single.group = nullptr;
    single.checkpoint_dir.clear();
    single.resume = false;
    single.stop_at = -1;
    TwoTowerJob reference(single);
    reference.trainer->run();
    const double err = relative_error(params, reference.parameters());
    if (group->rank() == 0) std::printf("relative error against one process: %.3g\n", err);
    if (!(err <= 1e-5)) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  const char* threads = std::getenv("BINDERY_TEST_THREADS");
  bindery::Cpu::set_num_threads(threads ? std::max(1, std::atoi(threads)) : 1);
  std::shared_ptr<bindery::dist::ProcessGroup> group;
  try {
    group = bindery::dist::init();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_dist: %s\n", e.what());
    return 2;
  }
  bindery::testing::dist_group() = group;
  int rc = 0;
  try {
    if (argc > 1 && std::string(argv[1]) == "train") {
      rc = run_train(argc - 1, argv + 1);
    } else {
      if (group->rank() != 0 && group->size() > 1) {
        // Rank 0 reports; the others stay quiet unless a case fails (then the combined code fails).
        Catch::Session session;
        session.applyCommandLine(argc, argv);
        session.configData().reporterName = "compact";
        rc = session.run();
      } else {
        rc = Catch::Session().run(argc, argv);
      }
    }
    rc = static_cast<int>(group->all_reduce_value<int64_t>(rc, bindery::dist::ReduceOp::kMax));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_dist rank %d: %s\n", group->rank(), e.what());
    std::fflush(stderr);
    std::_Exit(3);  // the group may be failed: no MPI_Finalize, no destructors that could wait
  }
  bindery::testing::dist_group().reset();
  return rc;
}
