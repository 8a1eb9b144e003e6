#include "sptrain/backend/factory.hpp"

#include <algorithm>
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

std::unique_ptr<Backend> make_backend(const BackendOptions& o) {
  if (o.kind == "cpu") {
    int threads = o.threads;
    if (threads <= 0) {
      const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
      threads = std::max(1, cores / std::max(1, o.node_ranks));
    }
    return std::make_unique<CpuBackend>(threads);
  }
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
