#!/usr/bin/env bash
# README command two: set up and run every test.
#
#   bash tools/run_tests.sh [extra ctest arguments, e.g. -R Config]
#
# Installs the system packages and the Python packages the tests use, builds
# everything (the CUDA back end too when the toolkit is present: it must
# compile and link; its tests skip without a GPU), fetches the SmolLM2 model
# for the tokenizer and logit golden tests, and runs ctest. Then the whole suite
# again built with ASan + UBSan (build-asan/), and every fuzz harness for 15 s
# (tools/fuzz.sh); docs/security.md says why.
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
(cd build && ctest --output-on-failure -j "$(nproc)" "$@")

# The same suite built with AddressSanitizer + UndefinedBehaviorSanitizer, then
# every fuzz harness for a short while (docs/security.md). SPTRAIN_TESTS_SANITIZE=0
# skips both (for a quick local run; CI never sets it).
if [[ "${SPTRAIN_TESTS_SANITIZE:-1}" != 0 ]]; then
  echo "== build with ASan + UBSan in build-asan/"
  mkdir -p build-asan
  # -O1: a shorter build than -O3 on CI's two cores and still quick to run;
  # the layer check is the same as in build/ and is not repeated.
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
    -DSPTRAIN_CUDA=OFF -DSPTRAIN_CHECK_LAYERS=OFF -DSPTRAIN_SANITIZE=address,undefined \
    -DSPTRAIN_PYTHON="$SPTRAIN_PYTHON" > build-asan/build.log 2>&1 ||
    { cat build-asan/build.log; exit 1; }
  cmake --build build-asan -j "$(nproc)" >> build-asan/build.log 2>&1 ||
    { grep -E "error|FAILED" -A3 build-asan/build.log | head -60; exit 1; }

  echo "== ctest under ASan + UBSan"
  # No leak check here: every sptrain process starts MPI, and Open MPI leaks
  # from plugins it has unloaded by exit, so LeakSanitizer cannot even name them
  # (no suppression can match). Leaks of the readers are checked by the fuzz
  # harnesses below, which never start MPI. The 64-rank headline test (~3 min
  # alone in build/) is left out: it runs the code of the smaller layouts,
  # which run here, with 64 sanitized processes on two cores.
  (cd build-asan &&
   ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
   ctest --output-on-failure -j "$(nproc)" -E '^dist_headline_np64$' "$@")

  echo "== fuzz every harness for ${SPTRAIN_FUZZ_SECONDS:-15} s"
  bash tools/fuzz.sh "${SPTRAIN_FUZZ_SECONDS:-15}"
fi
