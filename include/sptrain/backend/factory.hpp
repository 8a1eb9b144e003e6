#pragma once
// Builds the back end a run asks for on this rank.
#include <memory>
#include <string>

#include "sptrain/backend/backend.hpp"

namespace sptrain {

struct BackendOptions {
  std::string kind = "cpu";  // cpu | cuda
  int threads = 0;           // cpu: threads, 0 = usable_cpus(node_ranks)
  int node_rank = 0;         // this rank's index among the job's ranks on its node
  int node_ranks = 1;        // the job's ranks on this node
  int world_rank = 0;        // labels error messages
};

// backend cpu: `threads` threads; cuda: GPU node_rank mod the visible
// devices, and a clear error naming the rank where no GPU is visible or
// CUDA was not built.
std::unique_ptr<Backend> make_backend(const BackendOptions& options);

// The CPUs this process may use, for `threads: 0`: SLURM_CPUS_PER_TASK when
// Slurm sets it (at most the affinity mask), else its affinity mask
// (sched_getaffinity: taskset, mpirun --bind-to, Slurm's task/affinity); a
// mask of every online CPU (not bound) is shared among the node's node_ranks.
int usable_cpus(int node_ranks);

// Back ends compiled into this binary, e.g. "cpu, cuda".
const char* compiled_backends();

}  // namespace sptrain
