#!/usr/bin/env python3
"""PyTorch + PEFT against sptrain on E2E data-to-text (a generate task):
docs/results_e2e.md. NOT A TEST: it needs torch (bench/peft/setup.sh).

Modes (one per run):
  train   PEFT prompt tuning with the sptrain config's template, prompt (init
          text), AdamW settings, schedule, clipping and batch size, on the
          batches sptrain's sampler draws (sptrain_sampler.py, the config's
          seed); the loss is the mean cross-entropy of every target token and
          end-of-sequence of the batch (teacher forcing), as sptrain's.
          Stops after --steps steps or --time-budget seconds of training,
          whichever comes first, then scores greedy generation on the dev
          inputs (BLEU with sacreBLEU, ROUGE-L with rouge-score, as sptrain).
  speed   new tokens/s of transformers' generate() with the PEFT prompt
          (greedy, up to --max-new-tokens, stopping at end-of-sequence as
          `sptrain generate` does; a token that ends a sequence counts) at
          --batch-sizes, on the first --inputs dev inputs.
  agree   greedy generation of --max-new-tokens tokens for every dev input
          with the prompt of a PEFT folder that `sptrain export --format
          peft` wrote, compared token for token with `sptrain generate --ids`
          output for the same inputs (--sptrain-output).

The model is the GGUF file sptrain converts (models/...Q4_1.gguf), loaded by
transformers and de-quantised to fp32, so both sides run the same weights.

  .venv-bench/bin/python bench/peft/e2e_bench.py train --config configs/smollm2_e2e.yaml \
      --time-budget 600 --save-prompt /tmp/peft_e2e.npy --json
  .venv-bench/bin/python bench/peft/e2e_bench.py speed --peft-folder /tmp/e2e_peft --json
  .venv-bench/bin/python bench/peft/e2e_bench.py agree --peft-folder /tmp/e2e_peft \
      --sptrain-output /tmp/sptrain_gen.jsonl
"""

import argparse
import json
import math
import os
import sys
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sptrain_sampler  # noqa: E402
from peft_bench import LrSchedule, blas_description, die, prompt_weight, say  # noqa: E402


def load_config(path):
    """The task, prompt, optim and train keys this script mirrors, with
    sptrain's defaults; anything it cannot mirror is an error."""
    import yaml

    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    task, prompt, optim, train = (raw.get(k) or {} for k in ("task", "prompt", "optim", "train"))
    if task.get("kind") != "generate":
        die(f"{path}: task.kind must be generate")
    cfg = {
        "train": task["train"], "eval": task.get("eval", ""), "template": task.get("template", "{text}"),
        "max_length": int(task.get("max_length", 128)), "max_target_length": int(task.get("max_target_length", 128)),
        "P": int(prompt.get("length", 20)), "init": prompt.get("init", "vocab_sample"), "init_text": prompt.get("init_text", ""),
        "optim": {"lr": 1e-2, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "warmup_steps": 0,
                  "schedule": "constant", "min_lr_ratio": 0.0, "clip_grad_norm": 1.0, **optim},
        "steps": int(train.get("steps", 300)), "batch_size": int(train.get("batch_size", 16)),
        "seed": int(train.get("seed", 1234)), "eval_batch_size": int(train.get("eval_batch_size", 32)),
        "eval_max_examples": int(train.get("eval_max_examples", 0)),
    }
    if cfg["init"] != "text":
        die(f"{path}: prompt.init must be text (PEFT's TEXT init)")
    if cfg["optim"].get("name", "adamw") != "adamw":
        die(f"{path}: optim.name must be adamw")
    return cfg


def read_pairs(path):
    """input<TAB>target lines (the last tab separates), as sptrain reads them."""
    out = []
    with open(path, encoding="utf-8-sig") as f:
        for i, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            tab = line.rfind("\t")
            if tab <= 0:
                die(f"{path}:{i}: expected input<TAB>target")
            out.append((line[:tab], line[tab + 1:]))
    return out


def referenced_inputs(pairs, cap=0):
    """Distinct inputs in order of first appearance with all their targets."""
    refs, order = {}, []
    for mr, text in pairs:
        if mr not in refs:
            if cap and len(order) == cap:
                continue
            refs[mr] = []
            order.append(mr)
        refs[mr].append(text)
    return order, [refs[m] for m in order]


