#!/usr/bin/env bash
# The batch scripts of cluster/ without Slurm: a fake `srun` and `scontrol` on
# PATH, Slurm's variables set by hand. Fast checks of the scripts' own logic;
# slurm_jobs_test.sh runs them on a real Slurm.
#
#   run_sbatch_test.sh CASE SPTRAIN SOURCE_DIR
#
# `srun OPTIONS... PROGRAM ARGS` appends its arguments to srun.log and runs the
# program in its place (so the script's USR1 reaches sptrain, as srun forwards
# it); with FAKE_SRUN_RUN=0 it only records them. `scontrol` appends its
# arguments to scontrol.log and exits FAKE_SCONTROL_RC (default 0).
#
# CASE:
#   requeue   USR1 mid-run: checkpoint of that step, exit 0, `scontrol requeue
#             $SLURM_JOB_ID`; the requeued job resumes at the next step
#   refused   the requeue fails (--no-requeue, site policy): the script exits
#             non-zero and says so (it used to exit 0: a COMPLETED unfinished run)
#   early     USR1 before the ranks start: no rank is started, the job requeues
#   starting  USR1 while srun starts the ranks, which die of it (srun exits
#             128+USR1, or 128+TERM once --kill-on-bad-exit ended the others):
#             the job requeues; any other failure status is passed on, no requeue
#   badconfig a configuration that does not load: one clear error, no rank started
#   threads   --cpus-per-task reaches srun (srun 22.05 does not inherit it) and
#             sptrain's threads; the scripts ask Slurm for CPUs
#   array     a job array with --sweep: every task its own value and run_dir;
#             an index past the sweep's values is an error
#   gpu       sptrain_gpu.sbatch: srun's --cpus-per-task and --cpu-bind, backend
#             cuda, one GPU per rank or a clear error, messages naming the script
set -u
case_name=$1 sptrain=$2 src=$3
failures=0
problem() { echo "FAIL: $*"; failures=$((failures + 1)); }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
mkdir bin configs
cat > bin/srun <<FAKE
#!/usr/bin/env bash
echo "\$*" >> "$dir/srun.log"
[[ \${FAKE_SRUN_RUN:-1} == 1 ]] || exit 0
while [[ \$# -gt 0 && \$1 == -* ]]; do shift; done
exec "\$@"
FAKE
cat > bin/scontrol <<FAKE
#!/usr/bin/env bash
echo "\$*" >> "$dir/scontrol.log"
[[ \${FAKE_SCONTROL_RC:-0} == 0 ]] || echo "scontrol: error: Requested operation is presently disabled" >&2
exit \${FAKE_SCONTROL_RC:-0}
FAKE
chmod +x bin/srun bin/scontrol
export PATH="$dir/bin:$PATH" SLURM_JOB_ID=4242 SPTRAIN="$sptrain" SPTRAIN_HOME="$src"
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_JOB_ID SLURM_CPUS_PER_TASK SLURM_TASKS_PER_NODE SLURM_GPUS_ON_NODE
ln -s "$src/data" data
cp "$src/configs/tiny_random.yaml" configs/
"$sptrain" init-model --out tiny.h5 --layers 2 --d-model 32 --heads 2 > /dev/null || exit 1
common=(--set model.path=tiny.h5 --set train.run_dir=run --set train.checkpoint_every=0
        --set train.eval_every=0 --set train.eval_max_examples=32 --set train.log_every=1
        --set train.resume=auto --set threads=1)
cpu_script=$src/cluster/sptrain_cpu.sbatch
gpu_script=$src/cluster/sptrain_gpu.sbatch

steps_in() { local n; n=$(grep -c '"loss"' "$1" 2>/dev/null); echo "${n:-0}"; }

# Runs the CPU script in the background (log job.log) until its run has done
# $1 steps; leaves its pid in $job.
start_long_job() {
  bash "$cpu_script" configs/tiny_random.yaml "${common[@]}" --set train.steps=1000000 > job.log 2>&1 &
  job=$!
  for _ in $(seq 1 600); do
    [[ $(steps_in run/metrics.jsonl) -ge $1 ]] && return
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  cat job.log; echo "FAIL: the job did not start training"; exit 1
}
# Waits up to 30 s for the job started above to end; leaves its status in $rc.
wait_job() {
  for _ in $(seq 1 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2>/dev/null; then
    kill -9 "$job"; cat job.log; echo "FAIL: the job did not stop within 30 s of USR1"; exit 1
  fi
  wait "$job"; rc=$?
  cat job.log
}

case $case_name in
requeue)
  start_long_job 3
  kill -USR1 "$job"
  wait_job
  [[ $rc == 0 ]] || problem "the stopped job exited $rc, not 0"
  stopped=$(steps_in run/metrics.jsonl)
  ckpt=$(printf 'run/step_%06d.h5' "$stopped")
  [[ -f "$ckpt" ]] || problem "no checkpoint $ckpt of the step the job stopped at ($(ls run | tr '\n' ' '))"
  ls run/*.tmp* > /dev/null 2>&1 && problem "a temporary checkpoint was left behind"
  [[ "$(cat scontrol.log 2>/dev/null)" == "requeue 4242" ]] ||
    problem "scontrol was called with '$(cat scontrol.log 2>/dev/null)', not 'requeue 4242'"
  (( stopped < 1000000 )) || problem "the job ran to the end instead of stopping"

  # The requeued job: same command, a few steps more to go.
  total=$((stopped + 3))
  bash "$cpu_script" configs/tiny_random.yaml "${common[@]}" --set train.steps=$total > job2.log 2>&1
  rc=$?
  cat job2.log
  [[ $rc == 0 ]] || problem "the requeued job exited $rc"
  first=$(grep '"loss"' run/metrics.jsonl | sed -n "$((stopped + 1))p" | sed -E 's/.*"step":([0-9]+).*/\1/')
  [[ "$first" == "$((stopped + 1))" ]] ||
    problem "the requeued job's first step is '$first', not $((stopped + 1)) (it did not resume)"
  [[ $(steps_in run/metrics.jsonl) == "$total" ]] ||
    problem "$(steps_in run/metrics.jsonl) steps in metrics.jsonl after both jobs, not $total"
  [[ $(wc -l < scontrol.log) == 1 ]] || problem "the finished job asked for another requeue"
  ;;

refused)
  export FAKE_SCONTROL_RC=1
  start_long_job 2
  kill -USR1 "$job"
  wait_job
  [[ $rc != 0 ]] || problem "the job exited 0 although its requeue failed (an unfinished run would end COMPLETED)"
  grep -q "sptrain_cpu.sbatch: error: scontrol requeue 4242 failed" job.log ||
    problem "no message saying the requeue failed"
  [[ -f $(printf 'run/step_%06d.h5' "$(steps_in run/metrics.jsonl)") ]] || problem "no checkpoint of the step it stopped at"
  ;;

early)
  # The configuration check before srun is the moment: a fake sptrain sends
  # the batch script USR1 from there, then runs the real one.
  cat > bin/sptrain-early <<FAKE
