#!/usr/bin/env bash
# Runs the GPU test suite (tests/backend_cuda) on the CPU: the CUDA back end's
# kernels, rewritten by transform.py, execute on emulated blocks of real
# threads (emu.hpp, emu.cpp) and cuBLASLt is a plain column-major GEMM. It
# checks index math, barriers, reductions, layouts and error paths where no
# GPU is available; it says nothing about speed, and passing here does not
# replace a run on a GPU (bench/gpu_suite.sh). Slow: blocks run one at a time.
# The same binary runs NcclGroup against a fake one-rank NCCL (fake_nccl.cpp,
# test_nccl_enqueued.cpp: 'NcclEnqueued*').
#
#   tests/backend_cuda/emu/run_emulated.sh                   # everything
#   tests/backend_cuda/emu/run_emulated.sh 'CudaOps.Attention*'
#   EMU_ASAN=1 tests/backend_cuda/emu/run_emulated.sh        # with AddressSanitizer
# Environment: BUILD_DIR (default build-cuda-emu[-asan] in the repo), JOBS.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
jobs=${JOBS:-2}
filter=${1:-*}
if [[ "${EMU_ASAN:-0}" == 1 ]]; then
  asan=ON
  build=${BUILD_DIR:-$repo/build-cuda-emu-asan}
  # The emulator keeps 256 worker threads alive; LeakSanitizer would only report them.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
else
  asan=OFF
  build=${BUILD_DIR:-$repo/build-cuda-emu}
fi

cuda_root=$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
cmake -G Ninja -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCUDAToolkit_ROOT="$cuda_root" -DEMU_ASAN=$asan >/dev/null
cmake --build "$build" --target test_backend_cuda_emulated -j "$jobs"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
exec "$build/test_backend_cuda_emulated" --gtest_filter="$filter"
