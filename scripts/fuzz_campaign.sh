#!/usr/bin/env bash
# A long fuzzing campaign that adds up across runs, sessions and machines (docs/reliability.md).
#   scripts/fuzz_campaign.sh                     # every target up to 10 M executions, 600 s chunks
#   GOAL=20000000 scripts/fuzz_campaign.sh npy   # one target, another goal
#   JOBS=2 nice -n 19 scripts/fuzz_campaign.sh   # two libFuzzer workers, behind other work
# Each chunk is one scripts/fuzz.sh run of one target (the target furthest from the goal first); its
# executions and findings are appended to docs/fuzz-campaign.tsv, the ledger kept in the repository,
# so the totals survive the build folder. The campaign stops at the first chunk with a finding (fix
# it, keep the input in fuzz/regressions/, go on), when every target has reached the goal, or before
# the next chunk when the file $WORK/PAUSE exists (remove it to go on: a timing run wants quiet
# cores). `scripts/fuzz_campaign.sh --table` prints the totals as docs/reliability.md shows them.
# Environment: GOAL, CHUNK (seconds per chunk), JOBS, BUILD_DIR, WORK as scripts/fuzz.sh; MAX_LEN
# overrides the per-target default below.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ledger="$root/docs/fuzz-campaign.tsv"
goal="${GOAL:-10000000}"
chunk="${CHUNK:-600}"
build="${BUILD_DIR:-$root/build-fuzz}"
work="${WORK:-$build/fuzz-work}"

total_of() { awk -F'\t' -v t="$1" '$2 == t { s += $5 } END { print s + 0 }' "$ledger"; }

if [ "${1:-}" = "--table" ]; then
  printf '| Target | Chunks | Seconds | Executions | Findings |\n|---|---:|---:|---:|---:|\n'
  awk -F'\t' 'NR > 1 { n[$2]++; s[$2] += $4; e[$2] += $5; f[$2] += $6 }
    END { for (t in n) printf "| `%s` | %d | %d | %d | %d |\n", t, n[t], s[t], e[t], f[t] }' "$ledger" | sort
  exit 0
fi

available=$(cd "$root/fuzz" && ls fuzz_*.cpp | sed 's/^fuzz_//; s/\.cpp$//')
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^BINDERY_FFMPEG_LIBS_FOUND:INTERNAL=1' "$build/CMakeCache.txt"; then
  available=$(echo "$available" | grep -v '^video$')
fi
targets="${*:-$available}"
mkdir -p "$work"

while true; do
  if [ -e "$work/PAUSE" ]; then
    echo "fuzz_campaign: $work/PAUSE exists; stopping before the next chunk"
    exit 0
  fi
  # The target furthest from the goal.
  next="" least="$goal"
  for t in $targets; do
    have=$(total_of "$t")
    if [ "$have" -lt "$least" ]; then least="$have" next="$t"; fi
  done
  if [ -z "$next" ]; then
    echo "fuzz_campaign: every target has $goal executions or more"
    "$0" --table
    exit 0
  fi
  # Long inputs only slow the text targets down: CLIP keeps 77 tokens, and the unit tests and the
  # committed long-word inputs (replayed whole) cover the caps on long text.
  max_len="${MAX_LEN:-}"
  case "$next" in text | tokenizer) max_len="${MAX_LEN:-512}" ;; esac
  echo "== fuzz_campaign: $next has $least of $goal executions; $chunk s more"
  artifacts() { { find "$work/artifacts/$next" -type f 2>/dev/null || true; } | wc -l; }  # 0 at first
  before=$(artifacts)
  status=0
  MAX_LEN="$max_len" BUILD_DIR="$build" WORK="$work" "$root/scripts/fuzz.sh" "$chunk" "$next" >"$work/campaign-chunk.out" 2>&1 ||
    status=$?
  row=$(grep -E "^$next +\|" "$work/campaign-chunk.out" | tail -1 || true)
  if [ -z "$row" ]; then
    echo "fuzz_campaign: fuzz.sh gave no result for $next (exit $status):" >&2
    tail -20 "$work/campaign-chunk.out" >&2
    exit 2
  fi
  seconds=$(echo "$row" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }')
  execs=$(echo "$row" | awk -F'|' '{ gsub(/ /, "", $3); print $3 }')
  findings=$(( $(artifacts) - before ))
  [ "$execs" = "?" ] && execs=0
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u '+%F %T')" "$next" "${JOBS:-1}" "$seconds" "$execs" "$findings" \
    "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')" >>"$ledger"
  echo "   $next: $seconds s, $execs executions, $findings findings; now $(total_of "$next")"
  if [ "$findings" -gt 0 ]; then
    echo "fuzz_campaign: a finding in $work/artifacts/$next/: replay it with $build/fuzz/fuzz_$next <file>" >&2
    exit 1
  fi
done
