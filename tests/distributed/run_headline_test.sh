#!/usr/bin/env bash
# The headline job's layouts in CI: `mpirun -np 64 sptrain
# configs/175b_sentiment.yaml` with --set overrides only, on a GPT-family
# model of GPT-3's depth and head count (96 layers, 96 heads) at a width of 8.
# For tensor 8 x pipeline 8, tensor 8 x data 8 and tensor 4 x pipeline 4 x
# data 4: the loss of every step and the prompt after 3 AdamW steps equal one
# rank's (relative error <= 1e-5), and the bytes every rank sent in each step
# (metrics.jsonl's comm_bytes_job) equal `sptrain plan`'s for that layout,
# which adds up the formulas beside the calls (step_bytes).
#
#   run_headline_test.sh SPTRAIN MPIEXEC SOURCE_DIR [LAYOUT ...]
#
# LAYOUT is TENSOR,PIPELINE,MICRO_BATCH (default: the three above).
set -u
sptrain=$1 mpiexec=$2 src=$3
shift 3
layouts=("$@")
[ ${#layouts[@]} -gt 0 ] || layouts=("8,8,2" "8,1,1" "4,4,1")
# shellcheck source-path=SCRIPTDIR source=run_dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_dir.sh"
enter_run_dir "$src" 175b_sentiment.yaml

# GPT-3's depth and heads; heads of width 1 keep it small and fast.
"$sptrain" init-model --out gpt96.h5 --family gpt --layers 96 --d-model 8 --heads 96 --head-dim 1 \
  --d-ffn 32 --max-positions 256 >/dev/null || { echo "FAIL: init-model"; exit 1; }
# The byte-level tokenizer has one-token label words "n" and "p". Short
# examples, 40 of them (each rank encodes the whole file: with SST-2's 6,920
# that took 64 ranks a minute), a small batch and no evaluation keep 64 ranks
# on 2 cores quick.
head -n 40 "$src/data/sst2/train.tsv" >train40.tsv
sets=(--set backend=cpu --set model.path=gpt96.h5 --set task.train=train40.tsv
      --set 'task.labels={"0": "n", "1": "p"}' --set optim.name=adamw --set optim.lr=0.002
      --set optim.warmup_steps=0 --set train.steps=3 --set train.batch_size=8 --set task.max_length=28
      --set prompt.length=4 --set task.eval= --set train.checkpoint_every=3 --set threads=1)

run_timed() {  # OUT COMMAND...: sets status and seconds
  local out=$1 start
  shift
  start=$(date +%s%3N)
  timeout 300 "$@" >"$out" 2>&1
  status=$?
  seconds=$(( ($(date +%s%3N) - start) / 1000 ))
}

run_timed one.txt "$sptrain" configs/175b_sentiment.yaml "${sets[@]}" --set parallel.tensor=1 \
  --set parallel.pipeline=1 --set train.micro_batch_size=2 --set train.run_dir=run1
echo "1 rank: status $status after ${seconds} s"
[ "$status" = 0 ] || { cat one.txt; echo "FAIL: the one-rank run"; exit 1; }
"$sptrain" export run1/step_000003.h5 --format npy --out prompt1.npy >/dev/null || problem "export of run1"

for layout in "${layouts[@]}"; do
  IFS=, read -r tp pp mb <<<"$layout"
  name=tp${tp}_pp${pp}_dp$((64 / tp / pp))
  layout_sets=(--set "parallel.tensor=$tp" --set "parallel.pipeline=$pp" --set "train.micro_batch_size=$mb")
  "$sptrain" plan configs/175b_sentiment.yaml "${sets[@]}" "${layout_sets[@]}" --gpu cpu --gpus 64 \
    --tensor "$tp" --pipeline "$pp" --micro-batch "$mb" --schedule 1f1b --steps 3 --json >"plan_$name.json" ||
    { problem "$name: sptrain plan failed"; continue; }
  echo "\$ mpirun -np 64 sptrain configs/175b_sentiment.yaml ... --set parallel.tensor=$tp --set parallel.pipeline=$pp --set train.micro_batch_size=$mb"
  run_timed "out_$name.txt" "$mpiexec" -np 64 --oversubscribe "$sptrain" configs/175b_sentiment.yaml "${sets[@]}" \
    "${layout_sets[@]}" --set "train.run_dir=run_$name"
  echo "$name: status $status after ${seconds} s"
  if [ "$status" != 0 ]; then
    problem "$name: mpirun exited with status $status"
    tail -20 "out_$name.txt"
    continue
  fi
  "$sptrain" export "run_$name/step_000003.h5" --format npy --out "prompt_$name.npy" >/dev/null ||
    { problem "$name: export"; continue; }
  python3 - run1/metrics.jsonl "run_$name/metrics.jsonl" prompt1.npy "prompt_$name.npy" "plan_$name.json" "$name" <<'EOF' ||
import json, math, struct, sys

def metrics(path):
    return [json.loads(l) for l in open(path) if l.strip() and "loss" in json.loads(l)]

def npy(path):
    # NumPy's format: magic, version, header length, a dict header, then the data.
    data = open(path, "rb").read()
    assert data[:6] == b"\x93NUMPY", path
    hlen = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + hlen].decode()
    assert "'<f4'" in header, header
    body = data[10 + hlen:]
    return struct.unpack(f"<{len(body) // 4}f", body)

one, many = metrics(sys.argv[1]), metrics(sys.argv[2])
p1, pn = npy(sys.argv[3]), npy(sys.argv[4])
plan = json.load(open(sys.argv[5]))["layouts"][0]
name = sys.argv[6]
ok = len(one) == len(many) == 3
for a, b, planned in zip(one, many, plan["bytes_by_step"]):
    err = abs(a["loss"] - b["loss"]) / abs(a["loss"])
    print(f"{name} step {b['step']}: loss {b['loss']:.9f} (1 rank {a['loss']:.9f}, relative error {err:.1e}); "
          f"bytes of all ranks {b['comm_bytes_job']}, planned {planned}; rank 0 {b['comm_bytes']}")
    ok &= err <= 1e-5 and b["comm_bytes_job"] == planned
diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(p1, pn)))
norm = math.sqrt(sum(x * x for x in p1))
print(f"{name} prompt after 3 steps: relative error {diff / norm:.1e} ({len(pn)} values)")
ok &= len(p1) == len(pn) and diff / norm <= 1e-5
sys.exit(0 if ok else 1)
EOF
    problem "$name: differs from one rank or from the plan (above)"
done

[ "$failures" = 0 ] && echo "PASS" || exit 1