class GenTask:
    """src/data/task.cpp's encoding of a generate task."""

    def __init__(self, cfg, tok):
        at = cfg["template"].find("{text}")
        self.prefix, self.suffix = cfg["template"][:at], cfg["template"][at + 6:]
        self.tok, self.max_length = tok, cfg["max_length"]
        self.prefix_ids = tok(self.prefix)["input_ids"]
        self.suffix_ids = self.plain(self.suffix)
        self.eos = tok.eos_token_id
        if self.eos is None:
            die("the tokenizer has no end-of-sequence token")

    def plain(self, s):
        return self.tok(s, add_special_tokens=False)["input_ids"] if s else []

    def input_ids(self, text):
        whole = self.tok(self.prefix + text + self.suffix)["input_ids"]
        if len(whole) > self.max_length:
            keep = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
            whole = self.prefix_ids + self.plain(text)[:keep] + self.suffix_ids
        return whole

    def target_ids(self, target):
        return self.plain(target) + [self.eos]


def load(args, torch, cfg=None):
    """Tokenizer and PEFT model: a fresh TEXT-initialised prompt (train) or a
    PEFT folder's prompt (speed, agree)."""
    from peft import PeftModel, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    folder, name = os.path.dirname(os.path.abspath(args.gguf)), os.path.basename(args.gguf)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    base = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    if args.peft_folder:
        model = PeftModel.from_pretrained(base, args.peft_folder)
    else:
        model = get_peft_model(base, PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=cfg["P"], prompt_tuning_init=PromptTuningInit.TEXT,
            prompt_tuning_init_text=cfg["init_text"], tokenizer_name_or_path=folder, tokenizer_kwargs={"gguf_file": name}))
        ids = tok(cfg["init_text"], add_special_tokens=False)["input_ids"]
        ids = [ids[i % len(ids)] for i in range(cfg["P"])]
        if not torch.equal(prompt_weight(model).detach(), base.get_input_embeddings().weight[torch.tensor(ids)].detach()):
            die("PEFT's TEXT init differs from sptrain's (the init text's embeddings, cycled)")
    model.eval()
    say(f"model loaded in {time.perf_counter() - t0:.1f} s ({blas_description(torch)})")
    return tok, model


def generate(torch, model, tok, inputs, batch_size, max_new, eos, peft_generate=False):
    """Greedy continuations (token ids, end-of-sequence cut) of each input,
    batches left-padded, and the number of new tokens (an ending one included).

    By default the base model's generate() (transformers, with its KV cache)
    runs on inputs_embeds = [PEFT's prompt; the input's embeddings], the
    prompt at positions 0..P-1 as PEFT places it. PEFT 0.21.2's own
    PeftModel.generate() (peft_generate=True) with transformers 5.24 and its
    cache goes wrong after the first new token (the class of bug of
    peft#2123); with use_cache=False it is right but recomputes every prefix.
    docs/results_e2e.md records both."""
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    base = model.get_base_model()
    table = base.get_input_embeddings()
    prompt = prompt_weight(model).detach()
    P, d = prompt.shape
    out, new_tokens = [], 0
    for b in range(0, len(inputs), batch_size):
        chunk = inputs[b:b + batch_size]
        T = max(len(x) for x in chunk)
        with torch.no_grad():
            if peft_generate:
                ids = torch.full((len(chunk), T), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), T), dtype=torch.long)
                for i, x in enumerate(chunk):
                    ids[i, T - len(x):] = torch.tensor(x)
                    mask[i, T - len(x):] = 1
                gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                                     eos_token_id=eos, pad_token_id=pad)[:, T:]
            else:
                embeds = torch.zeros((len(chunk), P + T, d), dtype=prompt.dtype)
                mask = torch.zeros((len(chunk), P + T), dtype=torch.long)
                for i, x in enumerate(chunk):
                    start = T - len(x)
                    embeds[i, start:start + P] = prompt
                    embeds[i, start + P:] = table(torch.tensor(x))
                    mask[i, start:] = 1
                # With inputs_embeds alone, generate() returns only the new tokens.
                gen = base.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new,
                                    do_sample=False, eos_token_id=eos, pad_token_id=pad)
        for row in gen.tolist():
            if eos in row:
                row = row[:row.index(eos)]
                new_tokens += 1
            new_tokens += len(row)
            out.append(row)
    return out, new_tokens


