#include "sptrain/backend/factory.hpp"

#include <mpi.h>

#include <algorithm>
#include <thread>

#include "sptrain/backend/cpu/cpu_backend.hpp"
#ifdef SPTRAIN_WITH_CUDA
#include "sptrain/backend/cuda/cuda_backend.hpp"
#endif

namespace sptrain {

int ranks_on_this_node() {
  int init = 0;
  MPI_Initialized(&init);
  if (!init) return 1;
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int n = 1;
  MPI_Comm_size(node, &n);
  MPI_Comm_free(&node);
  return n;
}

#ifdef SPTRAIN_WITH_CUDA
namespace {
// This rank's index among the ranks on its node: the GPU it uses.
int node_local_rank() {
  int init = 0;
  MPI_Initialized(&init);
  if (!init) return 0;
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}
}  // namespace
#endif

const char* compiled_backends() {
#ifdef SPTRAIN_WITH_CUDA
  return "cpu, cuda";
#else
  return "cpu";
#endif
}

std::unique_ptr<Backend> make_backend(const Config& config, int world_rank) {
  if (config.backend == "cpu") {
    int threads = config.threads;
    if (threads <= 0) {
      const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
      threads = std::max(1, cores / ranks_on_this_node());
    }
    return std::make_unique<CpuBackend>(threads);
  }
  if (config.backend == "cuda") {
#ifdef SPTRAIN_WITH_CUDA
    const int local = node_local_rank();
    return make_cuda_backend(local, world_rank);
#else
    fail("rank ", world_rank, ": backend: cuda, but this sptrain was built without the CUDA "
         "back end (configure with the CUDA toolkit present, or -DSPTRAIN_CUDA=ON)");
#endif
  }
  fail("backend: unknown back end '", config.backend, "' (cpu or cuda)");
}

}  // namespace sptrain
