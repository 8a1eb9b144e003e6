#!/usr/bin/env bash
# The CPU race: sptrain against PyTorch + PEFT on the same model, data, batches
# and batch size, with the ratio table at the end (docs/benchmarks/cpu.md).
#
# SLOW and NOT PART OF THE UNIT TESTS. The first run makes .venv-bench/ with
# PyPI's torch, which is the CUDA build: ~3 GB to download, ~5.6 GB installed,
# about 5 minutes. Each run then takes, on a 2-core machine, about 1 minute of
# model loading per side per environment plus the steps (~3 s a step for PEFT
# at batch 16), so ~6-8 minutes for the defaults on a quiet machine. The
# figures are only as good as the machine is quiet: it waits for one before
# each side, measures how many cores other processes used during each side,
# and runs a disturbed side again (QUIET_*, RETRIES below).
#
#   bench/cpu_race.sh                       # 3 warm-up + 10 timed steps, both environments
#   STEPS=20 WARMUP=3 bench/cpu_race.sh
#   ENVS="default" bench/cpu_race.sh        # only the machine's default environment
#
# Environment (all optional):
#   SPTRAIN   the sptrain binary (default build/bin/sptrain); needs `sptrain bench`
#   CONFIG    sptrain config (default configs/smollm2_sst2.yaml)
#   GGUF      the same model as a GGUF file for transformers
#             (default models/SmolLM2-135M-Instruct.Q4_1.gguf; tools/fetch_smollm2.sh)
#   STEPS, WARMUP   timed and untimed steps (default 10 and 3)
#   BATCH     examples per step for both sides (default: the config's
#             train.batch_size; sptrain gets it as one micro-batch)
#   ENVS      which environments, in order (default "default SkylakeX"):
#               default   the environment as it is (sptrain picks an OpenBLAS
#                         kernel itself when OPENBLAS_CORETYPE is unset)
#               NAME      OPENBLAS_CORETYPE=NAME for both sides (torch uses MKL
#                         and ignores it; it is set for both all the same)
#   OUT       folder for the raw JSON and batches files (default runs/cpu_race/DATE)
#   PEFT_ARGS extra options for bench/peft/peft_bench.py (e.g. "--logits needed")
#   QUIET_MAX, QUIET_WAIT   before each side, wait until other processes keep at
#             most QUIET_MAX cores busy (default 0.3), for at most QUIET_WAIT
#             seconds (default 900; then it runs anyway and says so)
#   RETRIES   run a side again, up to this many times (default 2), when other
#             processes kept more than QUIET_MAX cores busy during it
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
sptrain=${SPTRAIN:-build/bin/sptrain}
config=${CONFIG:-configs/smollm2_sst2.yaml}
gguf=${GGUF:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
steps=${STEPS:-10}
warmup=${WARMUP:-3}
batch=${BATCH:-}
sptrain_batch=()
peft_batch=()
if [[ -n "$batch" ]]; then
  [[ "$batch" =~ ^[1-9][0-9]*$ ]] || { echo "cpu_race: error: BATCH=$batch: not a positive integer" >&2; exit 1; }
  sptrain_batch=(--set "train.batch_size=$batch" --set "train.micro_batch_size=$batch")
  peft_batch=(--batch-size "$batch")
fi
envs=${ENVS:-default SkylakeX}
out=${OUT:-runs/cpu_race/$(date +%Y%m%d-%H%M%S)}

quiet_max=${QUIET_MAX:-0.3}
quiet_wait=${QUIET_WAIT:-900}
retries=${RETRIES:-2}

say() { echo "cpu_race: $*" >&2; }
die() { echo "cpu_race: error: $*" >&2; exit 1; }

[[ -x "$sptrain" ]] || die "$sptrain: no sptrain binary (build it, or set SPTRAIN=path/to/sptrain)"
if ! "$sptrain" bench --help 2>/dev/null | grep -q -- "--batches-out"; then
  die "$sptrain has no 'sptrain bench ... --batches-out' (an older build?): rebuild, or set SPTRAIN"
fi
[[ -f "$config" ]] || die "$config: no such config"
[[ -f "$gguf" ]] || die "$gguf: no such GGUF file (tools/fetch_smollm2.sh fetches it)"

say "setting up .venv-bench (large download the first time)"
bench/peft/setup.sh
py="$repo/.venv-bench/bin/python"
mkdir -p "$out"

# Cores kept busy by all processes over 3 seconds (/proc/stat: all but idle
# and iowait). The load average says little here: on shared machines it counts
# far more than this machine's two cores.
busy_cores() {
  local a b
  a=$(head -1 /proc/stat); sleep 3; b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(a, x); split(b, y); busy = 0
    for (i = 2; i <= 9; i++) if (i != 5 && i != 6) busy += y[i] - x[i]
    printf "%.2f", busy / hz / 3 }'
}

# Waits (up to QUIET_WAIT s) until the machine is quiet; prints the busy cores.
wait_quiet() {
  local waited=0 busy
  while :; do
    busy=$(busy_cores)
    if awk -v b="$busy" -v m="$quiet_max" 'BEGIN { exit !(b <= m) }'; then break; fi
    if (( waited >= quiet_wait )); then
      say "warning: still $busy cores busy after ${waited}s of waiting: running anyway, figures disturbed"
      break
    fi
    say "machine busy ($busy cores used by others): waiting"
    sleep 20; waited=$((waited + 23))
  done
  echo "$busy"
}

