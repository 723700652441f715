// benchmarks/bench_dist.cpp — what distributed training costs on this machine (docs/distributed.md).
//
//   mpirun -np 2 build/benchmarks/bench_dist collectives [--max-mb 64] [--svg bandwidth.svg]
//       all_reduce (sum, float32) and all_gather bandwidth against message size. As nccl-tests
//       reports them: algbw = bytes / time (the bytes of the full tensor), busbw = algbw times
//       2(P-1)/P for all_reduce and (P-1)/P for all_gather — the load on the busiest link, comparable
//       across rank counts and with the link's peak.
//   mpirun -np 2 build/benchmarks/bench_dist step --modality audio --batch 4 [--threads 1] [--steps 5]
//       one data-parallel training step of a huge encoder (random weights) bound with the gathered
//       InfoNCE to fixed image embeddings, AdamW: the mean step time, the part spent in DataParallel's
//       finish() (the wait for the gradient all-reduce that backward did not hide), and the gradient
//       bytes per step. Run once as 1 rank x 2 threads and once as 2 ranks x 1 thread for the scaling.
//
// Timings are printed by rank 0 as Markdown rows. Nothing here is a test.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bindery/bindery.hpp"
#include "bindery/dist/all.hpp"
#include "bindery/plot/plot.hpp"
#include "huge_encoders.hpp"

using namespace bindery;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

void collectives(dist::ProcessGroup& g, int64_t max_mb, const std::string& svg) {
  const double P = g.size();
  std::vector<eval::Series> curves{
      {.name = std::string("all_reduce (") +
               (g.options().identical_results ? "same bits" : "MPI_Iallreduce") + ")"},
      {.name = "all_gather"}};
  if (g.rank() == 0) {
    std::printf("| op | bytes | time (us) | algbw (GB/s) | busbw (GB/s) |\n|---|---:|---:|---:|---:|\n");
  }
  for (int64_t bytes = 4096; bytes <= max_mb * (int64_t{1} << 20); bytes *= 4) {
    const int64_t n = bytes / 4;
    Tensor<float> t = Tensor<float>::full({n}, 1.0f);
    Tensor<float> local = Tensor<float>::full({n / g.size()}, 1.0f);
    for (const char* op : {"all_reduce", "all_gather"}) {
      auto once = [&] {
        if (op[4] == 'r')
          g.all_reduce(t, dist::ReduceOp::kSum).wait();
        else
          (void)g.all_gather(local);
      };
      for (int w = 0; w < 2; ++w) once();
      // As many iterations as fit in about 0.2 s (decided on rank 0, so every rank runs the same).
      g.barrier().wait();
      auto t0 = Clock::now();
      once();
      int64_t iters = std::max<int64_t>(3, static_cast<int64_t>(0.2 / std::max(seconds_since(t0), 1e-6)));
      iters = g.all_reduce_value<int64_t>(g.rank() == 0 ? std::min<int64_t>(iters, 2000) : 0);
      g.barrier().wait();
      t0 = Clock::now();
      for (int64_t i = 0; i < iters; ++i) once();
      const double per =
          g.all_reduce_value<double>(seconds_since(t0) / static_cast<double>(iters), dist::ReduceOp::kMax);
      const double moved =
          op[4] == 'r' ? static_cast<double>(bytes) : static_cast<double>((n / g.size()) * g.size() * 4);
      const double algbw = moved / per / 1e9;
      const double busbw = algbw * (op[4] == 'r' ? 2.0 * (P - 1) / P : (P - 1) / P);
      if (g.rank() == 0)
        std::printf("| %s | %lld | %.1f | %.2f | %.2f |\n", op, static_cast<long long>(moved), per * 1e6,
                    algbw, busbw);
      eval::Series& curve = curves[op[4] == 'r' ? 0 : 1];
      curve.x.push_back(moved / 1024.0);
      curve.y.push_back(algbw);
    }
  }
  if (g.rank() == 0 && !svg.empty()) {
    eval::save_svg(svg,
                   eval::line_chart(curves, {.title = ::bindery::detail::concat("Collectives on ", g.size(),
                                                                                " ranks (", g.engine(), ")"),
                                             .x_label = "message (KiB)",
                                             .y_label = "algorithm bandwidth (GB/s)",
                                             .log_x = true}));
    std::printf("wrote %s\n", svg.c_str());
  }
}

