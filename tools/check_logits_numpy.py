#!/usr/bin/env python3
"""Runs a llama-family sptrain model file with numpy (float64) and compares its
next-token logits with tests/golden/smollm2_logits.h5 (written by
tools/gen_logits_golden.py from Hugging Face transformers).

A reference for what the model file means (docs/formats.md): [out, in] weights,
rotate-half RoPE, grouped-query attention, SwiGLU, RMSNorm, tied LM head. It
checks the conversion end to end, independently of sptrain's C++ forward pass.

    .venv-tools/bin/python tools/check_logits_numpy.py [MODEL.h5] [GOLDEN.h5]
"""
import os
import sys

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "smollm2-135m.h5")
GOLDEN = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests", "golden", "smollm2_logits.h5")


def main():
    f = h5py.File(MODEL, "r")
    a = f.attrs
    assert a["family"] == "llama", "only the llama family is implemented here"
    L, H, KV, hd = (int(a[k]) for k in ("n_layers", "n_heads", "n_kv_heads", "head_dim"))
    eps, theta = float(a["norm_eps"]), float(a["rope_theta"])
    w = lambda name: f[name][...].astype(np.float64)
    E = w("embeddings/tokens")
    head = E if int(a["tied_embeddings"]) else w("lm_head/weight")
    layers = [{k: w(f"layers/{i}/{k}/weight") for k in
               ("attn_norm", "attn/q", "attn/k", "attn/v", "attn/o", "mlp_norm", "mlp/gate", "mlp/up", "mlp/down")}
              for i in range(L)]
    final = w("final_norm/weight")

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rope(x):  # x [T, heads, hd], rotate-half: pairs (i, i + hd/2)
        T = x.shape[0]
        inv = theta ** (-np.arange(0, hd, 2) / hd)
        ang = np.arange(T)[:, None] * inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    def forward(ids):
        x = E[ids]
        T = len(ids)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        for p in layers:
            h = rms(x, p["attn_norm"])
            q = rope((h @ p["attn/q"].T).reshape(T, H, hd))
            k = rope((h @ p["attn/k"].T).reshape(T, KV, hd))
            v = (h @ p["attn/v"].T).reshape(T, KV, hd)
            k, v = np.repeat(k, H // KV, axis=1), np.repeat(v, H // KV, axis=1)
            s = np.einsum("thd,uhd->htu", q, k) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = np.einsum("htu,uhd->thd", s, v).reshape(T, H * hd)
            x = x + o @ p["attn/o"].T
            h = rms(x, p["mlp_norm"])
            g = h @ p["mlp/gate"].T
            x = x + ((g / (1 + np.exp(-g))) * (h @ p["mlp/up"].T)) @ p["mlp/down"].T
        return rms(x[-1], final) @ head.T

    g = h5py.File(GOLDEN, "r")
    ref = g["logits"][...]
    worst = 0.0
    for k in range(ref.shape[0]):
        ids = g[f"ids/{k}"][...]
        ours = forward(ids)
        d = float(np.abs(ours - ref[k]).max())
        worst = max(worst, d)
        print(f"sentence {k}: {len(ids)} tokens, argmax ours {int(ours.argmax())} ref {int(ref[k].argmax())}, "
              f"max |diff| {d:.2e} (logit range {ref[k].min():.1f}..{ref[k].max():.1f})")
    print("max abs difference", worst)
    if worst > 1e-3:
        sys.exit("MISMATCH")


if __name__ == "__main__":
    main()
