#!/usr/bin/env python3
"""A real PEFT round trip: an sptrain prompt loaded by Hugging Face PEFT.

Exports a checkpoint trained on SmolLM2 as a PEFT folder, loads it with
`PeftModel.from_pretrained(base, folder)` on the same base model (the GGUF,
dequantized to fp32 by transformers), and checks that

  1. PEFT's prompt embeddings equal the checkpoint's prompt bit for bit, and
  2. the label words' logits at the answer position, computed by transformers
     + PEFT, agree with `sptrain infer` on the same texts.

Nothing of sptrain's code runs on the Python side: the checkpoint is read with
h5py, the text is tokenized by transformers' GGUF tokenizer. Not part of ctest
(it needs torch); docs/export.md records a run. Needs torch, transformers,
gguf, peft, h5py, numpy (e.g. in .venv-tools):

    build/bin/sptrain configs/smollm2_sst2.yaml --set train.steps=3 \
        --set train.run_dir=/tmp/rt --set train.eval_max_examples=16
    .venv-tools/bin/python tools/check_peft_roundtrip.py --checkpoint /tmp/rt/step_000003.h5
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import peft
import torch
import transformers
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, stdin=None):
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a checkpoint trained on the model below")
    ap.add_argument("--sptrain", default=os.path.join(ROOT, "build", "bin", "sptrain"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "smollm2-135m.h5"))
    ap.add_argument("--gguf", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "sst2", "dev.tsv"))
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--tolerance", type=float, default=1e-3, help="largest |logit difference| accepted")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    with h5py.File(args.checkpoint, "r") as f:
        prompt = f["prompt"][()]
        template = f.attrs["task_template"]
        template = template.decode() if isinstance(template, bytes) else template
        words = [w.decode() if isinstance(w, bytes) else w for w in f["verbalizer/words"][()]]
        labels = [w.decode() if isinstance(w, bytes) else w for w in f["verbalizer/labels"][()]]
    print(f"checkpoint {args.checkpoint}: prompt {prompt.shape} {prompt.dtype}, template {template!r}, "
          f"verbalizer {dict(zip(labels, words))}")

    work = tempfile.mkdtemp(prefix="sptrain_peft_rt_")
    adapter = os.path.join(work, "adapter")
    print(run([args.sptrain, "export", args.checkpoint, "--format", "peft", "--out", adapter,
               "--model", args.model, "--base-model", "HuggingFaceTB/SmolLM2-135M-Instruct"]).strip())

    texts = []
    with open(args.data, encoding="utf-8") as f:
        for line in f:
            text, _, label = line.rstrip("\n").rpartition("\t")
            if label == "label":
                continue
            texts.append(text)
            if len(texts) >= args.examples:
                break
    jsonl = "".join(json.dumps({"task": "t", "text": t}) + "\n" for t in texts)
    ours = [json.loads(l) for l in run([args.sptrain, "infer", "--model", args.model, "--prompt",
                                        f"t={args.checkpoint}", "--batch-size", "8"], jsonl).splitlines()]

    folder, name = os.path.split(os.path.abspath(args.gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    base = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter)
    model.eval()

    # 1. The prompt PEFT loaded is ours, bit for bit.
    loaded = model.prompt_encoder["default"].embedding.weight.detach().numpy()
    same = loaded.shape == prompt.shape and np.array_equal(loaded.view(np.uint32), prompt.view(np.uint32))
    print(f"PEFT prompt embeddings {loaded.shape} {loaded.dtype}: "
          f"{'identical to the checkpoint' if same else 'DIFFER from the checkpoint'}")

    # 2. Label-word logits at the answer position.
    word_ids = []
    for w in words:
        ids = tok(w, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, f"label word {w!r} is {len(ids)} tokens"
        word_ids.append(ids[0])
    worst, agree = 0.0, 0
    with torch.no_grad():
        for text, o in zip(texts, ours):
            ids = tok(template.replace("{text}", text), add_special_tokens=False)["input_ids"]
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            theirs = [float(logits[i]) for i in word_ids]
            mine = [o["scores"][l]["logit"] for l in labels]
            worst = max(worst, max(abs(a - b) for a, b in zip(theirs, mine)))
            agree += labels[int(np.argmax(theirs))] == o["label"]
    ok = same and worst <= args.tolerance and agree == len(texts)
    print(f"{len(texts)} texts: label-word logits differ by at most {worst:.3g} "
          f"(tolerance {args.tolerance:g}); predicted labels agree on {agree}/{len(texts)}")
    print(f"versions: torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    print("PEFT round trip: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