void step(const std::shared_ptr<dist::ProcessGroup>& group, const std::string& modality_name, int64_t batch,
          int64_t steps) {
  namespace ib = models::imagebind;
  dist::ProcessGroup& g = *group;
  const ib::Modality m = ib::modality_from_name(modality_name);
  const ib::EncoderConfig config = ib::ImageBindConfig::huge().at(m);
  BINDERY_CHECK(batch % g.size() == 0, ValueError, "bench_dist step: --batch ", batch,
                " must be divisible by ", g.size(), " ranks");
  const int64_t local = batch / g.size();
  std::shared_ptr<bench_huge::Encoder> encoder;
  {
    SkipRandomInit no_init;
    encoder = ib::make_encoder<float, Cpu>(config, 1);
  }
  bench_huge::fill_parameters(*encoder);
  encoder->train();
  loss::InfoNCE<float> criterion({.scale = {.init_scale = 20.0, .learnable = false}});
  criterion.set_process_group(group);
  dist::DataParallel<float> dp(group, *encoder);
  optim::AdamW<float> adamw(encoder->parameters(), optim::AdamWOptions{.lr = 1e-6});
  const auto input = bench_huge::make_input(config, local);
  Philox rng(21 + static_cast<uint64_t>(g.rank()));
  const Var<float> anchor(Tensor<float>::normal({local, config.out_dim}, rng));
  int64_t grad_bytes = 0;
  for (const auto& p : encoder->parameters())
    if (p.requires_grad()) grad_bytes += 4 * p.numel();
  double total = 0, waiting = 0;
  for (int64_t s = 0; s <= steps; ++s) {  // step 0 warms up
    g.barrier().wait();
    const auto t0 = Clock::now();
    adamw.zero_grad();
    const Var<float> z = encoder->encode(input);
    criterion.forward(anchor, z).loss.backward();
    const auto t1 = Clock::now();
    dp.finish();
    const double wait_s = seconds_since(t1);
    adamw.step();
    if (s > 0) {
      total += seconds_since(t0);
      waiting += wait_s;
    }
  }
  total = g.all_reduce_value<double>(total / static_cast<double>(steps), dist::ReduceOp::kMax);
  waiting = g.all_reduce_value<double>(waiting / static_cast<double>(steps), dist::ReduceOp::kMax);
  if (g.rank() == 0)
    std::printf("| %s | %d x %d | %lld (%lld per rank) | %.3f | %.3f | %.1f | %lld buckets, %.0f MB |\n",
                modality_name.c_str(), g.size(), Cpu::num_threads(), static_cast<long long>(batch),
                static_cast<long long>(local), total, waiting, static_cast<double>(batch) / total,
                static_cast<long long>(dp.num_buckets()), static_cast<double>(grad_bytes) / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    auto group = dist::init();
    Cpu::set_num_threads(std::stoi(arg(argc, argv, "--threads", "1")));
    if (mode == "collectives") {
      collectives(*group, std::stoll(arg(argc, argv, "--max-mb", "64")), arg(argc, argv, "--svg", ""));
    } else if (mode == "step") {
      if (group->rank() == 0 && arg(argc, argv, "--header", "1") == "1")
        std::printf(
            "| encoder | ranks x threads | global batch | step (s) | waiting for all-reduce (s) | "
            "samples/s | gradients |\n|---|---|---|---:|---:|---:|---|\n");
      step(group, arg(argc, argv, "--modality", "audio"), std::stoll(arg(argc, argv, "--batch", "4")),
           std::stoll(arg(argc, argv, "--steps", "5")));
    } else {
      std::fprintf(stderr,
                   "usage: bench_dist collectives [--max-mb N] | step [--modality M] [--batch B] "
                   "[--threads T] [--steps S]\n");
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dist: %s\n", e.what());
    return 1;
  }
  return 0;
}
