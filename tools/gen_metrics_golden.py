#!/usr/bin/env python3
"""Reference BLEU, ROUGE-L and tokens from sacreBLEU and rouge-score.

Writes tests/golden/text_metrics.json, which tests/metrics/ checks sptrain's
C++ metrics (src/metrics/text_metrics.cpp) against:
- "bleu_tokens": sacreBLEU's 13a tokenization of hard strings (punctuation,
  numbers, Unicode, HTML entities, whitespace);
- "rouge_tokens": rouge-score's default tokenizer (no stemming) of the same;
- "corpora": sets of hypotheses, each with one or more references (a
  different number per hypothesis, as the E2E data has), with sacreBLEU's
  corpus BLEU (default settings: 13a, case kept, exp smoothing), its
  statistics, and rouge-score's ROUGE-L F-measure of each hypothesis against
  its best reference (score_multi); one corpus is 120 E2E dev inputs with all
  their references and, as hypotheses, a reference of a neighbouring input.

Nothing of sptrain's code is used. Run (from the repository root):
    python3 -m venv .venv-metrics
    .venv-metrics/bin/pip install -r tools/requirements-metrics.txt
    .venv-metrics/bin/python tools/gen_metrics_golden.py [OUT]
"""
import json
import os
import sys

import sacrebleu
from rouge_score import rouge_scorer, tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "golden", "text_metrics.json")

HARD_STRINGS = [
    "",
    "   ",
    "The Eagle is a coffee shop near Burger King.",
    "It costs £20-25, rated 3 out of 5.",
    "Prices: 1,000.50 or 3.5 and x.y, a,b; done.",
    "It's a 5-star place (cheap) [no] {yes} <b> a/b a\\b a|b ~ ^ ` @ ? ! # $ % & * + = :",
    "e.g. U.S.A., Mr. Smith's 2-3 ok-ish 10-",
    "&quot;quoted&quot; &amp; &lt;tag&gt; & plain",
    "a <skipped> b",
    "line one-\nline two\nthree",
    "Café Rouge serves Français food in İstanbul, 5 K and a \u212a.",
    "non\u00a0breaking\u2009thin\u3000ideographic  spaces\t tabs",
    "ends with a space and period . ",
    "UPPER lower MiXeD 123abc",
    "Ünïcödé — dashes – and … ellipsis «quotes» “curly” ‘single’",
    "..,,--..",
    "9.9.9,9,9-9-",
]


def e2e_corpus(n_inputs):
    """The first n distinct inputs of data/e2e/dev.tsv with all their references."""
    refs, order = {}, []
    with open(os.path.join(ROOT, "data", "e2e", "dev.tsv"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            mr, text = line.rsplit("\t", 1)
            if mr not in refs:
                if len(order) == n_inputs:
                    continue
                refs[mr] = []
                order.append(mr)
            refs[mr].append(text)
    references = [refs[m] for m in order]
    # Hypotheses: a reference of the next input (similar, never identical) and,
    # every seventh, the input's own first reference (an exact match).
    hyps = []
    for i in range(len(order)):
        hyps.append(references[i][0] if i % 7 == 0 else references[(i + 1) % len(order)][-1])
    return {"name": f"e2e_dev_{n_inputs}", "hypotheses": hyps, "references": references}


CORPORA = [
    {
        "name": "one_reference",
        "hypotheses": ["the cat sat on the mat", "a quick brown fox jumps"],
        "references": [["the cat is sitting on the mat"], ["the quick brown fox jumped over"]],
    },
    {
        "name": "several_references_varying",
        "hypotheses": [
            "Blue Spice is a coffee shop in the city centre.",
            "There is a pub called The Eagle near Burger King, it is family friendly.",
            "Alimentum serves cheap food.",
        ],
        "references": [
            ["A coffee shop in the city centre area called Blue Spice.", "Blue Spice is a coffee shop in city centre."],
            ["The Eagle is a family-friendly pub near Burger King.", "Near Burger King, there is a family friendly pub called The Eagle.",
             "The Eagle pub, near Burger King, welcomes families."],
            ["Alimentum has cheap food."],
        ],
    },
    {
        "name": "no_four_gram_matches",
        "hypotheses": ["red green blue", "one two"],
        "references": [["red green yellow blue"], ["one three two"]],
    },
    {
        "name": "longer_than_references",
        "hypotheses": ["the the the the the the the the the the the the"],
        "references": [["the cat", "the dog is here"]],
    },
    {
        "name": "empty_hypothesis",
        "hypotheses": ["", "a b c d e"],
        "references": [["something here"], ["a b c d e"]],
    },
    {
        "name": "no_matches",
        "hypotheses": ["xyz"],
        "references": [["abc def"]],
    },
    {
        "name": "hard_strings",
        "hypotheses": HARD_STRINGS[2:],
        "references": [[s, s.upper(), s[: len(s) // 2]] for s in reversed(HARD_STRINGS[2:])],
    },
    e2e_corpus(120),
]


def main():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    bleu = sacrebleu.BLEU()
    out = {
        "versions": {"sacrebleu": sacrebleu.__version__, "rouge_score": "0.1.2"},
        "bleu_tokens": [{"text": s, "tokens": bleu.tokenizer(s.rstrip()).split()} for s in HARD_STRINGS],
        "rouge_tokens": [{"text": s, "tokens": tokenize.tokenize(s, None)} for s in HARD_STRINGS],
        "corpora": [],
    }
    for c in CORPORA:
        hyps, refs = c["hypotheses"], c["references"]
        most = max(len(r) for r in refs)
        # sacreBLEU takes reference streams; None pads a hypothesis with fewer references.
        streams = [[r[k] if k < len(r) else None for r in refs] for k in range(most)]
        score = bleu.corpus_score(hyps, streams)
        rouge = [scorer.score_multi(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)]
        out["corpora"].append({
            "name": c["name"],
            "hypotheses": hyps,
            "references": refs,
            "bleu": score.score,
            "sys_len": score.sys_len,
            "ref_len": score.ref_len,
            "counts": list(score.counts),
            "totals": list(score.totals),
            "rouge_l": rouge,
        })
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(HARD_STRINGS)} strings, {len(CORPORA)} corpora", file=sys.stderr)


if __name__ == "__main__":
    main()
