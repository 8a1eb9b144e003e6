#!/usr/bin/env bash
# cluster/sptrain_cpu.sbatch without Slurm: what the script does when Slurm
# sends USR1 before the time limit, and when the requeued job starts again.
#
#   run_sbatch_test.sh SPTRAIN SOURCE_DIR
#
# Fakes on PATH: `srun OPTIONS... PROGRAM ARGS` runs the program in its place
# (so the script's USR1 reaches sptrain, as srun forwards it), `scontrol`
# records its arguments. Checks: the stopped job writes a checkpoint of the
# step it stopped at, exits 0 and asks for `scontrol requeue $SLURM_JOB_ID`;
# the requeued job continues from that checkpoint (its first step is the next
# one), finishes, and does not requeue again.
set -u
sptrain=$1 src=$2
failures=0
problem() { echo "FAIL: $*"; failures=$((failures + 1)); }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
mkdir bin configs
cat > bin/srun <<'FAKE'
#!/usr/bin/env bash
while [[ $# -gt 0 && $1 == -* ]]; do shift; done
exec "$@"
FAKE
cat > bin/scontrol <<FAKE
#!/usr/bin/env bash
echo "\$*" >> "$dir/scontrol.log"
FAKE
chmod +x bin/srun bin/scontrol
export PATH="$dir/bin:$PATH" SLURM_JOB_ID=4242 SPTRAIN="$sptrain"
ln -s "$src/data" data
cp "$src/configs/tiny_random.yaml" configs/
"$sptrain" init-model --out tiny.h5 --layers 2 --d-model 32 --heads 2 > /dev/null || exit 1
common=(--set model.path=tiny.h5 --set train.run_dir=run --set train.checkpoint_every=0
        --set train.eval_every=0 --set train.eval_max_examples=32 --set train.log_every=1
        --set train.resume=auto --set threads=1)

steps_in() { grep -c '"loss"' "$1" 2>/dev/null || echo 0; }

# 1. A long job; USR1 once it has done a few steps, as Slurm sends it.
bash "$src/cluster/sptrain_cpu.sbatch" configs/tiny_random.yaml "${common[@]}" \
  --set train.steps=1000000 > job1.log 2>&1 &
job=$!
for _ in $(seq 1 600); do
  [[ $(steps_in run/metrics.jsonl) -ge 3 ]] && break
  sleep 0.1
done
[[ $(steps_in run/metrics.jsonl) -ge 3 ]] || { cat job1.log; echo "FAIL: the job did not start training"; exit 1; }
kill -USR1 "$job"
for _ in $(seq 1 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then
  kill -9 "$job"; cat job1.log; echo "FAIL: the job did not stop within 30 s of USR1"; exit 1
fi
wait "$job"; rc=$?
cat job1.log
[[ $rc == 0 ]] || problem "the stopped job exited $rc, not 0"
stopped=$(steps_in run/metrics.jsonl)
ckpt=$(printf 'run/step_%06d.h5' "$stopped")
[[ -f "$ckpt" ]] || problem "no checkpoint $ckpt of the step the job stopped at ($(ls run | tr '\n' ' '))"
ls run/*.tmp* > /dev/null 2>&1 && problem "a temporary checkpoint was left behind"
[[ "$(cat scontrol.log 2>/dev/null)" == "requeue 4242" ]] ||
  problem "scontrol was called with '$(cat scontrol.log 2>/dev/null)', not 'requeue 4242'"
(( stopped < 1000000 )) || problem "the job ran to the end instead of stopping"

# 2. The requeued job: same command, a few steps more to go.
total=$((stopped + 3))
bash "$src/cluster/sptrain_cpu.sbatch" configs/tiny_random.yaml "${common[@]}" \
  --set train.steps=$total > job2.log 2>&1
rc=$?
cat job2.log
[[ $rc == 0 ]] || problem "the requeued job exited $rc"
first=$(grep '"loss"' run/metrics.jsonl | sed -n "$((stopped + 1))p" | sed -E 's/.*"step":([0-9]+).*/\1/')
[[ "$first" == "$((stopped + 1))" ]] ||
  problem "the requeued job's first step is '$first', not $((stopped + 1)) (it did not resume)"
[[ $(steps_in run/metrics.jsonl) == "$total" ]] ||
  problem "$(steps_in run/metrics.jsonl) steps in metrics.jsonl after both jobs, not $total"
[[ $(wc -l < scontrol.log) == 1 ]] || problem "the finished job asked for another requeue"

# The GPU script at least parses.
bash -n "$src/cluster/sptrain_gpu.sbatch" || problem "cluster/sptrain_gpu.sbatch does not parse"

if (( failures )); then echo "$failures failure(s)"; exit 1; fi
echo "ok: stopped at step $stopped by USR1, checkpointed, requeued, resumed to step $total"
