#!/usr/bin/env bash
# Runs bench_gemm (bindery's Cpu::gemm, Eigen and OpenBLAS side by side in one process) and prints
# markdown tables of median GFLOP/s with the bindery/OpenBLAS and Eigen/OpenBLAS ratios.
#   benchmarks/run_gemm_compare.sh                     # build/ (configured and built when missing)
#   BUILD_DIR=out REPS=9 benchmarks/run_gemm_compare.sh --benchmark_filter=vision
# Extra arguments go to the benchmark binary. Needs python3 for the tables.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
reps="${REPS:-5}"
bin="$build/benchmarks/bench_gemm"
if [ ! -x "$bin" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBINDERY_BUILD_BENCHMARKS=ON ${CMAKE_ARGS:-} >/dev/null
  cmake --build "$build" -j "${JOBS:-$(nproc)}" --target bench_gemm >/dev/null
fi
out="$(mktemp --suffix=.json)"
trap 'rm -f "$out"' EXIT
# Repetitions run in random order across benchmarks, so a burst of load on the machine hits every
# implementation alike instead of one benchmark's whole run; the tables report medians.
"$bin" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
  --benchmark_enable_random_interleaving=true \
  --benchmark_out="$out" --benchmark_out_format=json "$@" >&2

python3 - "$out" <<'PY'
import json, math, sys
data = json.load(open(sys.argv[1]))
ctx = data["context"]
median, best = {}, {}  # (group, shape) -> {impl: GFLOP/s}: median and best repetition
first = {}  # (group, shape) -> registration order (random interleaving shuffles the output)
for b in data["benchmarks"]:
    table = {"median": median, "max": best}.get(b.get("aggregate_name"))
    if table is None:
        continue
    group, shape, impl = b["run_name"].split("/")[:3]
    key = (group, shape)
    table.setdefault(key, {})[impl] = b["GFLOP/s"]
    first[key] = min(first.get(key, b["family_index"]), b["family_index"])
order = sorted(median, key=first.get)

reps = next((b["repetitions"] for b in data["benchmarks"] if "repetitions" in b), "?")
load = ", ".join(f"{x:.1f}" for x in ctx.get("load_avg", []))
print(f"{ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz; {ctx.get('bindery')}; "
      f"{ctx.get('openblas')} (core {ctx.get('openblas_core')}, {ctx.get('openblas_threads')} threads); "
      f"OpenMP threads {ctx.get('openmp_threads')}; load average at start {load}; "
      f"{reps} repetitions, interleaved.\n")
titles = {"gemm_f32": "GEMM fp32 GFLOP/s, M x K x N (transformer shapes: x W^T with W stored (N, K))",
          "mlp_block_f32": "ViT-H MLP block GFLOP/s: fc1, GELU (Cpu::for_each), fc2",
          "gemm_batched_f32": "Batched attention scores Q K^T, GFLOP/s (bindery: Cpu::gemm_batched; "
                              "Eigen: one product per OpenMP thread; OpenBLAS: one call per product)",
          "gemm_in_for_each_f32": "GEMMs inside Cpu::for_each, as the fused attention kernel calls them, GFLOP/s"}
fmt = lambda v: f"{v:.1f}" if v is not None else "-"


def ratio(table, key, impl):
    r = table.get(key, {})
    return r[impl] / r["openblas"] if r.get("openblas") and impl in r else None


last_group = None
transformer = []
for key in order:
    group, shape = key
    r = median[key]
    if group != last_group:
        if last_group is not None:
            print()
        print(f"**{titles.get(group, group)}**\n")
        print("| shape | bindery | Eigen | OpenBLAS | bindery / OpenBLAS | Eigen / OpenBLAS |")
        print("|---|---:|---:|---:|---:|---:|")
        last_group = group
    cells = []
    for impl in ("bindery", "eigen"):
        m, b = ratio(median, key, impl), ratio(best, key, impl)
        cells.append("-" if m is None else f"{m:.2f} ({b:.2f})" if b is not None else f"{m:.2f}")
    print(f"| {shape} | {fmt(r.get('bindery'))} | {fmt(r.get('eigen'))} | {fmt(r.get('openblas'))} | "
          f"{cells[0]} | {cells[1]} |")
    if group == "gemm_f32" and not shape.startswith("square") and ratio(median, key, "bindery") is not None:
        transformer.append((ratio(median, key, "bindery"), ratio(best, key, "bindery")))
print("\nGFLOP/s are medians. Ratios: of the medians, and in parentheses of the best repetitions.")
if transformer:
    geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
    meds = [m for m, _ in transformer]
    bests = [b for _, b in transformer if b is not None]
    print(f"Transformer shapes, bindery / OpenBLAS: geometric mean {geo(meds):.2f} of the medians"
          + (f", {geo(bests):.2f} of the bests" if bests else "")
          + f"; lowest median ratio {min(meds):.2f} (goal >= 0.85).")
PY
