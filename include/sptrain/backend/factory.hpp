#pragma once
// Builds the back end a config asks for on this rank.
#include <memory>

#include "sptrain/backend/backend.hpp"
#include "sptrain/config/config.hpp"

namespace sptrain {

// backend: cpu uses `threads` threads (0 = the node's cores shared among its
// ranks); backend: cuda uses GPU (node-local rank mod device count) and is a
// clear error, naming the rank, where no GPU is visible or CUDA was not built.
std::unique_ptr<Backend> make_backend(const Config& config, int world_rank);

// Ranks of this job on this node (1 without MPI).
int ranks_on_this_node();

// Back ends compiled into this binary, e.g. "cpu, cuda".
const char* compiled_backends();

}  // namespace sptrain
