#!/usr/bin/env python3
"""A real PEFT round trip of a deep prompt: an sptrain prefix loaded by PEFT.

Exports a deep checkpoint (prompt.method deep) trained on SmolLM2 as a PEFT
PREFIX_TUNING folder, loads it with `PeftModel.from_pretrained(base, folder)`
on the same base model (the GGUF, dequantized to fp32 by transformers), and
checks that

  1. the past_key_values PEFT builds (`get_prompt`: the DynamicCache it hands
     the model) hold the checkpoint's keys and values bit for bit, layer by
     layer and kv head by kv head (the checkpoint's `prefix` [layers, P,
     2 x kv x head_dim], per row the keys of every kv head then their values,
     read here with h5py, not by sptrain), and that the cache is P long, so
     transformers puts the text at positions P.. as sptrain does (PEFT's
     forward passes no position_ids; LlamaModel counts them from the cache
     length);
  2. the label-word cross-entropy transformers + PEFT give agrees with
     `sptrain eval` (which accepts the checkpoint and the PEFT folder alike;
     `sptrain infer` takes no deep prompts): per text, by evaluating a
     one-line data file, and for all texts together; the predicted labels
     agree; and the folder evaluates in sptrain exactly as the checkpoint;
  3. as a control, putting the text at positions 0.. instead (PEFT's prefix
     unchanged) moves the logits by far more than the tolerance: the
     agreement in 2 depends on the positions.

Not part of ctest (it needs torch); docs/export.md records a run. Needs
torch, transformers, gguf, peft, h5py, numpy (e.g. in .venv-tools):

    build/bin/sptrain train configs/smollm2_sst2.yaml --set prompt.method=deep \\
        --set train.steps=2 --set train.run_dir=/tmp/prefix_rt --set train.eval_max_examples=16
    .venv-tools/bin/python tools/check_peft_prefix.py --checkpoint /tmp/prefix_rt/step_000002.h5
"""
import argparse
import os
import re
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


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def cache_layer(cache, layer):
    """(keys, values) of one layer of a transformers cache, [batch, kv heads, P, head_dim]."""
    if hasattr(cache, "layers"):  # transformers >= 4.56
        return cache.layers[layer].keys, cache.layers[layer].values
    return cache[layer]


