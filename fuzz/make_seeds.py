#!/usr/bin/env python3
"""Writes the seed corpus of every harness into fuzz/corpus/NAME/ (committed).

    python3 fuzz/make_seeds.py

Seeds are small valid files (from configs/ and data/sst2/, or tiny tokenizers,
models, safetensors folders, prompts and requests written here) and the probe files of issue 19 (alias bombs, deep nesting, huge
counts). Inputs found by fuzzing that crashed sptrain are added by hand as
regression-* files and are not touched here. Python's standard library only.
"""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def put(harness, name, data):
    d = CORPUS / harness
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# ---- config: YAML, then '\0' and each --set argument ----
def config_seeds():
    for p in sorted((ROOT / "configs").glob("*.yaml")):
        put("config", p.name, p.read_bytes())
    minimal = ('model:\n  path: m.h5\ntask:\n  train: t.tsv\n'
               '  labels: {"0": " negative", "1": " positive"}\n')
    put("config", "minimal.yaml", minimal)
    put("config", "overrides.yaml", minimal + "\0optim.lr=0.5\0task.labels.2= neutral\0"
        "task.template=Review: {text}\0parallel.stage_layers=[1, 2]\0threads=4")
    put("config", "every_section.yaml", minimal + (
        "backend: cpu\nthreads: 2\nprompt:\n  length: 4\n  init: text\n  init_text: \"hi\"\n"
        "optim:\n  name: adafactor\n  schedule: cosine\n  adafactor:\n    decay_rate: 0.8\n"
        "    scale_parameter: no\ntrain:\n  steps: 10\n  seed: 18446744073709551615\n"
        "  resume: never\nparallel:\n  tensor: 2\n  pipeline: 2\n  schedule: gpipe\n"
        "  stage_layers: [1, 1]\n"))
    bomb = 'task:\n  labels:\n    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for c in "bcdefghi":
        prev = "*" + chr(ord(c) - 1)
        bomb += f"    {c}: &{c} [{', '.join([prev] * 9)}]\n"
    put("config", "probe-alias-bomb.yaml", bomb)
    put("config", "probe-deep.yaml", "model: " + "[" * 600 + "]" * 600 + "\n")
    put("config", "probe-anchors.yaml", minimal + "optim: &o\n  adafactor: *o\n")
    put("config", "probe-threads.yaml", minimal + "threads: 100000\n")


# ---- datasets ----
def data_seeds():
    lines = (ROOT / "data" / "sst2" / "dev.tsv").read_text().splitlines()[:8]
    put("dataset_tsv", "sst2-dev-head.tsv", "\n".join(lines) + "\n")
    put("dataset_tsv", "header-crlf-bom.tsv", "\ufeffsentence\tlabel\r\na film\t1\r\nbad\tfilm\t0\r\n\r\n")
    put("dataset_tsv", "probe-no-tab.tsv", "no tab here\n")
    put("dataset_tsv", "probe-blank-middle.tsv", "a\t1\n\nb\t0\n")
    put("dataset_tsv", "probe-invalid-utf8.tsv", b"caf\xe9\t1\n")
    rows = [{"text": t.rsplit("\t", 1)[0], "label": int(t.rsplit("\t", 1)[1])} for t in lines]
    put("dataset_jsonl", "sst2-dev-head.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    put("dataset_jsonl", "string-labels.jsonl",
        '{"text": "caf\\u00e9 \\"quoted\\"", "label": "pos", "id": [1, {"x": null}]}\n'
        '{"label": "neg", "text": "line\\nbreak"}\n')
    put("dataset_jsonl", "probe-types.jsonl", '{"text": 1, "label": 1.5}\n')
    put("dataset_jsonl", "probe-deep.jsonl", '{"text": "a", "label": 1, "x": ' + "[" * 100 + "]" * 100 + "}\n")
    put("dataset_jsonl", "probe-not-object.jsonl", '["text", "label"]\n')


