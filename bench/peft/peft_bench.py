#!/usr/bin/env python3
"""PyTorch + PEFT prompt tuning on the batches sptrain trains on: the other
side of the CPU race (docs/benchmarks/cpu.md, bench/README.md).

The model is the same GGUF file sptrain converts, loaded through transformers
(dequantised to fp32); the task, prompt and optimizer settings come from the
same sptrain config (template, label words, max_length, prompt length and
init text, AdamW settings, warm-up, clipping, batch size, seed). The prompt is
PEFT's PromptTuningConfig (init TEXT) and the loss is the cross-entropy over
the label words' logits at each example's last real token, averaged over the
batch, as sptrain's `loss: labels`.

Three modes:
  (default)             bench: --warmup untimed steps, then --steps timed ones;
                        prints the fields `sptrain bench` prints (--json: one object)
  --eval                accuracy on the config's task.eval with the current prompt
  --train-to-accuracy   train --steps steps, evaluating every --eval-every, printing
                        training wall time and dev accuracy at each evaluation

Batches: --batches FILE (JSONL {"step": i, "examples": [0-based indices into
task.train]}, as `sptrain bench --batches-out` writes), or else the port of
sptrain's sampler (sptrain_sampler.py) with the config's seed.

Run it with the environment bench/peft/setup.sh makes:
  .venv-bench/bin/python bench/peft/peft_bench.py --config configs/smollm2_sst2.yaml \
      --batches /tmp/batches.jsonl --warmup 3 --steps 10 --json
"""

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
import warnings

# Progress bars (the GGUF de-quantisation) would bury the figures.
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notes

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sptrain_sampler  # noqa: E402


def die(msg):
    print(f"peft_bench: error: {msg}", file=sys.stderr)
    sys.exit(2)


def say(msg):
    print(f"peft_bench: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The sptrain config: only the keys this benchmark needs, with sptrain's
# defaults (include/sptrain/config/config.hpp). Anything it cannot mirror is
# an error, not a silent difference.

DEFAULTS = {
    "task": {"format": "auto", "template": "{text}", "max_length": 128, "loss": "labels"},
    "prompt": {"length": 20, "init": "vocab_sample", "init_text": ""},
    "optim": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999,
              "eps": 1e-8, "warmup_steps": 0, "schedule": "constant", "min_lr_ratio": 0.0,
              "clip_grad_norm": 1.0},
    "train": {"steps": 300, "batch_size": 16, "eval_batch_size": 32, "eval_max_examples": 0, "seed": 1234, "shuffle": True},
}


def load_config(path, text_init=True):
    """The config's task, prompt, optim and train sections with sptrain's
    defaults. text_init: the prompt must start from init text (the CPU race
    mirrors it); the GPU stage benchmark starts from random values and says so."""
    import yaml

    if not os.path.isfile(path):
        die(f"{path}: no such config file")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    cfg = {}
    for section, defaults in DEFAULTS.items():
        given = raw.get(section) or {}
        if not isinstance(given, dict):
            die(f"{path}: '{section}' must be a mapping")
        cfg[section] = {**defaults, **given}
    task = raw.get("task") or {}
    for key in ("train", "labels"):
        if key not in task:
            die(f"{path}: task.{key} is required")
    cfg["task"]["train"] = task["train"]
    cfg["task"]["eval"] = task.get("eval", "")
    # Labels keep the YAML order: it defines the class index of each label.
    cfg["task"]["labels"] = [(str(k), str(v)) for k, v in task["labels"].items()]
    t, p, o = cfg["task"], cfg["prompt"], cfg["optim"]
    if t["loss"] != "labels":
        die(f"{path}: task.loss '{t['loss']}': only 'labels' is mirrored here")
    if text_init and p["init"] != "text":
        die(f"{path}: prompt.init '{p['init']}': only 'text' is mirrored here (PEFT's TEXT init)")
    if o["name"] != "adamw":
        die(f"{path}: optim.name '{o['name']}': only adamw is mirrored here")
    if o["schedule"] not in ("constant", "linear", "cosine"):
        die(f"{path}: optim.schedule '{o['schedule']}' is not constant, linear or cosine")
    fmt = t["format"]
    if fmt == "auto":
        fmt = "jsonl" if t["train"].endswith((".jsonl", ".json")) else "tsv"
    if fmt != "tsv":
        die(f"{path}: task.format {fmt}: only TSV data is mirrored here")
    return cfg


