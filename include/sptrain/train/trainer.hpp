#pragma once
// The training loop: global batches from the sampler, forward and backward
// through the pipeline, the prompt's gradient averaged over replicas,
// clipping, the learning-rate schedule, the optimizer; evaluations,
// metrics.jsonl, a progress line, checkpoints, and resuming from them.
#include <memory>

#include "sptrain/comm/process_grid.hpp"
#include "sptrain/config/config.hpp"
#include "sptrain/train/evaluate.hpp"

namespace sptrain {

struct TrainSummary {
  int64_t steps_done = 0;
  double final_loss = 0;
  EvalResult final_eval;
  bool stopped_by_signal = false;
};

// Takes over the grid (the session's ParallelState owns it).
TrainSummary train(const Config& config, ProcessGrid grid);

// Ask a running train() to checkpoint at the end of the current step and
// return (SIGUSR1/SIGTERM handlers call this; all ranks agree before acting).
void request_stop();

}  // namespace sptrain
