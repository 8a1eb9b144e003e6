#include "sptrain/backend/factory.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "sptrain/backend/cpu/cpu_backend.hpp"
#ifdef SPTRAIN_WITH_CUDA
#include "sptrain/backend/cuda/cuda_backend.hpp"
#endif

namespace sptrain {

const char* compiled_backends() {
#ifdef SPTRAIN_WITH_CUDA
  return "cpu, cuda";
#else
  return "cpu";
#endif
}

int usable_cpus(int node_ranks) {
  const int online = int(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  const int mask = sched_getaffinity(0, sizeof set, &set) == 0 ? std::max(1, CPU_COUNT(&set)) : online;
  const char* slurm = std::getenv("SLURM_CPUS_PER_TASK");
  if (slurm && std::atoi(slurm) > 0) return std::min(mask, std::atoi(slurm));
  if (mask < online) return mask;  // bound to CPUs of its own (taskset, mpirun --bind-to)
  return std::max(1, mask / std::max(1, node_ranks));
}

std::unique_ptr<Backend> make_backend(const BackendOptions& o) {
  if (o.kind == "cpu") return std::make_unique<CpuBackend>(o.threads > 0 ? o.threads : usable_cpus(o.node_ranks));
  if (o.kind == "cuda") {
#ifdef SPTRAIN_WITH_CUDA
    return make_cuda_backend(o.node_rank, o.world_rank);
#else
    fail("rank ", o.world_rank, ": backend: cuda, but this sptrain was built without the CUDA "
         "back end (configure with the CUDA toolkit present, or -DSPTRAIN_CUDA=ON)");
#endif
  }
  fail("backend: unknown back end '", o.kind, "' (cpu or cuda)");
}

}  // namespace sptrain