class LrSchedule:
    """sptrain's LrSchedule (src/optim/schedule.cpp): linear warm-up, then
    constant, linear or cosine decay to min_lr_ratio over train.steps."""

    def __init__(self, optim, total_steps):
        self.base, self.warmup = float(optim["lr"]), int(optim["warmup_steps"])
        self.kind, self.min_ratio, self.total = optim["schedule"], float(optim["min_lr_ratio"]), total_steps

    def lr(self, step):  # steps count from 1
        if step <= self.warmup:
            return self.base * step / self.warmup
        if self.kind == "constant":
            return self.base
        span = self.total - self.warmup
        progress = 1.0 if span <= 0 else min(1.0, (step - self.warmup) / span)
        shape = 1.0 - progress if self.kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.base * (self.min_ratio + (1.0 - self.min_ratio) * shape)


# --------------------------------------------------------------------------
# Data: the TSV read as src/data/dataset.cpp reads it, encoded as
# src/data/task.cpp encodes it.

def read_tsv(path):
    if not os.path.isfile(path):
        die(f"{path}: no such data file")
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in data.split(b"\n")]
    if lines and lines[-1] == b"":
        lines.pop()  # the split after a final newline
    while lines and not lines[-1].strip(b" \t\r"):
        lines.pop()
    out = []
    for i, raw in enumerate(lines):
        line = raw.decode("utf-8")
        if not line.strip(" \t\r"):
            die(f"{path}:{i + 1}: blank line (only allowed at the end of the file)")
        tab = line.rfind("\t")
        if tab < 0:
            die(f"{path}:{i + 1}: no tab; expected text<TAB>label")
        text, label = line[:tab], line[tab + 1:]
        if i == 0 and label == "label":
            continue  # GLUE-style header
        out.append((text, label, i + 1))
    return out


class Task:
    def __init__(self, cfg, tokenizer):
        t = cfg["task"]
        at = t["template"].find("{text}")
        if at < 0:
            die(f"task.template must contain {{text}}: {t['template']!r}")
        self.prefix, self.suffix = t["template"][:at], t["template"][at + 6:]
        self.max_length = int(t["max_length"])
        self.tok = tokenizer
        self.prefix_ids = tokenizer(self.prefix)["input_ids"]  # with BOS, if the tokenizer adds one
        self.suffix_ids = self.encode_plain(self.suffix)
        self.label_values, self.label_ids = [], []
        for value, word in t["labels"]:
            ids = self.encode_plain(word)
            if len(ids) != 1:
                die(f"task.labels.{value}: the label word {word!r} is {len(ids)} tokens; must be one")
            self.label_values.append(value)
            self.label_ids.append(ids[0])

    def encode_plain(self, s):
        return self.tok(s, add_special_tokens=False)["input_ids"] if s else []

    def encode(self, text, label, where):
        whole = self.tok(self.prefix + text + self.suffix)["input_ids"]
        if len(whole) > self.max_length:
            # Too long: keep the template whole and cut the text's tokens.
            keep = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
            whole = self.prefix_ids + self.encode_plain(text)[:keep] + self.suffix_ids
        if label not in self.label_values:
            die(f"{where}: label {label!r} is not one of {self.label_values}")
        return whole, self.label_values.index(label)

    def encode_file(self, path):
        return [self.encode(text, label, f"{path}:{line}") for text, label, line in read_tsv(path)]


def read_batches(path, n_examples, need):
    if not os.path.isfile(path):
        die(f"{path}: no such batches file")
    batches = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                j = json.loads(line)
                ex = [int(i) for i in j["examples"]]
            except (ValueError, KeyError, TypeError) as e:
                die(f"{path}:{lineno}: not a batch line ({e})")
            bad = [i for i in ex if not 0 <= i < n_examples]
            if bad:
                die(f"{path}:{lineno}: example index {bad[0]} outside the training set of {n_examples}")
            batches.append(ex)
    if len(batches) < need:
        die(f"{path}: {len(batches)} batches, but this run needs {need}")
    return batches


