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
  // A stop request (comm/stop_signals.hpp: USR1, SIGTERM) ended the run
  // before its last step, after the checkpoint of the step it stopped at.
  bool stopped_by_signal = false;
  std::string resumed_from;       // the checkpoint the run started from, if any
  bool already_complete = false;  // it was at train.steps or beyond: nothing done
};

// Takes over the grid (the session's ParallelState owns it). Stops at the end
// of a step when stop_requested() (comm/stop_signals.hpp), all ranks agreeing
// on the step, after writing its checkpoint.
TrainSummary train(const Config& config, ProcessGrid grid);

}  // namespace sptrain
