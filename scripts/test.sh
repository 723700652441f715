#!/usr/bin/env bash
# Installs what is missing, configures, builds and runs every test.
#   scripts/test.sh                 # build/ in Release, all CTest tests
#   BUILD_DIR=out scripts/test.sh   # another build folder
#   CMAKE_ARGS="-DBINDERY_BLAS=OFF" scripts/test.sh   # Eigen GEMM instead of OpenBLAS
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
jobs="${JOBS:-$(nproc)}"
"$root/scripts/install-deps.sh"
# With nvcc on PATH the CUDA tests are built too (a compile break fails here); without a GPU they
# report SKIPPED. CMAKE_ARGS="-DBINDERY_CUDA=OFF" opts out.
cuda_arg=""
command -v nvcc >/dev/null 2>&1 && cuda_arg="-DBINDERY_CUDA=ON"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBINDERY_BUILD_TESTS=ON \
  -DBINDERY_BUILD_EXAMPLES=ON -DBINDERY_BUILD_BENCHMARKS=ON $cuda_arg ${CMAKE_ARGS:-}
cmake --build "$build" -j "$jobs"
cd "$build"
ctest -j "$jobs" --output-on-failure --timeout 1200
