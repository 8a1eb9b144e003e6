#!/usr/bin/env python3
"""Checks a model file converted from a llama GGUF against the GGUF itself.

Every tensor is dequantized by gguf-py (llama.cpp's own Python package), the
Q/K rows are un-permuted with numpy from llama.cpp's definition
(hf.reshape(n_head, 2, hd/2, in).swapaxes(1, 2) on conversion), and compared
with the dataset in the sptrain model file (h5py). Independent of sptrain's code.

    .venv-tools/bin/pip install gguf h5py numpy
    .venv-tools/bin/python tools/check_converted_gguf.py MODEL.gguf MODEL.h5
"""
import sys

import h5py
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main(gguf_path, h5_path):
    r = GGUFReader(gguf_path)
    f = h5py.File(h5_path, "r")
    n_head = int(r.fields["llama.attention.head_count"].contents())
    n_kv = int(r.fields["llama.attention.head_count_kv"].contents())
    names = {"token_embd.weight": "embeddings/tokens", "output_norm.weight": "final_norm/weight",
             "output.weight": "lm_head/weight"}
    parts = [("attn_norm", "attn_norm/weight"), ("attn_q", "attn/q/weight"), ("attn_k", "attn/k/weight"),
             ("attn_v", "attn/v/weight"), ("attn_output", "attn/o/weight"), ("ffn_norm", "mlp_norm/weight"),
             ("ffn_gate", "mlp/gate/weight"), ("ffn_up", "mlp/up/weight"), ("ffn_down", "mlp/down/weight")]
    for i in range(int(r.fields["llama.block_count"].contents())):
        for g, h in parts:
            names[f"blk.{i}.{g}.weight"] = f"layers/{i}/{h}"

    def unpermute(w, heads):
        rows, cols = w.shape
        return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)

    # f32 files must match exactly; bf16 ones within bf16's rounding (2^-8 relative).
    bf16 = f.attrs["dtype"] in ("bf16", b"bf16")
    worst = 0.0
    for t in r.tensors:
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(x) for x in reversed(t.shape)])
        if ".attn_q." in t.name:
            w = unpermute(w, n_head)
        if ".attn_k." in t.name:
            w = unpermute(w, n_kv)
        ours = f[names[t.name]][...].astype(np.float32)
        if ours.shape != w.shape:
            sys.exit(f"{t.name}: shape {ours.shape} in {h5_path}, {w.shape} in {gguf_path}")
        err = np.abs(ours - w) / (np.abs(w) + 1e-30) if bf16 else np.abs(ours - w)
        worst = max(worst, float(err.max()))
    print(f"compared {len(r.tensors)} tensors: max {'relative' if bf16 else 'absolute'} difference {worst}")
    if worst > (2.0**-8 if bf16 else 0.0):
        sys.exit("MISMATCH")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
