#!/usr/bin/env bash
# Builds sptrain with the CUDA back end and runs the whole GPU test suite
# (tests/backend_cuda), then prints one line per test: name, result, time.
# Exit status: 0 when every test passed (or skipped), 1 otherwise.
#
#   bench/gpu_suite.sh                 # build in build-gpu/, run everything
#   BUILD_DIR=build-x bench/gpu_suite.sh
#   GTEST_FILTER='CudaOps.*' bench/gpu_suite.sh
#   SPTRAIN_TEST_SEED=1234 bench/gpu_suite.sh   # replay a printed seed
#
# Environment (all optional):
#   BUILD_DIR             build folder (default build-gpu, relative to the repo)
#   CUDA_ARCHS            CMAKE_CUDA_ARCHITECTURES (default: the project's 80;90)
#   SPTRAIN_DEPS_PREFIX   a prefix holding the libraries sptrain needs (HDF5,
#                         Open MPI, yaml-cpp, OpenBLAS, GoogleTest, ...) where
#                         they are not installed system-wide: it is added to
#                         CMAKE_PREFIX_PATH, PATH and LD_LIBRARY_PATH
#   JOBS                  build parallelism (default: all cores)
#   SPTRAIN_CUDA_SYNC=1   synchronise after every kernel launch, so that a fault
#                         is reported by the kernel that caused it (slower)
# cuBLASLt and NCCL are taken from the CUDA toolkit, or else from the NVIDIA
# pip packages (nvidia-cublas, nvidia-nccl-*) of the python3 on PATH.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-build-gpu}
[[ "$build" = /* ]] || build="$repo/$build"
jobs=${JOBS:-$(nproc)}
log="$build/gpu_suite.log"

say() { echo "gpu_suite: $*" >&2; }

if [[ -n "${SPTRAIN_DEPS_PREFIX:-}" ]]; then
  export CMAKE_PREFIX_PATH="$SPTRAIN_DEPS_PREFIX${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export PATH="$SPTRAIN_DEPS_PREFIX/bin:$PATH"
  for d in "$SPTRAIN_DEPS_PREFIX/lib" "$SPTRAIN_DEPS_PREFIX/lib/x86_64-linux-gnu"; do
    [[ -d "$d" ]] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
fi

cmake_args=(-G Ninja -S "$repo" -B "$build" -DSPTRAIN_CUDA=ON -DCMAKE_BUILD_TYPE=Release)
[[ -n "${CUDA_ARCHS:-}" ]] && cmake_args+=("-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS")
if [[ -z "${CUDACXX:-}" ]] && ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

# cuBLASLt / NCCL from pip packages when the toolkit does not ship them.
cuda_root=$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
find_in_pip() {  # pattern: prints the first match under the pip nvidia/ folders
  command -v python3 >/dev/null || return 0
  python3 - "$1" <<'EOF' 2>/dev/null || true
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    hits = sorted(glob.glob(os.path.join(r, "nvidia", "**", sys.argv[1]), recursive=True))
    if hits:
        print(hits[0]); break
EOF
}
if ! ls "$cuda_root"/lib64/libcublasLt.so* "$cuda_root"/targets/*/lib/libcublasLt.so* >/dev/null 2>&1; then
  lt=$(find_in_pip 'libcublasLt.so*')
  if [[ -n "$lt" ]]; then
    say "cuBLASLt from pip: $lt"
    cmake_args+=("-DCUDA_cublasLt_LIBRARY=$lt")
    export LD_LIBRARY_PATH="$(dirname "$lt")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi
if ! ls "$cuda_root"/include/nccl.h >/dev/null 2>&1 && [[ ! -f /usr/include/nccl.h ]]; then
  nccl_lib=$(find_in_pip 'libnccl.so*')
  nccl_h=$(find_in_pip 'nccl.h')
  if [[ -n "$nccl_lib" && -n "$nccl_h" ]]; then
    say "NCCL from pip: $nccl_lib"
    cmake_args+=("-DNCCL_LIBRARY=$nccl_lib" "-DNCCL_INCLUDE_DIR=$(dirname "$nccl_h")")
    export LD_LIBRARY_PATH="$(dirname "$nccl_lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi

command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu_suite: GPU: /' >&2 || true

mkdir -p "$build"
say "configuring $build"
cmake "${cmake_args[@]}" >"$build/gpu_suite.configure.log" 2>&1 ||
  { cat "$build/gpu_suite.configure.log"; exit 1; }
say "building test_backend_cuda ($jobs jobs)"
t0=$(date +%s)
cmake --build "$build" --target test_backend_cuda -j "$jobs" >"$build/gpu_suite.build.log" 2>&1 ||
  { tail -50 "$build/gpu_suite.build.log"; exit 1; }
say "built in $(( $(date +%s) - t0 )) s"

binary="$build/tests/backend_cuda/test_backend_cuda"
set +e
"$binary" --gtest_color=no ${GTEST_FILTER:+--gtest_filter="$GTEST_FILTER"} >"$log" 2>&1
status=$?
set -e

# One line per finished test: "[       OK ] Suite.Name (12 ms)", FAILED or SKIPPED.
echo
printf '%-74s %-8s %10s  %s\n' test result time seed
printf '%-74s %-8s %10s  %s\n' "----" "------" "----" "----"
awk '
  /^\[ RUN +\]/ { seed = "-" }
  /^\[   seed   \] / { seed = $4 }
  /^\[ +(OK|FAILED|SKIPPED) +\] .*\([0-9]+ ms\)$/ {
    result = $0; sub(/^\[ +/, "", result); sub(/ +\].*$/, "", result)
    name = $0; sub(/^\[[^]]*\] /, "", name)
    ms = name; sub(/^.*\(/, "", ms); sub(/ ms\)$/, "", ms)
    sub(/ \([0-9]+ ms\)$/, "", name); sub(/, where .*$/, "", name)
    printf "%-74s %-8s %9.3fs  %s\n", name, result, ms / 1000, seed
    count[result]++
  }
  END { printf "\n%d passed, %d failed, %d skipped\n", count["OK"], count["FAILED"], count["SKIPPED"] }
' "$log"
grep -m1 -o 'no usable CUDA device: .*' "$log" | sed 's/^/skipped because: /' || true
echo "(replay a test's random data with SPTRAIN_TEST_SEED=<seed> GTEST_FILTER=<test>)"
echo "full output: $log"
if [[ $status -ne 0 ]]; then
  echo
  grep -B2 -A12 -E 'Failure$|^unknown file: Failure|C\+\+ exception' "$log" | head -80
  echo
  echo "hint: a fault inside a kernel is reported by a later call; rerun with"
  echo "SPTRAIN_CUDA_SYNC=1 to synchronise after every launch and name the kernel"
  exit 1
fi
