#pragma once
// Runs a schedule on one stage: the forward and backward passes of the
// step's micro-batches, with the activations and their gradients passed
// stage to stage over the pipeline group. A forward followed by a backward
// (and the reverse) exchange with their neighbour in one send_recv, as
// Megatron's 1F1B does, so no ordering of blocking calls can deadlock.
#include <vector>

#include "sptrain/comm/communicator.hpp"
#include "sptrain/model/stage.hpp"
#include "sptrain/pipeline/schedule.hpp"

namespace sptrain {

// Bytes this rank sends over the pipeline group for one micro-batch of
// `rows` rows in a training step (docs/parallelism.md, "Pipeline parallel"):
// its output to the next stage in the forward pass and its input gradient to
// the previous stage in the backward pass, rows x d_model each.
inline uint64_t pipeline_bytes_per_micro_batch(const StageSpec& stage, int64_t rows,
                                               int64_t d_model, int64_t act_bytes) {
  const int64_t sends = (stage.last() ? 0 : 1) + (stage.first() ? 0 : 1);
  return uint64_t(sends * rows * d_model * act_bytes);
}

// Bytes this rank sends over the pipeline group for one cached generation
// step of `rows` new rows and `seqs` sequences: its output to the next
// stage (rows x d_model), and the tokens the last stage chose (seqs i32,
// one broadcast, which counts its payload on every rank; none after a step
// whose logits are not read: tokens_chosen false).
inline uint64_t pipeline_bytes_per_cached_step(const StageSpec& stage, int64_t rows, int64_t seqs,
                                               bool tokens_chosen, int64_t d_model, int64_t act_bytes) {
  if (stage.count <= 1) return 0;
  return uint64_t((stage.last() ? 0 : rows * d_model * act_bytes) + (tokens_chosen ? seqs * 4 : 0));
}

class PipelineRunner {
 public:
  // Told, on the last stage, each micro-batch's loss and label scores right
  // after its forward pass (an interface, not std::function, so a training
  // step allocates nothing).
  struct OutputSink {
    virtual ~OutputSink() = default;
    virtual void on_output(int micro_batch, const HeadOutput& out) = 0;
  };

  PipelineRunner(Stage& stage, Group& pipeline, ScheduleKind kind)
      : stage_(stage), pipe_(pipeline), kind_(kind) {}

  // Forward and backward of every micro-batch; each stage accumulates its
  // part of the prompt's gradient into dprompt. loss_weight scales each example's loss.
  void train(const std::vector<MicroBatch*>& mbs, const PromptInputs& prompt,
             const PromptInputs& dprompt, float loss_weight, OutputSink& sink);
  // Seconds spent in this stage's forward and backward passes (tensor-parallel
  // all-reduces inside them included) and waiting on pipeline messages,
  // summed since the last reset.
  struct Times {
    double forward = 0, backward = 0, pipeline = 0;
  };
  const Times& times() const { return times_; }
  void reset_times() { times_ = {}; }

  // Forward only (evaluation), nothing kept for a backward.
  void evaluate(const std::vector<MicroBatch*>& mbs, const PromptInputs& prompt,
                OutputSink& sink);
  // Generation: one cached step's new rows through every stage in turn
  // (forward only); the last stage's output(-1, Q) holds them at the end.
  void forward_cached(const CachedStep& step, const PromptInputs& prompt, KvCache& cache);

 private:
  int prev() const { return stage_.spec().index - 1; }
  int next() const { return stage_.spec().index + 1; }

  Stage& stage_;
  Group& pipe_;
  ScheduleKind kind_;
  std::vector<PipelineOp> ops_;
  std::vector<char> have_input_, have_grad_;
  Times times_;
};

}  // namespace sptrain