# ---- tokenizers ----
def byte_chars():
    """GPT-2's byte -> printable character map (tokenizer.hpp)."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    m, n = {}, 256
    for b in range(256):
        if b in printable:
            m[b] = chr(b)
        else:
            m[b] = chr(n)
            n += 1
    return [m[b] for b in range(256)]


def tiny_vocab():
    tokens = byte_chars()
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("1", "2")]
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    return tokens, [f"{a} {b}" for a, b in merges]


def tokenizer_json(pre, post=None, added=True):
    tokens, merges = tiny_vocab()
    j = {
        "version": "1.0",
        "added_tokens": [{"id": len(tokens), "content": "<|endoftext|>", "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False, "special": True}]
        if added else [],
        "normalizer": None,
        "pre_tokenizer": pre,
        "post_processor": post,
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    return json.dumps(j, ensure_ascii=False)


def tokenizer_seeds():
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    put("tokenizer_json", "bytelevel.json", tokenizer_json(byte_level))
    put("tokenizer_json", "sequence-digits-split.json", tokenizer_json(
        {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": False},
            {"type": "Split", "pattern": {"String": "."}, "behavior": "Isolated", "invert": False},
            dict(byte_level, use_regex=False)]},
        post={"type": "TemplateProcessing",
              "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}}]}))
    put("tokenizer_json", "probe-split-removed.json", tokenizer_json(
        {"type": "Split", "pattern": {"Regex": "x"}, "behavior": "Removed"}))
    put("tokenizer_json", "probe-bad-regex.json", tokenizer_json(
        {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated"}, byte_level]}))

    tokens, merges = tiny_vocab()
    vocab = json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False)
    merges_txt = "#version: 0.2\n" + "\n".join(merges) + "\n"
    config = json.dumps({"add_bos_token": True, "bos_token": "<|endoftext|>", "eos_token": {"content": "<|endoftext|>"},
                         "add_prefix_space": False,
                         "added_tokens_decoder": {str(len(tokens)): {"content": "<|endoftext|>", "special": True}}})
    special = json.dumps({"pad_token": "<|endoftext|>"})
    put("tokenizer_folder", "gpt2-slow", "\0".join([vocab, merges_txt, config, special]))
    put("tokenizer_folder", "tokenizer-json-with-config",
        "\0".join(["", "", json.dumps({"eos_token": "<|endoftext|>"}), "", tokenizer_json(byte_level)]))
    put("tokenizer_folder", "probe-decoder-key", "\0".join([vocab, merges_txt, json.dumps(
        {"added_tokens_decoder": {"x": {"content": "<s>"}}})]))

    put("tokenizer_gguf", "gpt2-smollm.gguf", gguf(tokens, merges, "smollm"))
    put("tokenizer_gguf", "llama3-bos.gguf", gguf(tokens, merges, "llama3", extra=[
        ("tokenizer.ggml.add_bos_token", 7, struct.pack("<B", 1))]))
    put("tokenizer_gguf", "default-no-types.gguf", gguf(tokens, merges, None, types=False))
    put("tokenizer_gguf", "with-tensor.gguf", gguf(tokens, merges, "gpt2", tensor=True))
    put("tokenizer_gguf", "probe-huge-count.gguf",
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("tokenizer.ggml.tokens") +
        struct.pack("<IIQ", 9, 8, 2 ** 62))

    texts = ["Hello, world! It's the 123rd time.", "<|im_start|>user\nhi<|im_end|><|im",
             "caf\u00e9 \u4e2d\u6587 \U0001f600  \t\n  x", "   leading and trailing   ", "1234567890" * 3]
    for k, t in enumerate(texts):
        put("tokenizer_encode", f"text-{k}", bytes([k * 2 + (k % 2)]) + t.encode())


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(tokens, merges, pre, extra=(), types=True, tensor=False):
    """A GGUF v3 file with tokenizer.ggml.* metadata (and optionally one tensor)."""
    kvs = [("general.architecture", 8, gstr("llama")),
           ("tokenizer.ggml.model", 8, gstr("gpt2")),
           ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(tokens)) + b"".join(gstr(t) for t in tokens)),
           ("tokenizer.ggml.merges", 9, struct.pack("<IQ", 8, len(merges)) + b"".join(gstr(m) for m in merges)),
           ("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 257)),
           ("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 258))]
    if types:
        kvs.append(("tokenizer.ggml.token_type", 9,
                    struct.pack("<IQ", 5, len(tokens)) + b"".join(struct.pack("<i", 1) for _ in tokens)))
    if pre:
        kvs.append(("tokenizer.ggml.pre", 8, gstr(pre)))
    kvs += list(extra)
    out = b"GGUF" + struct.pack("<IQQ", 3, 1 if tensor else 0, len(kvs))
    for key, typ, val in kvs:
        out += gstr(key) + struct.pack("<I", typ) + val
    if tensor:
        out += gstr("token_embd.weight") + struct.pack("<IQQIQ", 2, 4, 2, 0, 0)
        out += b"\0" * (-len(out) % 32) + struct.pack("<8f", *range(8))
    return out


# ---- model conversion: GGUF (llama) and Hugging Face safetensors folders ----
SMALL_TOKENS = ["a", "b", "c", "d", "e", "h", "l", "o", "t", "\u0120", "th", "he", "\u0120t",
                "<|endoftext|>", "x", "y"]
SMALL_MERGES = ["t h", "h e", "\u0120 t"]


def values(n, seed, base=0.0):
    """n small deterministic finite values."""
    return [base + ((i * 7919 + seed * 104729) % 201 - 100) / 400.0 for i in range(n)]


def f16(v):
    return struct.pack("<e", v)


def bf16(v):
    return struct.pack("<f", v)[2:]


def encode(kind, vals):
    """The bytes of vals as a GGUF tensor type / safetensors dtype name."""
    if kind == "F32":
        return struct.pack(f"<{len(vals)}f", *vals)
    if kind == "F16":
        return b"".join(f16(v) for v in vals)
    if kind == "BF16":
        return b"".join(bf16(v) for v in vals)
    out = b""
    for b in range(0, len(vals), 32):
        blk = vals[b:b + 32]
        if kind == "Q8_0":
            d = max(abs(v) for v in blk) / 127 or 1.0
            out += f16(d) + struct.pack("<32b", *[max(-127, min(127, round(v / d))) for v in blk])
        elif kind == "Q4_0":
            d = max(abs(v) for v in blk) / 7 or 1.0
            q = [max(0, min(15, round(v / d) + 8)) for v in blk]
            out += f16(d) + bytes(q[j] | q[j + 16] << 4 for j in range(16))
        elif kind == "Q4_1":
            lo, hi = min(blk), max(blk)
            d = (hi - lo) / 15 or 1.0
            q = [max(0, min(15, round((v - lo) / d))) for v in blk]
            out += f16(d) + f16(lo) + bytes(q[j] | q[j + 16] << 4 for j in range(16))
        else:
            raise ValueError(kind)
    return out


GGUF_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 8, "BF16": 30}


def gguf_file(kvs, tensors, alignment=32):
    """A GGUF v3 file: kvs [(key, type id, value bytes)], tensors [(name, torch
    shape, type name or id, data bytes)]; data aligned to `alignment`."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, typ, val in kvs:
        out += gstr(key) + struct.pack("<I", typ) + val
    offset, data = 0, b""
    for name, shape, typ, raw in tensors:
        dims = list(reversed(shape))  # ggml order: columns first
        out += gstr(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", GGUF_TYPES.get(typ, typ), offset)
        data += raw + b"\0" * (-len(raw) % alignment)
        offset += len(raw) + (-len(raw) % alignment)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def u32(v):
    return struct.pack("<I", v)


def gguf_llama(d=8, heads=2, kv=1, ffn=16, layers=1, types=None, tied=False, extra=(),
               alignment=32, override=None, drop=(), add=()):
    """A llama GGUF with the small tokenizer; types maps a tensor's part name
    (token_embd, attn_q, ...) to its type (F32 by default)."""
    types = types or {}
    hd = d // heads
    vocab = len(SMALL_TOKENS)
    kvs = [("general.architecture", 8, gstr("llama")), ("general.name", 8, gstr("tiny-llama")),
           ("llama.block_count", 4, u32(layers)), ("llama.embedding_length", 4, u32(d)),
           ("llama.feed_forward_length", 4, u32(ffn)), ("llama.attention.head_count", 4, u32(heads)),
           ("llama.attention.head_count_kv", 4, u32(kv)), ("llama.context_length", 4, u32(32)),
           ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
           ("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
           ("tokenizer.ggml.model", 8, gstr("gpt2")),
           ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, vocab) + b"".join(gstr(t) for t in SMALL_TOKENS)),
           ("tokenizer.ggml.merges", 9, struct.pack("<IQ", 8, len(SMALL_MERGES)) +
            b"".join(gstr(m) for m in SMALL_MERGES)),
           ("tokenizer.ggml.eos_token_id", 4, u32(13))] + list(extra)
    if override:
        kvs = [(k, t, v) if k not in override else (k,) + override[k] for k, t, v in kvs]
    shapes = [("token_embd.weight", [vocab, d]), ("output_norm.weight", [d])]
    if not tied:
        shapes.append(("output.weight", [vocab, d]))
    for i in range(layers):
        b = f"blk.{i}."
        shapes += [(b + "attn_norm.weight", [d]), (b + "attn_q.weight", [heads * hd, d]),
                   (b + "attn_k.weight", [kv * hd, d]), (b + "attn_v.weight", [kv * hd, d]),
                   (b + "attn_output.weight", [d, heads * hd]), (b + "ffn_norm.weight", [d]),
                   (b + "ffn_gate.weight", [ffn, d]), (b + "ffn_up.weight", [ffn, d]),
                   (b + "ffn_down.weight", [d, ffn])]
    tensors = []
    for k, (name, shape) in enumerate(shapes):
        if name in drop:
            continue
        n = 1
        for x in shape:
            n *= x
        part = name.split(".")[-2]
        typ = types.get(part, "F32")
        vals = values(n, k, 1.0 if part.endswith("norm") else 0.0)
        tensors.append((name, shape, typ, encode(typ, vals)))
    return gguf_file(kvs, tensors + list(add), alignment)


