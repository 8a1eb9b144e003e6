#!/usr/bin/env bash
# README command two: set up and run every test.
#
#   bash tools/run_tests.sh [extra ctest arguments, e.g. -R Config]
#
# Installs the system packages and the Python packages the tests use, builds
# everything (the CUDA back end too when the toolkit is present: it must
# compile and link; its tests skip without a GPU), fetches the SmolLM2 model
# for the tokenizer and logit golden tests, and runs ctest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

echo "== system packages"
# With slurm-wlm and munge: the Slurm tests (tests/cluster) start their own
# daemons, and with SPTRAIN_REQUIRE_SLURM they fail rather than skip without them.
SPTRAIN_WITH_SLURM=1 bash tools/install_deps.sh
export SPTRAIN_REQUIRE_SLURM=1

echo "== Python packages for the tests (venv .venv-tests)"
if [[ ! -x .venv-tests/bin/python ]]; then
  python3 -m venv .venv-tests
fi
.venv-tests/bin/python -m pip install --quiet --disable-pip-version-check \
  -r tools/requirements-tests.txt
export SPTRAIN_PYTHON="$ROOT/.venv-tests/bin/python"

echo "== build (Release, all back ends found) in build/"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPTRAIN_PYTHON="$SPTRAIN_PYTHON" > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j "$(nproc)" >> build.log 2>&1 || { grep -E "error|FAILED" -A3 build.log | head -60; exit 1; }

echo "== model for the golden tests"
SPTRAIN="$ROOT/build/bin/sptrain" bash tools/fetch_smollm2.sh models

echo "== ctest"
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
