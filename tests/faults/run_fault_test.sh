#!/usr/bin/env bash
# `sptrain train` under faults (issue 18): kills, full disks, bad run_dirs,
# shared run_dirs, stop signals, threads.
#
#   run_fault_test.sh CASE SPTRAIN SOURCE_DIR
#
# A tiny random model (2 layers, d 32; 4 layers, d 64 for the layouts) on SST-2.
#
# CASE:
#   kill_trials   SIGKILL at random moments of a run that checkpoints every step
#                 (FAULT_TRIALS, default 50; some land inside a write): after each,
#                 the newest checkpoint loads; the run resumed after the last
#                 kill ends with the prompt, bit for bit, of a run never killed
#   layout_resume a checkpoint written at tensor 2 x pipeline 2 resumes at data 4
#                 and continues as it would have: the same losses (1e-5) as the
#                 run that stayed at tensor 2 x pipeline 2
#   bad_run_dir   run_dir is a file, or below one, or on a read-only file system:
#                 a clear error naming it before any training step, nothing written
#   zero_byte     the newest step_*.h5 is empty: resume: auto falls back to the
#                 previous complete checkpoint and says so
#   stale_files   stale .tmp files and a checkpoint more than keep_checkpoints,
#                 as kills leave them: cleaned at start
#   full_disk     run_dir on a small tmpfs that fills up: a clear error naming the
#                 path and the space, non-zero exit, no partial file, the previous
#                 checkpoint intact and resumable (needs mount; skips without)
#   full_tools    init-model, export --format hdf5 and train on a full tmpfs: a
#                 clear error, no crash, no file (or an empty one) left
#   metrics_full  metrics.jsonl on a tmpfs that fills up: the run fails at the
#                 first record that does not fit, naming the file
#   dev_full      train --dry-run, eval, infer and bench --batches-out writing to
#                 /dev/full fail non-zero, naming what was lost
#   overwrite     convert and export with --out equal to their input are refused,
#                 the input untouched
#   lock          a second run on a run_dir in use is refused with a clear error;
#                 the first goes on undisturbed; a lock left by a dead run is taken
#   stopped_exit  USR1 and SIGTERM: checkpoint written and exit status 75
#                 ("stopped, checkpoint written, resumable")
#   term_loading  SIGTERM while start-up is stuck (reading a FIFO that never
#                 comes): the process ends at once (status 143)
#   usr1_loading  USR1 during start-up: the run checkpoints its first step and
#                 exits 75
#   term_blocked  SIGTERM to a rank blocked in a collective (its peer stopped):
#                 the rank ends within parallel.stop_timeout_s (10 s) + 10 s
#   term_twice    a second SIGTERM ends a blocked rank at once, long before
#                 parallel.stop_timeout_s (60 s here)
#   stop_rank     one rank of a 4-rank job (tensor 2 x data 2) SIGSTOPped: the
#                 others abort within parallel.timeout_s (3 s here), naming it;
#                 no process left
#   kill_rank4, kill_rank8
#                 one random rank of a 4-rank (tensor 2 x data 2) and of an
#                 8-rank (tensor 2 x pipeline 2 x data 2) mpirun job SIGKILLed
#                 at a random step: every rank gone within 30 s, non-zero exit,
#                 the failed rank named
#   done_again    a finished run started again says it is already complete
#                 (not "trained 0 steps: final loss 0.0000") and exits 0
#   threads_mask  threads: 0 under `taskset -c 0` gives 1 thread (the affinity
#                 mask), not one per core
set -u
case_name=$1 sptrain=$2 src=$3
failures=0
problem() { echo "FAIL: $*"; failures=$((failures + 1)); }
dir=$(mktemp -d)
mounts=()
pids=()
cleanup() {
  local p m
  for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null; done
  for m in "${mounts[@]}"; do umount "$m"; done
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1
ln -s "$src/data" data
config=$src/configs/tiny_random.yaml
"$sptrain" init-model --out tiny.h5 --layers 2 --d-model 32 --heads 2 > /dev/null || exit 1
common=(--set model.path=tiny.h5 --set train.log_every=1 --set train.eval_every=0
        --set train.eval_max_examples=16 --set train.checkpoint_every=0 --set threads=1)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1

steps_in() { local n; n=$(grep -c '"loss"' "$1" 2>/dev/null); echo "${n:-0}"; }
newest() { ls "$1"/step_*.h5 2> /dev/null | sort | tail -n1; }
ckpt() { printf '%s/step_%06d.h5' "$1" "$2"; }
prompt_npy() { "$sptrain" export "$1" --format npy --out "$2" > /dev/null; }
# Starts a training run in the background (log $1.log); its pid in $pid.
start() {
  local name=$1
  shift
  "$sptrain" train "$config" "${common[@]}" "$@" > "$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
}
# Waits until metrics.jsonl in $1 has $2 steps (while $pid runs).
wait_steps() {
  for _ in $(seq 600); do
    [[ $(steps_in "$1/metrics.jsonl") -ge $2 ]] && return 0
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  cat ./*.log; echo "FAIL: the run did not reach step $2"; exit 1
}
# Waits up to $2 s for $1 to exit; its status in $rc (124 if it did not) and
# the seconds it took in $took.
wait_exit() {
  local t0=$SECONDS
  for _ in $(seq $(($2 * 20))); do kill -0 "$1" 2> /dev/null || break; sleep 0.05; done
  took=$((SECONDS - t0))
  if kill -0 "$1" 2> /dev/null; then rc=124; return; fi
  wait "$1"; rc=$?
}
# mount_tmpfs DIR OPTIONS: a tmpfs at DIR (unmounted at exit), or skip the test.
mount_tmpfs() {
  mkdir -p "$1"
  mount -t tmpfs -o "$2" tmpfs "$1" 2> /dev/null || { echo "skipped: cannot mount a tmpfs here"; exit 77; }
  mounts+=("$dir/$1")
}
# Starts `mpirun -np N sptrain train ...` in the background (log job.log); its
# pid in $pid.
start_mpi() {
  local n=$1
  shift
  mpirun -np "$n" "$sptrain" train "$config" "${common[@]}" "$@" > job.log 2>&1 &
  pid=$!
  pids+=("$pid")
}
# The pids of the ranks mpirun $1 started, by rank, in ${ranks[@]}.
find_ranks() {
  local p r
  ranks=()
  for p in /proc/[0-9]*; do
    [[ $(awk '/^PPid:/ {print $2}' "$p/status" 2>/dev/null) == "$1" ]] || continue
    r=$({ tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep "^OMPI_COMM_WORLD_RANK=" | cut -d= -f2)
    [[ -n $r ]] && ranks[r]=${p#/proc/}
  done
  pids+=("${ranks[@]}")
}
# Fails unless the processes given have all ended (zombies have).
all_gone() {
  local p state
  for p in "$@"; do
    state=$(ps -o stat= -p "$p" 2> /dev/null)
    [[ -z $state || ${state:0:1} == Z ]] || problem "process $p (state $state) is still there"
  done
}

case $case_name in
kill_trials)
  trials=${FAULT_TRIALS:-50}
  killed=(--set train.run_dir=run --set train.checkpoint_every=1 --set train.keep_checkpoints=2
          --set train.resume=auto)
  for t in $(seq "$trials"); do
    done_before=$(steps_in run/metrics.jsonl)
    start trial "${killed[@]}" --set train.steps=1000000
    # Every other trial waits for one more step first (however slow the
    # machine is, the run makes progress and has checkpoints to lose); then a
    # random moment in 0.05..1.25 s: start-up, steps, checkpoint writes.
    (( t % 2 == 0 )) && wait_steps run $((done_before + 1))
    sleep "$(printf '0.%02d' $((5 + RANDOM % 95)))"
    (( RANDOM % 4 == 0 )) && sleep 0.25
    kill -KILL "$pid"
    wait "$pid" 2> /dev/null
    n=$(newest run)
    [[ -z $n ]] && continue
    prompt_npy "$n" newest.npy || { problem "trial $t: the newest checkpoint $n does not load"; break; }
  done
  n=$(newest run)
  [[ -n $n ]] || { problem "no checkpoint after $trials trials"; n=run/step_000000.h5; }
  last=$((10#$(basename "$n" .h5 | cut -d_ -f2)))
  total=$((last + 5))
  echo "$trials kills; newest checkpoint step $last; finishing at step $total"
  "$sptrain" train "$config" "${common[@]}" "${killed[@]}" --set train.steps=$total > resume.log 2>&1 ||
    { cat resume.log; problem "the resumed run failed"; }
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=ref --set train.steps=$total > ref.log 2>&1 ||
    { cat ref.log; problem "the uninterrupted run failed"; }
  prompt_npy "$(ckpt run $total)" run.npy && prompt_npy "$(ckpt ref $total)" ref.npy &&
    cmp run.npy ref.npy || problem "the final prompt after $trials kills differs from the uninterrupted run's"
  ls run/*.tmp* > /dev/null 2>&1 && echo "note: temporary files left by kills: $(ls run/*.tmp* | tr '\n' ' ')"
  ;;

layout_resume)
  "$sptrain" init-model --out tiny4.h5 --layers 4 --d-model 64 --heads 4 --kv-heads 2 > /dev/null || exit 1
  layout=(--set model.path=tiny4.h5 --set parallel.tensor=2 --set parallel.pipeline=2)
  data4=(--set model.path=tiny4.h5 --set parallel.tensor=1 --set parallel.pipeline=1)
  mpi() { mpirun -np 4 "$sptrain" train "$config" "${common[@]}" "$@"; }
  mpi "${layout[@]}" --set train.run_dir=both --set train.steps=4 > a.log 2>&1 || { cat a.log; problem "tp2 x pp2, 4 steps failed"; }
  mpi "${data4[@]}" --set train.run_dir=both --set train.steps=8 > b.log 2>&1 || { cat b.log; problem "resume at data 4 failed"; }
  mpi "${layout[@]}" --set train.run_dir=ref --set train.steps=8 > c.log 2>&1 || { cat c.log; problem "tp2 x pp2, 8 steps failed"; }
  grep -q "resuming from both/step_000004.h5" b.log || problem "the data-4 run did not resume from step 4"
  python3 - both/metrics.jsonl ref/metrics.jsonl <<'EOF' || problem "the resumed run does not continue as the uninterrupted one"
import json, sys
def losses(p):
    return {r["step"]: r["loss"] for r in map(json.loads, open(p)) if "loss" in r}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert sorted(a) == sorted(b) == list(range(1, 9)), (sorted(a), sorted(b))
worst = max(abs(a[s] - b[s]) / abs(b[s]) for s in a)
print(f"steps 1..8, largest relative loss difference {worst:.2e}")
sys.exit(0 if worst <= 1e-5 else 1)
EOF
  ;;

bad_run_dir)
  touch afile
  for rd in afile afile/sub; do
    "$sptrain" train "$config" "${common[@]}" --set train.run_dir=$rd --set train.steps=3 > bad.log 2>&1 &&
      problem "run_dir $rd: the run succeeded"
    cat bad.log
    grep -q "$rd" bad.log || problem "run_dir $rd: the error does not name it"
    grep -q "^step 1/" bad.log && problem "run_dir $rd: a training step ran before the error"
  done
  [[ ! -s afile ]] || problem "something was written into afile"
  mount_tmpfs ro ro,size=64k
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=ro/run --set train.steps=3 > ro.log 2>&1 &&
    problem "run_dir on a read-only file system: the run succeeded"
  cat ro.log
  grep -q "ro/run.*Read-only file system" ro.log || problem "run_dir on a read-only file system: no clear error naming it"
  grep -q "^step 1/" ro.log && problem "run_dir on a read-only file system: a training step ran before the error"
  ;;

zero_byte)
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.checkpoint_every=2 \
    --set train.keep_checkpoints=5 --set train.steps=4 > a.log 2>&1 || { cat a.log; exit 1; }
  : > run/step_000006.h5
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.steps=6 > b.log 2>&1 ||
    problem "resume: auto with an empty newest checkpoint failed"
  cat b.log
  grep -q "resuming from run/step_000004.h5" b.log || problem "it did not fall back to step 4"
  grep -q "step_000006.h5" b.log || problem "it did not say why it skipped step_000006.h5"
  ;;

stale_files)
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.checkpoint_every=1 \
    --set train.keep_checkpoints=2 --set train.steps=4 > a.log 2>&1 || { cat a.log; exit 1; }
  cp run/step_000003.h5 run/step_000002.h5      # one more than keep_checkpoints
  echo partial > run/step_000005.h5.tmp         # writes cut by a kill
  echo partial > run/step_000006.h5.tmp
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.checkpoint_every=1 \
    --set train.keep_checkpoints=2 --set train.steps=5 > b.log 2>&1 || { cat b.log; problem "the resumed run failed"; }
  ls run/*.tmp > /dev/null 2>&1 && problem "stale temporary files are left: $(ls run/*.tmp | tr '\n' ' ')"
  [[ $(ls run/step_*.h5 | wc -l) -le 2 ]] || problem "more than keep_checkpoints (2) checkpoints: $(ls run | tr '\n' ' ')"
  ;;

full_disk)
  mount_tmpfs disk size=400k
  # Checkpoints of a d 32 x 8 prompt are small: fill the disk up to a margin
  # that lets a few be written, then the next one fails.
  head -c 300k /dev/zero > disk/filler
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=disk/run --set train.checkpoint_every=1 \
    --set train.keep_checkpoints=1000 --set train.steps=100000 > full.log 2>&1
  rc=$?
  tail -n 5 full.log
  [[ $rc != 0 ]] || problem "the run exited 0 on a full disk"
  (( rc < 128 )) || problem "the run died of signal $((rc - 128)) instead of exiting with an error"
  grep -Eq "disk/run.*(No space left|space)" full.log || problem "the error does not name the path and the space"
  ls disk/run/*.tmp* > /dev/null 2>&1 && problem "a partial file is left: $(ls disk/run/*.tmp*)"
  n=$(newest disk/run)
  [[ -n $n ]] || problem "no checkpoint before the disk filled"
  [[ -n $n ]] && { prompt_npy "$n" last.npy || problem "the newest checkpoint $n does not load"; }
  rm disk/filler
  last=$((10#$(basename "$n" .h5 | cut -d_ -f2)))
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=disk/run --set train.steps=$((last + 2)) > resume.log 2>&1 ||
    { cat resume.log; problem "the run does not resume once there is space"; }
  ;;

full_tools)
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.steps=1 > a.log 2>&1 || { cat a.log; exit 1; }
  mount_tmpfs disk size=64k
  head -c 60k /dev/zero > disk/filler
  # Each must fail with the reason, not crash (it used to: SIGSEGV in HDF5's
  # exit handlers, and init-model renamed its failed file to the real name).
  check_full() {  # NAME RC LOG FILE
    (( $2 != 0 && $2 < 128 )) || problem "$1 on a full disk: exit status $2, not an error"
    grep -q "No space left on device" "$3" || { cat "$3"; problem "$1 on a full disk: the error does not say the disk is full"; }
    ls "$4" "$4".tmp > /dev/null 2>&1 && problem "$1 on a full disk left $(ls "$4"*)"
  }
  "$sptrain" init-model --out disk/model.h5 --layers 2 --d-model 32 --heads 2 > init.log 2>&1
  check_full init-model $? init.log disk/model.h5
  "$sptrain" export run/step_000001.h5 --format hdf5 --out disk/prompt.h5 > export.log 2>&1
  check_full "export --format hdf5" $? export.log disk/prompt.h5
  head -c 4k /dev/zero > disk/more 2> /dev/null  # no byte free at all
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=disk/run --set train.steps=2 > train.log 2>&1
  rc=$?
  cat train.log
  (( rc != 0 && rc < 128 )) || problem "train on a full disk: exit status $rc, not an error"
  grep -q "disk/run.*No space left on device" train.log || problem "train on a full disk: no clear error naming run_dir"
  grep -q "^step 1/" train.log && problem "train on a full disk: a step ran before the error"
  ls disk/run/config.yaml disk/run/metrics.jsonl > /dev/null 2>&1 && problem "train on a full disk left $(ls disk/run)"
  ;;

metrics_full)
  mount_tmpfs disk size=32k
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=disk/run --set train.steps=3000 > m.log 2>&1
  rc=$?
  tail -n 3 m.log
  (( rc != 0 && rc < 128 )) || problem "metrics.jsonl on a full disk: exit status $rc, not an error"
  grep -q "disk/run/metrics.jsonl: write failed: No space left on device" m.log ||
    problem "no error naming metrics.jsonl and the full disk"
  logged=$(steps_in disk/run/metrics.jsonl)
  last=$(grep -o "^step [0-9]*" m.log | tail -n1 | cut -d' ' -f2)
  echo "metrics.jsonl holds $logged whole records; the run stopped at step ${last:-0}"
  (( ${last:-0} <= logged + 1 )) || problem "training went on after metrics.jsonl stopped growing"
  ;;

dev_full)
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.steps=1 > a.log 2>&1 || { cat a.log; exit 1; }
  expect_lost() {  # WHAT RC LOG TEXT
    (( $2 != 0 && $2 < 128 )) || problem "$1 to /dev/full: exit status $2"
    grep -q "$4" "$3" || { cat "$3"; problem "$1 to /dev/full: no error saying '$4'"; }
  }
  "$sptrain" train "$config" "${common[@]}" --dry-run > /dev/full 2> dry.log
  expect_lost "train --dry-run" $? dry.log "standard output: write failed"
  "$sptrain" eval "$config" "${common[@]}" --prompt run/step_000001.h5 > /dev/full 2> eval.log
  expect_lost eval $? eval.log "standard output: write failed"
  echo '{"task": "sst2", "text": "a gem of a film"}' |
    "$sptrain" infer --model tiny.h5 --prompt sst2=run/step_000001.h5 > /dev/full 2> infer.log
  expect_lost infer $? infer.log "standard output: write failed"
  "$sptrain" bench "$config" "${common[@]}" --steps 1 --warmup 0 --batches-out /dev/full > /dev/null 2> bench.log
  expect_lost "bench --batches-out" $? bench.log "/dev/full: write failed"
  ;;

overwrite)
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.steps=1 > a.log 2>&1 || { cat a.log; exit 1; }
  cp tiny.h5 x.gguf
  cp run/step_000001.h5 before.h5
  "$sptrain" convert --from gguf x.gguf --out ./x.gguf > c.log 2>&1 && problem "convert --out its own source was accepted"
  cat c.log
  grep -q "is the input" c.log || problem "convert: no clear error"
  cmp -s tiny.h5 x.gguf || problem "convert replaced its source"
  "$sptrain" export run/step_000001.h5 --format hdf5 --out run/../run/step_000001.h5 > e.log 2>&1 &&
    problem "export --out its own checkpoint was accepted"
  cat e.log
  grep -q "is the input" e.log || problem "export: no clear error"
  cmp -s before.h5 run/step_000001.h5 || problem "export replaced the checkpoint"
  ;;

lock)
  start first --set train.run_dir=run --set train.steps=1000000
  first=$pid
  wait_steps run 2
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.steps=5 > second.log 2>&1 &&
    problem "a second run on the same run_dir was accepted"
  cat second.log
  grep -Eiq "run.*(in use|locked|lock|another)" second.log || problem "no clear error naming the run_dir in use"
  kill -0 "$first" 2> /dev/null || problem "the first run stopped"
  kill -USR1 "$first"
  wait_exit "$first" 30
  steps=$(grep '"loss"' run/metrics.jsonl | grep -o '"step":[0-9]*' | cut -d: -f2)
  [[ $(sort -n <<< "$steps" | uniq -d) == "" ]] || problem "metrics.jsonl has steps logged twice (two writers)"
  # A lock whose holder died (SIGKILL leaves its pid in the file) is free.
  echo "pid 999999 on host elsewhere" > run/sptrain.lock
  "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.steps=$(($(steps_in run/metrics.jsonl) + 1)) \
    > third.log 2>&1 || { cat third.log; problem "a lock left by a dead run was not taken over"; }
  grep -q "pid 999999 on host elsewhere is free again" third.log || problem "no note about the dead run's lock"
  ;;

stopped_exit)
  for sig in USR1 TERM; do
    start run_$sig --set train.run_dir=run_$sig --set train.steps=1000000
    wait_steps run_$sig 2
    kill -"$sig" "$pid"
    wait_exit "$pid" 30
    cat "run_$sig.log" | tail -n 3
    [[ $rc != 124 ]] || { problem "$sig: still running 30 s later"; continue; }
    [[ $rc == 75 ]] || problem "$sig: exit status $rc, not 75 ('stopped, checkpoint written, resumable')"
    [[ -f $(ckpt run_$sig "$(steps_in run_$sig/metrics.jsonl)") ]] || problem "$sig: no checkpoint of the last step"
  done
  ;;

term_loading)
  # A FIFO nobody writes: start-up blocks reading task.train, as on a hung file system.
  mkfifo stuck.tsv
  start loading --set task.train=stuck.tsv --set train.run_dir=run --set train.steps=3
  sleep 1
  kill -TERM "$pid"
  wait_exit "$pid" 10
  cat loading.log
  [[ $rc == 143 ]] || problem "SIGTERM during start-up: exit status $rc, not 143 (ended by SIGTERM)"
  grep -q "SIGTERM before training started: ending now" loading.log || problem "no message saying why it ended"
  ;;

usr1_loading)
  mkfifo slow.tsv
  start loading --set task.train=slow.tsv --set train.run_dir=run --set train.steps=5
  sleep 1
  kill -USR1 "$pid"
  sleep 0.2
  cat "$src/data/sst2/train.tsv" > slow.tsv  # start-up goes on
  wait_exit "$pid" 60
  cat loading.log
  [[ $rc == 75 ]] || problem "USR1 during start-up: exit status $rc, not 75"
  [[ -f $(ckpt run 1) && ! -f $(ckpt run 2) ]] || problem "USR1 during start-up: no checkpoint of step 1 only ($(ls run | tr '\n' ' '))"
  ;;

term_blocked | term_twice)
  # Rank 1 stopped: rank 0 blocks in the next collective; SIGTERM must end it
  # after parallel.stop_timeout_s (term_blocked), a second one at once (term_twice).
  "$sptrain" init-model --out tiny4.h5 --layers 4 --d-model 64 --heads 4 --kv-heads 2 > /dev/null || exit 1
  deadline=10
  [[ $case_name == term_twice ]] && deadline=60
  start_mpi 2 --set model.path=tiny4.h5 --set parallel.tensor=2 --set parallel.stop_timeout_s=$deadline \
    --set train.run_dir=run --set train.steps=1000000
  wait_steps run 2
  find_ranks "$pid"
  [[ -n ${ranks[0]:-} && -n ${ranks[1]:-} ]] || { echo "FAIL: ranks not found"; exit 1; }
  kill -STOP "${ranks[1]}"
  sleep 1  # rank 0 reaches the collective that waits for rank 1
  kill -TERM "${ranks[0]}"
  if [[ $case_name == term_twice ]]; then
    sleep 0.5
    kill -TERM "${ranks[0]}"
  fi
  wait_exit "${ranks[0]}" $((deadline + 10))
  kill -KILL "${ranks[1]}" 2> /dev/null
  wait_exit "$pid" 10
  tail -n 5 job.log
  if [[ $case_name == term_blocked ]]; then
    grep -q "rank 0/2 .*SIGTERM asked to stop .* ending now, without a checkpoint" job.log ||
      problem "rank 0 did not say why it ended"
  else
    (( took < 10 )) || problem "rank 0 ended $took s after the second SIGTERM, not at once"
    grep -q "a second SIGTERM: ending now" job.log || problem "rank 0 did not say why it ended"
  fi
  [[ $rc != 124 ]] || problem "rank 0 was still waiting $((deadline + 10)) s after SIGTERM"
  ;;

stop_rank | kill_rank4 | kill_rank8)
  # One rank of an mpirun job (tensor 2 x data 2, or x pipeline 2 with 8
  # ranks) SIGSTOPped (rank 2 after step 2) or SIGKILLed (a random rank at a
  # random step).
  n=4 sig=KILL victim=$((RANDOM % 4)) at=$((1 + RANDOM % 5)) limit=30 extra=()
  case $case_name in
    stop_rank) sig=STOP victim=2 at=2 limit=60 extra=(--set parallel.timeout_s=3) ;;
    kill_rank8) n=8 victim=$((RANDOM % 8)) extra=(--set parallel.pipeline=2) ;;
  esac
  "$sptrain" init-model --out tiny4.h5 --layers 4 --d-model 64 --heads 4 --kv-heads 2 > /dev/null || exit 1
  start_mpi "$n" --set model.path=tiny4.h5 --set parallel.tensor=2 "${extra[@]}" --set train.run_dir=run \
    --set train.steps=1000000
  wait_steps run "$at"
  find_ranks "$pid"
  [[ ${#ranks[@]} == "$n" ]] || { echo "FAIL: ranks not found"; exit 1; }
  kill -"$sig" "${ranks[victim]}"
  wait_exit "$pid" "$limit"
  tail -n 12 job.log
  echo "rank $victim of $n got SIG$sig after step $at: the job ended $took s later (status $rc)"
  [[ $rc != 124 ]] || problem "the job was still running $limit s after rank $victim got SIG$sig"
  [[ $rc != 0 ]] || problem "the job exited 0"
  named="process rank $victim with PID [0-9]* on node .* exited on signal 9"  # mpirun's words
  [[ $sig == STOP ]] && named="world rank $victim does not respond (stopped, stuck or dead"
  grep -q "$named" job.log || problem "no message naming rank $victim"
  sleep 0.5
  all_gone "${ranks[@]}"
  ;;

done_again)
  for _ in 1 2; do
    "$sptrain" train "$config" "${common[@]}" --set train.run_dir=run --set train.steps=2 > again.log 2>&1 ||
      { cat again.log; problem "the run failed"; }
  done
  cat again.log
  grep -q "trained 0 steps" again.log && problem "the second start says 'trained 0 steps'"
  grep -Eiq "already (complete|finished|done)" again.log || problem "the second start does not say the run is already complete"
  ;;

threads_mask)
  command -v taskset > /dev/null || { echo "skipped: no taskset"; exit 77; }
  (( $(nproc --all) > 1 )) || { echo "skipped: one core only: nothing to tell apart"; exit 77; }
  taskset -c 0 "$sptrain" train "$config" "${common[@]}" --set threads=0 --set train.run_dir=run \
    --set train.steps=1 > t.log 2>&1 || { cat t.log; problem "the run failed"; }
  grep -o "| cpu ([0-9]* threads" t.log
  grep -q "| cpu (1 threads" t.log || problem "threads: 0 on one allowed CPU did not give 1 thread"
  ;;

*) echo "unknown case $case_name"; exit 2 ;;
esac

if ((failures)); then echo "$failures failure(s)"; exit 1; fi
echo "ok: $case_name"
