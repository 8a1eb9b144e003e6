#!/usr/bin/env python3
"""One rank of the headline job at its true shapes, on this CPU.

Rank (tensor 3, pipeline 5) of tensor 8 x pipeline 8 of GPT-3 175B holds 12
layers of d_model 12288 with 12 of the 96 heads (of 128) and 1/8 of the
49152-wide FFN: 2.72 B weights, 10.9 GB in f32. This writes a model of
exactly that share (`sptrain init-model`, random weights, the byte-level
tokenizer so that no 50k-row embedding is added), runs one training step of
it with `sptrain bench` (gpipe with 3 micro-batches of 4, so that 3
activation sets are alive as on that rank under 1f1b) and holds the peak RSS
and step time against `sptrain plan` for the same run; it also plans the
real job's rank (`--shape gpt3-175b`, 64 ranks, SST-2 encoded with the
SmolLM2 tokenizer) for comparison. Writes OUT/true_rank.json, which
bench/plan_check.py adds to its table.

  nice bench/cpu_175b_rank.py [--out runs/plan_check]   # ~13 GB of memory, ~11 GB of disk

Needs ~14 GB of free memory; run it alone, once.
"""

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
import plan_check  # noqa: E402

RANK_MODEL = ["--family", "gpt", "--layers", "12", "--d-model", "12288", "--heads", "12", "--head-dim", "128",
              "--d-ffn", "6144", "--max-positions", "256"]
SETS = ["backend=cpu", 'task.labels={"0": "n", "1": "p"}', "optim.name=adamw", "task.max_length=64",
        "task.eval=", "train.batch_size=12", "train.micro_batch_size=4", "train.eval_batch_size=4",
        "parallel.tensor=1", "parallel.pipeline=1", "parallel.schedule=gpipe"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sptrain", default=os.path.join(REPO, "build", "bin", "sptrain"))
    ap.add_argument("--out", default=os.path.join(REPO, "runs", "plan_check"))
    ap.add_argument("--model", default=os.path.join(REPO, "models", "gpt3-175b-tp8-rank.h5"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sp = a.sptrain
    if not os.path.exists(a.model):
        subprocess.run([sp, "init-model", "--out", a.model, "--std", "0.006"] + RANK_MODEL, check=True, cwd=REPO)
    args = []
    for s in SETS + [f"model.path={a.model}"]:
        args += ["--set", s]
    config = "configs/175b_sentiment.yaml"
    calibration = [os.path.join(a.out, f) for f in ("calibration.json", "calibration_mb4.json")]
    calibrate = [x for c in calibration if os.path.exists(c) for x in ("--calibrate", c)]
    plan_cmd = [sp, "plan", config] + args + ["--gpu", "cpu", "--gpus", "1", "--micro-batch", "4", "--schedule",
                                              "gpipe", "--json"] + calibrate
    plan_path, bench_path = (os.path.join(a.out, f"true_rank_{x}.json") for x in ("plan", "bench"))
    plan_check.run(plan_cmd, plan_path)
    # Not under `mpirun -np 1`, which binds the rank to one core (plan_check.py).
    bench_cmd = [sp, "bench", config] + args + ["--json", "--steps", "1", "--warmup", "0"]
    print(f"cpu_175b_rank: {' '.join(bench_cmd)}", file=sys.stderr)
    _, other = plan_check.run(bench_cmd, bench_path, plan_check.MPI_ENV)
    # The real job's rank (tp 3, pp 5), planned at its own workload in f32 on this machine.
    job_cmd = [sp, "plan", config, "--set", "backend=cpu", "--shape", "gpt3-175b", "--tokenizer",
               "models/smollm2-135m.h5", "--gpu", "cpu", "--gpus", "64", "--tensor", "8",
               "--pipeline", "8", "--micro-batch", "4", "--schedule", "1f1b", "--json"] + calibrate
    job_path = os.path.join(a.out, "true_rank_job_plan.json")
    plan_check.run(job_cmd, job_path)

    r = plan_check.compare("GPT-3 175B rank (tp 3, pp 5) of tensor 8 x pipeline 8, its shapes on 1 rank",
                           json.load(open(plan_path)), json.load(open(bench_path)), "memory time bytes", 1)
    r["other_cores"] = other
    r["commands"] = {"plan": plan_cmd, "bench": bench_cmd, "job_plan": job_cmd}
    job = json.load(open(job_path))["layouts"][0]["stages"][5]["memory_bytes"]
    r["job_rank_plan"] = {"memory_bytes": job, "note": "stage 5 of the real job (f32, SST-2 with the SmolLM2 "
                                                       "tokenizer, 16 micro-batches of 4, 1f1b)"}
    with open(os.path.join(a.out, "true_rank.json"), "w") as f:
        json.dump(r, f, indent=1)
    m = r["memory"]["by_rank"][0]
    print(f"cpu_175b_rank: peak RSS {m['measured_bytes'] / 1e9:.2f} GB, planned {m['predicted_bytes'] / 1e9:.2f} GB "
          f"({100 * m['error']:+.1f}%); step {r['time']['measured_s']:.1f} s, planned {r['time']['predicted_s']:.1f} s "
          f"({100 * r['time']['error']:+.0f}%); the real job's rank: {job['total'] / 1e9:.2f} GB planned; "
          f"other processes {other:.2f} cores")


if __name__ == "__main__":
    main()
