# shellcheck shell=bash
# The body of cluster/sptrain_cpu.sbatch and cluster/sptrain_gpu.sbatch,
# sourced by them (not run alone): one `sptrain train` step under srun, and what
# a job needs around it (see cluster/README.md).
#
# The batch script, before sourcing this file, traps USR1 (its first command)
# and sets
#   script           its own name, for messages
#   stop_requested   0, or 1 once a USR1 came
#   sptrain_pre      sptrain arguments placed before the user's (who may override them)
#   srun_extra       srun options of its own
#   gpus_per_rank    1 if, with backend cuda, every rank needs a GPU of its own
# and keeps its arguments: CONFIG [--sweep KEY=V0,V1,...] [--set KEY=VALUE ...].
set -uo pipefail

say() { echo "$script: $*"; }
die() { echo "$script: error: $*" >&2; exit 1; }

pid="" forwarded=0
# Asks every rank (srun forwards the signal) to write a checkpoint at the end of
# the current step and stop; once only.
forward_stop() {
  if [[ -n $pid && $forwarded == 0 ]]; then
    forwarded=1
    say "stop requested (USR1): asking every rank to checkpoint and stop"
    kill -USR1 "$pid" 2> /dev/null
  fi
}
on_usr1() { stop_requested=1; forward_stop; }
trap on_usr1 USR1

# After a stop: requeue, or fail loudly where requeueing is not allowed (an
# unfinished run must not end COMPLETED and start `afterok` dependents).
requeue() {
  say "requeueing job $SLURM_JOB_ID; the next run resumes from the newest checkpoint"
  scontrol requeue "$SLURM_JOB_ID" && exit 0
  die "scontrol requeue $SLURM_JOB_ID failed (submitted with --no-requeue, or the site" \
      "does not allow it): training stopped before its last step; submit the same command" \
      "again to continue from the newest checkpoint"
}

