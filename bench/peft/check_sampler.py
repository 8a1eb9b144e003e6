#!/usr/bin/env python3
"""Checks the Python port of sptrain's sampler (sptrain_sampler.py) against a
batches file that sptrain itself wrote:

  build/bin/sptrain bench configs/smollm2_sst2.yaml --batches-out /tmp/b.jsonl ...
  python3 bench/peft/check_sampler.py /tmp/b.jsonl --size 6920 --seed 1234

Exit status 0 when every batch is the same, 1 (naming the first difference)
otherwise. Plain Python: no packages needed. cpu_race.sh runs it on every race.
"""

import argparse
import json
import sys

import sptrain_sampler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("batches", help="JSONL from `sptrain bench --batches-out`")
    ap.add_argument("--size", type=int, required=True, help="examples in the training set")
    ap.add_argument("--seed", type=int, default=1234, help="train.seed of the config")
    ap.add_argument("--no-shuffle", action="store_true", help="train.shuffle: false")
    args = ap.parse_args()

    with open(args.batches) as f:
        lines = [json.loads(ln) for ln in f if ln.strip()]
    if not lines:
        print(f"check_sampler: {args.batches} has no batches", file=sys.stderr)
        return 1
    batch_size = len(lines[0]["examples"])
    ported = sptrain_sampler.batches(args.size, args.seed, batch_size, len(lines), not args.no_shuffle)
    for got, want in zip(lines, ported):
        if got["step"] != want["step"] or got["examples"] != want["examples"]:
            print(f"check_sampler: step {got['step']}: sptrain wrote {got['examples']}, "
                  f"the port gives {want['examples']} (step {want['step']})", file=sys.stderr)
            return 1
    print(f"check_sampler: {len(lines)} batches of {batch_size} agree with the port", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
