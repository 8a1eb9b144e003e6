#!/usr/bin/env python3
"""`sptrain plan --gpu cpu` against measurement on this machine.

For each run below: the plan's prediction (`sptrain plan --json`, calibrated
by one measured SmolLM2 step at the start) and, right after it, the
measurement (`mpirun -np N sptrain bench --json`, one rank with `--bind-to none`): each rank's peak RSS
against its stage's planned memory, the step time against the planned step,
and the bytes every rank sent in the timed steps against the plan's. Writes
OUT/results.json and OUT/table.md (docs/benchmarks/plan_check.md quotes it).

  bench/plan_check.py [--out DIR] [--only NAME ...] [--steps 3] [--warmup 1]

The machine is shared: each run records the cores other processes kept busy
meanwhile (bench/peft/run_measured.py's count). Plain Python, no packages;
needs models/smollm2-135m.h5 (tools/fetch_smollm2.sh) and mpirun.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench", "peft"))
from run_measured import busy_seconds  # noqa: E402

# The model of the headline job's CI test (tests/distributed/run_headline_test.sh):
# GPT-3's 96 layers and 96 heads at a width of 8.
HEADLINE_MODEL = ["--family", "gpt", "--layers", "96", "--d-model", "8", "--heads", "96",
                  "--head-dim", "1", "--d-ffn", "32", "--max-positions", "256"]
HEADLINE_SETS = ["backend=cpu", 'task.labels={"0": "n", "1": "p"}', "optim.name=adamw",
                 "train.batch_size=8", "train.micro_batch_size=2", "task.max_length=28",
                 "prompt.length=4", "task.eval=", "threads=1"]
SMOL_SETS = ["train.batch_size=16", "train.micro_batch_size=16"]

# name, config, --set overrides, ranks, tensor, pipeline, micro-batch, schedule, what it checks
RUNS = [
    ("tiny, 1 rank", "configs/tiny_random.yaml", ["model.path={tiny}"], 1, 1, 1, 4, "1f1b", "memory bytes"),
    ("tiny, tensor 2 x pipeline 2 x data 2", "configs/tiny_random.yaml", ["model.path={tiny}"], 8, 2, 2, 4,
     "1f1b", "memory bytes"),
    ("tiny, tensor 2 x pipeline 2, vocabulary loss, gpipe", "configs/tiny_random.yaml",
     ["model.path={tiny}", "task.loss=vocab"], 4, 2, 2, 4, "gpipe", "memory bytes"),
    ("SmolLM2, 1 rank, micro-batch 8", "configs/smollm2_sst2.yaml", SMOL_SETS, 1, 1, 1, 8, "1f1b",
     "memory time bytes"),
    ("SmolLM2, data 2", "configs/smollm2_sst2.yaml", SMOL_SETS, 2, 1, 1, 8, "1f1b", "memory time bytes"),
    ("SmolLM2, data 2, micro-batch 4", "configs/smollm2_sst2.yaml", SMOL_SETS, 2, 1, 1, 4, "1f1b",
     "memory time bytes"),
    ("SmolLM2, pipeline 2, 1f1b", "configs/smollm2_sst2.yaml", SMOL_SETS, 2, 1, 2, 4, "1f1b",
     "memory time bytes"),
    ("SmolLM2, pipeline 2, gpipe", "configs/smollm2_sst2.yaml", SMOL_SETS, 2, 1, 2, 4, "gpipe",
     "memory time bytes"),
    ("SmolLM2, tensor 3", "configs/smollm2_sst2.yaml", SMOL_SETS, 3, 3, 1, 16, "1f1b", "memory time bytes"),
    ("SmolLM2, pipeline 4, 1f1b", "configs/smollm2_sst2.yaml", SMOL_SETS, 4, 1, 4, 4, "1f1b",
     "memory time bytes"),
    ("SmolLM2, pipeline 4, gpipe", "configs/smollm2_sst2.yaml", SMOL_SETS, 4, 1, 4, 4, "gpipe",
     "memory time bytes"),
    ("SmolLM2, tensor 3 x pipeline 2", "configs/smollm2_sst2.yaml", SMOL_SETS, 6, 3, 2, 4, "1f1b",
     "memory time bytes"),
    ("GPT-3 depth, width 8, tensor 8 x pipeline 8", "configs/175b_sentiment.yaml",
     ["model.path={headline}"] + HEADLINE_SETS, 64, 8, 8, 2, "1f1b", "memory bytes"),
]
# Two one-rank runs of different micro-batch sizes fix the machine's rate and
# the cost of a layer pass (sptrain plan --calibrate A --calibrate B).
CALIBRATIONS = [
    ("SmolLM2, 1 rank (calibration)", "configs/smollm2_sst2.yaml", SMOL_SETS, 1, 1, 1, 16, "1f1b", "memory bytes"),
    ("SmolLM2, 1 rank, micro-batch 4 (calibration)", "configs/smollm2_sst2.yaml", SMOL_SETS, 1, 1, 1, 4, "1f1b",
     "memory bytes"),
]

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_mpi_yield_when_idle": "1"}


def run(cmd, out_path, env=None):
    """Runs cmd with stdout to out_path; returns (wall seconds, other processes' cores)."""
    b0, t0 = busy_seconds(), time.perf_counter()
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                env=dict(os.environ, **(env or {})))
        _, status, usage = os.wait4(proc.pid, 0)
        err = proc.stderr.read()
    wall = time.perf_counter() - t0
    # wait4's usage includes the processes mpirun started.
    other = max(0.0, (busy_seconds() - b0 - (usage.ru_utime + usage.ru_stime)) / wall)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"plan_check: {' '.join(cmd)} failed:\n{err}")
    return wall, other


