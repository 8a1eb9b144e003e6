#!/usr/bin/env bash
# sptrain bench on one 175B pipeline stage at tensor-parallel-8 shapes, on one
# GPU (bench/gpu_175b_stage.yaml): tokens/s, MFU against the device's dense
# bf16 peak, device memory. For docs/benchmarks/gpu.md.
#
#   bench/gpu_175b_stage.sh [extra sptrain bench arguments, e.g. --steps 20 --json]
#
# Makes the model file first when it is missing: random weights of the stage's
# shapes, f32 on disk (~13 GB; bf16 on the GPU), with the SmolLM2 tokenizer so
# that the SST-2 batches are the default job's.
#
# Side by side with PyTorch + PEFT (bench/peft/peft_gpu_stage.py), run both on
# the Llama form of the stage, which transformers can build with heads of 128:
#   FAMILY=llama bench/gpu_175b_stage.sh --steps 20 --warmup 3
#   python3 bench/peft/peft_gpu_stage.py --steps 20 --warmup 3
#
# Environment (all optional):
#   SPTRAIN   the sptrain binary with the CUDA back end (default build-gpu/bin/sptrain,
#             which bench/gpu_suite.sh builds)
#   FAMILY    gpt (default: GPT-3's LayerNorm, GELU MLP of 6144, learned positions)
#             or llama (RMSNorm, RoPE, SwiGLU of 4096: the same parameters and
#             FLOPs, the architecture the PEFT side can build)
#   MODEL     the model file (default models/gpt3-175b-tp8-stage.h5, or
#             models/llama-175b-tp8-stage.h5 for FAMILY=llama)
#   TOKENIZER where the SmolLM2 tokenizer comes from: a model file or a
#             tokenizer.json (default models/smollm2-tokenizer/tokenizer.json when
#             it exists, else models/smollm2-135m.h5, which tools/fetch_smollm2.sh
#             makes; the lent GPU machines cannot fetch, so carry the first:
#             bench/peft/save_tokenizer.sh writes it)
#   LAYERS, D_MODEL, HEADS, HEAD_DIM, D_FFN   the stage's shapes (default 12, 12288,
#             12, 128, and 6144 for gpt or 4096 for llama); smaller ones make a
#             quick smoke test, e.g. with `--set backend=cpu` on a machine without a GPU
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
sptrain=${SPTRAIN:-build-gpu/bin/sptrain}
family=${FAMILY:-gpt}
case "$family" in
  gpt)   model=${MODEL:-models/gpt3-175b-tp8-stage.h5}; d_ffn=${D_FFN:-6144} ;;
  llama) model=${MODEL:-models/llama-175b-tp8-stage.h5}; d_ffn=${D_FFN:-4096} ;;
  *) echo "gpu_175b_stage: error: FAMILY=$family: gpt or llama" >&2; exit 1 ;;
esac
tokenizer=${TOKENIZER:-}
if [[ -z "$tokenizer" ]]; then
  tokenizer=models/smollm2-135m.h5
  [[ -f models/smollm2-tokenizer/tokenizer.json ]] && tokenizer=models/smollm2-tokenizer/tokenizer.json
fi

say() { echo "gpu_175b_stage: $*" >&2; }
die() { echo "gpu_175b_stage: error: $*" >&2; exit 1; }

[[ -x "$sptrain" ]] || die "$sptrain: no sptrain binary (bench/gpu_suite.sh builds build-gpu/, or set SPTRAIN)"
if [[ ! -f "$model" ]]; then
  if [[ ! -f "$tokenizer" ]]; then
    [[ "$tokenizer" == models/smollm2-135m.h5 ]] || die "$tokenizer: no such tokenizer file"
    SPTRAIN="$sptrain" bash tools/fetch_smollm2.sh models
  fi
  say "writing $model ($family, random weights, the stage's shapes; takes a few minutes)"
  mkdir -p "$(dirname "$model")"
  "$sptrain" init-model --out "$model" --family "$family" --layers "${LAYERS:-12}" \
    --d-model "${D_MODEL:-12288}" --heads "${HEADS:-12}" --head-dim "${HEAD_DIM:-128}" \
    --d-ffn "$d_ffn" --max-positions 2048 --tokenizer "$tokenizer" --std 0.006
fi
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu_175b_stage: GPU: /' >&2 || true
exec "$sptrain" bench bench/gpu_175b_stage.yaml --set "model.path=$model" "$@"
