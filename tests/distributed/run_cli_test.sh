#!/usr/bin/env bash
# The `sptrain` binary under mpirun, exactly as configs/tiny_random.yaml and
# README.md say to use it.
#
#   run_cli_test.sh MODE SPTRAIN MPIEXEC SOURCE_DIR
#
# In a fresh folder holding a copy of configs/tiny_random.yaml and a link to
# the repository's data/, first runs the init-model command written in the
# config's comment (with the build's binary for build/bin/sptrain), then:
#   readme      the README's `mpirun -np 8 sptrain configs/tiny_random.yaml ...`
#               line as written, and the same configuration on one rank, each
#               with a few steps added (--set train.steps=...); the losses of
#               every step and the final evaluation must agree (relative
#               error <= 1e-5) and the data-parallel bytes of each step must
#               be the prompt's P x d x 4.
#   bad-layout  layouts that do not fit (a world not divisible by tensor, a
#               tensor size that does not divide the heads, more stages than
#               layers): every job must end within 30 s, non-zero, with a
#               message naming a rank and the numbers.
set -u
mode=$1 sptrain=$2 mpiexec=$3 src=$4
limit_s=30
# shellcheck source-path=SCRIPTDIR source=run_dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_dir.sh"
enter_run_dir "$src" tiny_random.yaml

# The model, made by the command the config's comment gives.
init=$(grep -E '^#[[:space:]]{2,}.*sptrain init-model' configs/tiny_random.yaml | sed -E 's/^#[[:space:]]*//')
[ -n "$init" ] || { echo "FAIL: no init-model command in configs/tiny_random.yaml's comment"; exit 1; }
init=${init//build\/bin\/sptrain/$sptrain}
echo "\$ $init"
eval "$init" || { echo "FAIL: the config's init-model command failed"; exit 1; }
model=$(sed -nE 's/^[[:space:]]*path:[[:space:]]*([^[:space:]#]+).*/\1/p' configs/tiny_random.yaml | head -1)
[ -f "$model" ] || { echo "FAIL: the init-model command did not write $model (model.path)"; exit 1; }

# Runs a command with a time limit; sets status, elapsed_ms, output file $1.
run_timed() {
  local out=$1
  shift
  local start_ms
  start_ms=$(date +%s%3N)
  timeout 120 "$@" >"$out" 2>&1
  status=$?
  elapsed_ms=$(($(date +%s%3N) - start_ms))
}

if [ "$mode" = readme ]; then
  line=$(grep -E '^[[:space:]]*mpirun -np 8 sptrain configs/tiny_random\.yaml' "$src/README.md" | head -1 |
         sed -E 's/^[[:space:]]*//; s/[[:space:]]+#.*$//')
  [ -n "$line" ] || { echo "FAIL: README.md has no 'mpirun -np 8 sptrain configs/tiny_random.yaml' line"; exit 1; }
  read -r -a words <<<"$line"
  [ "${words[0]}" = mpirun ] && words[0]=$mpiexec
  [ "${words[3]}" = sptrain ] && words[3]=$sptrain
  # Fewer steps and a smaller evaluation than the config's, so the test is quick.
  short=(--set train.steps=4 --set train.eval_every=2 --set train.eval_max_examples=48)

  echo "\$ ${words[*]} ${short[*]}"
  run_timed out8.txt "${words[@]}" "${short[@]}" --set train.run_dir=run8
  echo "8 ranks: status $status after ${elapsed_ms} ms"
  [ "$status" = 0 ] || problem "the README's mpirun line exited with status $status"
  grep -q "8 ranks (data 2 x pipeline 2 x tensor 2)" out8.txt ||
    problem "the 8-rank run did not report data 2 x pipeline 2 x tensor 2"

  echo "\$ $sptrain configs/tiny_random.yaml ${short[*]}"
  run_timed out1.txt "$sptrain" configs/tiny_random.yaml "${short[@]}" --set train.run_dir=run1
  echo "1 rank: status $status after ${elapsed_ms} ms"
  [ "$status" = 0 ] || problem "the one-rank run exited with status $status"

  prompt_bytes=$(python3 - <<'EOF'
import re, sys
cfg = open("configs/tiny_random.yaml").read()
P = int(re.search(r"^\s*length:\s*(\d+)", cfg, re.M).group(1))
# d_model from the init-model command (--d-model N)
d = int(re.search(r"--d-model\s+(\d+)", cfg).group(1))
print(P * d * 4)
EOF
)
  python3 - run1/metrics.jsonl run8/metrics.jsonl "$prompt_bytes" <<'EOF' || problem "the runs disagree (see above)"
import json, sys
one = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
eight = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
prompt_bytes = int(sys.argv[3])
ok = len(one) == len(eight) and len(one) > 0
worst = 0.0
for a, b in zip(one, eight):
    ok &= a["step"] == b["step"]
    for key in ("loss", "eval_loss"):
        if key in a:
            err = abs(a[key] - b[key]) / abs(a[key])
            worst = max(worst, err)
            print(f"step {a['step']} {key}: 1 rank {a[key]:.9f}, 8 ranks {b[key]:.9f}, relative error {err:.2e}")
            ok &= err <= 1e-5
    if "comm_bytes" in b:
        c = b["comm_bytes"]
        print(f"step {b['step']} rank 0 sent: tensor {c['tensor']}, pipeline {c['pipeline']}, data {c['data']} bytes")
        ok &= c["data"] == prompt_bytes and c["tensor"] > 0 and c["pipeline"] > 0
        ok &= a["comm_bytes"] == {"tensor": 0, "pipeline": 0, "data": 0}
print(f"largest relative error {worst:.2e}; data-parallel bytes per step expected {prompt_bytes}")
sys.exit(0 if ok else 1)
EOF
  if [ "$failures" != 0 ]; then
    echo "---- 8-rank output ----"; cat out8.txt
    echo "---- 1-rank output ----"; cat out1.txt
  fi
elif [ "$mode" = bad-layout ]; then
  # ranks, --set arguments, the message expected from a rank
  check_bad() {
    local ranks=$1 sets=$2 regex=$3
    # shellcheck disable=SC2086
    run_timed out.txt "$mpiexec" -n "$ranks" "$sptrain" configs/tiny_random.yaml $sets
    echo "$ranks ranks, $sets: status $status after ${elapsed_ms} ms"
    [ "$status" = 124 ] && problem "$sets: the job hung (killed after 120 s)"
    [ "$status" != 0 ] || problem "$sets: status 0, expected non-zero"
    [ "$elapsed_ms" -lt $((limit_s * 1000)) ] || problem "$sets: took ${elapsed_ms} ms, limit ${limit_s} s"
    grep -Eq -- "$regex" out.txt || { problem "$sets: output does not match: $regex"; cat out.txt; }
    grep -E "sptrain: rank" out.txt | head -2
  }
  check_bad 4 "--set parallel.tensor=3" \
    "sptrain: rank [0-3]/4 \([^)]*\): error: parallel layout: world size 4 is not divisible by parallel.tensor \(3\)"
  check_bad 8 "--set parallel.tensor=8" \
    "sptrain: rank [0-7]/8 \([^)]*\): error: tensor parallel size 8 does not divide the model's 4 attention heads"
  check_bad 8 "--set parallel.pipeline=8" \
    "sptrain: rank [0-7]/8 \([^)]*\): error: pipeline size 8 must be between 1 and the model's 4 layers"
else
  echo "unknown mode $mode"
  exit 2
fi

[ "$failures" = 0 ] && echo "PASS" || exit 1