def wait_quiet(most, patience):
    """Waits (at most `patience` s) until the machine's busy cores, over 3 s, are at most `most`."""
    start = time.perf_counter()
    while True:
        b0 = busy_seconds()
        time.sleep(3)
        busy = (busy_seconds() - b0) / 3
        if busy <= most or time.perf_counter() - start > patience:
            return busy


def sets_args(sets, paths):
    args = []
    for s in sets:
        for key, path in paths.items():
            s = s.replace("{" + key + "}", path)
        args += ["--set", s]
    return args


def memory_comparable(sptrain):
    """Whether the binary's peak RSS is what `sptrain plan --gpu cpu` models:
    (False, why) for a binary that links the CUDA libraries or a sanitizer."""
    libs = subprocess.run(["ldd", sptrain], capture_output=True, text=True).stdout
    for lib in ("libcublasLt", "libcudart", "libnccl"):
        if lib in libs:
            return False, f"{sptrain} links {lib} (the CUDA back end), whose libraries' memory the CPU plan leaves out"
    for lib in ("libasan", "libubsan", "libtsan"):
        if lib in libs:
            return False, f"{sptrain} is a sanitizer build ({lib})"
    return True, ""


def compare(name, plan, bench, what, ranks):
    lay = plan["layouts"][0]
    D, T = lay["data"], lay["tensor"]
    rows = []
    for r, rss_mib in enumerate(bench["peak_rss_mb_by_rank"]):
        stage = r // (D * T)
        predicted = lay["stages"][stage]["memory_bytes"]["total"]
        measured = rss_mib * 1048576
        rows.append({"rank": r, "stage": stage, "predicted_bytes": predicted, "measured_bytes": measured,
                     "error": predicted / measured - 1})
    worst = max(rows, key=lambda x: abs(x["error"]))
    predicted_bytes = {k: sum(s[k] for s in lay["bytes_by_step"]) for k in ("tensor", "pipeline", "data")}
    measured_bytes = bench["comm_bytes_timed_steps"]
    return {
        "name": name, "ranks": ranks, "checks": what.split(),
        "layout": {k: lay[k] for k in ("tensor", "pipeline", "data", "micro_batch", "schedule")},
        "memory": {"by_rank": rows, "worst": worst,
                   "within_10_percent": all(abs(x["error"]) <= 0.10 for x in rows)},
        "time": {"predicted_s": lay["step_seconds"], "measured_s": bench["step_time_s"]["total"],
                 "error": lay["step_seconds"] / bench["step_time_s"]["total"] - 1,
                 "predicted_parts": lay["step_seconds_by_part"], "measured_parts": bench["step_time_s"]},
        "bytes": {"predicted": predicted_bytes, "measured": measured_bytes,
                  "equal": predicted_bytes == measured_bytes},
    }


