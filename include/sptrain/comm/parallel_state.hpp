#pragma once
// The one owner of this rank's process groups (Megatron-core's parallel_state):
// the process grid's host groups (MPI: control messages, and the CPU back
// end's tensors) and, with the CUDA back end, NCCL groups over the same ranks
// for device tensors. Model code asks it for the group its tensors travel
// through; nothing else builds or picks groups.
#include <memory>

#include "sptrain/backend/backend.hpp"
#include "sptrain/comm/process_grid.hpp"

namespace sptrain {

struct CommOptions {
  // Operations that have not finished after this long are taken as hung: the
  // job ends with the rank and the operation named (MPI: the grid's
  // MpiWatchdog, which also names the ranks that do not respond; NCCL: the
  // group's own deadline).
  double timeout_s = 300.0;
};

class ParallelState {
 public:
  // Takes over the grid. With a CUDA back end, builds one NCCL group per kind
  // over the grid's ranks on the back end's device and stream (collective over
  // the world, like make_process_grid).
  ParallelState(ProcessGrid grid, Backend& backend, const CommOptions& options = {});
  ~ParallelState();
  ParallelState(const ParallelState&) = delete;
  ParallelState& operator=(const ParallelState&) = delete;

  const GridLayout& layout() const { return grid_.layout; }
  const GridCoords& coords() const { return grid_.coords; }
  int world_rank() const { return grid_.world_rank; }
  int world_size() const { return grid_.world_size(); }
  bool first_stage() const { return grid_.coords.pp == 0; }
  bool last_stage() const { return grid_.coords.pp == grid_.layout.pipeline - 1; }

  // The groups the back end's tensors travel through, by kind.
  Group& tensor() const { return *tensor_; }
  Group& pipeline() const { return *pipeline_; }
  Group& data() const { return *data_; }
  // The host grid: control messages (train/control.hpp) and MPI communicators.
  const ProcessGrid& host() const { return grid_; }
  // Bytes and seconds of every group of this rank, by kind.
  ByteCounter& bytes() const { return *grid_.bytes; }

 private:
  ProcessGrid grid_;
  std::unique_ptr<Group> device_tensor_, device_pipeline_, device_data_;  // CUDA only
  Group* tensor_ = nullptr;
  Group* pipeline_ = nullptr;
  Group* data_ = nullptr;
};

}  // namespace sptrain
