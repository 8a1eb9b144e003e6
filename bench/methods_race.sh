#!/usr/bin/env bash
# Every prompt method on SST-2 at the same training-time budget (docs/methods.md,
# "Results"). For each method: `sptrain bench` times its real step (and its
# peak memory); the method then trains for as many steps as fit the budget
# (its cosine schedule and warmup fitted to those steps) and is scored on dev
# at the end. Same model, data, batch, prompt length, init and optimizer for all.
# NOT A TEST: about (BUDGET + 2 minutes) per method on a quiet 2-core machine.
#
#   bench/methods_race.sh                                # default: 300 s per method
#   BUDGET=600 METHODS="prompt_tuning deep" bench/methods_race.sh
#
# Environment: SPTRAIN (default build/bin/sptrain), CONFIG
# (configs/smollm2_sst2.yaml), BUDGET (training seconds per method, 300),
# METHODS (space-separated; NAME or NAME:VARIANT, default "prompt_tuning
# p_tuning:mlp p_tuning:lstm deep deep:mlp"; the variant is p_tuning's
# prompt.encoder or deep's prompt.reparameterize), OUT (runs/methods_race/DATE).
# Results: OUT/results.jsonl, one line per method, and a table on stderr.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
sptrain=${SPTRAIN:-build/bin/sptrain}
config=${CONFIG:-configs/smollm2_sst2.yaml}
budget=${BUDGET:-300}
methods=${METHODS:-prompt_tuning p_tuning:mlp p_tuning:lstm deep deep:mlp}
out=${OUT:-runs/methods_race/$(date +%Y%m%d-%H%M%S)}
say() { echo "methods_race: $*" >&2; }
[[ -x "$sptrain" ]] || { say "error: $sptrain: no sptrain binary"; exit 1; }
[[ "$budget" =~ ^[1-9][0-9]*$ ]] || { say "error: BUDGET=$budget: not a positive number of seconds"; exit 1; }
mkdir -p "$out"

for m in $methods; do
  name=${m%%:*}
  variant=${m#*:}
  [[ "$variant" == "$m" ]] && variant=""
  sets=(--set "prompt.method=$name")
  case "$name:$variant" in
    prompt_tuning:|deep:|p_tuning:) ;;
    p_tuning:*) sets+=(--set "prompt.encoder=$variant") ;;
    deep:*) sets+=(--set "prompt.reparameterize=$variant") ;;
    *) say "error: $m: not METHOD or METHOD:VARIANT of prompt_tuning, p_tuning, deep"; exit 1 ;;
  esac
  tag=${m/:/_}
  say "$m: timing its step ($(cut -d' ' -f1-3 /proc/loadavg))"
  "$sptrain" bench "$config" "${sets[@]}" --steps 3 --warmup 1 --json > "$out/$tag.bench.json" 2> "$out/$tag.bench.err"
  read -r step_s rss < <(python3 -c "import json,sys; b=json.load(open(sys.argv[1])); print(b['step_time_s']['total'], b['peak_rss_mb'])" "$out/$tag.bench.json")
  steps=$(python3 -c "import sys; print(max(1, int(float(sys.argv[1]) / float(sys.argv[2]))))" "$budget" "$step_s")
  warmup=$(( steps / 15 > 0 ? steps / 15 : 1 ))
  say "$m: ${step_s} s a step -> $steps steps, warmup $warmup ($(cut -d' ' -f1-3 /proc/loadavg))"
  start=$(date +%s.%N)
  "$sptrain" train "$config" "${sets[@]}" --set "train.steps=$steps" --set "optim.warmup_steps=$warmup" \
    --set train.eval_every=0 --set "train.checkpoint_every=$steps" --set "train.run_dir=$out/$tag" \
    --set train.resume=never > "$out/$tag.train.out" 2> "$out/$tag.train.err"
  wall=$(python3 -c "import sys,time; print(round(time.time() - float(sys.argv[1]), 1))" "$start")
  python3 - "$m" "$out/$tag/metrics.jsonl" "$step_s" "$rss" "$steps" "$wall" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    >> "$out/results.jsonl" <<'PY'
import json, sys
m, metrics, step_s, rss, steps, wall, load = sys.argv[1:]
lines = [json.loads(l) for l in open(metrics)]
train_s = sum(l.get("step_time_s", 0) for l in lines)
ev = [l for l in lines if "eval_accuracy" in l][-1]
print(json.dumps({"method": m, "steps": int(steps), "bench_step_s": float(step_s), "train_s": round(train_s, 1),
                  "wall_s": float(wall), "peak_rss_mb": float(rss), "dev_accuracy": ev["eval_accuracy"],
                  "dev_loss": ev.get("eval_loss"), "eval_examples": ev.get("eval_examples"), "load_after": load}))
PY
  say "$(tail -1 "$out/results.jsonl")"
done
python3 - "$out/results.jsonl" <<'PY' >&2
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| method | steps | s/step | training s | peak RSS MB | dev accuracy |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['method']} | {r['steps']} | {r['bench_step_s']:.2f} | {r['train_s']:.0f} | {r['peak_rss_mb']:.0f} | {r['dev_accuracy']:.4f} |")
PY
say "results: $out/results.jsonl"
