#!/usr/bin/env bash
# sptrain against PyTorch + PEFT on E2E data-to-text (docs/results_e2e.md), in
# one run, on this machine's CPU:
#   1. sptrain trains configs/smollm2_e2e.yaml (its wall time is the budget) and
#      scores greedy generation on dev (BLEU, ROUGE-L);
#   2. the template alone (prompt.length 0), scored the same way;
#   3. PEFT prompt tuning on the same data, batches and settings for the same
#      training time, scored the same way (bench/peft/e2e_bench.py train);
#   4. generation speed, greedy, batch 1 and 16, new tokens/s: `sptrain
#      generate` and transformers' generate() with sptrain's exported prompt;
#   5. the exported prompt in PEFT generates the same 40 greedy tokens as
#      `sptrain generate` for at least 95% of the dev inputs.
# docs/results_e2e.md records its run of 2026-11-30 (BENCH_PYTHON set to a
# virtualenv with the packages of bench/peft/requirements.txt).
# NOT A TEST: slow (about 50 minutes on a quiet 2-core machine: each side trains
# for the config's budget) and needs .venv-bench (bench/peft/setup.sh). The
# figures are only as good as the machine is quiet: the load average and the
# busy cores are recorded beside them.
#
#   bench/e2e_race.sh                      # everything, results in runs/e2e_race/DATE
#   STEPS=... PARTS="sptrain zero peft speed agree" bench/e2e_race.sh
#
# Environment: SPTRAIN (default build/bin/sptrain), CONFIG (configs/smollm2_e2e.yaml),
# GGUF (models/SmolLM2-135M-Instruct.Q4_1.gguf), OUT, PARTS (the parts to run, in
# order: sptrain zero peft speed agree), SPEED_INPUTS (inputs per batch size, 32),
# BENCH_PYTHON (the Python with torch, transformers and peft; .venv-bench/bin/python).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
sptrain=${SPTRAIN:-build/bin/sptrain}
config=${CONFIG:-configs/smollm2_e2e.yaml}
gguf=${GGUF:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
out=${OUT:-runs/e2e_race/$(date +%Y%m%d-%H%M%S)}
parts=${PARTS:-sptrain zero peft speed agree}
speed_inputs=${SPEED_INPUTS:-32}
py=${BENCH_PYTHON:-$repo/.venv-bench/bin/python}
mkdir -p "$out"
say() { echo "e2e_race: $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
has() { [[ " $parts " == *" $1 "* ]]; }
record() { echo "$1" >> "$out/results.jsonl"; say "$1"; }

[[ -x "$sptrain" ]] || { say "error: $sptrain: no sptrain binary"; exit 1; }
run_dir="$out/sptrain_run"
ckpt=""

# The dev inputs, each once, in order of first appearance, as generate's JSONL.
python3 - "$config" "$out/dev_inputs.jsonl" <<'PY'
import json, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
seen, lines = set(), []
for line in open(cfg["task"]["eval"], encoding="utf-8"):
    line = line.rstrip("\n")
    if not line:
        continue
    mr = line.rsplit("\t", 1)[0]
    if mr not in seen:
        seen.add(mr)
        lines.append(json.dumps({"task": "e2e", "input": mr}))
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY

if has sptrain; then
  say "1. sptrain trains $config (load $(load))"
  start=$(date +%s.%N)
  nice "$sptrain" train "$config" --set train.run_dir="$run_dir" --set train.resume=never \
    > "$out/sptrain_train.out" 2> "$out/sptrain_train.err"
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  train_s=$(python3 -c "import json,sys; print(sum(json.loads(l).get('step_time_s', 0) for l in open(sys.argv[1])))" "$run_dir/metrics.jsonl")
  record "{\"part\": \"sptrain_train\", \"wall_s\": $wall, \"train_s\": $train_s, \"load_after\": \"$(load)\", \"result\": $(python3 -c "import json,sys; print(json.dumps(open(sys.argv[1]).read().strip()))" "$out/sptrain_train.out")}"
fi
ckpt=$(ls "$run_dir"/step_*.h5 2>/dev/null | sort | tail -1 || true)

if has zero; then
  say "2. the template alone (load $(load))"
  nice "$sptrain" eval "$config" --set prompt.length=0 > "$out/zero_shot.out" 2> "$out/zero_shot.err"
  record "{\"part\": \"zero_shot\", \"result\": $(python3 -c "import json,sys; print(json.dumps(open(sys.argv[1]).read().strip()))" "$out/zero_shot.out")}"
fi

if has peft; then
  budget=$(python3 -c "import json,sys; print(sum(json.loads(l).get('step_time_s', 0) for l in open(sys.argv[1])))" "$run_dir/metrics.jsonl")
  say "3. PEFT trains for sptrain's training time, ${budget} s (load $(load))"
  nice "$py" bench/peft/e2e_bench.py train --config "$config" --gguf "$gguf" --time-budget "$budget" \
    --save-prompt "$out/peft_prompt.npy" --json > "$out/peft_train.json" 2> "$out/peft_train.err"
  record "{\"part\": \"peft_train\", \"load_after\": \"$(load)\", \"result\": $(cat "$out/peft_train.json")}"
fi

if has speed || has agree; then
  [[ -n "$ckpt" ]] || { say "error: no sptrain checkpoint in $run_dir (run the sptrain part)"; exit 1; }
  "$sptrain" export "$ckpt" --format peft --out "$out/peft_from_sptrain" >&2
fi

if has speed; then
  say "4. generation speed (load $(load))"
  head -n "$speed_inputs" "$out/dev_inputs.jsonl" > "$out/speed_inputs.jsonl"
  for bs in 1 16; do
    nice "$sptrain" generate --model "$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['model']['path'])" "$config")" \
      --prompt "e2e=$ckpt" --input "$out/speed_inputs.jsonl" --max-new-tokens 40 --batch-size "$bs" \
      > "$out/sptrain_speed_$bs.jsonl" 2> "$out/sptrain_speed_$bs.err"
    record "{\"part\": \"sptrain_speed\", \"batch\": $bs, \"load_after\": \"$(load)\", \"result\": $(python3 -c "import json,sys; print(json.dumps(open(sys.argv[1]).read().strip()))" "$out/sptrain_speed_$bs.err")}"
  done
  nice "$py" bench/peft/e2e_bench.py speed --config "$config" --gguf "$gguf" --peft-folder "$out/peft_from_sptrain" \
    --batch-sizes 1 16 --inputs "$speed_inputs" --max-new-tokens 40 --json \
    > "$out/peft_speed.json" 2> "$out/peft_speed.err"
  record "{\"part\": \"peft_speed\", \"load_after\": \"$(load)\", \"result\": $(cat "$out/peft_speed.json")}"
fi

if has agree; then
  say "5. the exported prompt in PEFT against sptrain generate, 40 greedy tokens (load $(load))"
  nice "$sptrain" generate --model "$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['model']['path'])" "$config")" \
    --prompt "e2e=$ckpt" --input "$out/dev_inputs.jsonl" --max-new-tokens 40 --batch-size 16 --ids \
    > "$out/sptrain_dev_generate.jsonl" 2> "$out/sptrain_dev_generate.err"
  status=0
  nice "$py" bench/peft/e2e_bench.py agree --config "$config" --gguf "$gguf" --peft-folder "$out/peft_from_sptrain" \
    --sptrain-output "$out/sptrain_dev_generate.jsonl" --max-new-tokens 40 --batch-size 16 --json \
    > "$out/agree.json" 2> "$out/agree.err" || status=$?
  record "{\"part\": \"agree\", \"exit\": $status, \"result\": $(cat "$out/agree.json")}"
fi
say "results: $out/results.jsonl"
