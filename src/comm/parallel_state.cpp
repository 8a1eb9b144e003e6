#include "sptrain/comm/parallel_state.hpp"

#ifdef SPTRAIN_WITH_CUDA
#include "sptrain/comm/nccl_group.hpp"
#endif

namespace sptrain {

ParallelState::ParallelState(ProcessGrid grid, Backend& backend, const CommOptions& options)
    : grid_(std::move(grid)), tensor_(grid_.tp.get()), pipeline_(grid_.pp.get()), data_(grid_.dp.get()) {
  if (grid_.watchdog) grid_.watchdog->set_timeout(options.timeout_s);
  if (backend.device() != Device::CUDA) return;
#ifdef SPTRAIN_WITH_CUDA
  NcclOptions nccl;
  nccl.timeout_s = options.timeout_s;
  DeviceGroups g = make_device_groups(grid_, backend.device_index(),
                                      static_cast<cudaStream_t>(backend.native_stream()), nccl);
  device_tensor_ = std::move(g.tp);
  device_pipeline_ = std::move(g.pp);
  device_data_ = std::move(g.dp);
  tensor_ = device_tensor_.get();
  pipeline_ = device_pipeline_.get();
  data_ = device_data_.get();
#else
  fail("a CUDA back end in a build without CUDA");
#endif
}

ParallelState::~ParallelState() = default;

}  // namespace sptrain
