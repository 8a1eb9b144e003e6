#!/usr/bin/env bash
# Installs every system package sptrain needs on a fresh Debian 12 machine.
# Idempotent: packages already present are left alone. Prints what it does and
# stops at the first failure.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  openmpi-bin libopenmpi-dev            # MPI back end of the communicator
  libhdf5-openmpi-dev hdf5-tools        # model and checkpoint files (h5dump for users)
  libyaml-cpp-dev                       # configuration
  nlohmann-json3-dev                    # metrics.jsonl, tokenizer.json, safetensors headers
  libcli11-dev                          # command line
  libopenblas-dev                       # CPU matrix products
  libgtest-dev libgmock-dev             # tests
  libpcre2-dev                          # tokenizer pre-tokenizer patterns (Unicode classes)
  python3 python3-venv python3-pip      # golden-file scripts and the PEFT comparison
  clang-19 libclang-rt-19-dev libomp-19-dev llvm-19  # libFuzzer harnesses (tools/fuzz.sh): clang 14 and 16
                                        # reject src/convert's lambdas under OpenMP; llvm-19: symbolizer
)
if [[ "${SPTRAIN_WITH_SLURM:-0}" == 1 ]]; then
  packages+=(slurm-wlm munge)           # the Slurm tests (tools/run_tests.sh sets SPTRAIN_WITH_SLURM=1)
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_deps: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install_deps: done"
