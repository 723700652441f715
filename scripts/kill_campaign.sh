#!/usr/bin/env bash
# Crash consistency at scale (issue 18; not CI): SIGKILL a training run at random moments, KILLS
# times, resuming after every kill, and check that
#   - every run after a kill resumes (or starts over when no checkpoint was finished yet) without
#     finding a damaged checkpoint ("skipped checkpoint" never appears, a resume never fails),
#   - every episode (one training job killed again and again until it completes) ends with the
#     parameters of an uninterrupted run, bit for bit.
#
#   scripts/kill_campaign.sh [KILLS=1000] [BUILD_DIR=build] [STEPS=200]
#
# The job is test_dist's "train" scenario in one process (tests/dist/dist_main.cpp): the two-tower
# model of tests/dist with train::Trainer, a checkpoint every 2 steps (keep_last 2: every other
# step a checkpoint is written and an old one deleted), so a uniform kill time lands in every phase
# (start-up, load, steps, writes, renames, pruning). Kill times are uniform in [0, 0.6 x the
# uninterrupted run's time], from a fixed seed; the report counts kills that left a partial
# temporary file behind (killed mid-write) and checkpoints found at each resume.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kills=${1:-1000}
build=${2:-$root/build}
steps=${3:-200}
bin="$build/tests/dist/test_dist"
[ -x "$bin" ] || { echo "kill_campaign: $bin not found (build the test_dist target first)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bindery-kills.XXXXXX")
trap 'rm -rf "$work"' EXIT
export BINDERY_DIST=single OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
digest() { sed -n 's/.*params digest: \([0-9a-f]*\).*/\1/p' "$1" | tail -1; }
now() { date +%s.%N; }

t0=$(now)
"$bin" train --dir "$work/straight" --steps "$steps" > "$work/straight.log" 2>&1
straight_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
expected=$(digest "$work/straight.log")
[ -n "$expected" ] || { cat "$work/straight.log"; echo "FAIL: the uninterrupted run printed no digest"; exit 1; }
echo "uninterrupted run: $steps steps in ${straight_s} s, params digest $expected"

RANDOM=20261206
done_kills=0 episodes=0 runs=0 resumed=0 fresh=0 partial=0 mid_run_finish=0
start=$(now)
dir="$work/episode"
rm -rf "$dir"
bar() {
  local width=30 filled=$((30 * done_kills / kills))
  printf '\r[%s%s] %d/%d kills, %d episodes complete, %d resumes, 0 damaged' \
    "$(printf '#%.0s' $(seq 1 $filled) 2> /dev/null)" "$(printf ' %.0s' $(seq 1 $((width - filled))) 2> /dev/null)" \
    "$done_kills" "$kills" "$episodes" "$resumed"
}
check_log() {  # $1: log of a run that started with --resume
  if grep -q "skipped checkpoint\|is damaged\|Error\|error" "$1"; then
    echo; echo "FAIL: a resume found a damaged checkpoint or failed:"; cat "$1"; exit 1
  fi
  if grep -q "resumed from" "$1"; then resumed=$((resumed + 1)); else fresh=$((fresh + 1)); fi
}
finish_episode() {  # $1: log of the run that completed
  local got
  got=$(digest "$1")
  if [ "$got" != "$expected" ]; then
    echo; echo "FAIL: episode $((episodes + 1)) ended with digest $got, the uninterrupted run $expected"; exit 1
  fi
  episodes=$((episodes + 1))
  rm -rf "$dir"
}
while [ "$done_kills" -lt "$kills" ]; do
  delay=$(awk -v t="$straight_s" -v r=$((RANDOM % 1000)) 'BEGIN { printf "%.4f", t * 0.6 * r / 1000 }')
  log="$work/run.log"
  "$bin" train --dir "$dir" --steps "$steps" --resume > "$log" 2>&1 &
  pid=$!
  sleep "$delay"
  runs=$((runs + 1))
  if kill -KILL "$pid" 2> /dev/null; then
    wait "$pid" 2> /dev/null || true
    done_kills=$((done_kills + 1))
    # A temporary file left behind: the kill landed inside a checkpoint write.
    if compgen -G "$dir/*.tmp.*" > /dev/null; then partial=$((partial + 1)); fi
    check_log "$log"
    if [ $((done_kills % 10)) -eq 0 ]; then bar; fi
  else
    wait "$pid" || { cat "$log"; echo "FAIL: a run exited with an error"; exit 1; }
    check_log "$log"
    mid_run_finish=$((mid_run_finish + 1))
    finish_episode "$log"
  fi
done
# Complete the last episode without kills.
"$bin" train --dir "$dir" --steps "$steps" --resume > "$work/last.log" 2>&1
check_log "$work/last.log"
finish_episode "$work/last.log"
elapsed=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
echo
echo "kills: $done_kills (of which $partial left a partial checkpoint file: killed mid-write)"
echo "runs: $((runs + 1)); $resumed printed \"resumed from\" (loaded the newest checkpoint), $fresh did not (no checkpoint yet, or killed before loading)"
echo "episodes: $episodes, every one ending with the uninterrupted run's parameters bit for bit ($expected)"
echo "damaged checkpoints found: 0; wall time ${elapsed} s"
echo "PASS: $done_kills kills, 0 corrupt checkpoints, every resume bit-identical"
