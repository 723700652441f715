#!/usr/bin/env bash
# SIGKILL the training at random moments, again and again; every restart resumes from the latest
# checkpoint; the final weights must equal an uninterrupted run's bit for bit.
#
#   kill_resume_test.sh ./02_imagebind_digits WORK_DIR [KILLS]
set -euo pipefail
exe=$1
work=$2
kills=${3:-5}
args=(--quick --stage1-steps 100 --stage2-steps 100 --no-supervised --checkpoint-every 3 --eval-every 30 --threads 1 --no-progress)
rm -rf "$work"
mkdir -p "$work"

start=$(date +%s.%N)
"$exe" "${args[@]}" --out "$work/straight" > "$work/straight.log" 2>&1
straight=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "uninterrupted run: ${straight} s"

# Kill moments: uniform in [0.10, 0.45] of the straight run's time (each restart resumes, so the
# work left shrinks), from a fixed seed (reproducible).
RANDOM=20261127
resumed=0
for ((k = 1; k <= kills; ++k)); do
  delay=$(awk -v t="$straight" -v r=$((10 + RANDOM % 35)) 'BEGIN { printf "%.2f", t * r / 100 }')
  "$exe" "${args[@]}" --out "$work/killed" --resume > "$work/killed-$k.log" 2>&1 &
  pid=$!
  sleep "$delay"
  if kill -0 "$pid" 2> /dev/null; then
    kill -KILL "$pid"
    wait "$pid" 2> /dev/null || true
    echo "kill $k: SIGKILL after ${delay} s; checkpoints now: $(ls "$work/killed/checkpoints"/* 2> /dev/null | tr '\n' ' ')"
  else
    wait "$pid" || true
    echo "kill $k: the run had already finished after ${delay} s"
  fi
  # Every checkpoint left behind must be complete: a resume never skips a damaged one.
  if grep -q "skipped" "$work/killed-$k.log"; then
    echo "FAIL: a damaged checkpoint was found"; cat "$work/killed-$k.log"; exit 1
  fi
  grep -q "resumed from" "$work/killed-$k.log" && resumed=$((resumed + 1))
done
"$exe" "${args[@]}" --out "$work/killed" --resume > "$work/final.log" 2>&1
grep -q "resumed from" "$work/final.log" && resumed=$((resumed + 1))
echo "runs that resumed from a checkpoint: $resumed"
if [ "$resumed" -lt 2 ]; then
  echo "FAIL: fewer than 2 runs resumed (kills too early or too late?)"; exit 1
fi
if cmp "$work/straight/model.safetensors" "$work/killed/model.safetensors"; then
  echo "PASS: the final weights after $kills kills equal the uninterrupted run's, bit for bit"
else
  echo "FAIL: the final weights differ"; exit 1
fi
