#!/usr/bin/env bash
# The batch-1 decoding ceiling of this machine (docs/results_e2e.md): greedy
# generation at batch 1 reads every weight of the model once per new token
# (the tied embedding as the output head included; the KV cache is far
# smaller), so new tokens/s <= read bandwidth / weight bytes, for sptrain and
# transformers alike. Measures the read bandwidth with 1 and all threads
# (bench/memory_bandwidth.c) and prints that ceiling for the model file.
#   bench/decode_roofline.sh [MODEL.h5]      # default models/smollm2-135m.h5
# Weight bytes: the model file's size (its fp32 weights and a small tokenizer).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model=${1:-$repo/models/smollm2-135m.h5}
[[ -f "$model" ]] || { echo "decode_roofline: $model: no such model file (tools/fetch_smollm2.sh)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -march=native -fopenmp "$repo/bench/memory_bandwidth.c" -o "$tmp/membw"
threads=$(nproc)
one=$(OMP_NUM_THREADS=1 "$tmp/membw" 1024 5)
all=$(OMP_NUM_THREADS=$threads "$tmp/membw" 1024 5)
bytes=$(stat -c %s "$model")
python3 - "$one" "$all" "$bytes" "$model" <<'PY'
import json, sys
one, every, weight_bytes, model = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(json.dumps({
    "model": model, "weight_bytes": weight_bytes,
    "read_gb_per_s": {"1_thread": one["read_gb_per_s"], f"{every['threads']}_threads": every["read_gb_per_s"]},
    "batch1_tokens_per_s_ceiling": round(every["read_gb_per_s"] * 1e9 / weight_bytes, 2),
}, indent=2))
PY
