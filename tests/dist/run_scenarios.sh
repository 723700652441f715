#!/usr/bin/env bash
# Distributed scenarios across separate mpirun launches (CTest: "dist: kill scenario", "dist: resume
# scenario"). Usage: run_scenarios.sh kill|resume MPIRUN TEST_DIST WORK_DIR
#
# kill:   2 ranks train 30 steps, checkpointing every 2; rank 1 SIGKILLs itself at step 17. The job
#         must end non-zero within 60 s, naming rank 1. Resumed on 2 ranks, it must end with the
#         same parameters, bit for bit, as an uninterrupted 2-rank run. Then once more with mpirun
#         --enable-recovery (mpirun keeps the survivors alive): the survivors' own liveness check must
#         report rank 1 dead within the bound.
# resume: 3 ranks train 12 of 24 steps; 2 ranks resume and finish; the result must equal 24 steps
#         of one process on the global batch (relative error <= 1e-5).
set -uo pipefail
scenario=$1 mpirun=$2 bin=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
digest() { sed -n 's/.*params digest: \([0-9a-f]*\).*/\1/p' "$1" | tail -1; }

case "$scenario" in
  kill)
    "$mpirun" -np 2 "$bin" train --dir "$work/straight" --steps 30 > "$work/straight.log" 2>&1 \
      || { cat "$work/straight.log"; fail "the uninterrupted run failed"; }
    start=$SECONDS
    "$mpirun" -np 2 "$bin" train --dir "$work/killed" --steps 30 --kill-rank 1 --kill-at 17 > "$work/killed.log" 2>&1
    rc=$?
    elapsed=$((SECONDS - start))
    cat "$work/killed.log"
    echo "killed run: exit code $rc after $elapsed s"
    [ "$rc" -ne 0 ] || fail "the job with a killed rank exited 0"
    grep -q "rank 1" "$work/killed.log" || fail "no message names rank 1"
    (( elapsed < 60 )) || fail "took $elapsed s (bound: 60 s)"
    "$mpirun" -np 2 "$bin" train --dir "$work/killed" --steps 30 --resume > "$work/resumed.log" 2>&1 \
      || { cat "$work/resumed.log"; fail "the resumed run failed"; }
    cat "$work/resumed.log"
    grep -q "steps 16..30" "$work/resumed.log" || fail "did not resume from the checkpoint of step 16"
    [ "$(digest "$work/straight.log")" = "$(digest "$work/resumed.log")" ] \
      || fail "resumed parameters differ from the uninterrupted run's"
    # The survivors' own detection (mpirun told not to end the job).
    start=$SECONDS
    BINDERY_DIST_TIMEOUT=50 timeout 120 "$mpirun" -np 3 --enable-recovery "$bin" train --dir "$work/recovery" \
      --steps 30 --kill-rank 1 --kill-at 5 > "$work/recovery.log" 2>&1
    elapsed=$((SECONDS - start))
    cat "$work/recovery.log"
    echo "recovery-mode run: ended after $elapsed s"
    [ "$(grep -c "rank 1 (pid [0-9]* on .*) is dead" "$work/recovery.log")" -ge 2 ] \
      || fail "the two survivors did not both report rank 1 dead"
    (( elapsed < 60 )) || fail "took $elapsed s (bound: 60 s)"
    echo "PASS: kill scenario"
    ;;
  resume)
    "$mpirun" -np 3 "$bin" train --dir "$work/ckpt" --steps 24 --stop-at 12 > "$work/three.log" 2>&1 \
      || { cat "$work/three.log"; fail "the 3-rank run failed"; }
    cat "$work/three.log"
    "$mpirun" -np 2 "$bin" train --dir "$work/ckpt" --steps 24 --resume --check-single > "$work/two.log" 2>&1 \
      || { cat "$work/two.log"; fail "the 2-rank resume failed or differs from one process"; }
    cat "$work/two.log"
    grep -q "steps 12..24" "$work/two.log" || fail "did not resume from step 12"
    grep -q "saved with another number of ranks" "$work/two.log" || fail "no note of the changed rank count"
    echo "PASS: resume scenario"
    ;;
  *) fail "unknown scenario $scenario" ;;
esac