[[ -n ${SLURM_JOB_ID:-} ]] || die "not in a Slurm job: submit this script with sbatch"
[[ $# -ge 1 ]] ||
  die "usage: sbatch cluster/$script CONFIG.yaml [--sweep KEY=V0,V1,...] [--set KEY=VALUE ...]"
config=$1
shift
SPTRAIN=${SPTRAIN:-build/bin/sptrain}
[[ -x $SPTRAIN ]] || die "$SPTRAIN is not an executable (build sptrain, or set SPTRAIN)"

args=() sweep=""
while (($#)); do
  case $1 in
    --sweep) [[ $# -ge 2 ]] || die "--sweep needs KEY=V0,V1,..."; sweep=$2; shift 2 ;;
    --sweep=*) sweep=${1#--sweep=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

# resolve VAR KEY: the value of a configuration key, as sptrain resolves it,
# into VAR. This also checks the configuration before any rank starts.
resolve() {
  local dump section="" key=$2
  [[ $key == *.* ]] && section=${key%%.*} key=${key#*.}
  dump=$("$SPTRAIN" train "$config" "${sptrain_pre[@]}" "${args[@]}" --dry-run) ||
    die "the configuration does not load (above); no rank was started"
  printf -v "$1" %s "$(awk -v section="$section" -v key="$key" '
    /^[^ #]/ { in_section = ($0 == section ":") }
    (section == "" ? /^[^ #]/ : in_section && /^  [^ ]/) && $1 == key ":" {
      sub(/^ *[^:]*: */, ""); gsub(/^"|"$/, ""); print; exit
    }' <<< "$dump")"
}

# A job array: every task trains in a run_dir of its own, named by its --sweep
# value (so that another sweep never resumes it) or else by its index.
if [[ -n ${SLURM_ARRAY_TASK_ID:-} ]]; then
  run_sub=array_$SLURM_ARRAY_TASK_ID
  if [[ -n $sweep ]]; then
    key=${sweep%%=*}
    IFS=, read -ra values <<< "${sweep#*=}"
    [[ $sweep == *=* && -n $key && ${#values[@]} -gt 0 ]] || die "--sweep $sweep: expected KEY=V0,V1,..."
    ((SLURM_ARRAY_TASK_ID < ${#values[@]})) ||
      die "array index $SLURM_ARRAY_TASK_ID, but --sweep lists ${#values[@]} values (submit --array=0-$((${#values[@]} - 1)))"
    args+=(--set "$key=${values[SLURM_ARRAY_TASK_ID]}")
    run_sub="$key=${values[SLURM_ARRAY_TASK_ID]}"
  fi
  resolve base_run_dir train.run_dir
  args+=(--set "train.run_dir=$base_run_dir/$run_sub")
elif [[ -n $sweep ]]; then
  die "--sweep needs a job array: sbatch --array=0-N cluster/$script ..."
fi
resolve run_dir train.run_dir

# Slurm's CPUs for each rank: its threads, and srun's (srun 22.05-23.02 does not
# take --cpus-per-task from the job, so a rank would be bound to one CPU).
cpus=${SLURM_CPUS_PER_TASK:-1}
sptrain_pre+=(--set "threads=$cpus")

# Each rank uses GPU (its rank on the node) mod (the GPUs it sees): with
# CUDA_VISIBLE_DEVICES listing the node's GPUs, GPU r for local rank r. Fewer
# GPUs than ranks would put two ranks on one GPU.
if ((gpus_per_rank)); then
  resolve backend backend
  ranks_here=${SLURM_TASKS_PER_NODE:-1}
  ranks_here=${ranks_here%%[(,]*}  # "8(x2)" or "8,4": this node's count first
  gpus_here=${SLURM_GPUS_ON_NODE:-0}
  [[ $backend != cuda ]] || ((ranks_here <= gpus_here)) ||
    die "$ranks_here ranks per node but $gpus_here GPU(s) allocated on it: every rank needs a GPU of its own" \
        "(--gpus-per-node=$ranks_here, or fewer --ntasks-per-node)"
fi

say "job $SLURM_JOB_ID${SLURM_ARRAY_TASK_ID:+ (array $SLURM_ARRAY_JOB_ID, index $SLURM_ARRAY_TASK_ID)}," \
    "start ${SLURM_RESTART_COUNT:-0}: ${SLURM_NTASKS:-1} rank(s) x $cpus CPU(s), run_dir $run_dir"
# A USR1 before the ranks exist: nothing new to checkpoint, the run resumes
# from its newest checkpoint after the requeue.
((stop_requested)) && requeue

# --kill-on-bad-exit: a rank that fails ends the step (sptrain also aborts the
# job itself with a message naming the rank).
srun --mpi=pmix --kill-on-bad-exit=1 --cpus-per-task="$cpus" "${srun_extra[@]}" \
  "$SPTRAIN" train "$config" "${sptrain_pre[@]}" "${args[@]}" &
pid=$!
((stop_requested)) && forward_stop
# `wait` returns when a trapped signal arrives; wait again for the ranks.
wait "$pid"
rc=$?
while kill -0 "$pid" 2> /dev/null; do wait "$pid"; rc=$?; done

# sptrain's exit status after a stop request honoured: "stopped early,
# checkpoint written, resumable" (75; 0 means it finished all its steps).
# sptrain handles USR1 from its first instruction on, but a USR1 that reaches
# the ranks while srun is still starting them (before sptrain runs) ends them
# by the signal (status 128 + 10) before they did anything, and srun
# --kill-on-bad-exit then ends the others with SIGTERM (128 + 15, which srun
# may report instead): requeue on either. No checkpoint is lost; the next run
# resumes from the newest one.
stopped_status=75
killed_starting=("$((128 + $(kill -l USR1)))" "$((128 + $(kill -l TERM)))")
if ((stop_requested)) && [[ $rc == "$stopped_status" || " ${killed_starting[*]} " == *" $rc "* ]]; then
  requeue
fi
exit "$rc"
