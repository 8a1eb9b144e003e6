#!/usr/bin/env bash
# The batch scripts of cluster/ as Slurm runs them: `sbatch` of the committed
# files on a real single-node Slurm (this script runs itself under slurm_env.sh):
#
#   slurm_jobs_test.sh CASE SPTRAIN SOURCE_DIR
#
# A tiny random model (4 layers, d 64) on SST-2; 4-task jobs are tensor 2 x
# data 2 under `srun --mpi=pmix`.
#
# CASE:
#   train4     a 4-task job trains to the end: COMPLETED 0:0, every step once,
#              the layout and the threads (--cpus-per-task) it was given
#   preempt    `scancel --signal=USR1 --batch` mid-run: checkpoint of that step,
#              exit 0, requeue, the requeued job resumes and finishes; its final
#              prompt is bit-identical to that of an uninterrupted job
#   killed     one task SIGKILLed mid-run: the job ends within 30 s, FAILED with
#              a non-zero exit code (scontrol and the job completion log), the
#              log names the task, no process of the job is left
#   scancel    a plain `scancel` mid-run: the ranks write a checkpoint of the
#              step they stop at before Slurm's KillWait; the job ends CANCELLED
#   refused    USR1 to a job submitted with --no-requeue: the requeue fails, the
#              job ends FAILED 1:0 and its `afterok` dependent never runs; a
#              configuration that does not load: FAILED 1:0 before any rank starts
#   gpu        sptrain_gpu.sbatch with --set backend=cpu and no GPUs runs the same
#              4-task job; without it, it refuses to start ranks that have no GPU
#   gpumap     sptrain_gpu.sbatch on the node's 4 (fake) GPUs, with a stand-in for
#              sptrain that prints what each rank gets: every rank sees the
#              node's GPUs in CUDA_VISIBLE_DEVICES and has its own local rank,
#              so sptrain's rule (GPU = local rank mod visible GPUs) gives each
#              its own GPU; 4 ranks on 2 GPUs are refused before any rank starts
#   array      --array=0-1 --sweep optim.lr=...: each task its value, its run_dir
#              and its log (%x-%A_%a.out)
#   chain      cluster/README.md's train -> eval -> export commands, as written
#              (<!-- chain --> block), chained with --dependency=afterok
#   early      USR1 the moment the job's step exists, while sptrain starts: the
#              job still checkpoints or requeues, and finishes (a USR1 before
#              sptrain's handler used to kill it: exit 138)
#   threads0   threads: 0 under --cpus-per-task=1 gives 1 thread
#              (SLURM_CPUS_PER_TASK), not one per core of the node
#   stuck      one task stopped with SIGSTOP: the others abort within the
#              configured timeout (SPTRAIN_WATCHDOG_SET, default
#              parallel.timeout_s=10), naming it; never a hang
set -u
case_name=$1 sptrain=$2 src=$3
failures=0
problem() { echo "FAIL: $*"; failures=$((failures + 1)); }
fatal() { echo "FAIL: $*"; for f in *.out; do [[ -f $f ]] && { echo "--- $f"; cat "$f"; }; done; exit 1; }
[[ -n ${SLURM_ENV_DIR:-} ]] || exec bash "$(dirname "$0")/slurm_env.sh" bash "$0" "$@"

cd "$SLURM_ENV_DIR/work" || exit 1
ln -s "$src/data" data
"$sptrain" init-model --out tiny.h5 --layers 4 --d-model 64 --heads 4 --kv-heads 2 > /dev/null || exit 1
# Open MPI busy-polls on an oversubscribed node unless told to yield.
export SPTRAIN=$sptrain SPTRAIN_HOME=$src OMPI_MCA_mpi_yield_when_idle=1
cpu_script=$src/cluster/sptrain_cpu.sbatch
gpu_script=$src/cluster/sptrain_gpu.sbatch
config=$src/configs/tiny_random.yaml
common=(--set model.path=tiny.h5 --set train.log_every=1 --set train.eval_every=0
        --set train.eval_max_examples=32 --set train.checkpoint_every=0)
tp2dp2=(--set parallel.tensor=2)
four_tasks=(--ntasks=4 --ntasks-per-node=4)

