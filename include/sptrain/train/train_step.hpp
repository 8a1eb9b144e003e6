#pragma once
// One training step, the only one: the trainer, `sptrain bench` and every
// test run this function. It packs this replica's share of the global batch
// into micro-batches, runs the pipeline schedule's forward and backward
// passes, all-reduces the prompt's gradient over the replicas, clips it,
// skips the update when the gradient is not finite, and updates the prompt.
#include <cstdint>
#include <vector>

#include "sptrain/comm/communicator.hpp"
#include "sptrain/optim/optimizer.hpp"
#include "sptrain/train/session.hpp"

namespace sptrain {

// Seconds of one step on this rank.
struct StepTimes {
  double forward = 0;    // this stage's forward passes (tensor all-reduces inside them included)
  double backward = 0;   // this stage's backward passes (same)
  double pipeline = 0;   // sending and waiting for pipeline messages
  double optimizer = 0;  // data all-reduce, clipping and the update
  double total = 0;
  PerKind<double> comm;  // inside the calls of each kind of group (a part of the above)
};

struct StepResult {
  // The whole job's, the same on every rank.
  double loss = 0;            // mean cross-entropy over the global batch's target tokens
  double accuracy = 0;        // share of the global batch predicted right (classify)
  int64_t targets = 0;        // target tokens of the global batch (its examples: classify)
  int64_t text_rows = 0;      // text rows computed (one per token)
  int64_t prompt_rows = 0;    // prompt rows computed (once per micro-batch)
  double grad_norm = 0;       // the prompt gradient's norm before clipping
  bool skipped = false;       // the gradient was not finite: no update
  bool stop_requested = false;  // some rank passed stop_requested = true
  PerKind<uint64_t> job_bytes;  // sent by all ranks together, by kind
  // This rank's.
  StepTimes times;
  PerKind<uint64_t> bytes;    // sent, by kind of group
  double flops = 0;           // forward + backward work (docs/performance.md)
};

// The step. global_batch: the step's example indices into s.data.train (the
// same on every rank); lr: this step's learning rate. stop_requested is OR-ed
// over the job into the result, with the step's other figures in one message.
StepResult train_step(Session& s, Optimizer& optimizer, const std::vector<int64_t>& global_batch,
                      double lr, bool stop_requested = false);

// Bytes one rank sends in one training step, by kind, from the formulas
// beside each call: tensor_parallel::bytes_per_micro_batch,
// pipeline_bytes_per_micro_batch and data_parallel_bytes_per_step.
struct StepShape {
  StageSpec stage;
  GridLayout layout;
  int64_t d_model = 0;
  int prompt_len = 0;
  bool vocab_loss = false;
  int64_t act_bytes = 4, stat_bytes = 4;
  PromptMethod method = PromptMethod::PromptTuning;
  int kv_heads = 0;        // this tensor rank's key/value heads
  int model_kv_heads = 0;  // the model's
  int head_dim = 0;
  int64_t trunk_elems = 0;  // deep + mlp: the trunk's gradient, P x h
};
// One of this rank's micro-batches: its rows and target rows (MicroBatch::targets).
struct MicroBatchSize {
  int64_t rows = 0, targets = 0;
};
// Data parallel: what the model read of the prompt on this rank, its
// gradient once per step: the input rows [P, d] on the first stage, or a deep
// prompt's keys and values of this rank's layers and kv heads.
uint64_t data_parallel_bytes_per_step(const StepShape& shape);
// Pipeline parallel, prefix tuning's MLP: the trunk's gradient, summed over the stages.
uint64_t prompt_pipeline_bytes_per_step(const StepShape& shape);
PerKind<uint64_t> step_bytes(const StepShape& shape, const std::vector<MicroBatchSize>& micro_batches);
// The shape of the session's steps on this rank.
StepShape step_shape(const Session& s);
// The prompt's part of a StepShape (length, method, kv heads of a tensor
// rank, the trunk's gradient), for step_shape and the planner alike.
void set_prompt_shape(StepShape& shape, const PromptSection& prompt, const ModelConfig& model, int kv_heads);

}  // namespace sptrain