# --------------------------------------------------------------------------
# The model and the PEFT wrapper.

def blas_description(torch):
    """Torch's matrix-product library as its build reports it, plus the kernel
    MKL picks on this CPU (MKL_VERBOSE in a child process)."""
    show = torch.__config__.show()
    parts = []
    m = re.search(r"BLAS_INFO=(\w+)", show)
    parts.append(m.group(1) if m else "unknown BLAS")
    m = re.search(r"Math Kernel Library Version ([\d.]+)", show)
    if m:
        parts.append(f"MKL {m.group(1)}")
    m = re.search(r"MKL-DNN (v[\d.]+)", show)
    if m:
        parts.append(f"oneDNN {m.group(1)}")
    parts.append(f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()}")
    desc = ", ".join(parts)
    try:
        r = subprocess.run(
            [sys.executable, "-c", "import torch; a = torch.ones(64, 64); torch.mm(a, a)"],
            env={**os.environ, "MKL_VERBOSE": "1"}, capture_output=True, text=True, timeout=120)
        # "MKL_VERBOSE oneMKL 2024.0 ... Intel(R) Advanced Vector Extensions 512
        # (Intel(R) AVX-512) with support for ..., Lnx 2.30GHz lp64 gnu_thread"
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("MKL_VERBOSE") and "Lnx" in ln), "")
        isa = re.search(r"\((Intel\(R\) (?:AVX|SSE)[\w.\-]*)\)", line)
        if isa:
            desc += f"; MKL sgemm kernel {isa.group(1).replace('Intel(R) ', '')}"
    except (OSError, subprocess.SubprocessError):
        pass
    return desc


def load_model(torch, gguf, cfg, threads):
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if not os.path.isfile(gguf):
        die(f"{gguf}: no such GGUF file (tools/fetch_smollm2.sh fetches it)")
    folder, name = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    base = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    p = cfg["prompt"]
    peft_config = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=int(p["length"]),
        prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text=p["init_text"],
        tokenizer_name_or_path=folder,
        tokenizer_kwargs={"gguf_file": name},
    )
    model = get_peft_model(base, peft_config)
    say(f"model and tokenizer loaded in {time.perf_counter() - t0:.1f} s")
    # The same start as sptrain's init 'text': the init text's tokens, cycled
    # to the prompt length. Checked, not assumed.
    ids = tokenizer(p["init_text"], add_special_tokens=False)["input_ids"]
    ids = [ids[i % len(ids)] for i in range(int(p["length"]))]
    emb = base.get_input_embeddings().weight
    prompt = prompt_weight(model)
    if not torch.equal(prompt.detach(), emb[torch.tensor(ids)].detach()):
        die("PEFT's TEXT init differs from the init text's embeddings cycled to the prompt length")
    return tokenizer, model


def prompt_weight(model):
    return model.prompt_encoder["default"].embedding.weight


def model_shape(base_config):
    c = base_config
    heads = c.num_attention_heads
    return {"d": c.hidden_size, "heads": heads, "kv_heads": getattr(c, "num_key_value_heads", heads),
            "head_dim": getattr(c, "head_dim", None) or c.hidden_size // heads,
            "ffn": c.intermediate_size, "layers": c.num_hidden_layers, "vocab": c.vocab_size,
            "gated": getattr(c, "hidden_act", "") in ("silu", "swiglu")}  # llama's silu MLP is SwiGLU


def step_flops(s, rows_per_example, batch, head_rows, head_cols):
    """docs/performance.md's count (src/model/stage.cpp, Stage::work) for the
    rows PEFT computes: every example is a padded sequence of
    `rows_per_example` rows (virtual tokens, text, padding), causal attention
    over its own rows, the LM head at `head_rows` rows of `head_cols` columns.
    Returns (forward, backward, parts) in FLOPs."""
    d, H, Hkv, D, F, layers = s["d"], s["heads"], s["kv_heads"], s["head_dim"], s["ffn"], s["layers"]
    w_qkv, w_up = (H + 2 * Hkv) * D, (2 if s["gated"] else 1) * F
    linear_per_row = 2.0 * d * (w_qkv + w_up) + 2.0 * H * D * d + 2.0 * F * d
    T = rows_per_example
    rows = batch * T
    keys = batch * T * (T + 1) / 2.0
    blocks = layers * linear_per_row * rows
    attn_f, attn_b = layers * 4.0 * D * H * keys, layers * 8.0 * D * H * keys
    head = 2.0 * d * head_cols * head_rows
    parts = {"blocks": 2 * blocks, "attention": attn_f + attn_b, "lm_head": 2 * head}
    return blocks + attn_f + head, blocks + attn_b + head, parts