def sptrain_eval(args, prompt, data):
    out = run([args.sptrain, "eval", args.config, "--set", f"model.path={args.model}", "--prompt", prompt,
               "--data", data, "--set", f"threads={args.threads}"])
    loss = float(re.search(r"^loss: (\S+)$", out, re.M).group(1))
    accuracy = float(re.search(r"^accuracy: (\S+)$", out, re.M).group(1))
    body = "".join(l + "\n" for l in out.splitlines() if not l.startswith("prompt: "))
    return loss, accuracy, body


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a deep checkpoint trained on the model below")
    ap.add_argument("--sptrain", default=os.path.join(ROOT, "build", "bin", "sptrain"))
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "smollm2_sst2.yaml"),
                    help="the configuration the checkpoint was trained with (its task)")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "smollm2-135m.h5"))
    ap.add_argument("--gguf", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "sst2", "dev.tsv"))
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tolerance", type=float, default=2e-4,
                    help="largest |loss difference| accepted (sptrain prints 4 decimals)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    with h5py.File(args.checkpoint, "r") as f:
        prefix = f["prefix"][()]  # [layers, P, 2 * kv * head_dim]
        template = text(f.attrs["task_template"])
        words = [text(w) for w in f["verbalizer/words"][()]]
        labels = [text(w) for w in f["verbalizer/labels"][()]]
    L, P, C = prefix.shape
    print(f"checkpoint {args.checkpoint}: prefix {prefix.shape} {prefix.dtype}, template {template!r}, "
          f"verbalizer {dict(zip(labels, words))}")

    work = tempfile.mkdtemp(prefix="sptrain_peft_prefix_")
    adapter = os.path.join(work, "adapter")
    print(run([args.sptrain, "export", args.checkpoint, "--format", "peft", "--out", adapter,
               "--model", args.model, "--base-model", "HuggingFaceTB/SmolLM2-135M-Instruct"]).strip())

    folder, name = os.path.split(os.path.abspath(args.gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    base = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter)
    model.eval()
    cfg = model.peft_config["default"]
    kv, hd = cfg.num_attention_heads, cfg.token_dim // cfg.num_attention_heads
    print(f"base model: {base.config.num_hidden_layers} layers, {base.config.num_attention_heads} heads, "
          f"{base.config.num_key_value_heads} kv heads, head_dim {base.config.head_dim}; PEFT config: "
          f"num_layers {cfg.num_layers}, num_attention_heads {cfg.num_attention_heads}, token_dim {cfg.token_dim}")
    assert C == 2 * kv * hd and L == cfg.num_layers and P == cfg.num_virtual_tokens

    # 1. The cache PEFT builds holds the checkpoint's keys and values.
    ok = True
    with torch.no_grad():
        cache = model.get_prompt(batch_size=1, max_cache_len=P + 1)
    same = True
    for layer in range(L):
        keys, values = (t.detach().numpy() for t in cache_layer(cache, layer))
        # sptrain: row p of layer l is [k head 0 .. k head kv-1 | v head 0 .. v head kv-1].
        want_k = prefix[layer, :, : kv * hd].reshape(P, kv, hd).transpose(1, 0, 2)[None]
        want_v = prefix[layer, :, kv * hd:].reshape(P, kv, hd).transpose(1, 0, 2)[None]
        same &= keys.dtype == np.float32 and keys.shape == want_k.shape and values.shape == want_v.shape
        same &= bool(np.array_equal(keys.view(np.uint32), want_k.view(np.uint32)))
        same &= bool(np.array_equal(values.view(np.uint32), want_v.view(np.uint32)))
    length = cache.get_seq_length()
    print(f"PEFT past_key_values: {L} layers of keys and values {tuple(keys.shape)}: "
          f"{'identical to the checkpoint prefix' if same else 'DIFFER from the checkpoint prefix'}; "
          f"cache length {length} (the text starts at position {length})")
    ok &= same and length == P

    # 2. Label-word losses: transformers + PEFT against sptrain eval.
    rows = []
    with open(args.data, encoding="utf-8") as f:
        for line in f:
            t, _, label = line.rstrip("\n").rpartition("\t")
            if label == "label":
                continue
            rows.append((t, label))
            if len(rows) >= args.examples:
                break
    word_ids = []
    for w in words:
        ids = tok(w, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, f"label word {w!r} is {len(ids)} tokens"
        word_ids.append(ids[0])

    def label_logits(t, position_ids=None):
        ids = tok(template.replace("{text}", t), add_special_tokens=False)["input_ids"]
        kwargs = {} if position_ids is None else {"position_ids": position_ids(len(ids))}
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), **kwargs).logits[0, -1]
        return np.array([float(logits[i]) for i in word_ids], dtype=np.float64)

    theirs, worst, agree, shift = [], 0.0, 0, 0.0
    for i, (t, label) in enumerate(rows):
        z = label_logits(t)
        y = labels.index(label)
        loss = float(np.logaddexp.reduce(z) - z[y])  # cross-entropy over the label words (task.loss labels)
        theirs.append((loss, int(np.argmax(z)) == y))
        one = os.path.join(work, f"one_{i}.tsv")
        with open(one, "w", encoding="utf-8") as f:
            f.write(f"{t}\t{label}\n")
        mine_loss, mine_acc, _ = sptrain_eval(args, args.checkpoint, one)
        worst = max(worst, abs(mine_loss - loss))
        agree += (mine_acc == 1.0) == theirs[-1][1]
        # 3. The control: the text at positions 0.. instead of P... PEFT adds
        # num_virtual_tokens to position_ids given for PREFIX_TUNING
        # (PeftModel._adjust_prompt_learning_kwargs), so ask for -P...
        z0 = label_logits(t, lambda n: torch.arange(n)[None] - P)
        shift = max(shift, float(np.max(np.abs(z0 - z))))
    print(f"{len(rows)} texts one by one: label-word loss differs from sptrain eval by at most {worst:.3g} "
          f"(tolerance {args.tolerance:g}); predictions agree on {agree}/{len(rows)}")

    subset = os.path.join(work, "subset.tsv")
    with open(subset, "w", encoding="utf-8") as f:
        f.writelines(f"{t}\t{label}\n" for t, label in rows)
    ck_loss, ck_acc, ck_body = sptrain_eval(args, args.checkpoint, subset)
    ad_loss, ad_acc, ad_body = sptrain_eval(args, adapter, subset)
    mean_loss = float(np.mean([l for l, _ in theirs]))
    accuracy = float(np.mean([a for _, a in theirs]))
    print(f"all {len(rows)}: sptrain eval --prompt checkpoint: loss {ck_loss:.4f}, accuracy {ck_acc:.4f}; "
          f"--prompt PEFT folder: loss {ad_loss:.4f}, accuracy {ad_acc:.4f} "
          f"({'same output' if ad_body == ck_body else 'DIFFERENT output'}); "
          f"transformers + PEFT: loss {mean_loss:.4f}, accuracy {accuracy:.4f}")
    print(f"control: the text at positions 0.. instead of {P}.. moves the label-word logits by up to {shift:.3g}")
    ok &= worst <= args.tolerance and agree == len(rows) and ad_body == ck_body
    ok &= abs(ck_loss - mean_loss) <= args.tolerance and abs(ck_acc - accuracy) < 1e-9
    ok &= shift > 100 * args.tolerance
    print(f"versions: torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    print("PEFT prefix round trip: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
