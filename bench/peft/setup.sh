#!/usr/bin/env bash
# Makes the Python environment for the PyTorch + PEFT benchmark:
# .venv-bench/ at the repository root (git-ignored), with the pinned packages
# of bench/peft/requirements.txt. Idempotent: a second run with the same
# requirements does nothing; a changed requirements file reinstalls.
#
#   bench/peft/setup.sh            # then: .venv-bench/bin/python bench/peft/peft_bench.py ...
#
# Slow the first time: PyPI's torch is the CUDA build and pulls ~3 GB of
# nvidia-* wheels (~4-5 GB installed). Not part of the unit tests.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv="$repo/.venv-bench"
req="$repo/bench/peft/requirements.txt"
stamp="$venv/.requirements.sha256"
python=${PYTHON:-python3}

want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "setup: $venv is up to date" >&2
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup: creating $venv" >&2
  "$python" -m venv "$venv"
fi
echo "setup: installing $req (large download the first time)" >&2
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$req"
# Fail here, not in the middle of a benchmark, if the install is unusable.
"$venv/bin/python" -c "import torch, transformers, peft, gguf, numpy; print('setup: torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__)" >&2
echo "$want" > "$stamp"
