#!/usr/bin/env bash
# sptrain bench on one 175B pipeline stage at tensor-parallel-8 shapes, on one
# GPU (bench/gpu_175b_stage.yaml): tokens/s, MFU against the device's dense
# bf16 peak, device memory. For docs/benchmarks/gpu.md.
#
#   bench/gpu_175b_stage.sh [extra sptrain bench arguments, e.g. --steps 20 --json]
#
# Makes the model file first when it is missing: random weights of the stage's
# shapes, f32 on disk (~13 GB; bf16 on the GPU), with the SmolLM2 tokenizer
# (tools/fetch_smollm2.sh) so that the SST-2 batches are the default job's.
#
# Environment (all optional):
#   SPTRAIN   the sptrain binary with the CUDA back end (default build-gpu/bin/sptrain,
#             which bench/gpu_suite.sh builds)
#   MODEL     the model file (default models/gpt3-175b-tp8-stage.h5)
#   LAYERS, D_MODEL, HEADS, HEAD_DIM, D_FFN   the stage's shapes (default 12, 12288,
#             12, 128, 6144); smaller ones make a quick smoke test, e.g. with
#             `--set backend=cpu` on a machine without a GPU
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
sptrain=${SPTRAIN:-build-gpu/bin/sptrain}
model=${MODEL:-models/gpt3-175b-tp8-stage.h5}
tokenizer=models/smollm2-135m.h5

say() { echo "gpu_175b_stage: $*" >&2; }
die() { echo "gpu_175b_stage: error: $*" >&2; exit 1; }

[[ -x "$sptrain" ]] || die "$sptrain: no sptrain binary (bench/gpu_suite.sh builds build-gpu/, or set SPTRAIN)"
if [[ ! -f "$model" ]]; then
  [[ -f "$tokenizer" ]] || SPTRAIN="$sptrain" bash tools/fetch_smollm2.sh models
  say "writing $model (random weights, the stage's shapes; takes a few minutes)"
  mkdir -p "$(dirname "$model")"
  "$sptrain" init-model --out "$model" --family gpt --layers "${LAYERS:-12}" \
    --d-model "${D_MODEL:-12288}" --heads "${HEADS:-12}" --head-dim "${HEAD_DIM:-128}" \
    --d-ffn "${D_FFN:-6144}" --max-positions 2048 --tokenizer "$tokenizer" --std 0.006
fi
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu_175b_stage: GPU: /' >&2 || true
exec "$sptrain" bench bench/gpu_175b_stage.yaml --set "model.path=$model" "$@"