def gguf_model_seeds():
    put("gguf_model", "llama-f32.gguf", gguf_llama())
    put("gguf_model", "llama-quantized-tied.gguf", gguf_llama(
        d=32, heads=4, kv=2, ffn=32, tied=True, alignment=64,
        types={"token_embd": "Q4_0", "attn_q": "Q8_0", "attn_k": "Q4_1", "attn_v": "F16",
               "attn_output": "BF16", "ffn_gate": "Q8_0", "ffn_up": "F16", "ffn_down": "Q4_0"},
        extra=[("general.alignment", 4, u32(64)), ("llama.rope.dimension_count", 4, u32(8)),
               ("llama.vocab_size", 4, u32(len(SMALL_TOKENS))), ("llama.attention.key_length", 4, u32(8)),
               ("tokenizer.ggml.pre", 8, gstr("llama3")), ("tokenizer.ggml.bos_token_id", 4, u32(13))]))
    put("gguf_model", "llama-2-layers-f16.gguf", gguf_llama(layers=2, types={
        p: "F16" for p in ["token_embd", "output", "attn_q", "attn_k", "attn_v", "attn_output",
                           "ffn_gate", "ffn_up", "ffn_down"]}))
    put("gguf_model", "probe-block-count.gguf", gguf_llama(override={"llama.block_count": (4, u32(2))}))
    put("gguf_model", "probe-missing-tensor.gguf", gguf_llama(drop=("blk.0.ffn_up.weight",)))
    put("gguf_model", "probe-rope-freqs.gguf", gguf_llama(
        add=[("rope_freqs.weight", [2], "F32", encode("F32", [1.0, 1.0]))]))
    nan = gguf_llama()
    at = nan.rindex(struct.pack("<f", values(8, 1, 1.0)[3]))  # a value of output_norm.weight
    put("gguf_model", "probe-nan-weight.gguf", nan[:at] + struct.pack("<f", float("nan")) + nan[at + 4:])
    put("gguf_model", "probe-huge-dims.gguf", gguf_file(
        [("general.architecture", 8, gstr("llama"))],
        [("token_embd.weight", [2 ** 40, 2 ** 40, 2 ** 40], "F32", b"")]))
    # two tensors at the same offset: the second info repeats the first's offset
    one = gguf_file([("general.architecture", 8, gstr("llama"))],
                    [("a", [8], "F32", encode("F32", values(8, 0))), ("b", [8], "F32", encode("F32", values(8, 1)))])
    second = one.index(gstr("b"))
    info = second + len(gstr("b")) + 4 + 8 + 4  # name, rank, dims, type: then the offset
    put("gguf_model", "probe-overlap.gguf", one[:info] + struct.pack("<Q", 0) + one[info + 8:])


