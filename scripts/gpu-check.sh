#!/usr/bin/env bash
# The CUDA backend's checks on a machine WITH an NVIDIA GPU, in one run (< 8 minutes on an H100):
#   1. configure with BINDERY_CUDA=ON and build the CUDA test and benchmark binaries;
#   2. test_cuda_host: the CUDA kernels' math on the host (the same check CI runs);
#   3. test_cuda: every templated test body on Cpu and Cuda, GEMM accuracy, CPU≡CUDA parity;
#      test_cuda_models: ImageBind tiny and two-towers training on Cuda against the Cpu;
#      test_dist_nccl (where CMake found MPI and NCCL: target bindery::nccl): the NCCL process group
#      under mpirun -np 1, and -np 2 when the machine has two GPUs (~10-20 s each, capped at
#      NCCL_CHECK_TIMEOUT=120 s); output also in $BUILD_DIR/nccl-np<N>.log;
#   4. bench_cuda, and with python3 + torch: GEMM and attention, bindery vs PyTorch, one table;
#   5. compute-sanitizer memcheck on the Cuda cases (when installed; capped at MEMCHECK_TIMEOUT=180 s).
#   scripts/gpu-check.sh                 # build folder build-gpu/
#   BUILD_DIR=out JOBS=8 scripts/gpu-check.sh
#   SKIP_MEMCHECK=1 SKIP_BENCH=1 scripts/gpu-check.sh
#   PYTHON=/path/to/venv/bin/python scripts/gpu-check.sh   # the python that has torch
# Exit status: 0 when every step that ran passed; the summary lists each step's result and time.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-gpu}"
jobs="${JOBS:-$(nproc)}"
t0=$(date +%s)
summary=()
failed=0

step() {  # step "name" command...: runs, records pass/fail and seconds
  local name="$1" start rc
  shift
  echo "==== $name: $*"
  start=$(date +%s)
  "$@"
  rc=$?
  summary+=("$(printf '%-44s %-7s %4ss' "$name" "$([ $rc -eq 0 ] && echo ok || echo "FAIL($rc)")" \
    $(($(date +%s) - start)))")
  [ $rc -eq 0 ] || failed=1
  return $rc
}

finish() {
  echo
  echo "==== summary (total $(($(date +%s) - t0))s)"
  printf '%s\n' "${summary[@]}"
  exit $failed
}

command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found (add /usr/local/cuda/bin to PATH)" >&2; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null ||
  echo "gpu-check: nvidia-smi unavailable"
nvcc --version | tail -1

bench=ON
[ "${SKIP_BENCH:-0}" = 1 ] && bench=OFF
targets=(test_cuda_host test_cuda test_cuda_models)
[ $bench = ON ] && targets+=(bench_cuda)
step "configure (BINDERY_CUDA=ON)" cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DBINDERY_CUDA=ON -DBINDERY_BUILD_TESTS=ON -DBINDERY_BUILD_EXAMPLES=OFF \
  -DBINDERY_BUILD_BENCHMARKS=$bench ${CMAKE_ARGS:-} >/dev/null || finish
# test_dist_nccl exists where CMake found MPI and NCCL (tests/cuda/CMakeLists.txt registers its cases).
nccl=OFF
if grep -qs test_dist_nccl "$build/tests/cuda/CTestTestfile.cmake"; then
  nccl=ON
  targets+=(test_dist_nccl)
fi
step "build ${targets[*]}" cmake --build "$build" -j "$jobs" --target "${targets[@]}" || finish

bin="$build/tests/cuda"
step "kernel math on the host (test_cuda_host)" "$bin/test_cuda_host"
# 77 would mean "no usable GPU": on this script's machine that is a failure, not a skip.
step "CUDA tests, Cpu and Cuda (test_cuda)" "$bin/test_cuda"
step "whole models, Cuda vs Cpu (test_cuda_models)" "$bin/test_cuda_models"

# shellcheck disable=SC2317  # called through step
logged() {  # logged FILE command...: runs, output to the terminal and to FILE; the command's status
  local log="$1"
  shift
  "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}
if [ $nccl = ON ]; then
  # One GPU per rank: -np 2 needs two. Root in containers needs the two OMPI_ALLOW variables; CMA
  # single-copy is often forbidden there (no ptrace), so MPI's shared memory copies twice instead.
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  for np in 1 2; do
    if [ "$np" -gt "${gpus:-0}" ] && [ "$np" -gt 1 ]; then
      summary+=("$(printf '%-44s %-7s' "NCCL group, mpirun -np $np" "skipped (${gpus:-0} GPU)")")
      continue
    fi
    step "NCCL group, mpirun -np $np (test_dist_nccl)" logged "$build/nccl-np$np.log" \
      env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 BINDERY_DIST_TIMEOUT=30 \
      NCCL_DEBUG="${NCCL_DEBUG:-WARN}" timeout "${NCCL_CHECK_TIMEOUT:-120}" \
      mpirun -np "$np" --bind-to none --mca btl_vader_single_copy_mechanism none "$bin/test_dist_nccl"
  done
else
  summary+=("$(printf '%-44s %-7s' "NCCL group (test_dist_nccl)" "absent (no MPI or NCCL at configure)")")
fi

if [ $bench = ON ]; then
  json="$build/bench_cuda.json"
  rm -f "$json"
  step "bench_cuda" "$build/benchmarks/bench_cuda" --benchmark_out="$json" --benchmark_out_format=json
  if [ -s "$json" ]; then
    step "bindery vs PyTorch table" "${PYTHON:-python3}" "$root/benchmarks/compare_torch_cuda.py" "$json"
  fi
fi
if [ "${SKIP_MEMCHECK:-0}" != 1 ]; then
  sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
  if [ -n "$sanitizer" ]; then
    # Only the Cuda instances and the Cuda-only cases ("*- 1": a templated body's Cuda instance).
    # API errors are not reported: one test provokes a failing cudaMalloc on purpose.
    step "compute-sanitizer memcheck (Cuda cases)" timeout "${MEMCHECK_TIMEOUT:-180}" "$sanitizer" \
      --tool memcheck --error-exitcode 1 --leak-check no --report-api-errors no "$bin/test_cuda" "*- 1,[cuda]"
  else
    summary+=("$(printf '%-44s %-7s' "compute-sanitizer memcheck" "absent")")
  fi
fi

finish
