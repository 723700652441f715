#!/usr/bin/env bash
# A fuzzing campaign over bindery's file readers (fuzz/, docs/reliability.md "Fuzzing").
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh 600 npy wav          # 600 s each for the npy and wav targets
#   MERGE=1 scripts/fuzz.sh 300          # then merge the inputs that add coverage into fuzz/corpus/
# Environment:
#   BUILD_DIR  build folder of the libFuzzer targets (default: build-fuzz), configured with clang++
#   WORK       work folder: per-target corpora, crash artifacts, logs (default: $BUILD_DIR/fuzz-work)
#   JOBS       1 (default): one libFuzzer process per target, stops at the first finding;
#              N > 1: -fork=N, keeps going after findings (each saved under $WORK/artifacts/<target>)
#   RSS_MB     memory limit per process in MB (default 2048: no reader may need more on a fuzz input)
#   TIMEOUT    seconds one input may take (default 10)
#   MAX_LEN    longest generated input in bytes (default: libFuzzer's, from the corpus)
#   RUNS       stop a target after this many executions (default: none; the seconds still apply)
#   OMP_NUM_THREADS  1 unless set: a fuzz input is small, and idle OpenMP workers only spin
#   MERGE=1    merge the work corpus into fuzz/corpus/<target>, keeping only inputs that add coverage
#   TMPDIR     where file-reading targets write each input (default /dev/shm when writable)
# Prints a table (target | seconds | executions | exec/s | new units | coverage | findings) and
# appends it to $WORK/fuzz.log. Exit status 1 when any target had a finding.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
build="${BUILD_DIR:-$root/build-fuzz}"
work="${WORK:-$build/fuzz-work}"
jobs="${JOBS:-1}"
rss_mb="${RSS_MB:-2048}"
timeout_s="${TIMEOUT:-10}"

# libFuzzer comes with clang (Debian: the clang package; scripts/install-deps.sh installs it).
cxx="${CXX:-clang++}"
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz.sh: $cxx not found: libFuzzer needs clang (apt-get install clang, or scripts/install-deps.sh)" >&2
  exit 2
fi
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
  >"$probe/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" 2>"$probe/err"; then
  echo "fuzz.sh: $cxx cannot link -fsanitize=fuzzer (libFuzzer missing?):" >&2
  cat "$probe/err" >&2
  exit 2
fi

# Campaign loops share the build folder: one configure and build at a time (two at once broke
# CMake's try_compile checks).
mkdir -p "$build"
exec 9>"$build/.fuzz-build.lock"
flock 9
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  -DBINDERY_BUILD_TESTS=OFF -DBINDERY_BUILD_EXAMPLES=OFF -DBINDERY_BUILD_BENCHMARKS=OFF \
  -DBINDERY_FUZZ=ON -DBINDERY_FUZZ_REPLAY=OFF >/dev/null
available=$(cd "$root/fuzz" && ls fuzz_*.cpp | sed 's/^fuzz_//; s/\.cpp$//')
if ! grep -q '^BINDERY_FFMPEG_LIBS_FOUND:INTERNAL=1' "$build/CMakeCache.txt"; then
  available=$(echo "$available" | grep -v '^video$')  # fuzz_video is built only with FFmpeg
fi
targets="${*:-$available}"
build_targets=""
for t in $targets; do build_targets="$build_targets fuzz_$t"; done
cmake --build "$build" -j "$(nproc)" --target $build_targets
flock -u 9
exec 9>&-

mkdir -p "$work"
log="$work/fuzz.log"
# Targets whose reader takes a path write each input to a scratch file: in memory where possible.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
table="$(mktemp)"
printf '%-12s | %7s | %12s | %8s | %9s | %8s | %8s\n' target seconds executions exec/s "new units" coverage findings >"$table"
any_finding=0
for t in $targets; do
  corpus="$work/corpus/$t"
  artifacts="$work/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cp -n "$root/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  dirs=("$corpus")
  [ -d "$root/fuzz/regressions/$t" ] && dirs+=("$root/fuzz/regressions/$t")
  args=(-max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb"
        -timeout="$timeout_s" -artifact_prefix="$artifacts/")
  [ -f "$root/fuzz/dict/$t.dict" ] && args+=(-dict="$root/fuzz/dict/$t.dict")
  [ -n "${MAX_LEN:-}" ] && args+=(-max_len="$MAX_LEN")
  [ -n "${RUNS:-}" ] && args+=(-runs="$RUNS")
  [ "$jobs" -gt 1 ] && args+=(-fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  before=$(ls "$artifacts" | wc -l)
  out="$work/$t.out"
  start=$(date +%s)
  echo "== fuzz_$t: ${seconds} s, $jobs job(s), output in $out"
  (cd "$work" && "$build/fuzz/fuzz_$t" "${args[@]}" "${dirs[@]}") >"$out" 2>&1 || true
  elapsed=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out" | tail -1 | grep -o '[0-9]*$' || true)
  added=$(grep -o 'stat::new_units_added: *[0-9]*' "$out" | tail -1 | grep -o '[0-9]*$' || true)
  if [ -z "$execs" ]; then  # fork mode: the last status line "#N: cov: ..."
    execs=$(grep -o '^#[0-9]*' "$out" | tail -1 | tr -d '#' || true)
  fi
  cov=$(grep -o 'cov: [0-9]*' "$out" | tail -1 | grep -o '[0-9]*$' || true)
  findings=$(( $(ls "$artifacts" | wc -l) - before ))
  [ "$findings" -gt 0 ] && any_finding=1
  rate=$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))
  printf '%-12s | %7s | %12s | %8s | %9s | %8s | %8s\n' "$t" "$elapsed" "${execs:-?}" "$rate" "${added:-?}" \
    "${cov:-?}" "$findings" >>"$table"
  if [ "${MERGE:-0}" = 1 ]; then
    "$build/fuzz/fuzz_$t" -merge=1 -rss_limit_mb="$rss_mb" -timeout="$timeout_s" \
      "$root/fuzz/corpus/$t" "$corpus" >"$work/$t.merge.out" 2>&1 || true
  fi
done
cat "$table"
{ echo "# $(date -u '+%F %T') scripts/fuzz.sh $seconds $* (JOBS=$jobs, $(nproc) cores)"; cat "$table"; } >>"$log"
echo "log: $log; findings (crash inputs) under $work/artifacts/<target>/: replay one with" \
     "$build/fuzz/fuzz_<target> <file>, keep it in fuzz/regressions/<target>/"
exit $any_finding
