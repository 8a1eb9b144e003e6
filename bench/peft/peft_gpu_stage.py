#!/usr/bin/env python3
"""PyTorch + PEFT prompt tuning of one 175B pipeline stage at tensor-parallel-8
shapes on one GPU: the other side of `bench/gpu_175b_stage.sh` (docs/benchmarks/gpu.md).

The model is a transformers LlamaForCausalLM with random weights of the stage's
shapes, made on the GPU in bf16: 12 layers, d_model 12288, 12 heads of 128 (12
of GPT-3's 96, so the attention is 1536 wide, which only a config with an
explicit head_dim can express), and an FFN that does the same work as sptrain's:
SwiGLU's three matrices of 4096 hold the parameters and FLOPs of a GELU MLP's
two of 6144. sptrain's side of the comparison runs the same shapes with
`FAMILY=llama D_FFN=4096 bench/gpu_175b_stage.sh` (RMSNorm, RoPE, SwiGLU, no
biases), so both sides run one architecture.

The data are the SST-2 batches sptrain trains on (the config's task, template,
label words, max_length, batch size, seed; sptrain's sampler ported, or a
`sptrain bench --batches-out` file), tokenised by the SmolLM2 tokenizer. The
prompt is PEFT's PromptTuningConfig (20 virtual tokens, RANDOM init: the
weights are random, so the init text would mean nothing), trained with AdamW
on the cross-entropy over the label words' logits at each example's last real
token, as sptrain's `loss: labels`.

It prints the fields of `sptrain bench` that apply (examples/s, positions/s by
kind, step time by part, counted GFLOP/s, MFU against the device's dense bf16
peak, peak device memory); --json prints one object.

Run it where torch, transformers and peft are installed (the lent GPU machine
has them), e.g.

    python3 bench/peft/peft_gpu_stage.py --tokenizer models/smollm2-tokenizer \\
        --steps 20 --warmup 3 --json

and, for a quick check of the script on a CPU without a GPU:

    .venv-bench/bin/python bench/peft/peft_gpu_stage.py --device cpu --dtype float32 \\
        --layers 2 --d-model 256 --heads 4 --head-dim 32 --d-ffn 512 --batch-size 4 --steps 2 --warmup 1
"""

import argparse
import json
import os
import sys
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore", category=FutureWarning)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peft_bench  # noqa: E402  (config, task encoding, schedule, FLOP count: the CPU race's)
import sptrain_sampler  # noqa: E402

die, say = peft_bench.die, peft_bench.say

# Dense bf16 peak in TFLOP/s, without sparsity: src/bench/device_peak.cpp's
# table (by the name torch reports), kept the same so both sides' MFU agree.
def device_peak(name, override):
    if override:
        return override, "--peak-tflops"
    if "H100" in name and "PCIe" in name:
        return 756.5, "table (H100 PCIe)"
    if "H100" in name and "NVL" in name:
        return 835.5, "table (H100 NVL)"
    for part in ("H100", "H200", "H800", "GH200"):
        if part in name:
            return 989.4, f"table ({part} SXM)"
    for part in ("A100", "A800"):
        if part in name:
            return 312.0, f"table ({part})"
    if "L40S" in name:
        return 362.05, "table (L40S)"
    return None, "unknown device: pass --peak-tflops"


def load_tokenizer(path):
    """A folder with tokenizer.json (what tools/fetch_smollm2.sh's GGUF gives
    through transformers' save_pretrained; bench/gpu_pack.sh writes one) or the
    GGUF file itself."""
    from transformers import AutoTokenizer

    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "tokenizer.json")):
            die(f"{path}: no tokenizer.json in this folder")
        return AutoTokenizer.from_pretrained(path)
    if path.endswith(".gguf") and os.path.isfile(path):
        return AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path))
    die(f"{path}: not a folder with tokenizer.json nor a .gguf file")


def build_model(torch, args, vocab_size, pad_id):
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=args.d_model, intermediate_size=args.d_ffn,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.heads,
        head_dim=args.head_dim, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=True, pad_token_id=pad_id, initializer_range=0.006, use_cache=False)
    dtype = getattr(torch, args.dtype)
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise straight in the run's dtype: no fp32 copy of 3.3B weights
    try:
        with torch.device(args.device):
            base = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    base.config.use_cache = False
    peft_config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=args.prompt_length,
                                     prompt_tuning_init=PromptTuningInit.RANDOM)
    model = get_peft_model(base, peft_config)
    model.to(args.device)
    n_block = sum(p.numel() for n, p in base.named_parameters() if ".layers." in n)
    say(f"model built in {time.perf_counter() - t0:.1f} s: {n_block / 1e9:.2f}B block parameters, {args.dtype}, "
        f"attention '{getattr(base.config, '_attn_implementation', '?')}'")
    return model


