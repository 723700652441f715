#!/usr/bin/env bash
# Builds the io, data and train test binaries and fuzz_replay under ASan + UBSan and runs them
# (docs/reliability.md "Sanitizers"). Outside CI: a sanitizer build of these binaries costs more
# than CI's budget. Uses g++ (CXX=clang++ works too).
#   scripts/sanitize.sh                  # build-sanitize/, every io/data/train test + fuzz replays
#   BUILD_DIR=out scripts/sanitize.sh io # another folder; only the io tests
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-sanitize}"
jobs="${JOBS:-$(nproc)}"
folders="${*:-io data train}"
# GCC 12 at -O1 with ASan warns maybe-uninitialized inside libstdc++'s <regex> (Catch2 includes it): a
# false positive that -Werror would make fatal.
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-maybe-uninitialized"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
  -DBINDERY_BUILD_TESTS=ON -DBINDERY_BUILD_EXAMPLES=OFF -DBINDERY_BUILD_BENCHMARKS=OFF \
  -DBINDERY_CUDA=OFF -DBINDERY_MPI=OFF ${CMAKE_ARGS:-}
targets="fuzz_replay"
names="fuzz_replay"
for f in $folders; do
  targets="$targets test_$f"
  names="$names|$f"
done
regex="^($names):"
cmake --build "$build" -j "$jobs" --target $targets
# Leaks are checked (LSan); OpenMP's pool lives until exit, so one thread keeps reports clean.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
export OMP_NUM_THREADS=1
cd "$build"
ctest -j "$jobs" --output-on-failure --timeout 3000 -R "$regex"