#!/usr/bin/env bash
[[ " \$* " == *" --dry-run "* ]] && kill -USR1 "\$(cat "$dir/script.pid")"
exec "$sptrain" "\$@"
FAKE
  chmod +x bin/sptrain-early
  (echo "$BASHPID" > script.pid; SPTRAIN=$dir/bin/sptrain-early exec bash "$cpu_script" \
     configs/tiny_random.yaml "${common[@]}" --set train.steps=5) > job.log 2>&1
  rc=$?
  cat job.log
  [[ $rc == 0 ]] || problem "the job exited $rc, not 0"
  [[ ! -e srun.log ]] || problem "the ranks were started after the stop request: srun $(cat srun.log)"
  [[ "$(cat scontrol.log 2>/dev/null)" == "requeue 4242" ]] ||
    problem "scontrol was called with '$(cat scontrol.log 2>/dev/null)', not 'requeue 4242'"
  ;;

starting)
  # A fake srun that records its start, then ends as srun does when the
  # forwarded USR1 reached the ranks before sptrain's handler: status $status.
  cat > bin/srun <<FAKE
#!/usr/bin/env bash
trap 'exit \$FAKE_SRUN_STATUS' USR1
echo "\$*" >> "$dir/srun.log"
while :; do sleep 0.05; done
FAKE
  for status in 138 143 1; do
    rm -f srun.log scontrol.log
    FAKE_SRUN_STATUS=$status bash "$cpu_script" configs/tiny_random.yaml "${common[@]}" --set train.steps=5 \
      > job.log 2>&1 &
    job=$!
    for _ in $(seq 1 300); do [[ -s srun.log ]] && break; sleep 0.1; done
    [[ -s srun.log ]] || { cat job.log; problem "srun $status: srun was not started"; kill -9 "$job"; continue; }
    kill -USR1 "$job"
    wait_job
    if [[ $status == 1 ]]; then
      [[ $rc == 1 ]] || problem "srun 1 after USR1: the job exited $rc, not srun's 1"
      [[ ! -e scontrol.log ]] || problem "srun 1 after USR1 (a failure): scontrol was called with '$(cat scontrol.log)'"
    else
      [[ $rc == 0 ]] || problem "srun $status after USR1: the job exited $rc, not 0 (requeued)"
      [[ "$(cat scontrol.log 2>/dev/null)" == "requeue 4242" ]] ||
        problem "srun $status after USR1: scontrol was called with '$(cat scontrol.log 2>/dev/null)', not 'requeue 4242'"
    fi
  done
  ;;