def safetensors_file(tensors, metadata=None):
    """A safetensors file: tensors [(name, dtype, shape, data bytes)]."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def st_tensors(shapes, dtype, seed=0):
    out = []
    for k, (name, shape) in enumerate(shapes):
        n = 1
        for x in shape:
            n *= x
        base = 1.0 if ("norm" in name or "ln_" in name) and name.endswith("weight") else 0.0
        out.append((name, dtype, shape, encode(dtype, values(n, seed + k, base))))
    return out


def gpt2_config(**kw):
    c = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 1, "n_embd": 4, "n_head": 2,
         "n_inner": 8, "vocab_size": 16, "n_positions": 8, "activation_function": "gelu_new",
         "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True, "bos_token_id": 13, "eos_token_id": 13}
    c.update(kw)
    return c


def gpt2_shapes(layers=1, prefix="transformer."):
    s = [(prefix + "wte.weight", [16, 4]), (prefix + "wpe.weight", [8, 4])]
    for i in range(layers):
        h = f"{prefix}h.{i}."
        s += [(h + "ln_1.weight", [4]), (h + "ln_1.bias", [4]), (h + "attn.c_attn.weight", [4, 12]),
              (h + "attn.c_attn.bias", [12]), (h + "attn.c_proj.weight", [4, 4]), (h + "attn.c_proj.bias", [4]),
              (h + "ln_2.weight", [4]), (h + "ln_2.bias", [4]), (h + "mlp.c_fc.weight", [4, 8]),
              (h + "mlp.c_fc.bias", [8]), (h + "mlp.c_proj.weight", [8, 4]), (h + "mlp.c_proj.bias", [4]),
              (h + "attn.bias", [1, 1, 8, 8])]
    return s + [(prefix + "ln_f.weight", [4]), (prefix + "ln_f.bias", [4])]


LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1,
                "hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1,
                "vocab_size": 16, "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                "hidden_act": "silu", "tie_word_embeddings": False, "bos_token_id": 13, "eos_token_id": [13, 14]}


def llama_shapes():
    p = "model.layers.0."
    return [("model.embed_tokens.weight", [16, 8]), ("model.norm.weight", [8]), ("lm_head.weight", [16, 8]),
            (p + "input_layernorm.weight", [8]), (p + "post_attention_layernorm.weight", [8]),
            (p + "self_attn.q_proj.weight", [8, 8]), (p + "self_attn.k_proj.weight", [4, 8]),
            (p + "self_attn.v_proj.weight", [4, 8]), (p + "self_attn.o_proj.weight", [8, 8]),
            (p + "mlp.gate_proj.weight", [16, 8]), (p + "mlp.up_proj.weight", [16, 8]),
            (p + "mlp.down_proj.weight", [8, 16]), (p + "self_attn.rotary_emb.inv_freq", [2])]


OPT_CONFIG = {"architectures": ["OPTForCausalLM"], "model_type": "opt", "num_hidden_layers": 1, "hidden_size": 4,
              "ffn_dim": 8, "num_attention_heads": 2, "vocab_size": 16, "max_position_embeddings": 8,
              "do_layer_norm_before": True, "word_embed_proj_dim": 4, "activation_function": "relu",
              "enable_bias": True, "tie_word_embeddings": True}


def opt_shapes():
    p, l = "model.decoder.", "model.decoder.layers.0."
    s = [(p + "embed_tokens.weight", [16, 4]), (p + "embed_positions.weight", [10, 4]),
         (p + "final_layer_norm.weight", [4]), (p + "final_layer_norm.bias", [4])]
    for m, shape in [("self_attn_layer_norm", [4]), ("final_layer_norm", [4])]:
        s += [(l + m + ".weight", shape), (l + m + ".bias", [4])]
    for m in ["q_proj", "k_proj", "v_proj", "out_proj"]:
        s += [(l + "self_attn." + m + ".weight", [4, 4]), (l + "self_attn." + m + ".bias", [4])]
    return s + [(l + "fc1.weight", [8, 4]), (l + "fc1.bias", [8]), (l + "fc2.weight", [4, 8]),
                (l + "fc2.bias", [4])]


def st_header(tensors):
    """The JSON header of safetensors_file(tensors) (what mode 1 seeds give)."""
    raw = safetensors_file(tensors)
    return raw[8:8 + struct.unpack("<Q", raw[:8])[0]].rstrip(b" ")


def safetensors_seeds():
    def shard_seed(config, tensors):  # mode 0: config.json, '\0', model.safetensors
        return b"\x00" + json.dumps(config).encode() + b"\0" + safetensors_file(tensors)

    put("safetensors", "gpt2-f32", shard_seed(gpt2_config(), st_tensors(gpt2_shapes(), "F32")))
    put("safetensors", "llama-bf16", shard_seed(LLAMA_CONFIG, st_tensors(llama_shapes(), "BF16")))
    put("safetensors", "opt-f16", shard_seed(OPT_CONFIG, st_tensors(opt_shapes(), "F16")))
    put("safetensors", "gpt2-no-prefix-read-only", b"\x02" + shard_seed(
        gpt2_config(), st_tensors(gpt2_shapes(prefix=""), "F16"))[1:])
    put("safetensors", "probe-header-length", b"\x00" + json.dumps(gpt2_config()).encode() + b"\0" +
        struct.pack("<Q", 2 ** 63) + b"{}")
    raw = safetensors_file(st_tensors(gpt2_shapes(), "F32"))  # wpe starts 4 bytes inside wte
    put("safetensors", "probe-overlap", b"\x00" + json.dumps(gpt2_config()).encode() + b"\0" +
        raw.replace(b'"data_offsets":[256,384]', b'"data_offsets":[252,380]', 1))
    put("safetensors", "probe-huge-n-embd", shard_seed(gpt2_config(n_embd=2 ** 62, n_inner=8),
                                                        st_tensors(gpt2_shapes(), "F32")))

    # mode 1: config.json, index, shard headers (the harness adds the data)
    shapes = gpt2_shapes(layers=2)
    first, second = shapes[:15], shapes[15:]
    index = {"metadata": {"total_size": 0},
             "weight_map": {**{n: "shard-1.safetensors" for n, _ in first},
                            **{n: "shard-2.safetensors" for n, _ in second}}}
    put("safetensors", "gpt2-2-shards", b"\x01" + b"\0".join([
        json.dumps(gpt2_config(n_layer=2)).encode(), json.dumps(index).encode(),
        st_header(st_tensors(first, "F32")), st_header(st_tensors(second, "BF16"))]))
    put("safetensors", "llama-headers", b"\x01" + b"\0".join([
        json.dumps(dict(LLAMA_CONFIG, tie_word_embeddings=True, sliding_window=16,
                        rope_parameters={"rope_type": "default", "rope_theta": 500000.0})).encode(), b"",
        st_header(st_tensors([s for s in llama_shapes() if s[0] != "lm_head.weight"], "F32"))]))
    put("safetensors", "probe-index-escape", b"\x01" + b"\0".join([
        json.dumps(gpt2_config()).encode(),
        json.dumps({"weight_map": {"a": "../outside.safetensors", "b": "/etc/passwd", "c": ".."}}).encode(),
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}']))
    put("safetensors", "probe-index-missing", b"\x01" + b"\0".join([
        json.dumps(gpt2_config()).encode(),
        json.dumps({"weight_map": {"a": "shard-1.safetensors", "b": "shard-2.safetensors"}}).encode(),
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}}']))


# ---- prompt import: .npy files and PEFT folders ----
def npy_file(descr, shape, raw, fortran=False, version=1):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", ", ".join(str(x) for x in shape) + ("," if len(shape) == 1 else ""))
    prefix = 10 if version == 1 else 12
    d += " " * (-(prefix + len(d) + 1) % 64) + "\n"
    head = b"\x93NUMPY" + bytes([version, 0])
    head += struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))
    return head + d.encode() + raw


def npy_seeds():
    put("npy_prompt", "f4-2x4.npy", npy_file("<f4", [2, 4], encode("F32", values(8, 0))))
    put("npy_prompt", "f8-fortran-3x2.npy", npy_file("<f8", [3, 2], struct.pack("<6d", *values(6, 1)), fortran=True))
    put("npy_prompt", "f2-v2-1x3.npy", npy_file("<f2", [1, 3], encode("F16", values(3, 2)), version=2))
    put("npy_prompt", "u2-bf16-v3-2x2.npy", npy_file("<u2", [2, 2], encode("BF16", values(4, 3)), version=3))
    put("npy_prompt", "probe-1d.npy", npy_file("<f4", [5], encode("F32", values(5, 4))))
    put("npy_prompt", "probe-nan.npy", npy_file("<f4", [1, 2], struct.pack("<2f", 1.0, float("nan"))))
    put("npy_prompt", "probe-huge-shape.npy", npy_file("<f4", [2 ** 33, 2 ** 33], b""))
    put("npy_prompt", "probe-header-length.npy", b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f4'}")


def peft_config(rows, cols, **kw):
    c = {"task_type": "CAUSAL_LM", "peft_type": "PROMPT_TUNING", "auto_mapping": None,
         "base_model_name_or_path": "tiny", "revision": None, "inference_mode": True,
         "num_virtual_tokens": rows, "token_dim": cols, "num_transformer_submodules": 1,
         "num_attention_heads": 2, "num_layers": 1, "modules_to_save": None,
         "prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": None,
         "tokenizer_name_or_path": None, "tokenizer_kwargs": None}
    c.update(kw)
    return json.dumps(c, indent=2).encode() + b"\n"


def peft_seeds():
    sptrain = safetensors_file([("prompt_embeddings", "F32", [2, 4], encode("F32", values(8, 0)))],
                               {"format": "pt", "sptrain_model_fingerprint": "0123456789abcdef",
                                "sptrain_step": "100"})
    put("peft_folder", "sptrain-export", peft_config(2, 4) + b"\0" + sptrain)
    put("peft_folder", "foreign-bf16-weights-only", b"\0" + safetensors_file(
        [("prompt_embeddings", "BF16", [3, 2], encode("BF16", values(6, 1)))], {"format": "pt"}))
    put("peft_folder", "foreign-f16-short-config", json.dumps(
        {"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 1, "token_dim": 4}).encode() + b"\0" +
        safetensors_file([("prompt_embeddings", "F16", [1, 4], encode("F16", values(4, 2))),
                          ("other", "I64", [1], struct.pack("<q", 7))]))
    put("peft_folder", "probe-lora", peft_config(2, 4, peft_type="LORA") + b"\0" + sptrain)
    put("peft_folder", "probe-number-overflow",
        peft_config(2, 4).replace(b'"token_dim": 4', b'"token_dim": 1e400') + b"\0" + sptrain)
    put("peft_folder", "probe-deep-config", b"[" * 100 + b"]" * 100 + b"\0" + sptrain)
    put("peft_folder", "probe-config-only", peft_config(2, 4))
    # A deep prompt: PREFIX_TUNING, 2 layers x 2 x (2 kv heads x head_dim 2) per row.
    prefix = peft_config(2, 4, peft_type="PREFIX_TUNING", num_layers=2, encoder_hidden_size=4,
                         prefix_projection=False)
    prefix_weights = safetensors_file([("prompt_embeddings", "F32", [2, 16], encode("F32", values(32, 5)))],
                                      {"format": "pt"})
    put("peft_folder", "prefix-tuning", prefix + b"\0" + prefix_weights)
    put("peft_folder", "probe-prefix-projection",
        peft_config(2, 4, peft_type="PREFIX_TUNING", num_layers=2, prefix_projection=True) + b"\0" + prefix_weights)


# ---- infer / generate requests (JSONL) ----
def infer_seeds():
    put("infer_lines", "infer.jsonl", '{"task": "sst2", "text": "a gripping, funny film", "id": 1}\n'
        '{"id": {"k": [1, "x", null]}, "task": "sst2", "text": "caf\\u00e9 \\"quoted\\""}\r\n'
        '{"task": "imdb", "text": "dull", "extra": [true, 1.5]}\n\n  \n')
    put("infer_lines", "generate.jsonl", '{"task": "summary", "input": "a long article"}\n'
        '{"task": "summary", "input": "line\\nbreak", "id": "x-1"}\n')
    put("infer_lines", "probe-blank-middle.jsonl", '{"task": "a", "text": "x"}\n\n{"task": "a", "text": "y"}\n')
    put("infer_lines", "probe-types.jsonl", '{"task": 1, "text": ["x"], "input": null}\n')
    put("infer_lines", "probe-not-object.jsonl", '["task", "text"]\n')
    put("infer_lines", "probe-number-overflow.jsonl", '{"task": "a", "text": "x", "id": 1e400}\n')
    put("infer_lines", "probe-deep-id.jsonl", '{"task": "a", "text": "x", "id": ' + "[" * 100 + "]" * 100 + "}\n")


# ---- sptrain's HDF5 files: a mode byte (even: checkpoint, odd: model), then edits ----
def h5_seeds():
    ckpt = lambda *lines: b"\x00" + "".join(l + "\n" for l in lines).encode()
    model = lambda *lines: b"\x01" + "".join(l + "\n" for l in lines).encode()
    put("h5_attributes", "checkpoint-as-written", ckpt())
    put("h5_attributes", "model-as-written", model())
    put("h5_attributes", "checkpoint-edits", ckpt(
        "attr / step int 7", "attr / eval_accuracy float 0.75", "attr / task_template str Review: {text}",
        "data prompt f32 3 4", "data optimizer/m f32 3 4", "data optimizer/v f32 3 4",
        "strs verbalizer/labels 0|1|2", "strs verbalizer/words  bad| good| fine",
        "strs config_yaml task:\\n  max_length: 8\\n  kind: classify"))
    put("h5_attributes", "checkpoint-deep", ckpt(
        "attr / prompt_method str deep", "del prompt", "data prefix f32 1 2 8"))
    put("h5_attributes", "model-edits", model(
        "attr / n_layers int 2", "attr / d_model uint 8", "attr / norm_eps float 1e-6",
        "data layers/0/attn/q/weight f16 8 8", "data embeddings/tokens bf16 256 8",
        "attr tokenizer bos_id int 3"))
    put("h5_attributes", "probe-checkpoint-types", ckpt(
        "attr / format_version str 1", "attr / step float 1e300", "data prompt i64 2 4",
        "data rng_state f32 2 2"))
    put("h5_attributes", "probe-checkpoint-nan", ckpt("data prompt f32 2 4 = nan"))
    put("h5_attributes", "probe-checkpoint-huge-shape", ckpt("data prompt f32 4096 16 = 1"))
    put("h5_attributes", "probe-model-types", model(
        "attr / vocab_size int 9223372036854775807", "attr / family int 1", "del tokenizer/tokens",
        "data final_norm/weight f32 8 = inf", "strs tokenizer/tokens a|b"))


if __name__ == "__main__":
    config_seeds()
    data_seeds()
    tokenizer_seeds()
    gguf_model_seeds()
    safetensors_seeds()
    npy_seeds()
    peft_seeds()
    infer_seeds()
    h5_seeds()
