#include "sptrain/pipeline/runner.hpp"

#include <chrono>

namespace sptrain {

namespace {
using Clock = std::chrono::steady_clock;
// Adds the seconds since construction to `total`.
struct Stopwatch {
  double& total;
  Clock::time_point start = Clock::now();
  ~Stopwatch() { total += std::chrono::duration<double>(Clock::now() - start).count(); }
};
}  // namespace

void PipelineRunner::train(const std::vector<MicroBatch*>& mbs, const PromptInputs& prompt,
                           const PromptInputs& dprompt, float loss_weight, OutputSink& sink) {
  const StageSpec& s = stage_.spec();
  const int m = int(mbs.size());
  const int slots = activation_slots(kind_, s.count, s.index, m);
  make_schedule(kind_, s.count, s.index, m, ops_);
  have_input_.assign(size_t(m), 0);
  have_grad_.assign(size_t(m), 0);
  // Micro-batch i keeps its activations in slot i % slots: both schedules
  // run backwards in forward order, so that slot is free again by then.
  auto slot = [&](int i) { return i % slots; };
  auto rows = [&](int i) { return int64_t(mbs[size_t(i)]->seq.num_rows); };

  for (size_t k = 0; k < ops_.size(); ++k) {
    const PipelineOp op = ops_[k];
    const bool has_next_op = k + 1 < ops_.size();
    const PipelineOp after = has_next_op ? ops_[k + 1] : op;
    const int i = op.micro_batch;
    MicroBatch& mb = *mbs[size_t(i)];
    if (op.kind == PipelineOp::Forward) {
      if (!s.first() && !have_input_[size_t(i)]) {
        Stopwatch w{times_.pipeline};
        pipe_.recv(stage_.input(slot(i), rows(i)), prev());
      }
      {
        Stopwatch w{times_.forward};
        stage_.forward(slot(i), mb, prompt);
      }
      Stopwatch w{times_.pipeline};
      if (s.last()) {
        sink.on_output(i, stage_.head_output());
      } else if (has_next_op && after.kind == PipelineOp::Backward) {
        const int j = after.micro_batch;
        pipe_.send_recv(stage_.output(slot(i), rows(i)), next(), stage_.grad(rows(j)), next());
        have_grad_[size_t(j)] = 1;
      } else {
        pipe_.send(stage_.output(slot(i), rows(i)), next());
      }
    } else {
      if (!s.last() && !have_grad_[size_t(i)]) {
        Stopwatch w{times_.pipeline};
        pipe_.recv(stage_.grad(rows(i)), next());
      }
      {
        Stopwatch w{times_.backward};
        stage_.backward(slot(i), mb, loss_weight, dprompt);
      }
      if (s.first()) continue;
      Stopwatch w{times_.pipeline};
      if (has_next_op && after.kind == PipelineOp::Forward) {
        const int j = after.micro_batch;
        pipe_.send_recv(stage_.grad(rows(i)), prev(), stage_.input(slot(j), rows(j)), prev());
        have_input_[size_t(j)] = 1;
      } else {
        pipe_.send(stage_.grad(rows(i)), prev());
      }
    }
  }
}

void PipelineRunner::evaluate(const std::vector<MicroBatch*>& mbs, const PromptInputs& prompt,
                              OutputSink& sink) {
  const StageSpec& s = stage_.spec();
  for (size_t i = 0; i < mbs.size(); ++i) {
    const MicroBatch& mb = *mbs[i];
    const int64_t T = mb.seq.num_rows;
    if (!s.first()) pipe_.recv(stage_.input(-1, T), prev());
    stage_.forward(-1, mb, prompt);
    if (s.last()) {
      sink.on_output(int(i), stage_.head_output());
    } else {
      pipe_.send(stage_.output(-1, T), next());
    }
  }
}

void PipelineRunner::forward_cached(const CachedStep& step, const PromptInputs& prompt, KvCache& cache) {
  const StageSpec& s = stage_.spec();
  const int64_t Q = step.seq.num_rows;
  if (!s.first()) pipe_.recv(stage_.input(-1, Q), prev());
  stage_.forward_cached(step, prompt, cache);
  if (!s.last()) pipe_.send(stage_.output(-1, Q), next());
}

}  // namespace sptrain
