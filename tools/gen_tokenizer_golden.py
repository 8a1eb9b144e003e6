#!/usr/bin/env python3
"""Reference token ids for SmolLM2's tokenizer, from Hugging Face `tokenizers`.

Writes tests/golden/tokenizer_smollm2.jsonl: one JSON object per line,
{"text": ..., "ids": [...]}, for every SST-2 dev sentence (data/sst2/dev.tsv,
first column) and a list of hard strings (Unicode, whitespace runs, numbers,
contractions, special tokens). tests/tokenizer/ checks that sptrain's tokenizer,
loaded from the same GGUF, gives exactly these ids.

The reference is built with `tokenizers` from the GGUF's own vocabulary and
merges, and the pre-tokenizer of SmolLM2's tokenizer.json: Digits (each digit
alone) then ByteLevel (GPT-2's regex), no normalizer, no BOS; the GGUF's
control tokens are special tokens. Nothing of sptrain's code is used.

Run (from the repository root, after tools/fetch_smollm2.sh):
    python3 -m venv .venv-tools
    .venv-tools/bin/pip install tokenizers gguf
    .venv-tools/bin/python tools/gen_tokenizer_golden.py [GGUF] [OUT]
"""
import json
import os
import sys

from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests", "golden", "tokenizer_smollm2.jsonl")

HARD_STRINGS = [
    "",
    " ",
    "hello world",
    " hello world",
    "Hello World!",
    "HELLO WORLD",
    "   leading spaces",
    "trailing spaces   ",
    "multiple     spaces   between words",
    "tabs\tand\t\ttabs",
    "new\nline",
    "two\n\nnewlines and a\r\nwindows line",
    "\n\n\n",
    " \t \n mixed whitespace \t\n ",
    "numbers 12345 and 3.14159 and 1,000,000 and 007",
    "a2b3c4 x10 10x",
    "I'm can't won't we'll they've she'd it's you're",
    "I'M CAN'T WE'LL THEY'VE",
    "don 't wo n't it 's",
    "'s 't 're 've 'm 'll 'd",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe",
    "cafe\u0301 (combining accent)",
    "\u4f60\u597d\uff0c\u4e16\u754c\u3002\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0939\u093f\u0928\u094d\u0926\u0940 \u0440\u0443\u0441\u0441\u043a\u0438\u0439 \u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "emoji \U0001F600\U0001F44D\U0001F3FD \U0001F1EB\U0001F1F7 \U0001F468\u200D\U0001F469\u200D\U0001F467",
    "symbols \u20ac100 \u00a3 \u00a5 \u00a9 \u00ae \u2122 \u2211 \u221e \u2192 \u2022",
    "nbsp\u00a0here and\u2003em space and\u3000ideographic",
    "next line\u0085control",
    "zero\u200bwidth",
    "long s \u017f and kelvin \u212a and i\u0307",
    "superscript \u00b2 fraction \u00bd roman \u2165 arabic-indic \u0663",
    "punctuation!!! ??? ... --- ;;; ((brackets)) [[x]] {y}",
    "email@example.com https://example.com/path?q=1&r=2#frag",
    "code: def f(x):\n    return x**2  # comment",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_end|><|endoftext|>",
    "before<|endoftext|>after",
    "almost special <|im_start and <im_end|> and <|im_end|>>",
    " <|im_start|> spaced <|im_end|> ",
    "Review: a gorgeous, witty, seductive movie.\nSentiment: positive",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "                                                                ",
    "==================================================",
]


def reference_tokenizer(path):
    r = GGUFReader(path)

    def field(key):
        return r.fields[key]

    def strings(key):
        f = field(key)
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    pre = bytes(field("tokenizer.ggml.pre").parts[-1]).decode()
    if pre != "smollm":
        sys.exit(f"{path}: tokenizer.ggml.pre is {pre!r}; this script builds SmolLM2's pre-tokenizer")
    tokens = strings("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ")) for m in strings("tokenizer.ggml.merges")]
    tt = field("tokenizer.ggml.token_type")
    types = [int(tt.parts[i][0]) for i in tt.data]

    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    for t in specials:
        assert tok.token_to_id(t.content) == vocab[t.content]
    return tok


def main():
    tok = reference_tokenizer(GGUF)
    texts = []
    with open(os.path.join(ROOT, "data", "sst2", "dev.tsv"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                texts.append(line.split("\t")[0])
    texts += HARD_STRINGS
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as out:
        for t in texts:
            ids = tok.encode(t, add_special_tokens=False).ids
            out.write(json.dumps({"text": t, "ids": ids}, ensure_ascii=True, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}: {len(texts)} texts ({len(HARD_STRINGS)} hard strings)")


if __name__ == "__main__":
    main()