class Runner:
    """One forward/backward/update of PEFT prompt tuning on a list of encoded
    examples, with the logits taken at each example's last real token."""

    def __init__(self, torch, model, tokenizer, task, cfg, logits_mode, total_steps):
        self.torch, self.model, self.task, self.cfg = torch, model, task, cfg
        self.P = int(cfg["prompt"]["length"])
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.logits_mode = logits_mode
        o = cfg["optim"]
        self.params = [p for p in model.parameters() if p.requires_grad]
        if len(self.params) != 1 or self.params[0] is not prompt_weight(model):
            die("expected the prompt to be PEFT's only trainable tensor")
        self.optimizer = torch.optim.AdamW(self.params, lr=float(o["lr"]), betas=(float(o["beta1"]), float(o["beta2"])),
                                           eps=float(o["eps"]), weight_decay=float(o["weight_decay"]))
        self.clip = float(o["clip_grad_norm"])
        self.schedule = LrSchedule(o, total_steps)
        self.label_ids = torch.tensor(task.label_ids)
        self.shape = model_shape(model.base_model.config)

    def collate(self, examples):
        """Right-padded ids and mask (the tokenizer's own padding side for this
        model, so every example's positions count from 0), each example's last
        real row (after the virtual tokens) and label."""
        torch = self.torch
        lengths = [len(ids) for ids, _ in examples]
        T = max(lengths)
        ids = torch.full((len(examples), T), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(examples), T), dtype=torch.long)
        for b, (tokens, _) in enumerate(examples):
            ids[b, :len(tokens)] = torch.tensor(tokens)
            mask[b, :len(tokens)] = 1
        last = torch.tensor([self.P + n - 1 for n in lengths])
        labels = torch.tensor([label for _, label in examples])
        return ids, mask, last, labels, lengths

    def label_logits(self, ids, mask, last):
        torch = self.torch
        kwargs = {"input_ids": ids, "attention_mask": mask, "use_cache": False}
        if self.logits_mode == "needed":
            # The LM head only at the rows the loss reads (transformers'
            # logits_to_keep takes a list of sequence positions).
            keep, where = torch.unique(last, return_inverse=True)
            out = self.model(**kwargs, logits_to_keep=keep)
            rows = out.logits[torch.arange(len(last)), where]
        else:
            out = self.model(**kwargs)
            rows = out.logits[torch.arange(len(last)), last]
        return rows[:, self.label_ids]

    def counts(self, lengths, ids):
        """Positions and FLOPs of one forward/backward over this batch."""
        B, T = ids.shape
        text = sum(lengths)
        rows_per_example = self.P + T
        if self.logits_mode == "needed":
            head_rows = B * len(set(lengths))
        else:
            head_rows = B * rows_per_example
        fwd, bwd, parts = step_flops(self.shape, rows_per_example, B, head_rows, self.shape["vocab"])
        return {"text": text, "prompt": self.P * B, "padding": B * T - text, "fwd": fwd, "bwd": bwd, "parts": parts}

    # Hooks for a GPU runner (peft_gpu_stage.py): move the batch to the device,
    # and wait for the device before reading the clock. On the CPU: nothing.
    def to_device(self, tensors):
        return tensors

    def sync(self):
        pass

    def train_step(self, step, examples):
        torch = self.torch
        self.sync()
        t0 = time.perf_counter()
        ids, mask, last, labels, lengths = self.collate(examples)
        ids, mask, last, labels = self.to_device((ids, mask, last, labels))
        logits = self.label_logits(ids, mask, last)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        self.sync()
        t1 = time.perf_counter()
        loss.backward()
        self.sync()
        t2 = time.perf_counter()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        for g in self.optimizer.param_groups:
            g["lr"] = self.schedule.lr(step)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.sync()
        t3 = time.perf_counter()
        return {"forward": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2, "total": t3 - t0,
                "loss": float(loss.detach()), "counts": self.counts(lengths, ids)}

    def evaluate(self, data, batch_size):
        torch = self.torch
        correct, loss_sum, positions = 0, 0.0, 0
        t0 = time.perf_counter()
        self.model.eval()
        with torch.inference_mode():
            for i in range(0, len(data), batch_size):
                part = data[i:i + batch_size]
                ids, mask, last, labels, _ = self.collate(part)
                logits = self.label_logits(ids, mask, last)
                loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
                correct += int((logits.argmax(dim=1) == labels).sum())
                positions += ids.numel() + self.P * len(part)
        self.model.train()
        seconds = time.perf_counter() - t0
        return {"accuracy": correct / len(data), "loss": loss_sum / len(data), "examples": len(data),
                "seconds": seconds, "positions_per_s": positions / seconds}


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