def table(results):
    lines = ["| run | ranks | layout (T x P x D, micro, schedule) | peak RSS per rank, measured (MB) | "
             "planned (MB) | worst error | step, measured (s) | planned (s) | error | "
             "bytes sent, timed steps (tensor / pipeline / data) | equal | other cores busy |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in results:
        lay = r["layout"]
        mem = r["memory"]["by_rank"]
        lo, hi = min(x["measured_bytes"] for x in mem) / 1e6, max(x["measured_bytes"] for x in mem) / 1e6
        plo, phi = min(x["predicted_bytes"] for x in mem) / 1e6, max(x["predicted_bytes"] for x in mem) / 1e6
        span = lambda a, b: f"{a:,.0f}" if round(a) == round(b) else f"{a:,.0f}-{b:,.0f}"  # noqa: E731
        t = r["time"]
        timed = "time" in r["checks"]
        b = r["bytes"]["measured"]
        lines.append(
            f"| {r['name']} | {r['ranks']} | {lay['tensor']} x {lay['pipeline']} x {lay['data']}, "
            f"{lay['micro_batch']}, {lay['schedule']} | {span(lo, hi)} | {span(plo, phi)} | "
            f"{100 * r['memory']['worst']['error']:+.1f}% | "
            + (f"{t['measured_s']:.2f} | {t['predicted_s']:.2f} | {100 * t['error']:+.0f}%" if timed
               else f"({t['measured_s']:.2f}) | ({t['predicted_s']:.2f}) | –")
            + f" | {b['tensor']:,} / {b['pipeline']:,} / {b['data']:,} | "
            f"{'yes' if r['bytes']['equal'] else 'NO'} | {r.get('other_cores', 0):.2f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sptrain", default=os.path.join(REPO, "build", "bin", "sptrain"))
    ap.add_argument("--out", default=os.path.join(REPO, "runs", "plan_check"))
    ap.add_argument("--only", nargs="*", help="run only the runs whose name contains one of these")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--quiet-max", type=float, default=0.3,
                    help="before a timed run, wait until other processes keep at most this many cores busy")
    ap.add_argument("--quiet-wait", type=float, default=600, help="... but at most this many seconds")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless every rank's memory is within 10%% of its plan and every byte count "
                         "equals the plan's (time is reported, never checked)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sp = a.sptrain
    paths = {"tiny": os.path.join(a.out, "tiny-llama.h5"), "headline": os.path.join(a.out, "gpt96.h5")}
    if not os.path.exists(paths["tiny"]):
        subprocess.run([sp, "init-model", "--out", paths["tiny"], "--layers", "4", "--d-model", "64",
                        "--heads", "4", "--kv-heads", "2"], check=True, cwd=REPO)
    if not os.path.exists(paths["headline"]):
        subprocess.run([sp, "init-model", "--out", paths["headline"]] + HEADLINE_MODEL, check=True, cwd=REPO)
    calibration = [os.path.join(a.out, f) for f in ("calibration.json", "calibration_mb4.json")]
    results = []
    chosen = [r for r in RUNS if not a.only or any(o in r[0] for o in a.only)]
    calibrate = any("time" in r[-1] for r in chosen)  # time needs the measured rate
    ncal = len(CALIBRATIONS)
    for i, (name, config, sets, ranks, T, P, M, sched, what) in enumerate(CALIBRATIONS + RUNS):
        if (i < ncal and not calibrate) or (i >= ncal and RUNS[i - ncal] not in chosen):
            continue
        tag = f"{i:02d}"
        args = sets_args(sets, paths) + ["--set", f"parallel.tensor={T}", "--set", f"parallel.pipeline={P}",
                                         "--set", f"parallel.schedule={sched}",
                                         "--set", f"train.micro_batch_size={M}"]
        plan_cmd = [sp, "plan", config] + args + ["--gpu", "cpu", "--gpus", str(ranks), "--tensor", str(T),
                                                  "--pipeline", str(P), "--micro-batch", str(M), "--schedule",
                                                  sched, "--first-step", str(a.warmup + 1), "--steps",
                                                  str(a.steps), "--json"]
        if i >= ncal and calibrate:
            plan_cmd += [x for c in calibration for x in ("--calibrate", c)]
        # Under mpirun, a lone rank unbound: `mpirun -np 1` binds it to one
        # core, so it would run one thread where the plan, like a plain
        # `sptrain`, gives a lone rank every core.
        launch = ["mpirun", "-np", str(ranks)] + (["--bind-to", "none"] if ranks == 1 else [])
        bench_cmd = launch + [sp, "bench", config] + args + ["--json", "--steps", str(a.steps), "--warmup",
                                                             str(a.warmup)]
        plan_path, bench_path = os.path.join(a.out, f"{tag}_plan.json"), os.path.join(a.out, f"{tag}_bench.json")
        if i >= ncal:
            run(plan_cmd, plan_path)
        if "time" in what or i < ncal:
            busy = wait_quiet(a.quiet_max, a.quiet_wait)
            print(f"plan_check: {busy:.2f} cores busy before the run", file=sys.stderr)
        print(f"plan_check: {name}: {' '.join(bench_cmd)}", file=sys.stderr)
        _, other = run(bench_cmd, bench_path, MPI_ENV)
        if i < ncal:  # a calibration: planned after its own measurement, with it
            os.replace(bench_path, calibration[i])
            bench_path = calibration[i]
            run(plan_cmd + ["--calibrate", calibration[i]], plan_path)
        plan, bench = json.load(open(plan_path)), json.load(open(bench_path))
        r = compare(name, plan, bench, what, ranks)
        r["other_cores"] = other
        r["commands"] = {"plan": plan_cmd, "bench": bench_cmd}
        results.append(r)
        print(f"plan_check: {name}: memory worst {100 * r['memory']['worst']['error']:+.1f}%, time "
              f"{100 * r['time']['error']:+.0f}% ({r['time']['predicted_s']:.2f} vs {r['time']['measured_s']:.2f} s),"
              f" bytes {'equal' if r['bytes']['equal'] else 'DIFFER'}; other processes {other:.2f} cores",
              file=sys.stderr)
    # The true-shape rank, when bench/cpu_175b_rank.sh has written it.
    true_rank = os.path.join(a.out, "true_rank.json")
    if os.path.exists(true_rank):
        results.append(json.load(open(true_rank)))
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.node()}, {os.cpu_count()} cores, "
                       f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
            "steps": a.steps, "warmup": a.warmup}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(table(results))
    print(table(results))
    if a.check:
        # `--gpu cpu` plans a CPU-only build. A binary with the CUDA back end
        # loads cuBLASLt, cudart and NCCL at start (~200 MB resident per
        # process, even for `--help`), which does not add up with the rest,
        # and a sanitizer build keeps shadow memory: for those only the bytes
        # are checked, and the line below says so.
        exact_memory, why = memory_comparable(a.sptrain)
        if not exact_memory:
            print(f"plan_check: memory NOT checked: {why}")
        bad = [r["name"] for r in results
               if ("memory" in r["checks"] and exact_memory and not r["memory"]["within_10_percent"])
               or ("bytes" in r["checks"] and not r["bytes"]["equal"])]
        if bad:
            sys.exit("plan_check: FAIL: " + "; ".join(bad))
        print("plan_check: PASS: " + ("memory within 10% on every rank, " if exact_memory else "")
              + "bytes equal, in every run")


if __name__ == "__main__":
    main()