# The training set's size, for the sampler-port check: its non-blank lines.
train_file=$("$py" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["task"]["train"])' "$config")
train_size=$(grep -c '[^[:space:]]' "$train_file")

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores"
  echo "OPENBLAS_CORETYPE as found: ${OPENBLAS_CORETYPE:-unset}"
  echo "command: STEPS=$steps WARMUP=$warmup ${batch:+BATCH=$batch }ENVS=\"$envs\" CONFIG=$config bench/cpu_race.sh"
} | tee "$out/machine.txt" >&2

# Other processes' cores recorded in a JSON file (field other_processes_cores).
other_cores() { python3 -c 'import json, sys; print("%.2f" % json.load(open(sys.argv[1]))["other_processes_cores"])' "$1"; }
disturbed() { awk -v b="$(other_cores "$1")" -v m="$quiet_max" 'BEGIN { exit !(b > m) }'; }

for env in $envs; do
  if [[ "$env" == default ]]; then
    envset=()
  else
    envset=(env "OPENBLAS_CORETYPE=$env")
  fi
  batches="$out/batches-$env.jsonl"
  # Each side runs again (up to RETRIES more times) when other work shared the
  # CPU with it: such figures say more about the neighbours than the tool.
  for ((try = 0; try <= retries; try++)); do
    say "[$env] before sptrain: $(wait_quiet) cores busy, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    python3 bench/peft/run_measured.py "$out/sptrain-$env.disturbance.json" -- \
      "${envset[@]}" "$sptrain" bench "$config" --steps "$steps" --warmup "$warmup" --json \
      --batches-out "$batches" "${sptrain_batch[@]}" > "$out/sptrain-$env.json"
    disturbed "$out/sptrain-$env.disturbance.json" || break
    say "[$env] sptrain shared the CPU with $(other_cores "$out/sptrain-$env.disturbance.json") cores of other work"
  done
  python3 bench/peft/check_sampler.py "$batches" --size "$train_size" \
    || say "[$env] warning: the Python sampler port disagrees with sptrain (only the fallback uses it)"
  for ((try = 0; try <= retries; try++)); do
    say "[$env] before PEFT: $(wait_quiet) cores busy, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    # shellcheck disable=SC2086
    "${envset[@]}" "$py" bench/peft/peft_bench.py --config "$config" --gguf "$gguf" \
      --batches "$batches" --steps "$steps" --warmup "$warmup" --json "${peft_batch[@]}" ${PEFT_ARGS:-} > "$out/peft-$env.json"
    disturbed "$out/peft-$env.json" || break
    say "[$env] PEFT shared the CPU with $(other_cores "$out/peft-$env.json") cores of other work"
  done
done

# shellcheck disable=SC2086  # one argument per environment
python3 - "$out" "$quiet_max" $envs <<'EOF'
import json, sys
out, quiet_max, envs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
rows = [
    ("examples/s", lambda j: j["examples_per_s"], "higher"),
    ("text positions/s", lambda j: j["positions_per_s"]["text"], "higher"),
    ("positions/s computed", lambda j: j["positions_per_s"]["total"], "higher"),
    ("step time, s", lambda j: j["step_time_s"]["total"], "lower"),
    ("  forward, s", lambda j: j["step_time_s"]["forward"], "lower"),
    ("  backward, s", lambda j: j["step_time_s"]["backward"], "lower"),
    ("GFLOP/step (counted)", lambda j: j["gflop_per_step"], ""),
    ("GFLOP/s", lambda j: j["gflops_per_s"], "higher"),
    ("peak RSS, MB", lambda j: j["peak_rss_mb"], "lower"),
]
for env in envs:
    s = json.load(open(f"{out}/sptrain-{env}.json"))
    p = json.load(open(f"{out}/peft-{env}.json"))
    print(f"\n## environment: {env}  (batch {s['batch_size']}, {s['steps']} timed steps after {s['warmup']} warm-up)")
    print(f"sptrain BLAS: {s['blas']}")
    print(f"PEFT    BLAS: {p['blas']} (torch {p['torch']})")
    print(f"{'':24s} {'sptrain':>12s} {'PEFT':>12s} {'sptrain/PEFT':>13s}")
    for name, get, better in rows:
        a, b = get(s), get(p)
        ratio = a / b if b else float("nan")
        print(f"{name:24s} {a:12.2f} {b:12.2f} {ratio:12.2f}x")
    print(f"sptrain share of its BLAS rate at the model's shapes: {100 * s['share_of_blas']:.0f}%"
          f" ({s['blas_gflops_per_s_at_model_shapes']:.0f} GFLOP/s)")
    print(f"last loss (same batches, should agree closely): sptrain {s['last_loss']:.4f}, PEFT {p['last_loss']:.4f}")
    d = json.load(open(f"{out}/sptrain-{env}.disturbance.json"))
    worst = max(d["other_processes_cores"], p["other_processes_cores"])
    verdict = ("quiet enough" if worst <= quiet_max
               else "above QUIET_MAX: disturbed figures, rerun on a quiet machine")
    print(f"other processes kept busy: {d['other_processes_cores']:.2f} cores during sptrain's run"
          f" (all of it), {p['other_processes_cores']:.2f} during PEFT's timed steps"
          f" (QUIET_MAX {quiet_max}: {verdict})")
print(f"\nraw figures: {out}/")
EOF