def score(hyps, refs):
    import sacrebleu
    from rouge_score import rouge_scorer

    most = max(len(r) for r in refs)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(most)]
    bleu = sacrebleu.BLEU().corpus_score(hyps, streams).score
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge = sum(scorer.score_multi(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)) / len(hyps)
    exact = sum(h.strip() in [x.strip() for x in r] for h, r in zip(hyps, refs)) / len(hyps)
    return {"bleu": bleu, "rouge_l": 100 * rouge, "exact_match": 100 * exact, "inputs": len(hyps)}


def train(args, torch):
    cfg = load_config(args.config)
    tok, model = load(args, torch, cfg)
    task = GenTask(cfg, tok)
    pairs = read_pairs(cfg["train"])
    data = [(task.input_ids(x), task.target_ids(y)) for x, y in pairs]
    for i, (_, t) in enumerate(data):
        if len(t) > cfg["max_target_length"]:
            die(f"{cfg['train']}:{i + 1}: target of {len(t)} tokens > task.max_target_length")
    model.train()
    params = [prompt_weight(model)]
    o = cfg["optim"]
    opt = torch.optim.AdamW(params, lr=float(o["lr"]), betas=(float(o["beta1"]), float(o["beta2"])),
                            eps=float(o["eps"]), weight_decay=float(o["weight_decay"]))
    schedule = LrSchedule(o, cfg["steps"])
    sampler = sptrain_sampler.DataSampler(len(data), cfg["seed"], True)
    pad = tok.pad_token_id if tok.pad_token_id is not None else task.eos
    B, steps = args.batch_size or cfg["batch_size"], min(args.steps or cfg["steps"], cfg["steps"])
    curve, trained, t_start = [], 0.0, time.perf_counter()
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        batch = [data[i] for i in sampler.next(B)]
        T = max(len(x) + len(y) for x, y in batch)
        ids = torch.full((B, T), pad, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        labels = torch.full((B, T), -100, dtype=torch.long)
        for b, (x, y) in enumerate(batch):
            n = len(x) + len(y)
            ids[b, :n] = torch.tensor(x + y)
            mask[b, :n] = 1
            labels[b, len(x):n] = torch.tensor(y)  # the model shifts: row t predicts labels[t + 1]
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        if float(o["clip_grad_norm"]) > 0:
            torch.nn.utils.clip_grad_norm_(params, float(o["clip_grad_norm"]))
        for g in opt.param_groups:
            g["lr"] = schedule.lr(step)
        opt.step()
        opt.zero_grad(set_to_none=True)
        trained += time.perf_counter() - t0
        curve.append({"step": step, "loss": float(loss.detach()), "elapsed_s": trained})
        if step % 10 == 0:
            say(f"step {step}/{steps} | loss {float(loss):.4f} | {trained:.0f} s")
        if args.time_budget and trained >= args.time_budget:
            break
    if args.save_prompt:
        import numpy as np
        np.save(args.save_prompt, prompt_weight(model).detach().numpy())
    model.eval()
    dev_inputs, dev_refs = referenced_inputs(read_pairs(cfg["eval"]), cfg["eval_max_examples"])
    t0 = time.perf_counter()
    gen, _ = generate(torch, model, tok, [task.input_ids(x) for x in dev_inputs], cfg["eval_batch_size"],
                      cfg["max_target_length"], task.eos)
    hyps = [tok.decode(g) for g in gen]
    result = {"tool": "peft", "steps": len(curve), "train_s": trained, "wall_s": time.perf_counter() - t_start,
              "eval_s": time.perf_counter() - t0, **score(hyps, dev_refs), "curve": curve,
              "examples": [{"input": x, "generated": h, "references": r} for x, h, r in list(zip(dev_inputs, hyps, dev_refs))[:5]]}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


def speed(args, torch):
    cfg = load_config(args.config)
    tok, model = load(args, torch)
    task = GenTask(cfg, tok)
    dev_inputs, _ = referenced_inputs(read_pairs(cfg["eval"]))
    rows = []
    for bs in args.batch_sizes:
        inputs = [task.input_ids(x) for x in dev_inputs[:args.inputs]]
        generate(torch, model, tok, inputs[:bs], bs, 2, task.eos)  # warm-up
        t0 = time.perf_counter()
        _, n = generate(torch, model, tok, inputs, bs, args.max_new_tokens, task.eos)
        s = time.perf_counter() - t0
        rows.append({"tool": "transformers+peft", "batch": bs, "inputs": len(inputs), "new_tokens": n,
                     "seconds": s, "new_tokens_per_s": n / s})
        say(f"batch {bs}: {n} new tokens in {s:.1f} s = {n / s:.1f} tokens/s")
    print(json.dumps(rows) if args.json else json.dumps(rows, indent=1))


def agree(args, torch):
    cfg = load_config(args.config)
    tok, model = load(args, torch)
    task = GenTask(cfg, tok)
    theirs = [json.loads(line) for line in open(args.sptrain_output) if line.strip()]
    dev_inputs, _ = referenced_inputs(read_pairs(cfg["eval"]))
    n = min(len(theirs), args.max_inputs or len(theirs))
    if any("ids" not in t for t in theirs[:n]):
        die(f"{args.sptrain_output}: lines without \"ids\" (run sptrain generate --ids)")
    ours, _ = generate(torch, model, tok, [task.input_ids(x) for x in dev_inputs[:n]], args.batch_size or 1,
                       args.max_new_tokens, task.eos)
    same = sum(o == t["ids"] for o, t in zip(ours, theirs[:n]))
    first_diff = [i for i, (o, t) in enumerate(zip(ours, theirs[:n])) if o != t["ids"]][:5]
    # PEFT's own generate() on the first inputs, to record whether its bug persists.
    m = min(n, args.peft_generate_inputs)
    theirs_own, _ = generate(torch, model, tok, [task.input_ids(x) for x in dev_inputs[:m]], args.batch_size or 1,
                             args.max_new_tokens, task.eos, peft_generate=True)
    same_own = sum(o == t["ids"] for o, t in zip(theirs_own, theirs[:m]))
    result = {"inputs": n, "token_identical": same, "share": same / n, "first_differences": first_diff,
              "examples": [{"input": dev_inputs[i], "peft": tok.decode(ours[i]), "sptrain": theirs[i]["text"]}
                           for i in first_diff[:3]],
              "peft_generate": {"inputs": m, "token_identical": same_own,
                                "examples": [{"input": dev_inputs[i], "peft_generate": tok.decode(theirs_own[i]),
                                              "sptrain": theirs[i]["text"]} for i in range(min(m, 2))]}}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    if same / n < 0.95:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("train", "speed", "agree"))
    ap.add_argument("--config", default="configs/smollm2_e2e.yaml")
    ap.add_argument("--gguf", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--steps", type=int, default=0, help="train: at most this many steps (default: train.steps)")
    ap.add_argument("--time-budget", type=float, default=0, help="train: stop after this many seconds of training")
    ap.add_argument("--batch-size", type=int, default=0, help="train: examples per step; agree: inputs per generate()")
    ap.add_argument("--save-prompt", help="train: write the prompt (.npy)")
    ap.add_argument("--peft-folder", help="speed, agree: the PEFT folder `sptrain export --format peft` wrote")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16], help="speed")
    ap.add_argument("--inputs", type=int, default=32, help="speed: the first N dev inputs, at every batch size")
    ap.add_argument("--max-new-tokens", type=int, default=40, help="speed, agree")
    ap.add_argument("--sptrain-output", help="agree: `sptrain generate --ids` output for the dev inputs, in order")
    ap.add_argument("--max-inputs", type=int, default=0, help="agree: the first N dev inputs (default: all given)")
    ap.add_argument("--peft-generate-inputs", type=int, default=32,
                    help="agree: also run PeftModel.generate() itself on the first N inputs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.mode != "train" and not args.peft_folder:
        die(f"{args.mode} needs --peft-folder")
    import torch

    {"train": train, "speed": speed, "agree": agree}[args.mode](args, torch)


if __name__ == "__main__":
    main()
