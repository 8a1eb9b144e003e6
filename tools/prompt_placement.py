#!/usr/bin/env python3
"""Does a soft prompt placed AFTER the review (where it can attend to it) learn
SST-2 better than one in front, the placement sptrain uses? A PyTorch check,
not part of sptrain: the answer decides whether sptrain should offer the other
placement (docs/results.md, "What was tried").

Same model (the default job's GGUF through transformers), template
`Review: {text}` + [prompt here for 'suffix'] + `\\nSentiment:`, label words
" negative" / " positive", 20 vectors initialised from the default init text,
AdamW lr 0.01, 20 warm-up steps, cosine to 10%, clipping 1.0, shuffled SST-2
train; then accuracy on all of SST-2 dev.

    .venv-bench/bin/python tools/prompt_placement.py prefix 120 16
    .venv-bench/bin/python tools/prompt_placement.py suffix 120 16

(bench/peft/setup.sh makes .venv-bench; bench/peft/save_tokenizer.sh the
tokenizer folder; ~7 minutes each on 2 cores.)
"""
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if len(sys.argv) != 4 or sys.argv[1] not in ("prefix", "suffix", "none"):
    sys.exit(__doc__)
place, steps, B = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(2)
torch.manual_seed(0)
random.seed(0)
tok = AutoTokenizer.from_pretrained(os.path.join(ROOT, "models/smollm2-tokenizer"))
model = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, "models"),
                                             gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", dtype=torch.float32)
model.requires_grad_(False)
emb = model.get_input_embeddings().weight
P = 20
init_ids = tok("Classify the sentiment of this movie review as positive or negative.", add_special_tokens=False)["input_ids"]
prompt = torch.nn.Parameter(emb[[init_ids[i % len(init_ids)] for i in range(P)]].clone())
labels = [tok(w, add_special_tokens=False)["input_ids"][0] for w in (" negative", " positive")]
suffix = tok("\nSentiment:", add_special_tokens=False)["input_ids"]


def read(path):
    out = []
    for line in open(path):
        text, label = line.rstrip("\n").rsplit("\t", 1)
        out.append((text, int(label)))
    return out


train, dev = read(os.path.join(ROOT, "data/sst2/train.tsv")), read(os.path.join(ROOT, "data/sst2/dev.tsv"))


def label_logits(items):
    seqs = []
    for text, _ in items:
        body, tail = emb[tok("Review: " + text, add_special_tokens=False)["input_ids"][:100]], emb[suffix]
        parts = {"prefix": [prompt, body, tail], "suffix": [body, prompt, tail], "none": [body, tail]}[place]
        seqs.append(torch.cat(parts))
    T = max(len(s) for s in seqs)
    x = torch.zeros(len(seqs), T, emb.shape[1])
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)], mask[i, :len(s)] = s, 1
    last = torch.tensor([len(s) - 1 for s in seqs])
    out = model(inputs_embeds=x, attention_mask=mask, use_cache=False).logits
    return out[torch.arange(len(items)), last][:, labels]


def dev_accuracy():
    correct = 0
    with torch.no_grad():
        for i in range(0, len(dev), 32):
            part = dev[i:i + 32]
            correct += int((label_logits(part).argmax(1) == torch.tensor([y for _, y in part])).sum())
    return correct / len(dev)


opt = torch.optim.AdamW([prompt], lr=0.01, weight_decay=0.0)
warm, t0 = 20, time.time()
order, at = list(range(len(train))), 0
random.shuffle(order)
for step in range(1, steps + 1 if place != "none" else 1):
    if at + B > len(order):
        random.shuffle(order)
        at = 0
    items = [train[j] for j in order[at:at + B]]
    at += B
    progress = (step - warm) / max(1, steps - warm)
    lr = 0.01 * step / warm if step <= warm else 0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    for g in opt.param_groups:
        g["lr"] = lr
    loss = F.cross_entropy(label_logits(items), torch.tensor([y for _, y in items]))
    loss.backward()
    torch.nn.utils.clip_grad_norm_([prompt], 1.0)
    opt.step()
    opt.zero_grad()
    if step % 20 == 0:
        print(f"{place} step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
print(f"{place}: dev accuracy after {steps} steps of {B}: {dev_accuracy():.4f} ({time.time() - t0:.0f}s)", flush=True)
