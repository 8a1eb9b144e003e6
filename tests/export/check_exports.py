#!/usr/bin/env python3
"""The exports as the Python ecosystem reads them (registered with ctest).

Writes a checkpoint with make_fixture, exports it with `sptrain export` in
every format, then reads the files with PyPI numpy and safetensors (not with
sptrain) and compares their values bit for bit with the checkpoint's prompt,
which make_fixture also wrote as raw float32 bytes straight from memory.

    check_exports.py --sptrain BIN --fixture BIN --workdir DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

ROWS, COLS = 5, 16
checks = {"passed": 0, "failed": 0}


def check(ok, what):
    checks["passed" if ok else "failed"] += 1
    print(("ok      " if ok else "FAILED  ") + what)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def bf16_bits(f32):
    """Round-to-nearest-even f32 -> bf16, written independently of sptrain."""
    u = f32.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(f32)
    rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)  # NaN stays NaN
    return rounded


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sptrain", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()

    d = args.workdir
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    run([args.fixture, d, str(ROWS), str(COLS)])
    ckpt = os.path.join(d, "step_000042.h5")
    ref = np.fromfile(os.path.join(d, "prompt.f32"), dtype="<f4").reshape(ROWS, COLS)

    # npy, f32: numpy.load gives the prompt exactly.
    out = run([args.sptrain, "export", ckpt, "--format", "npy", "--out", f"{d}/p.npy"])
    a = np.load(f"{d}/p.npy", allow_pickle=False)
    check(a.dtype == np.dtype("<f4") and a.shape == (ROWS, COLS), f"npy f32: dtype {a.dtype}, shape {a.shape}")
    check(same_bits(a, ref), "npy f32: values equal the checkpoint's bit for bit")
    check(f"{os.path.getsize(f'{d}/p.npy')} bytes" in out, f"npy f32: printed size matches the file ({out.strip()})")

    # npy, bf16: a uint16 array of bf16 bits; the documented conversion gives f32.
    run([args.sptrain, "export", ckpt, "--format", "npy", "--dtype", "bf16", "--out", f"{d}/p16.npy"])
    b = np.load(f"{d}/p16.npy", allow_pickle=False)
    check(b.dtype == np.dtype("<u2") and b.shape == (ROWS, COLS), f"npy bf16: dtype {b.dtype}, shape {b.shape}")
    check(np.array_equal(b, bf16_bits(ref)), "npy bf16: bits are f32 rounded to nearest even")
    as_f32 = (b.astype(np.uint32) << 16).view(np.float32)  # the conversion docs/export.md gives
    finite = np.isfinite(ref) & (np.abs(ref) < 1e30)
    # half a step (2^-8 relative), or one step (2^-133) among bf16 subnormals
    step = np.maximum(np.abs(ref[finite]).astype(np.float64) * 2.0**-8, 2.0**-133)
    check(bool(np.all(np.abs(as_f32[finite].astype(np.float64) - ref[finite]) <= step)),
          "npy bf16: converted values within half a bf16 step")

    # PEFT: safetensors reads prompt_embeddings; adapter_config.json has PEFT's fields.
    run([args.sptrain, "export", ckpt, "--format", "peft", "--out", f"{d}/adapter"])
    tensors = load_file(f"{d}/adapter/adapter_model.safetensors")
    check(list(tensors) == ["prompt_embeddings"], f"peft: tensors {list(tensors)}")
    e = tensors["prompt_embeddings"]
    check(e.dtype == np.float32 and e.shape == (ROWS, COLS), f"peft: dtype {e.dtype}, shape {e.shape}")
    check(same_bits(e, ref), "peft: prompt_embeddings equal the checkpoint's bit for bit")
    with safe_open(f"{d}/adapter/adapter_model.safetensors", framework="np") as f:
        meta = f.metadata()
    check(meta.get("format") == "pt", f"peft: metadata {meta}")
    with open(f"{d}/adapter/adapter_config.json") as f:
        cfg = json.load(f)
    expected = {
        "peft_type": "PROMPT_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": ROWS,
        "token_dim": COLS, "num_transformer_submodules": 1, "num_attention_heads": 4, "num_layers": 2,
        "base_model_name_or_path": "fixture-llama", "prompt_tuning_init": "RANDOM",
        "inference_mode": True, "revision": None, "tokenizer_name_or_path": None,
    }
    for k, v in expected.items():
        check(cfg.get(k, "(missing)") == v, f"peft: adapter_config.json {k} = {cfg.get(k, '(missing)')!r}")

    print(f"{checks['passed']} passed, {checks['failed']} failed")
    return 1 if checks["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
