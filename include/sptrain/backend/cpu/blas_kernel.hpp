#pragma once
// Two settings of the CPU libraries are read when they load, before main
// runs, so sptrain re-executes itself once to set them when the user has not:
//
// - OPENBLAS_CORETYPE. Debian's OpenBLAS 0.3.21 does not know recent Xeons
//   and falls back to its "Prescott" (SSE3) kernel, about 20x slower than its
//   AVX-512 "SkylakeX" kernel on the same machine. sptrain picks SkylakeX
//   (AVX-512) or Haswell (AVX2) when OpenBLAS chose a generic fallback.
// - OMP_WAIT_POLICY=passive. libgomp's threads otherwise spin between
//   parallel regions; on cores shared with other processes (CI, a laptop)
//   that made steps 10-20x slower. Passive waiting costs a few microseconds
//   per region on an idle machine (docs/performance.md).
//
// Setting either variable yourself (any value) leaves it alone.
#include <string>

namespace sptrain {

// Call first thing in main, before MPI or threads start. Returns when nothing
// needs changing (or re-execution failed, with a warning).
void ensure_runtime_environment(char** argv);

// The OpenBLAS kernel chosen at load time, e.g. "SkylakeX".
const char* blas_kernel_name();

// OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY ...".
const char* blas_config();

// Both: blas_config() + " kernel " + blas_kernel_name().
std::string blas_description();

}  // namespace sptrain
