#include "sptrain/backend/cpu/blas_kernel.hpp"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sptrain/core/error.hpp"

// From OpenBLAS; declared here (only) so that nothing depends on cblas.h for them.
extern "C" {
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace sptrain {

const char* blas_kernel_name() { return openblas_get_corename(); }

const char* blas_config() { return openblas_get_config(); }

std::string blas_description() { return str(blas_config(), " kernel ", blas_kernel_name()); }

namespace {

// The kernel to ask for, or nullptr to keep OpenBLAS's choice.
const char* better_blas_kernel() {
  std::string core = blas_kernel_name();
  for (char& c : core) c = char(std::tolower(static_cast<unsigned char>(c)));
  // Only OpenBLAS's generic fallbacks are replaced; a kernel it chose knowingly stays.
  if (core != "prescott" && core != "katmai" && core != "coppermine" && core != "northwood" &&
      core != "core2" && core != "penryn" && core != "dunnington" && core != "nehalem" &&
      core != "unknown")
    return nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

}  // namespace

void ensure_runtime_environment(char** argv) {
  if (std::getenv("SPTRAIN_ENVIRONMENT_SET") != nullptr) return;  // after our own exec
  bool change = false;
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    if (const char* kernel = better_blas_kernel()) {
      setenv("OPENBLAS_CORETYPE", kernel, 1);
      change = true;
    }
  }
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("GOMP_SPINCOUNT") == nullptr) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    change = true;
  }
  if (!change) return;
  setenv("SPTRAIN_ENVIRONMENT_SET", "1", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "sptrain: warning: could not restart with OPENBLAS_CORETYPE/OMP_WAIT_POLICY "
                       "set; the CPU back end may run slowly\n");
}

}  // namespace sptrain
