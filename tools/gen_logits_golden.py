#!/usr/bin/env python3
"""Reference next-token logits of SmolLM2-135M-Instruct from Hugging Face transformers.

Writes tests/golden/smollm2_logits.h5, for a parity test of sptrain's forward pass
on the converted model (models/smollm2-135m.h5):
  sentences      strings [S]          the texts
  ids/<k>        int32 [n_k]          their token ids (no BOS: SmolLM2 adds none)
  logits         float32 [S, vocab]   logits after the last token of each text
  attributes     transformers, torch and gguf versions, the GGUF's sha256

transformers loads the same GGUF itself (AutoModelForCausalLM.from_pretrained(dir,
gguf_file=...): gguf-py dequantizes, transformers un-permutes Q/K), runs in fp32 on
the CPU, and its own GGUF tokenizer gives the ids. Nothing of sptrain's code is used.

Run (from the repository root, after tools/fetch_smollm2.sh):
    python3 -m venv .venv-tools
    .venv-tools/bin/pip install torch transformers accelerate gguf h5py numpy
    .venv-tools/bin/python tools/gen_logits_golden.py [GGUF] [OUT]
"""
import hashlib
import os
import sys

import gguf
import h5py
import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests", "golden", "smollm2_logits.h5")

SENTENCES = [
    "The capital of France is",
    "Review: a gorgeous, witty, seductive movie.\nSentiment:",
    "Review: the plot is nothing but boilerplate cliches from start to finish.\nSentiment:",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    torch.manual_seed(0)
    folder, name = os.path.split(os.path.abspath(GGUF))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    all_ids, logits = [], []
    with torch.no_grad():
        for s in SENTENCES:
            ids = tok(s, add_special_tokens=False)["input_ids"]
            out = model(torch.tensor([ids], dtype=torch.long))
            all_ids.append(np.asarray(ids, dtype=np.int32))
            logits.append(out.logits[0, -1].float().numpy())
            top = int(np.argmax(logits[-1]))
            print(f"{len(ids):3d} tokens, next = {top} {tok.decode([top])!r}: {s!r}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with h5py.File(OUT, "w") as f:
        f.create_dataset("sentences", data=np.array(SENTENCES, dtype=h5py.string_dtype("utf-8")))
        for k, ids in enumerate(all_ids):
            f.create_dataset(f"ids/{k}", data=ids)
        f.create_dataset("logits", data=np.stack(logits).astype(np.float32))
        f.attrs["transformers"] = str(transformers.__version__)
        f.attrs["torch"] = str(torch.__version__)
        f.attrs["gguf"] = str(getattr(gguf, "__version__", "?"))
        f.attrs["model_sha256"] = sha256(GGUF)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
