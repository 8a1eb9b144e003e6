#!/usr/bin/env python3
"""The scaling report: docs/benchmarks/scaling.md and scaling.png.

For GPT-3 175B, Llama-3 70B and Llama-3 405B shapes on 8 ... 1024 H100 80 GB
and H200 GPUs, `sptrain plan --json` ranks every layout of the headline job
(configs/175b_sentiment.yaml: SST-2, a 20-vector prompt, labels loss); the
report gives the best one's memory per GPU, step time, tokens/s, MFU, bytes
per step by kind and bubble share, with strong-scaling efficiency (a fixed
global batch of 1024) and weak-scaling efficiency (8 examples per GPU).
Every GPU figure is modeled (docs/plan.md states the defaults); the CPU
figures of bench/plan_check.py's results stand beside their predictions.

  python3 -m venv .venv-report && .venv-report/bin/pip install -r bench/requirements-report.txt
  .venv-report/bin/python bench/scaling_report.py --plan-check docs/benchmarks/runs/plan_check_DATE/results.json

Without matplotlib it writes the markdown and skips the plot.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = ["gpt3-175b", "llama3-70b", "llama3-405b"]
GPUS = ["h100-80gb", "h200"]
COUNTS = [8, 16, 32, 64, 128, 256, 512, 1024]
STRONG_BATCH = 1024  # examples a step, whatever the GPUs
WEAK_PER_GPU = 8     # examples a step per GPU (64 on 8 GPUs: the headline config's batch)
CONFIG = "configs/175b_sentiment.yaml"


def plan(sptrain, shape, gpu, n, batch, workload):
    cmd = [sptrain, "plan", CONFIG, "--shape", shape, "--gpu", gpu, "--gpus", str(n), "--json",
           "--set", f"train.batch_size={batch}"] + workload
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        if "no layout" in out.stderr:
            return None
        sys.exit(f"scaling_report: {' '.join(cmd)}: {out.stderr}")
    j = json.loads(out.stdout)
    j["command"] = " ".join(["sptrain"] + cmd[1:])
    return j


def best(p):
    return None if p is None or p["best"] is None else p["layouts"][p["best"]]


def gb(b):
    return b / 1e9


def human_bytes(b):
    for unit, f in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= f:
            return f"{b / f:.3g} {unit}"
    return f"{b:.0f} B"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sptrain", default=os.path.join(REPO, "build", "bin", "sptrain"))
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "benchmarks"))
    ap.add_argument("--plan-check", help="bench/plan_check.py's results.json: the measured CPU points")
    ap.add_argument("--tokenizer", default=os.path.join(REPO, "models", "smollm2-135m.h5"),
                    help="encodes SST-2 for the workload (GPT-2-like BPE); without it, 28 tokens an example")
    a = ap.parse_args()
    if os.path.exists(a.tokenizer):
        workload = ["--tokenizer", os.path.relpath(a.tokenizer, REPO)]
        workload_text = (f"SST-2's training set encoded with `{os.path.relpath(a.tokenizer, REPO)}`'s tokenizer "
                         "(SmolLM2's 49k BPE, GPT-2-like), the template of the config, steps 1-1")
    else:
        workload = ["--example-tokens", "28"]
        workload_text = "28 text tokens an example (SST-2's mean with a GPT-2-like BPE)"

    rows = {}
    for shape in SHAPES:
        for gpu in GPUS:
            for n in COUNTS:
                weak = plan(a.sptrain, shape, gpu, n, WEAK_PER_GPU * n, workload)
                strong = plan(a.sptrain, shape, gpu, n, STRONG_BATCH, workload)
                rows[(shape, gpu, n)] = (weak, strong)
                b = best(weak)
                print(f"scaling_report: {shape} on {n} {gpu}: "
                      + (f"{b['tensor']}x{b['pipeline']}x{b['data']} {b['tokens_per_second']:.4g} tokens/s"
                         if b else "does not fit"), file=sys.stderr)
    hw = next(p for p in (w for w, _ in rows.values()) if p)["hardware"]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    if a.plan_check and not os.path.exists(a.plan_check):
        sys.exit(f"scaling_report: --plan-check {a.plan_check}: no such file")
    measured = bool(a.plan_check)
    md = [
        "# Scaling: the headline job on 8 to 1024 GPUs (modeled)",
        "",
        f"Written by `bench/scaling_report.py` on {date} ({platform.node()}); every GPU figure below is "
        "**modeled** by `sptrain plan` with its defaults (docs/plan.md), calibrated by nothing measured on a "
        "GPU: no GPU has run sptrain yet (docs/benchmarks/gpu.md). Products at "
        f"{100 * hw['matmul_share']:.0f}% of the dense bf16 peak, attention at {100 * hw['attention_share']:.0f}%, "
        f"{hw['layer_overhead_s'] * 1e6:.0f} us per layer and pass, NCCL at {100 * hw['link_share']:.0f}% of "
        f"NVLink (450 GB/s one way) and of a 400 Gb/s InfiniBand port per GPU, "
        f"{hw['node_latency_s'] * 1e6:.0f} / {hw['fabric_latency_s'] * 1e6:.0f} us a call, "
        f"{gb(hw['runtime_bytes']):.1f} GB a GPU for the CUDA context, cuBLASLt and NCCL. "
        + ("The figures measured on this project's CPU machine, with their predictions, are at the end."
           if measured else "No CPU measurement is in this report (it was written without `--plan-check`)."),
        "",
        f"The job: `{CONFIG}` (SST-2, prompt of 20, labels loss, AdamW on the prompt), bf16 weights, "
        f"8 GPUs a node. Examples: {workload_text}. Weak scaling: {WEAK_PER_GPU} examples a step per GPU "
        f"({WEAK_PER_GPU * 8} on 8 GPUs, the config's batch); strong scaling: {STRONG_BATCH} examples a step "
        "on every count. For each count the best of every layout (tensor x pipeline x data, micro-batch, "
        "schedule) that fits. Efficiency: tokens/s per GPU over that of the smallest count that fits.",
        "",
        "Frozen weights need no gradients and no optimizer state: a GPU holds its slice of the bf16 weights, "
        "the activations of the micro-batches in flight and little else. So GPT-3 175B (350 GB of weights) "
        "fits on 8 H100 80 GB with tensor parallelism alone, and Llama-3 405B (811 GB) on 16 H100 or 8 H200: "
        "the first rows of the tables.",
        "",
    ]
    for shape in SHAPES:
        for gpu in GPUS:
            label = next(w for w, _ in (rows[(shape, gpu, n)] for n in COUNTS) if w)["hardware"]["label"]
            md += [f"## {shape} on {label}", "",
                   "| GPUs | best layout (T x P x D, micro, schedule) | memory per GPU (weights + activations + other) | "
                   "step | tokens/s | MFU | bubble | bytes per step, all GPUs (tensor / pipeline / data) | "
                   "weak-scaling efficiency | tokens/s, batch 1024 | strong-scaling efficiency |",
                   "|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
            base_weak = base_strong = None
            for n in COUNTS:
                weak, strong = rows[(shape, gpu, n)]
                w, s = best(weak), best(strong)
                if w is None:
                    smallest = min((l for l in weak["layouts"]), key=lambda l: l["memory_bytes"]["total"]) if weak else None
                    need = f"needs {gb(smallest['memory_bytes']['total']):.0f} GB" if smallest else "no layout"
                    md.append(f"| {n} | does not fit ({need}) | | | | | | | | | |")
                    continue
                per_gpu_w = w["tokens_per_second"] / n
                base_weak = base_weak or per_gpu_w
                strong_text = eff_strong = "–"
                if s:
                    per_gpu_s = s["tokens_per_second"] / n
                    base_strong = base_strong or per_gpu_s
                    strong_text = f"{s['tokens_per_second']:.3g}"
                    eff_strong = f"{100 * per_gpu_s / base_strong:.0f}%"
                m = w["memory_bytes"]
                parts = w["step_seconds_by_part"]
                bts = w["bytes_per_step"]
                md.append(
                    f"| {n} | {w['tensor']} x {w['pipeline']} x {w['data']}, {w['micro_batch']}, {w['schedule']} | "
                    f"{gb(m['total']):.1f} GB ({gb(m['weights']):.1f} + {gb(m['activations']):.1f} + "
                    f"{gb(m['other']):.1f}) | {w['step_seconds']:.3f} s | {w['tokens_per_second']:.3g} | "
                    f"{100 * w['mfu']:.0f}% | {100 * parts['bubble'] / w['step_seconds']:.0f}% | "
                    f"{human_bytes(bts['tensor'])} / {human_bytes(bts['pipeline'])} / {human_bytes(bts['data'])} | "
                    f"{100 * per_gpu_w / base_weak:.0f}% | {strong_text} | {eff_strong} |")
            md.append("")
    md += [
        "Each row is reproduced by `sptrain plan configs/175b_sentiment.yaml --shape SHAPE --gpu GPU --gpus N "
        f"--set train.batch_size=B {' '.join(workload)}` (B = {WEAK_PER_GPU} x N, or {STRONG_BATCH}).",
        "",
        "## What the model leaves out",
        "",
        "- **Nothing here is measured on a GPU.** The shares of the peak, the per-layer launch cost and the "
        "runtime memory are defaults; `sptrain plan --calibrate` with `bench/gpu_175b_stage.sh --json` from the "
        "target GPU replaces the compute rate (docs/plan.md).",
        "- The compute rate does not depend on the shapes: small micro-batches are charged only the per-layer "
        "launch cost, not the lower efficiency of thin matrix products.",
        "- Attention keeps one log-sum-exp per row and head on the GPU (what the CUDA back end keeps; "
        "its backward recomputes the probabilities, whose cost is in the attention share).",
        "- Communication never overlaps computation (NCCL calls are queued on the compute stream, in order, "
        "so this matches the code), "
        "collectives are rings at a fixed share of the link, and other jobs' traffic, stragglers, the "
        "network's topology above the node and NCCL's choice of algorithm are not modeled.",
        "- A step's host work is a fixed 1 ms; data loading, evaluation and checkpoints are not in the step.",
        "- Memory: the device buffers sptrain allocates (the same lists the code allocates) plus a fixed "
        "runtime overhead; no allocator fragmentation (sptrain allocates every buffer once).",
        "",
    ]
    if measured:
        pc = json.load(open(a.plan_check))
        meta = pc["meta"]
        md += ["## Measured on the CPU, beside the predictions",
               "",
               f"`bench/plan_check.py` on {meta['date']} ({meta['machine']}), {meta['warmup']} warm-up and "
               f"{meta['steps']} timed steps a run; `sptrain plan --gpu cpu` calibrated by the two one-rank "
               "SmolLM2 runs marked (calibration). Memory: each rank's peak RSS against its stage's plan. "
               "Time: the step, measured and planned in the same run of the script, minutes apart on a machine "
               "shared with other work (the last column: cores other processes kept busy). Bytes: every "
               "rank's, the timed steps together.",
               "",
               "| run | ranks | worst memory error | step measured | step planned | time error | bytes equal |",
               "|---|---:|---:|---:|---:|---:|---|"]
        for r in pc["results"]:
            timed = "time" in r["checks"]
            md.append(f"| {r['name']} | {r['ranks']} | {100 * r['memory']['worst']['error']:+.1f}% | "
                      f"{r['time']['measured_s']:.2f} s | {r['time']['predicted_s']:.2f} s | "
                      + (f"{100 * r['time']['error']:+.0f}%" if timed else "(not predicted)")
                      + f" | {'yes' if r['bytes']['equal'] else 'NO'} |")
        md.append("")
    out_md = os.path.join(a.out, "scaling.md")
    with open(out_md, "w") as f:
        f.write("\n".join(md))
    print(f"scaling_report: wrote {out_md}", file=sys.stderr)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("scaling_report: no matplotlib: no plot (bench/requirements-report.txt)", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for shape in SHAPES:
        for gpu, style in zip(GPUS, ("-", "--")):
            pts = [(n, best(rows[(shape, gpu, n)][0])) for n in COUNTS]
            pts = [(n, b) for n, b in pts if b]
            if not pts:
                continue
            ns = [n for n, _ in pts]
            label = f"{shape}, {gpu}"
            axes[0].plot(ns, [b["tokens_per_second"] for _, b in pts], style, marker="o", label=label)
            axes[1].plot(ns, [gb(b["memory_bytes"]["total"]) for _, b in pts], style, marker="o", label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="GPUs", ylabel="tokens/s (modeled)",
                title=f"Weak scaling, {WEAK_PER_GPU} examples a step per GPU")
    axes[1].set(xscale="log", xlabel="GPUs", ylabel="GB per GPU (modeled)", title="Memory of the best layout")
    axes[1].axhline(80, color="gray", lw=0.8)
    axes[1].axhline(141, color="gray", lw=0.8, ls="--")
    for ax in axes:
        ax.set_xticks(COUNTS, [str(n) for n in COUNTS])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"sptrain plan, modeled ({date}); no GPU measurement", fontsize=10)
    fig.tight_layout()
    out_png = os.path.join(a.out, "scaling.png")
    fig.savefig(out_png, dpi=110)
    print(f"scaling_report: wrote {out_png}", file=sys.stderr)


if __name__ == "__main__":
    main()
