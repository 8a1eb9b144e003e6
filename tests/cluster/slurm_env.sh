#!/usr/bin/env bash
# Runs a command against a real single-node Slurm started for it alone, then
# stops that Slurm, whatever happens.
#
#   slurm_env.sh [--cpus N] [--gpus N] COMMAND [ARGS...]
#
# munged, slurmctld and slurmd run in the foreground as children of this script
# with every file (keys, sockets, state, spool, logs) in one temporary folder and
# ports of their own, so several of these can run at once on one machine. The
# node declares N CPUs (default 8) whatever the machine has
# (SlurmdParameters=config_overrides), so 4-task jobs run on 2 cores, and N
# GPUs (default 4): device nodes of our own that are /dev/null (c 1 3), so that
# Slurm allocates GPUs and sets CUDA_VISIBLE_DEVICES as it does for real ones
# (none where mknod is not allowed; SLURM_ENV_GPUS says how many). COMMAND
# runs once the node is idle, with
#   SLURM_CONF           this Slurm's slurm.conf (every client needs it)
#   SLURM_ENV_DIR        the temporary folder (put test files in $SLURM_ENV_DIR/work)
#   SLURM_ENV_GPUS       the GPUs the node has (0 if they could not be made)
#   SLURM_ENV_JOBCOMP    the job completion log (jobcomp/filetxt: one line per
#                        finished job with its JobState and ExitCode; there is
#                        no slurmdbd, so sacct has nothing)
# Afterwards every job is killed, the daemons are stopped, any process started
# under this Slurm that is left (found by SLURM_CONF in its environment) is
# killed, and the folder is removed; on a failure the daemons' logs are printed
# first. Exit status: COMMAND's; 77 (ctest's skip) when Slurm is not installed
# or this is not root, unless SPTRAIN_REQUIRE_SLURM=1 (tools/run_tests.sh sets
# it) makes that a failure. COMMAND is stopped after SLURM_ENV_TIMEOUT seconds
# (default 600), so that the clean-up runs before ctest's own timeout would.
#
# The settings a test relies on (and why):
#   AuthInfo=...,cred_expire=5  a requeued job is eligible ~6 s after
#                              `scontrol requeue`, not 121 s (the default 120 is
#                              also how long a requeued job waits on a cluster)
#   SchedulerParameters=sched_interval=1   the scheduler looks at pending jobs
#                              every second (default 60), so a requeued job starts
#                              once eligible
#   TmpFS=<folder>/tmp         srun --mpi=pmix makes spmix_appdir_<uid>_<job>.<step>
#                              there; in /tmp, the same job ids of two Slurms
#                              running at once would collide (a failed launch)
#   KillWait=30 (the default), MinJobAge=300 (the default: `scontrol show job`
#                              keeps a finished job's state and exit code 5 min)
set -uo pipefail

cpus=8 gpus=4
while [[ ${1:-} == --cpus || ${1:-} == --gpus ]]; do
  if [[ $1 == --cpus ]]; then cpus=$2; else gpus=$2; fi
  shift 2