# submit VAR SBATCH_ARGS...: submits, leaves the job id in VAR.
submit() {
  local id
  id=$(sbatch --parsable "${@:2}") || fatal "sbatch ${*:2} failed"
  printf -v "$1" %s "$id"
}
# A field of `scontrol show job` (the first task's, for an array).
field() { scontrol -o show job "$1" 2>/dev/null | head -n1 | grep -o " $2=[^ ]*" | cut -d= -f2-; }
steps_in() { local n; n=$(grep -c '"loss"' "$1" 2>/dev/null); echo "${n:-0}"; }
# The training steps metrics.jsonl $1 logged, in order, on one line.
steps_list() { grep '"loss"' "$1" | grep -o '"step":[0-9]*' | cut -d: -f2 | tr '\n' ' '; }
ckpt() { printf '%s/step_%06d.h5' "$1" "$2"; }
terminal() { [[ $1 =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$ ]]; }

# Whether every job given has ended; waits until they have (up to $wait_s s,
# default 180).
ended() {
  local j s
  for j in "$@"; do
    for s in $(scontrol -o show job "$j" 2>/dev/null | grep -o " JobState=[A-Z_]*" | cut -d= -f2); do
      terminal "$s" || return 1
    done
  done
}
wait_end() {
  for _ in $(seq $((${wait_s:-180} * 10))); do ended "$@" && return 0; sleep 0.1; done
  fatal "jobs $* did not end within ${wait_s:-180} s ($(squeue 2>&1))"
}
# Waits until the run in $1 has logged $2 steps while job $3 runs.
wait_steps() {
  for _ in $(seq 1200); do
    [[ $(steps_in "$1/metrics.jsonl") -ge $2 ]] && return 0
    terminal "$(field "$3" JobState)" && fatal "job $3 ended ($(field "$3" JobState)) before step $2"
    sleep 0.1
  done
  fatal "job $3 did not reach step $2 within 120 s"
}
# This test's processes: they run in its work folder (job ids restart at 1 in
# every test's Slurm, so another run on the machine may have the same ones).
ours() { [[ $(readlink "$1/cwd" 2>/dev/null) == "$SLURM_ENV_DIR/work"* ]]; }
# The pid of rank $2 of job $1's first step (found by its environment).
task_pid() {
  local p env
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/exe" 2>/dev/null) == "$(readlink -f "$sptrain")" ]] && ours "$p" || continue
    env=$({ tr '\0' '\n' < "$p/environ"; } 2>/dev/null)
    grep -qx "SLURM_JOB_ID=$1" <<< "$env" && grep -qx "SLURM_PROCID=$2" <<< "$env" && { echo "${p#/proc/}"; return; }
  done
}
job_processes() {
  local p
  for p in /proc/[0-9]*; do
    ours "$p" && { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qx "SLURM_JOB_ID=$1" && echo "${p#/proc/}"
  done
}
# The state and exit code the job completion log recorded for job $1.
jobcomp() { grep "^JobId=$1 " "$SLURM_ENV_JOBCOMP" | tail -n1 | grep -o "JobState=[A-Z_]* .*ExitCode=[0-9:]*" | sed -E 's/(JobState=[A-Z_]*) .*(ExitCode=[0-9:]*)/\1 \2/'; }
expect_state() {  # JOB STATE EXIT_CODE
  local s e
  s=$(field "$1" JobState) e=$(field "$1" ExitCode)
  [[ $s == "$2" && $e == "$3" ]] || problem "job $1 ended $s $e (scontrol), not $2 $3"
}
prompt_npy() { "$sptrain" export "$1" --format npy --out "$2" > /dev/null || problem "cannot export $1"; }

case $case_name in
train4)
  submit j "${four_tasks[@]}" --cpus-per-task=2 "$cpu_script" "$config" "${common[@]}" "${tp2dp2[@]}" \
      --set train.run_dir=run --set train.steps=8
  wait_end "$j"
  cat "sptrain-cpu-$j.out" || problem "no log sptrain-cpu-$j.out"
  expect_state "$j" COMPLETED 0:0
  grep -q "4 ranks (data 2 x pipeline 1 x tensor 2) | cpu (2 threads" "sptrain-cpu-$j.out" ||
    problem "not 4 ranks of tensor 2 x data 2 with 2 threads each"
  [[ $(steps_list run/metrics.jsonl) == "1 2 3 4 5 6 7 8 " ]] ||
    problem "metrics.jsonl does not have steps 1..8 once each"
  [[ -f $(ckpt run 8) ]] || problem "no final checkpoint"
  grep -q '"data":[1-9]' run/metrics.jsonl && grep -q '"tensor":[1-9]' run/metrics.jsonl ||
    problem "no data- and tensor-parallel traffic in metrics.jsonl"
  ;;