badconfig)
  bash "$cpu_script" configs/tiny_random.yaml "${common[@]}" --set train.steps=-3 > job.log 2>&1 &&
    problem "the job exited 0"
  cat job.log
  grep -q "sptrain_cpu.sbatch: error: the configuration does not load (above); no rank was started" job.log ||
    problem "no clear error"
  [[ ! -e srun.log ]] || problem "ranks were started: srun $(cat srun.log)"
  ;;

threads)
  for s in "$cpu_script" "$gpu_script"; do
    grep -Eq '^#SBATCH --cpus-per-task=[0-9]+' "$s" || problem "$(basename "$s") asks Slurm for no --cpus-per-task"
  done
  SLURM_CPUS_PER_TASK=3 bash "$cpu_script" configs/tiny_random.yaml "${common[@]}" --set threads=0 \
    --set train.steps=1 > job.log 2>&1
  rc=$?
  cat job.log
  [[ $rc == 0 ]] || problem "the job exited $rc"
  grep -q -- "--cpus-per-task=3 " srun.log || problem "srun was not given --cpus-per-task=3: srun $(cat srun.log)"
  # The script's threads=3 comes before the user's arguments, so the user's
  # threads=0 (sptrain picks) wins.
  grep -q -- "--set threads=3 .*--set threads=0" srun.log ||
    problem "sptrain was not given threads=3 before the user's arguments: srun $(cat srun.log)"
  rm -f srun.log
  SLURM_CPUS_PER_TASK=3 bash "$cpu_script" configs/tiny_random.yaml --set model.path=tiny.h5 \
    --set train.run_dir=run3 --set train.steps=1 --set train.eval_max_examples=8 > job3.log 2>&1 ||
    { cat job3.log; problem "the job without a threads setting failed"; }
  grep -q '^threads: 3$' run3/config.yaml || problem "sptrain did not run with threads: 3 ($(grep threads run3/config.yaml))"
  ;;