done
if [[ $# == 0 ]]; then echo "usage: slurm_env.sh [--cpus N] [--gpus N] COMMAND [ARGS...]" >&2; exit 2; fi

unavailable() {
  if [[ ${SPTRAIN_REQUIRE_SLURM:-0} == 1 ]]; then
    echo "slurm_env: $* (SPTRAIN_REQUIRE_SLURM=1: failing instead of skipping)" >&2
    exit 1
  fi
  echo "slurm_env: skipped: $*" >&2
  exit 77
}
for tool in munged munge slurmctld slurmd sbatch srun scontrol squeue scancel sinfo; do
  command -v "$tool" > /dev/null ||
    unavailable "$tool not found (install slurm-wlm and munge: SPTRAIN_WITH_SLURM=1 bash tools/install_deps.sh)"
done
[[ $(id -u) == 0 ]] || unavailable "slurmd must run as root to start jobs"

node=$(hostname -s)
dir=$(mktemp -d "${TMPDIR:-/tmp}/sptrain-slurm.XXXXXX") || exit 1
chmod 711 "$dir"  # munged wants its socket's folder searchable by all
mkdir -p "$dir"/{munge,state,spool,log,tmp,work}
conf=$dir/slurm.conf
daemon_pids=()
command_pid=""

# Processes started under this Slurm: the daemons, slurmstepd and every job's
# processes carry SLURM_CONF=$conf in their environment.
our_processes() {
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    { tr '\0' '\n' < "/proc/$p/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf" && echo "$p"
  done
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM HUP
  [[ -n $command_pid ]] && kill -TERM "$command_pid" 2>/dev/null
  if [[ -n ${SLURM_CONF:-} ]] && kill -0 "${daemon_pids[1]:-0}" 2>/dev/null; then
    scancel --quiet --full --signal=KILL --user="$(id -un)" 2>/dev/null
    for _ in $(seq 100); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.1; done
  fi
  if [[ $rc != 0 && $rc != 77 ]]; then
    for log in "$dir"/log/*.log; do
      [[ -f $log ]] || continue
      echo "--- slurm_env: last lines of $(basename "$log")"
      tail -n 25 "$log"
    done >&2
  fi
  # Daemons in reverse start order (slurmd, slurmctld, munged).
  for ((i = ${#daemon_pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${daemon_pids[i]}" 2>/dev/null
    for _ in $(seq 50); do kill -0 "${daemon_pids[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${daemon_pids[i]}" 2>/dev/null
    wait "${daemon_pids[i]}" 2>/dev/null
  done
  for p in $(our_processes); do kill -KILL "$p" 2>/dev/null; done
  if [[ ${SLURM_ENV_KEEP:-0} == 1 ]]; then
    echo "slurm_env: kept $dir (SLURM_ENV_KEEP=1)" >&2
  else
    rm -rf "$dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nothing listens on (another Slurm of this script may run at once).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null || { echo "$port"; return; }
  done
}

# munge: a key of our own, so the machine's munged and key are not involved.
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
socket=$dir/munge/munge.socket.2
munged --foreground --socket="$socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed" > "$dir/log/munged.out" 2>&1 &
daemon_pids+=($!)
for _ in $(seq 100); do [[ -S $socket ]] && break; sleep 0.05; done
munge -n -S "$socket" | unmunge -S "$socket" > /dev/null 2>&1 || {
  echo "slurm_env: munged did not start:" >&2; cat "$dir/log/munged.out" >&2; exit 1; }

# Fake GPUs: Slurm's gpu plugin only needs device files to count and number.
gres=""
for ((i = 0; i < gpus; i++)); do mknod "$dir/gpu$i" c 1 3 2> /dev/null || { gpus=0; break; }; done
if ((gpus > 0)); then
  gres="Gres=gpu:$gpus"
  printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/gpu[0-%d]\n' "$node" "$dir" $((gpus - 1)) > "$dir/gres.conf"
fi

cat > "$conf" <<EOF
ClusterName=sptrain-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket,cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=sched_interval=1
MpiDefault=pmix
MailProg=/bin/true
KillWait=30
MinJobAge=300
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/state/slurmctld.pid
SlurmdPidFile=$dir/spool/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=4000 $gres State=UNKNOWN
PartitionName=cpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$conf SLURM_ENV_DIR=$dir SLURM_ENV_JOBCOMP=$dir/log/jobcomp.txt SLURM_ENV_GPUS=$gpus

slurmctld -D -f "$conf" > "$dir/log/slurmctld.out" 2>&1 &
daemon_pids+=($!)
slurmd -D -f "$conf" -N "$node" > "$dir/log/slurmd.out" 2>&1 &
daemon_pids+=($!)
state=""
for _ in $(seq 300); do
  state=$(sinfo -h -n "$node" -o %t 2>/dev/null)
  [[ $state == idle ]] && break
  for p in "${daemon_pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "slurm_env: a Slurm daemon exited at start" >&2; exit 1; }
  done
  sleep 0.1
done
[[ $state == idle ]] || { echo "slurm_env: node $node is '$state', not idle, after 30 s" >&2; exit 1; }

timeout -k 5 "${SLURM_ENV_TIMEOUT:-600}" "$@" &
command_pid=$!
wait "$command_pid"
rc=$?
command_pid=""
[[ $rc == 124 ]] && echo "slurm_env: $1 did not end within ${SLURM_ENV_TIMEOUT:-600} s" >&2
exit "$rc"