preempt)
  steps=30
  submit ref "${four_tasks[@]}" --cpus-per-task=1 "$cpu_script" "$config" "${common[@]}" "${tp2dp2[@]}" \
      --set train.run_dir=ref --set train.steps=$steps
  submit j "${four_tasks[@]}" --cpus-per-task=1 "$cpu_script" "$config" "${common[@]}" "${tp2dp2[@]}" \
      --set train.run_dir=run --set train.steps=$steps
  wait_steps run 3 "$j"
  scancel --signal=USR1 --batch "$j" || problem "scancel --signal=USR1 --batch failed"
  wait_end "$j" "$ref"
  cat "sptrain-cpu-$j.out"
  expect_state "$j" COMPLETED 0:0
  expect_state "$ref" COMPLETED 0:0
  [[ $(field "$j" Restarts) == 1 ]] || problem "the job started $(field "$j" Restarts) times again, not once"
  # A requeue resets SubmitTime; EligibleTime is cred_expire (5 s here, 120 by
  # default) later.
  held=$(($(date -d "$(field "$j" EligibleTime)" +%s) - $(date -d "$(field "$j" SubmitTime)" +%s)))
  echo "requeued job held $held s before it was eligible"
  ((held <= 10)) || problem "the requeued job was held $held s: slurm_env.sh's cred_expire=5 did not apply"
  stopped=$(grep -o "stop requested: checkpoint written at step [0-9]*" "sptrain-cpu-$j.out" | grep -o '[0-9]*$')
  [[ -n $stopped ]] || fatal "sptrain did not say it stopped at a checkpoint"
  ((stopped < steps)) || problem "the job stopped at step $stopped: USR1 came too late to test a resume"
  [[ -f $(ckpt run "$stopped") ]] || problem "no checkpoint of step $stopped, where it stopped"
  grep -q "requeueing job $j" "sptrain-cpu-$j.out" || problem "the script did not requeue (sptrain's exit status was not 0?)"
  grep -q "resuming from run/step_$(printf %06d "$stopped").h5" "sptrain-cpu-$j.out" ||
    problem "the requeued job did not resume from step $stopped"
  [[ $(steps_list run/metrics.jsonl) == "$(seq -s ' ' 1 $steps) " ]] ||
    problem "metrics.jsonl does not have steps 1..$steps once each"
  ls run/*.tmp* > /dev/null 2>&1 && problem "a temporary checkpoint was left behind"
  prompt_npy "$(ckpt run $steps)" run.npy
  prompt_npy "$(ckpt ref $steps)" ref.npy
  cmp run.npy ref.npy || problem "the final prompt differs from the uninterrupted job's"
  echo "stopped at step $stopped, requeued, resumed, finished at step $steps; prompts identical: $(cmp -s run.npy ref.npy && echo yes)"
  ;;

killed)
  submit j "${four_tasks[@]}" --cpus-per-task=1 "$cpu_script" "$config" "${common[@]}" "${tp2dp2[@]}" \
      --set train.run_dir=run --set train.steps=100000
  wait_steps run 3 "$j"
  victim=$(task_pid "$j" 2)
  [[ -n $victim ]] || fatal "no process of rank 2 of job $j"
  t0=$(date +%s.%N)
  kill -KILL "$victim"
  wait_end "$j"
  took=$(echo "$(date +%s.%N) - $t0" | bc)
  cat "sptrain-cpu-$j.out"
  state=$(field "$j" JobState) code=$(field "$j" ExitCode)
  [[ $state == FAILED && $code != 0:0 ]] || problem "the job ended $state $code, not FAILED with a non-zero exit code"
  [[ $(jobcomp "$j") == "JobState=FAILED ExitCode=$code" ]] ||
    problem "the job completion log says '$(jobcomp "$j")', not 'JobState=FAILED ExitCode=$code'"
  grep -Eq "task 2: Killed|rank 2\b" "sptrain-cpu-$j.out" || problem "the log does not name task 2"
  grep -q "requeue" "sptrain-cpu-$j.out" && problem "a failed job asked to be requeued"
  [[ -z $(job_processes "$j") ]] || problem "processes of the job are left: $(job_processes "$j")"
  echo "the job ended $state $code $took s after rank 2 was killed"
  (($(echo "$took < 30" | bc))) || problem "the job ended $took s after the kill, not within 30 s"
  ;;

scancel)
  submit j "${four_tasks[@]}" --cpus-per-task=1 "$cpu_script" "$config" "${common[@]}" "${tp2dp2[@]}" \
      --set train.run_dir=run --set train.steps=100000
  wait_steps run 3 "$j"
  scancel "$j"
  wait_end "$j"
  cat "sptrain-cpu-$j.out"
  expect_state "$j" CANCELLED 0:15
  last=$(steps_in run/metrics.jsonl)
  [[ -f $(ckpt run "$last") ]] || problem "no checkpoint of step $last, the last one done ($(ls run | tr '\n' ' '))"
  ls run/*.tmp* > /dev/null 2>&1 && problem "a temporary checkpoint was left behind"
  grep -q "requeue" "sptrain-cpu-$j.out" && problem "a cancelled job asked to be requeued"
  ;;

refused)
  submit j --no-requeue --ntasks=1 --cpus-per-task=1 "$cpu_script" "$config" "${common[@]}" \
      --set train.run_dir=run --set train.steps=100000
  submit after --dependency=afterok:"$j" --output=after-%j.out --wrap "echo dependent ran"
  submit bad "${four_tasks[@]}" --cpus-per-task=1 "$cpu_script" "$config" --set train.steps=-3 --set train.run_dir=bad
  wait_steps run 2 "$j"
  scancel --signal=USR1 --batch "$j"
  wait_end "$j"
  cat "sptrain-cpu-$j.out"
  expect_state "$j" FAILED 1:0
  grep -q "error: scontrol requeue $j failed" "sptrain-cpu-$j.out" || problem "the log does not say the requeue failed"
  [[ -f $(ckpt run "$(steps_in run/metrics.jsonl)") ]] || problem "no checkpoint of the step it stopped at"
  for _ in $(seq 100); do [[ $(field "$after" Reason) == DependencyNeverSatisfied ]] && break; sleep 0.1; done
  [[ $(field "$after" JobState) == PENDING && $(field "$after" Reason) == DependencyNeverSatisfied ]] ||
    problem "the afterok dependent is $(field "$after" JobState) ($(field "$after" Reason)), not held for good"
  scancel "$after"
  wait_end "$bad"
  cat "sptrain-cpu-$bad.out"
  expect_state "$bad" FAILED 1:0
  grep -q "sptrain_cpu.sbatch: error: the configuration does not load (above); no rank was started" "sptrain-cpu-$bad.out" ||
    problem "a configuration that does not load: no clear error"
  grep -q "^srun: " "sptrain-cpu-$bad.out" && problem "a configuration that does not load started ranks"
  ;;

gpu)
  submit j --nodes=1 --ntasks-per-node=4 --gpus-per-node=0 --cpus-per-task=1 "$gpu_script" "$config" \
      "${common[@]}" "${tp2dp2[@]}" --set train.run_dir=run --set train.steps=6 --set backend=cpu
  submit nogpu --nodes=1 --ntasks-per-node=4 --gpus-per-node=0 --cpus-per-task=1 "$gpu_script" "$config" \
      "${common[@]}" --set train.run_dir=run_cuda --set train.steps=6
  wait_end "$j" "$nogpu"
  cat "sptrain-gpu-$j.out" || problem "no log sptrain-gpu-$j.out"
  expect_state "$j" COMPLETED 0:0
  grep -q "4 ranks (data 2 x pipeline 1 x tensor 2) | cpu (1 threads" "sptrain-gpu-$j.out" ||
    problem "not 4 CPU ranks of tensor 2 x data 2"
  [[ $(steps_in run/metrics.jsonl) == 6 && -f $(ckpt run 6) ]] || problem "the run did not do its 6 steps"
  cat "sptrain-gpu-$nogpu.out"
  expect_state "$nogpu" FAILED 1:0
  grep -q "sptrain_gpu.sbatch: error: 4 ranks per node but 0 GPU(s)" "sptrain-gpu-$nogpu.out" ||
    problem "backend cuda without GPUs: no clear error"
  [[ ! -e run_cuda ]] || problem "backend cuda without GPUs started ranks"
  ;;

gpumap)
  ((SLURM_ENV_GPUS >= 4)) || { echo "skipped: the test Slurm has no GPUs (mknod not allowed here)"; exit 77; }
  cat > probe <<PROBE
#!/usr/bin/env bash
# Stands in for sptrain: the configuration check goes to the real one; a rank
# prints what Slurm gave it.
[[ " \$* " == *" --dry-run "* ]] && exec "$sptrain" "\$@"
echo "rank \$SLURM_PROCID local \$SLURM_LOCALID visible \${CUDA_VISIBLE_DEVICES:-none} cpus \$SLURM_CPUS_PER_TASK: \$*"
PROBE
  chmod +x probe
  SPTRAIN=$PWD/probe submit j --nodes=1 --ntasks-per-node=4 --gpus-per-node=4 --cpus-per-task=2 "$gpu_script" \
      "$config" "${common[@]}" --set train.run_dir=run
  SPTRAIN=$PWD/probe submit few --nodes=1 --ntasks-per-node=4 --gpus-per-node=2 --cpus-per-task=1 "$gpu_script" \
      "$config" "${common[@]}" --set train.run_dir=run2
  wait_end "$j" "$few"
  cat "sptrain-gpu-$j.out"
  expect_state "$j" COMPLETED 0:0
  [[ $(grep -c "^rank .* visible 0,1,2,3 cpus 2: train .*--set backend=cuda" "sptrain-gpu-$j.out") == 4 ]] ||
    problem "not 4 ranks seeing GPUs 0,1,2,3 with 2 CPUs each and backend cuda"
  [[ $(grep -o "^rank [0-9] local [0-9]" "sptrain-gpu-$j.out" | sort | tr '\n' ' ') == \
     "rank 0 local 0 rank 1 local 1 rank 2 local 2 rank 3 local 3 " ]] ||
    problem "the ranks' local ranks are not 0..3 in rank order (GPU = local rank)"
  cat "sptrain-gpu-$few.out"
  expect_state "$few" FAILED 1:0
  grep -q "sptrain_gpu.sbatch: error: 4 ranks per node but 2 GPU(s) allocated on it" "sptrain-gpu-$few.out" ||
    problem "4 ranks on 2 GPUs: no clear error"
  grep -q "^rank" "sptrain-gpu-$few.out" && problem "4 ranks on 2 GPUs were started"
  ;;

array)
  submit a --array=0-1 --output=%x-%A_%a.out --ntasks=1 --cpus-per-task=1 "$cpu_script" "$config" \
      "${common[@]}" --set train.run_dir=run --set train.steps=3 --sweep optim.lr=0.1,0.02
  wait_end "$a"
  for pair in 0:0.1 1:0.02; do
    i=${pair%%:*} lr=${pair#*:} d="run/optim.lr=${pair#*:}"
    log=sptrain-cpu-${a}_$i.out
    cat "$log" || problem "no log $log"
    [[ $(scontrol -o show job "${a}_$i" | grep -o " JobState=[A-Z]* .*ExitCode=[0-9:]*" | sed -E 's/ JobState=([A-Z]*) .*ExitCode=/\1 /') == "COMPLETED 0:0" ]] ||
      problem "array task $i did not end COMPLETED 0:0"
    grep -q "^  lr: $lr$" "$d/config.yaml" 2>/dev/null || problem "array task $i did not train with lr $lr in $d"
    [[ $(steps_in "$d/metrics.jsonl") == 3 && -f $(ckpt "$d" 3) ]] || problem "array task $i did not do its 3 steps in $d"
  done
  ;;

chain)
  # The README's block, run as written from a folder laid out like the
  # repository: configs/tiny_random.yaml's model made as its comment says.
  ln -s "$src/configs" configs
  ln -s "$src/cluster" cluster
  mkdir -p build/bin models
  ln -s "$sptrain" build/bin/sptrain
  "$sptrain" init-model --out models/tiny-llama.h5 --layers 4 --d-model 64 --heads 4 --kv-heads 2 > /dev/null
  unset SPTRAIN SPTRAIN_HOME
  sed -n '/<!-- chain -->/,/<!-- end chain -->/p' "$src/cluster/README.md" | sed '/^```/d;/^<!--/d' > chain.sh
  [[ -s chain.sh ]] || fatal "no <!-- chain --> block in cluster/README.md"
  cat chain.sh
  bash -e chain.sh > chain.log 2>&1 || { cat chain.log; fatal "the chain's commands failed"; }
  cat chain.log
  ids=$(squeue -h -o %i | sort -n | tr '\n' ' ')
  [[ $(wc -w <<< "$ids") == 3 ]] || fatal "the chain submitted '$ids', not 3 jobs"
  wait_end $ids
  for id in $ids; do
    for f in *-"$id".out; do echo "--- $f"; cat "$f"; done
    expect_state "$id" COMPLETED 0:0
  done
  [[ -f checkpoints/tiny/peft/adapter_model.safetensors ]] || problem "the export did not write checkpoints/tiny/peft"
  grep -q "^accuracy: " sptrain-eval-*.out || problem "the eval job printed no accuracy"
  ;;

early)
  submit j "${four_tasks[@]}" --cpus-per-task=1 "$cpu_script" "$config" "${common[@]}" "${tp2dp2[@]}" \
      --set train.run_dir=run --set train.steps=5
  for _ in $(seq 1000); do squeue -h -s -j "$j" -o %i | grep -qx "$j.0" && break; sleep 0.02; done
  scancel --signal=USR1 --batch "$j"
  wait_end "$j"
  cat "sptrain-cpu-$j.out"
  expect_state "$j" COMPLETED 0:0
  [[ -f $(ckpt run 5) ]] || problem "the run did not finish after the early USR1"
  ;;

threads0)
  submit j --ntasks=1 --cpus-per-task=1 "$cpu_script" "$config" "${common[@]}" --set threads=0 \
      --set train.run_dir=run --set train.steps=1
  wait_end "$j"
  cat "sptrain-cpu-$j.out"
  expect_state "$j" COMPLETED 0:0
  grep -q "| cpu (1 threads" "sptrain-cpu-$j.out" || problem "threads: 0 with --cpus-per-task=1 did not give 1 thread"
  ;;

stuck)
  watchdog=()  # SPTRAIN_WATCHDOG_SET= (empty): no setting, the default timeout
  [[ -n ${SPTRAIN_WATCHDOG_SET-parallel.timeout_s=10} ]] && watchdog=(--set "${SPTRAIN_WATCHDOG_SET-parallel.timeout_s=10}")
  submit j "${four_tasks[@]}" --cpus-per-task=1 "$cpu_script" "$config" "${common[@]}" "${tp2dp2[@]}" \
      "${watchdog[@]}" --set train.run_dir=run --set train.steps=100000
  wait_steps run 3 "$j"
  victim=$(task_pid "$j" 2)
  [[ -n $victim ]] || fatal "no process of rank 2 of job $j"
  kill -STOP "$victim"
  wait_s=60 wait_end "$j"
  cat "sptrain-cpu-$j.out"
  [[ $(field "$j" JobState) == FAILED ]] || problem "the job ended $(field "$j" JobState), not FAILED"
  grep -Eq "rank 2\b.*(stuck|timeout|not respond)|(stuck|timeout|not respond).*rank 2\b" "sptrain-cpu-$j.out" ||
    problem "no message naming rank 2 as stuck"
  ;;

*) echo "unknown case $case_name"; exit 2 ;;
esac

if ((failures)); then echo "$failures failure(s)"; exit 1; fi
echo "ok: $case_name"