array)
  export SLURM_ARRAY_JOB_ID=4240
  for i in 0 1; do
    SLURM_ARRAY_TASK_ID=$i SLURM_JOB_ID=$((4240 + i)) bash "$cpu_script" configs/tiny_random.yaml \
      "${common[@]}" --set train.steps=2 --sweep optim.lr=0.1,0.02 > job$i.log 2>&1 &
  done
  wait
  cat job0.log job1.log
  for pair in 0:0.1 1:0.02; do
    i=${pair%%:*} lr=${pair#*:}
    d="run/optim.lr=$lr"
    grep -q "array 4240, index $i" "job$i.log" || problem "task $i's log does not say its array index"
    grep -q "^  lr: $lr$" "$d/config.yaml" 2>/dev/null || problem "task $i did not train with lr $lr in $d"
    [[ $(steps_in "$d/metrics.jsonl") == 2 ]] || problem "$d/metrics.jsonl has $(steps_in "$d/metrics.jsonl") steps, not 2"
    [[ -f $d/step_000002.h5 ]] || problem "no $d/step_000002.h5"
  done
  [[ ! -e run/metrics.jsonl ]] || problem "a task trained in the shared run_dir"
  # A plain array (no --sweep): run_dir/array_INDEX.
  SLURM_ARRAY_TASK_ID=3 bash "$cpu_script" configs/tiny_random.yaml "${common[@]}" --set train.steps=1 > job3.log 2>&1
  [[ -f run/array_3/step_000001.h5 ]] || { cat job3.log; problem "the plain array task did not train in run/array_3"; }
  # An index past the values, and a sweep outside an array.
  SLURM_ARRAY_TASK_ID=2 bash "$cpu_script" configs/tiny_random.yaml "${common[@]}" --sweep optim.lr=0.1,0.02 > bad.log 2>&1 &&
    problem "array index 2 of a 2-value sweep was accepted"
  grep -q "array index 2, but --sweep lists 2 values (submit --array=0-1)" bad.log || { cat bad.log; problem "no clear error for index 2"; }
  bash "$cpu_script" configs/tiny_random.yaml "${common[@]}" --sweep optim.lr=0.1 > bad.log 2>&1 &&
    problem "--sweep outside a job array was accepted"
  grep -q "needs a job array" bad.log || { cat bad.log; problem "no clear error for --sweep outside an array"; }
  ;;

gpu)
  export FAKE_SRUN_RUN=0 SLURM_CPUS_PER_TASK=8 SLURM_TASKS_PER_NODE="8(x2)"
  SLURM_GPUS_ON_NODE=4 bash "$gpu_script" configs/tiny_random.yaml "${common[@]}" > job.log 2>&1 &&
    problem "8 ranks per node on 4 GPUs were accepted"
  cat job.log
  grep -q "sptrain_gpu.sbatch: error: 8 ranks per node but 4 GPU(s)" job.log || problem "no clear error for 8 ranks on 4 GPUs"
  [[ ! -e srun.log ]] || problem "srun was started with too few GPUs"
  SLURM_GPUS_ON_NODE=8 bash "$gpu_script" configs/tiny_random.yaml "${common[@]}" > job.log 2>&1 ||
    { cat job.log; problem "8 ranks on 8 GPUs failed"; }
  cat job.log
  grep -q "^sptrain_gpu.sbatch: job 4242" job.log || problem "the messages do not name sptrain_gpu.sbatch"
  grep -q "sptrain\.sbatch" job.log && problem "a message names sptrain.sbatch"
  for want in "--mpi=pmix" "--kill-on-bad-exit=1" "--cpus-per-task=8" "--cpu-bind=cores" "--set backend=cuda"; do
    grep -q -- "$want" srun.log || problem "srun lacks $want: srun $(cat srun.log)"
  done
  # backend cpu (the user's --set) needs no GPU.
  rm -f srun.log
  SLURM_GPUS_ON_NODE=0 bash "$gpu_script" configs/tiny_random.yaml "${common[@]}" --set backend=cpu > job.log 2>&1 ||
    { cat job.log; problem "backend cpu without GPUs failed"; }
  grep -q -- "--set backend=cuda .*--set backend=cpu" srun.log || problem "the user's backend=cpu does not come last"
  ;;

*) echo "unknown case $case_name"; exit 2 ;;
esac

# Both scripts parse.
for s in "$cpu_script" "$gpu_script" "$src/cluster/sptrain_job.sh"; do
  bash -n "$s" || problem "$s does not parse"
done
if (( failures )); then echo "$failures failure(s)"; exit 1; fi
echo "ok: $case_name"