class GpuRunner(peft_bench.Runner):
    """The CPU race's Runner with the batch moved to the device and the clock
    read after the device has finished each part."""

    def __init__(self, torch, model, tokenizer, task, cfg, logits_mode, total_steps, device):
        super().__init__(torch, model, tokenizer, task, cfg, logits_mode, total_steps)
        self.device = device
        self.label_ids = self.label_ids.to(device)

    def to_device(self, tensors):
        return tuple(t.to(self.device, non_blocking=True) for t in tensors)

    def sync(self):
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="bench/gpu_175b_stage.yaml", help="sptrain config (task, prompt, optim, train)")
    ap.add_argument("--tokenizer", default="models/smollm2-tokenizer",
                    help="folder with tokenizer.json, or the SmolLM2 GGUF file (default %(default)s)")
    ap.add_argument("--batches", help="JSONL batches file from `sptrain bench --batches-out` (default: sptrain's sampler, ported)")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=12288)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--d-ffn", type=int, default=4096, help="SwiGLU width (default 4096: the work of a GELU MLP of 6144)")
    ap.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the config's train.batch_size")
    ap.add_argument("--logits", choices=("all", "needed"), default="all",
                    help="all: the LM head at every row, as a plain forward gives it (default); "
                    "needed: logits_to_keep, only the rows the loss reads")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak, if not in the table")
    ap.add_argument("--seed", type=int, default=1234, help="seed of the random weights")
    ap.add_argument("--json", action="store_true", help="one JSON object")
    args = ap.parse_args()
    if min(args.steps, args.layers, args.d_model, args.heads, args.head_dim, args.d_ffn) < 1 or args.warmup < 0:
        die("--steps and the shapes must be >= 1, --warmup >= 0")

    cfg = peft_bench.load_config(args.config, text_init=False)
    args.prompt_length = int(cfg["prompt"]["length"])
    B = args.batch_size or int(cfg["train"]["batch_size"])

    import peft
    import torch
    import transformers

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        die("no CUDA device visible to torch (use --device cpu --dtype float32 for a check of the script)")
    tokenizer = load_tokenizer(args.tokenizer)
    task = peft_bench.Task(cfg, tokenizer)
    train = task.encode_file(cfg["task"]["train"])
    need = args.warmup + args.steps
    if args.batches:
        batches = peft_bench.read_batches(args.batches, len(train), need)
        source = f"file:{args.batches}"
    else:
        batches = [b["examples"] for b in sptrain_sampler.batches(
            len(train), int(cfg["train"]["seed"]), B, need, bool(cfg["train"]["shuffle"]))]
        source = f"sptrain sampler port (seed {cfg['train']['seed']})"
    if any(len(b) != B for b in batches[:need]):
        die(f"{source}: batches are not all of size {B}")

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = build_model(torch, args, len(tokenizer), pad_id)
    runner = GpuRunner(torch, model, tokenizer, task, cfg, args.logits, int(cfg["train"]["steps"]), args.device)

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        device_name = torch.cuda.get_device_name()
    else:
        device_name = "cpu"
    timed_steps = peft_bench.TimedSteps()
    loss = 0.0
    for step in range(1, need + 1):
        r = runner.train_step(step, [train[i] for i in batches[step - 1]])
        loss = r["loss"]
        timed = step > args.warmup
        say(f"step {step}{'' if timed else ' (warm-up)'}: {r['total'] * 1e3:.1f} ms, loss {loss:.4f}")
        if timed:
            timed_steps.add(r)

    peak, peak_source = device_peak(device_name, args.peak_tflops)
    achieved = timed_steps.flops_per_step() / timed_steps.step_s() / 1e12
    j = {
        "tool": "peft", "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "device": device_name, "dtype": args.dtype, "logits": args.logits, "batches": source,
        "shape": {"layers": args.layers, "d_model": args.d_model, "heads": args.heads, "head_dim": args.head_dim,
                  "d_ffn_swiglu": args.d_ffn, "vocab": len(tokenizer), "prompt_length": args.prompt_length},
        "warmup": args.warmup,
        **timed_steps.figures(B),
        "tflops_per_s": achieved,
        # Every FLOP PEFT does counts here, padding rows and the prompt's rows
        # per example included: this is the device's utilisation, not useful work.
        "mfu": achieved / peak if peak else None,
        "peak_tflops": peak, "peak_source": peak_source,
        "device_memory_peak_gib": (torch.cuda.max_memory_allocated() / 2**30) if device_name != "cpu" else None,
        "last_loss": loss,
    }
    if args.json:
        print(json.dumps(j, indent=2))
        return
    pp, st = j["positions_per_s"], j["step_time_s"]
    print(f"peft gpu stage: {device_name}, torch {j['torch']}, transformers {j['transformers']}, peft {j['peft']}, "
          f"{args.dtype}, logits {args.logits}")
    print(f"  {j['steps']} timed steps after {args.warmup} warm-up, batch {B}, batches from {source}")
    print(f"  examples/s          {j['examples_per_s']:10.2f}")
    print(f"  positions/s         {pp['total']:10.1f}  (text {pp['text']:.1f}, prompt {pp['prompt']:.1f}, "
          f"padding {pp['padding']:.1f} = {100 * j['padding_share']:.0f}%)")
    print(f"  step time           {st['total'] * 1e3:10.2f} ms (forward {st['forward'] * 1e3:.2f}, "
          f"backward {st['backward'] * 1e3:.2f}, optimizer {st['optimizer'] * 1e3:.2f})")
    print(f"  work                {j['gflop_per_step']:10.1f} GFLOP/step, {achieved:.1f} TFLOP/s")
    print(f"  MFU                 " + (f"{100 * j['mfu']:9.1f}%  of {peak} TFLOP/s ({peak_source})" if peak
                                       else f"{'-':>10}  ({peak_source})"))
    if j["device_memory_peak_gib"] is not None:
        print(f"  device memory peak  {j['device_memory_peak_gib']:10.2f} GiB (torch allocator)")


if __name__ == "__main__":
    main()
