#!/usr/bin/env python3
"""Draws a run's loss and accuracy curves from its metrics.jsonl to a PNG.

    python3 tools/plot_metrics.py checkpoints/smollm2_sst2/metrics.jsonl docs/results_smollm2_sst2.png

Needs matplotlib, pinned in tools/requirements-plot.txt:
    python3 -m venv .venv-plot && .venv-plot/bin/pip install -r tools/requirements-plot.txt
    .venv-plot/bin/python tools/plot_metrics.py METRICS.jsonl OUT.png

Training loss is drawn per step and as a 20-step moving average; evaluation loss and accuracy at every evaluation.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    steps, losses, eval_steps, eval_losses, eval_acc = [], [], [], [], []
    with open(sys.argv[1]) as f:
        for line in f:
            m = json.loads(line)
            if "loss" in m:
                steps.append(m["step"])
                losses.append(m["loss"])
            if "eval_accuracy" in m:
                eval_steps.append(m["step"])
                eval_losses.append(m["eval_loss"])
                eval_acc.append(m["eval_accuracy"])
    window = 20
    smooth = [sum(losses[max(0, i - window + 1): i + 1]) / len(losses[max(0, i - window + 1): i + 1])
              for i in range(len(losses))]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(steps, losses, color="#bbbbbb", linewidth=0.6, label="train loss (batch)")
    ax1.plot(steps, smooth, color="#1f77b4", label=f"train loss ({window}-step mean)")
    ax1.plot(eval_steps, eval_losses, "o-", color="#d62728", label="dev loss")
    ax1.set_xlabel("step")
    ax1.set_ylabel("cross-entropy over the label words")
    ax1.legend()
    ax2.plot(eval_steps, eval_acc, "o-", color="#2ca02c", label="dev accuracy")
    for x, y in zip(eval_steps, eval_acc):
        ax2.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center")
    ax2.set_xlabel("step")
    ax2.set_ylabel("accuracy")
    ax2.legend(loc="lower right")
    fig.suptitle("sptrain: prompt tuning SmolLM2-135M-Instruct on SST-2")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
