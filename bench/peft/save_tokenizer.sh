#!/usr/bin/env bash
# Writes the SmolLM2 tokenizer as a Hugging Face folder (tokenizer.json, 3.5 MB)
# from the default job's GGUF, for machines that cannot fetch it: the lent GPU
# machines reach nothing outside, and the GGUF (98 MB) is more than a device
# run can carry. Both GPU benchmarks read it: `sptrain init-model --tokenizer
# models/smollm2-tokenizer/tokenizer.json` (bench/gpu_175b_stage.sh) and
# bench/peft/peft_gpu_stage.py. It is git-ignored (under models/): carry it.
#
#   bench/peft/save_tokenizer.sh [OUT_DIR]     # default models/smollm2-tokenizer
#
# Uses the PEFT benchmark's environment (bench/peft/setup.sh; a large download
# the first time) and the GGUF of tools/fetch_smollm2.sh.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
out=${1:-models/smollm2-tokenizer}
gguf=${GGUF:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
[[ -f "$gguf" ]] || { echo "save_tokenizer: error: $gguf: no such file (tools/fetch_smollm2.sh fetches it)" >&2; exit 1; }
bench/peft/setup.sh
tmp="$out.tmp.$$"
rm -rf "$tmp"
.venv-bench/bin/python - "$gguf" "$tmp" <<'PY'
import os, sys
from transformers import AutoTokenizer
gguf, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf)), gguf_file=os.path.basename(gguf))
tok.save_pretrained(out)
# The same ids from the saved folder as from the GGUF, or the folder is no good.
again = AutoTokenizer.from_pretrained(out)
probe = "Review: an utterly charming , witty film 🎬\nSentiment: positive"
assert tok(probe)["input_ids"] == again(probe)["input_ids"], "saved tokenizer encodes differently"
PY
rm -rf "$out"
mv "$tmp" "$out"
echo "save_tokenizer: wrote $out ($(du -sh "$out" | cut -f1))" >&2
