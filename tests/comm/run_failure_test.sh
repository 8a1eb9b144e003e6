#!/usr/bin/env bash
# Starts a job of comm_fail_rank (fail_rank.cpp) and checks how it ends.
#   run_failure_test.sh MPIEXEC RANKS PROGRAM MODE EXPECT REGEX
# RANKS 0 runs PROGRAM without mpirun (a singleton world of one rank).
# EXPECT "fail": the job must end within 30 s with a non-zero status, no rank
# may have finished normally, and the output must match REGEX (grep -E; "-"
# for none). EXPECT "ok": status 0 and every rank finished normally.
# In both cases no rank's process may outlive the job.
set -u
mpiexec=$1 ranks=$2 program=$3 mode=$4 expect=$5 regex=$6
limit_s=30

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

start_ms=$(date +%s%3N)
if [ "$ranks" = 0 ]; then
  timeout 60 "$program" "$mode" "$dir" >"$dir/output" 2>&1
else
  timeout 60 "$mpiexec" -n "$ranks" "$program" "$mode" "$dir" >"$dir/output" 2>&1
fi
status=$?
elapsed_ms=$(( $(date +%s%3N) - start_ms ))
world=$ranks; [ "$ranks" = 0 ] && world=1

failures=0
problem() { echo "FAIL: $*"; failures=$((failures + 1)); }

echo "mode $mode, $ranks ranks: status $status after ${elapsed_ms} ms"
started=$(ls "$dir" | grep -c '^pid\.')
finished=$(ls "$dir" | grep -c '^done\.')
echo "ranks started: $started, finished normally: $finished"
[ "$started" = "$world" ] || problem "only $started of $world ranks started"

if [ "$expect" = ok ]; then
  [ "$status" = 0 ] || problem "status $status, expected 0"
  [ "$finished" = "$world" ] || problem "$finished of $world ranks finished"
else
  [ "$status" = 124 ] && problem "the job hung (killed by timeout after 60 s)"
  [ "$status" != 0 ] || problem "status 0, expected non-zero"
  [ "$elapsed_ms" -lt $((limit_s * 1000)) ] || problem "took ${elapsed_ms} ms, limit ${limit_s} s"
  [ "$finished" = 0 ] || problem "$finished ranks finished normally after the failure"
fi
if [ "$regex" != "-" ] && ! grep -Eq -- "$regex" "$dir/output"; then
  problem "output does not match: $regex"
fi

# Every rank's process must be gone (mpirun waits for its children, but give
# the kernel a moment to reap them).
sleep 0.5
for f in "$dir"/pid.*; do
  [ -e "$f" ] || continue
  pid=$(cat "$f")
  # A zombie (state Z) has ended; it only waits for its parent to reap it,
  # and an orphan's new parent (PID 1 in a container) may never do so.
  state=$(ps -o stat= -p "$pid" 2>/dev/null)
  if [ -n "$state" ] && [ "${state:0:1}" != Z ]; then
    problem "rank ${f##*.} (pid $pid) is still running"
    kill -9 "$pid" 2>/dev/null
  fi
done

echo "---- job output ----"
cat "$dir/output"
[ "$failures" = 0 ] && echo "PASS" || exit 1