class OtherLoad:
    """How many cores other processes kept busy while we ran: the machine's
    busy time (/proc/stat) less our own CPU time, over the wall time. On a
    2-core machine anything well above 0 means the figures are disturbed
    (OpenMP threads that wait on a taken core slow a step many times over)."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")
        self.start = self.sample()

    def sample(self):
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            busy = (sum(v[:8]) - v[3] - v[4]) / self.hz  # all but idle and iowait
        except (OSError, ValueError, IndexError):
            busy = float("nan")
        t = os.times()
        return busy, t.user + t.system, time.perf_counter()

    def cores(self):
        busy, own, wall = self.sample()
        b0, o0, w0 = self.start
        return max(0.0, ((busy - b0) - (own - o0)) / (wall - w0))


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/smollm2_sst2.yaml", help="sptrain config (task, prompt, optim, train)")
    ap.add_argument("--gguf", default="models/SmolLM2-135M-Instruct.Q4_1.gguf", help="the model, as a GGUF file")
    ap.add_argument("--batches", help="JSONL batches file from `sptrain bench --batches-out`; "
                    "default: sptrain's sampler, ported (sptrain_sampler.py)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--eval", action="store_true", help="dev accuracy with the current prompt, no training")
    mode.add_argument("--train-to-accuracy", action="store_true",
                      help="train --steps steps, evaluating on task.eval every --eval-every steps")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (bench) or training steps (train-to-accuracy)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones (bench)")
    ap.add_argument("--eval-every", type=int, default=50, help="train-to-accuracy: evaluate every N steps")
    ap.add_argument("--stop-at", type=float, default=None, help="train-to-accuracy: stop once dev accuracy reaches this")
    ap.add_argument("--eval-max-examples", type=int, default=None,
                    help="evaluate on the first N examples of task.eval (default: train.eval_max_examples; 0 = all)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the config's train.batch_size")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads (default: all cores)")
    ap.add_argument("--logits", choices=("all", "needed"), default="all",
                    help="all: the model's logits at every row, as a plain forward gives them (default); "
                    "needed: logits_to_keep, only the rows the loss reads")
    ap.add_argument("--load-prompt", help="start from this prompt (.npy, P x d_model) instead of the init text")
    ap.add_argument("--save-prompt", help="write the prompt at the end (.npy)")
    ap.add_argument("--json", action="store_true", help="one JSON object (bench, eval) or JSON lines (train-to-accuracy)")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1 or args.eval_every < 1:
        die("--steps, --threads and --eval-every must be >= 1, --warmup >= 0")

    cfg = load_config(args.config)
    B = args.batch_size or int(cfg["train"]["batch_size"])

    import numpy as np
    import torch
    import peft
    import transformers

    tokenizer, model = load_model(torch, args.gguf, cfg, args.threads)
    task = Task(cfg, tokenizer)
    if args.load_prompt:
        w = np.load(args.load_prompt)
        if tuple(w.shape) != tuple(prompt_weight(model).shape):
            die(f"{args.load_prompt}: prompt is {w.shape}, the model wants {tuple(prompt_weight(model).shape)}")
        with torch.no_grad():
            prompt_weight(model).copy_(torch.from_numpy(w.astype(np.float32)))

    total_steps = args.steps if args.train_to_accuracy else int(cfg["train"]["steps"])
    runner = Runner(torch, model, tokenizer, task, cfg, args.logits, total_steps)
    common = {"tool": "peft", "torch": torch.__version__, "transformers": transformers.__version__,
              "peft": peft.__version__, "threads": torch.get_num_threads(), "logits": args.logits}

    def dev_data():
        if not cfg["task"]["eval"]:
            die(f"{args.config}: task.eval is not set")
        data = task.encode_file(cfg["task"]["eval"])
        limit = args.eval_max_examples if args.eval_max_examples is not None else int(cfg["train"]["eval_max_examples"])
        return data[:limit] if limit > 0 else data

    if args.eval:
        r = runner.evaluate(dev_data(), int(cfg["train"]["eval_batch_size"]))
        r.update(common, peak_rss_mb=rss_mb())
        print(json.dumps(r, indent=2) if args.json else
              f"peft eval: accuracy {r['accuracy']:.4f}, loss {r['loss']:.4f} on {r['examples']} examples, "
              f"{r['seconds']:.1f} s ({r['positions_per_s']:.0f} positions/s forward)")
        save_prompt(args, model, np)
        return

    train = task.encode_file(cfg["task"]["train"])
    need = args.steps if args.train_to_accuracy else args.warmup + args.steps
    if args.batches:
        batches = read_batches(args.batches, len(train), need)
        source = f"file:{args.batches}"
        if any(len(b) != B for b in batches[:need]):
            die(f"{args.batches}: batches are not all of size {B}")
    else:
        batches = [b["examples"] for b in sptrain_sampler.batches(
            len(train), int(cfg["train"]["seed"]), B, need, bool(cfg["train"]["shuffle"]))]
        source = f"sptrain sampler port (seed {cfg['train']['seed']})"
    say(f"{len(train)} training examples, batch {B}, batches from {source}, {torch.get_num_threads()} threads")

    if args.train_to_accuracy:
        train_to_accuracy(args, runner, train, batches, dev_data(), int(cfg["train"]["eval_batch_size"]), common, source)
    else:
        bench(args, runner, train, batches, B, common, source, torch)
    save_prompt(args, model, np)


def save_prompt(args, model, np):
    if args.save_prompt:
        tmp = args.save_prompt + ".tmp.npy"
        np.save(tmp, prompt_weight(model).detach().numpy())
        os.replace(tmp, args.save_prompt)


class TimedSteps:
    """The timed steps' times, positions and FLOPs summed, and the figures
    both PEFT benchmarks (this one and peft_gpu_stage.py) print from them."""

    TIMES = ("forward", "backward", "optimizer", "total")
    COUNTS = ("text", "prompt", "padding", "fwd", "bwd")

    def __init__(self):
        self.sums = {k: 0.0 for k in self.TIMES + self.COUNTS}
        self.parts = {"blocks": 0.0, "attention": 0.0, "lm_head": 0.0}
        self.n = 0

    def add(self, r):
        for k in self.TIMES:
            self.sums[k] += r[k]
        for k in self.COUNTS:
            self.sums[k] += r["counts"][k]
        for k in self.parts:
            self.parts[k] += r["counts"]["parts"][k]
        self.n += 1

    def step_s(self):
        return self.sums["total"] / self.n

    def flops_per_step(self):
        return (self.sums["fwd"] + self.sums["bwd"]) / self.n

    def figures(self, batch):
        n, s, step_s = self.n, self.sums, self.step_s()
        text, prompt, padding = s["text"] / n, s["prompt"] / n, s["padding"] / n
        return {
            "batch_size": batch,
            "steps": n,
            "examples_per_s": batch / step_s,
            "positions_per_s": {"text": text / step_s, "prompt": prompt / step_s, "prompt_per_example": prompt / step_s,
                                "padding": padding / step_s, "total": (text + prompt + padding) / step_s},
            "padding_share": padding / (text + prompt + padding),
            "step_time_s": {"forward": s["forward"] / n, "backward": s["backward"] / n,
                            "optimizer": s["optimizer"] / n, "total": step_s},
            "gflop_per_step": self.flops_per_step() / 1e9,
            "gflop_per_step_parts": {k: v / n / 1e9 for k, v in self.parts.items()},
        }


def bench(args, runner, train, batches, B, common, source, torch):
    timed_steps = TimedSteps()
    loss = 0.0
    other = None
    for step in range(1, args.warmup + args.steps + 1):
        if step == args.warmup + 1:
            other = OtherLoad()
        r = runner.train_step(step, [train[i] for i in batches[step - 1]])
        loss = r["loss"]
        timed = step > args.warmup
        say(f"step {step}{'' if timed else ' (warm-up)'}: {r['total']:.2f} s, loss {loss:.4f}")
        if timed:
            timed_steps.add(r)
    step_s = timed_steps.step_s()
    four_n_blocks = timed_steps.parts["blocks"] / timed_steps.n  # 4N per row: the simple count of REFERENCE.md
    j = {
        **common,
        "batches": source,
        "warmup": args.warmup,
        **timed_steps.figures(B),
        "gflops_per_s": timed_steps.flops_per_step() / step_s / 1e9,
        "gflops_per_s_4n": four_n_blocks / step_s / 1e9,
        "blas": blas_description(torch),
        "peak_rss_mb": rss_mb(),
        "last_loss": loss,
        "other_processes_cores": other.cores(),
    }
    if args.json:
        print(json.dumps(j, indent=2))
        return
    pp = j["positions_per_s"]
    st = j["step_time_s"]
    print(f"peft bench: torch {j['torch']}, transformers {j['transformers']}, peft {j['peft']}, "
          f"{j['threads']} threads, logits {j['logits']}")
    print(f"  {j['steps']} timed steps after {args.warmup} warm-up, batch {B}, batches from {source}")
    print(f"  examples/s          {j['examples_per_s']:10.2f}")
    print(f"  positions/s         {pp['total']:10.1f}  (text {pp['text']:.1f}, prompt {pp['prompt']:.1f}, "
          f"padding {pp['padding']:.1f} = {100 * j['padding_share']:.0f}%)")
    print(f"  step time           {st['total']:10.3f} s (forward {st['forward']:.3f}, backward {st['backward']:.3f}, "
          f"optimizer {st['optimizer']:.4f})")
    print(f"  work                {j['gflop_per_step']:10.1f} GFLOP/step, {j['gflops_per_s']:.1f} GFLOP/s "
          f"(blocks 4N only: {j['gflops_per_s_4n']:.1f})")
    print(f"  BLAS                {j['blas']}")
    print(f"  peak RSS            {j['peak_rss_mb']:10.0f} MB")
    print(f"  other processes     {j['other_processes_cores']:10.2f} cores busy on average during the timed steps")


def train_to_accuracy(args, runner, train, batches, dev, eval_bs, common, source):
    train_s = 0.0
    wall0 = time.perf_counter()

    def report(step, loss):
        r = runner.evaluate(dev, eval_bs)
        line = {**common, "batches": source, "step": step, "train_s": train_s,
                "wall_s": time.perf_counter() - wall0, "dev_accuracy": r["accuracy"], "dev_loss": r["loss"],
                "train_loss_avg": loss, "dev_examples": r["examples"]}
        shown = "-" if loss is None else f"{loss:.4f}"
        print(json.dumps(line) if args.json else
              f"step {step:5d} | train {train_s / 60:6.1f} min | wall {line['wall_s'] / 60:6.1f} min | "
              f"dev accuracy {r['accuracy']:.4f} | dev loss {r['loss']:.4f} | train loss (avg) {shown}", flush=True)
        return r["accuracy"]

    acc = report(0, None)
    avg = None
    for step in range(1, args.steps + 1):
        r = runner.train_step(step, [train[i] for i in batches[step - 1]])
        train_s += r["total"]
        avg = r["loss"] if avg is None else 0.9 * avg + 0.1 * r["loss"]
        if step % args.eval_every == 0 or step == args.steps:
            acc = report(step, avg)
            if args.stop_at is not None and acc >= args.stop_at:
                say(f"dev accuracy {acc:.4f} >= {args.stop_at} at step {step}: stopping")
                break


if __name__ == "__main__":
    main()
