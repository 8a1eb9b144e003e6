#include "sptrain/train/train_step.hpp"

#include <chrono>
#include <cmath>

#include "sptrain/comm/control.hpp"
#include "sptrain/model/tensor_parallel.hpp"
#include "sptrain/optim/clip.hpp"

namespace sptrain {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

StepResult train_step(Session& s, Optimizer& optimizer, const std::vector<int64_t>& global_batch,
                      double lr, bool stop_requested) {
  const ParallelState& ps = *s.parallel;
  const int B = s.config.train.batch_size, local = s.local_batch();
  SPT_CHECK(int64_t(global_batch.size()) == B, "internal error: a global batch of ",
            global_batch.size(), " examples, train.batch_size is ", B);
  SPT_CHECK(s.train_batches, "internal error: train_step on a session built for evaluation only");
  const auto start = Clock::now();
  const ByteCounter before = ps.bytes();
  s.runner->reset_times();

  // This replica's share of the global batch, in micro-batches.
  s.examples.clear();
  for (int i = 0; i < local; ++i)
    s.examples.push_back(&s.data.train[size_t(global_batch[size_t(ps.coords().dp * local + i)])]);
  MicroBatchSet& mbs = *s.train_batches;
  mbs.fill(s.examples);
  // The loss is the mean over the global batch's target tokens (one per
  // example for a classify task): every replica counts them all.
  int64_t targets = 0;
  for (int64_t i : global_batch) targets += s.data.train[size_t(i)].answer_tokens();

  // Forward and backward through the schedule; each stage accumulates its
  // part of the prompt's gradient, each target token's loss weighted
  // 1/targets. On a GPU the last stage adds the loss and correct count up on the device.
  PromptParameter& prompt = *s.prompt;
  const bool on_device = s.device_step();
  const Tensor sums = s.step_sums.view();
  if (on_device) {
    s.backend->fill(sums, 0.0);
    s.stage->set_device_sums(sums.slice_rows(0, 2));
  }
  prompt.zero_grad();
  s.tally.reset(&mbs.batches(), s.task->num_labels());
  s.runner->train(mbs.batches(), prompt.device(), prompt.device_grad(), 1.0f / float(targets), s.tally);
  if (on_device) s.stage->set_device_sums(Tensor{});

  // The prompt's gradient, summed over the replicas, its norm, clipping, and
  // the update, skipped when the norm is not finite: on the host for the CPU
  // back end, enqueued on the device for a GPU.
  const auto update_start = Clock::now();
  double grad_norm = 0;
  bool skipped = false;
  const double max_norm = s.config.optim.clip_grad_norm;
  // Prompt tuning on a GPU updates the prompt on the device; the other
  // methods' parameters (encoders, per-unit tensors) update on the host.
  const bool update_on_device = on_device && prompt.updates_on_device();
  if (prompt.holds()) {
    // Data parallel: what the model read, once per step (data_parallel_bytes_per_step).
    if (ps.layout().data > 1)
      for (const Tensor& g : prompt.device_grad_tensors()) ps.data().all_reduce(g, ReduceOp::Sum);
    if (update_on_device) {
      const Tensor grad = prompt.device_grad().prompt, norm_sq = sums.slice_rows(2, 1);
      s.backend->sum_squares(norm_sq, grad);
      s.backend->clip_by_norm(grad, norm_sq, max_norm);
      optimizer.step_on_device(prompt.device().prompt, grad, norm_sq, lr);
      prompt.device_written();
    } else {
      // Deep prompts: a kv head shared by tensor ranks gathers their parts, and
      // prefix tuning's MLP sums its trunk's gradient over the model's ranks
      // (tensor_parallel::prompt_bytes_per_step; the pipeline's in prompt_pipeline_bytes).
      if (!s.kv_grad_scratch.empty())
        tensor_parallel::sum_shared_kv_grad(*s.ctx, prompt.device_grad().prefix,
                                            s.stage->dims().kv_range.begin, s.kv_grad_scratch);
      prompt.download_grad([&](const Tensor& trunk_grad) {
        tensor_parallel::sum_prefix_trunk_grad(*s.ctx, trunk_grad);
        if (ps.layout().pipeline > 1) ps.pipeline().all_reduce(trunk_grad, ReduceOp::Sum);
      });
      // The norm over the whole job's parameters, each tensor counted once.
      double sum_sq = prompt.grad_sum_of_squares();
      if (prompt.sharded()) control_sum(ps.host(), {&sum_sq});
      grad_norm = std::sqrt(sum_sq);
      std::vector<float>& g = prompt.grad();
      clip_to_norm(g.data(), g.size(), grad_norm, max_norm);
      if (std::isfinite(grad_norm)) {
        optimizer.step(prompt.values().data(), g.data(), lr);
      } else {
        skipped = true;
        optimizer.set_step_count(optimizer.step_count() + 1);  // keep steps aligned with the schedule
      }
    }
  }
  // The one wait of a GPU step: its scalars.
  double loss_here = s.reports_loss() ? s.tally.loss_sum : 0.0;
  double correct_here = s.reports_loss() ? double(s.tally.correct) : 0.0;
  if (on_device) {
    double host[3];
    s.backend->copy_to_host(host, sums);
    loss_here = s.reports_loss() ? host[0] : 0.0;
    correct_here = s.reports_loss() ? host[1] : 0.0;
    if (update_on_device && prompt.holds()) {
      grad_norm = std::sqrt(host[2]);
      skipped = !std::isfinite(grad_norm);
    }
  }

  StepResult r;
  r.times.optimizer = seconds_since(update_start);
  const PipelineRunner::Times& t = s.runner->times();
  r.times.forward = t.forward;
  r.times.backward = t.backward;
  r.times.pipeline = t.pipeline;
  r.bytes = ps.bytes().bytes_since(before);
  r.times.comm = ps.bytes().seconds_since(before);
  for (const MicroBatch* mb : mbs.batches()) {
    const Stage::Work w = s.stage->work(*mb);
    r.flops += w.forward + w.backward;
  }

  // The job's figures in one message: loss and accuracy from the ranks that
  // report them, rows from stage 0's first tensor rank of each replica, the
  // norm and the skip from world rank 0 (every prompt holder computes the same).
  const bool lead = ps.world_rank() == 0;
  const bool counts_rows = ps.first_stage() && ps.coords().tp == 0;
  double loss_sum = loss_here;
  double correct = correct_here;
  double text_rows = counts_rows ? double(mbs.text_rows()) : 0.0;
  double prompt_rows = counts_rows ? double(mbs.prompt_rows()) : 0.0;
  double norm = lead ? grad_norm : 0.0;
  double skip = lead && skipped ? 1.0 : 0.0;
  double stop = stop_requested ? 1.0 : 0.0;
  // Whole numbers, exact in a double below 2^53.
  double tensor_bytes = double(r.bytes.tensor), pipeline_bytes = double(r.bytes.pipeline),
         data_bytes = double(r.bytes.data);
  control_sum(ps.host(), {&loss_sum, &correct, &text_rows, &prompt_rows, &norm, &skip, &stop,
                          &tensor_bytes, &pipeline_bytes, &data_bytes});
  r.job_bytes = {uint64_t(tensor_bytes), uint64_t(pipeline_bytes), uint64_t(data_bytes)};
  r.loss = loss_sum / double(targets);
  r.accuracy = correct / B;
  r.targets = targets;
  r.text_rows = int64_t(text_rows);
  r.prompt_rows = int64_t(prompt_rows);
  r.grad_norm = norm;
  r.skipped = skip > 0;
  r.stop_requested = stop > 0;
  r.times.total = seconds_since(start);
  return r;
}

int64_t prompt_grad_elems(const StepShape& sh) {
  if (sh.method == PromptMethod::Deep)
    return int64_t(sh.stage.num_layers) * sh.prompt_len * 2 * sh.kv_heads * sh.head_dim;
  return sh.stage.first() ? int64_t(sh.prompt_len) * sh.d_model : 0;
}

uint64_t data_parallel_bytes_per_step(const StepShape& sh) {
  if (sh.layout.data <= 1) return 0;
  return uint64_t(prompt_grad_elems(sh) * sh.stat_bytes);
}

uint64_t prompt_pipeline_bytes_per_step(const StepShape& sh) {
  return sh.layout.pipeline > 1 ? uint64_t(sh.trunk_elems * sh.stat_bytes) : 0;
}

PerKind<uint64_t> step_bytes(const StepShape& sh, const std::vector<MicroBatchSize>& micro_batches) {
  PerKind<uint64_t> b;
  const tensor_parallel::StageParts parts{sh.stage.first(), sh.stage.num_layers,
                                          sh.stage.last() && sh.vocab_loss};
  for (const MicroBatchSize& m : micro_batches) {
    b.tensor += tensor_parallel::bytes_per_micro_batch(parts, sh.layout.tensor, m.rows, m.targets,
                                                       sh.d_model, sh.act_bytes, sh.stat_bytes);
    if (sh.layout.pipeline > 1)
      b.pipeline += pipeline_bytes_per_micro_batch(sh.stage, m.rows, sh.d_model, sh.act_bytes);
  }
  b.data = data_parallel_bytes_per_step(sh);
  const int64_t shared_kv = sh.layout.tensor > sh.model_kv_heads && sh.method == PromptMethod::Deep
                                ? int64_t(sh.model_kv_heads) * prompt_grad_elems(sh)
                                : 0;
  b.tensor += tensor_parallel::prompt_bytes_per_step(sh.layout.tensor, shared_kv, sh.trunk_elems,
                                                     sh.stat_bytes);
  b.pipeline += prompt_pipeline_bytes_per_step(sh);
  return b;
}

StepShape step_shape(const Session& s) {
  StepShape sh;
  sh.stage = s.stage->spec();
  sh.layout = s.parallel->layout();
  sh.d_model = s.model.d_model;
  sh.prompt_len = s.config.prompt.length;
  sh.vocab_loss = s.task->vocab_loss();
  sh.act_bytes = int64_t(dtype_size(s.ctx->act));
  sh.stat_bytes = int64_t(dtype_size(s.ctx->stat));
  set_prompt_shape(sh, s.config.prompt, s.model, s.stage->dims().kv_heads);
  return sh;
}

void set_prompt_shape(StepShape& sh, const PromptSection& prompt, const ModelConfig& model, int kv_heads) {
  sh.prompt_len = prompt.length;
  sh.method = prompt_method_of(prompt);
  sh.kv_heads = kv_heads;
  sh.model_kv_heads = model.n_kv_heads;
  sh.head_dim = model.head_dim;
  sh.trunk_elems = 0;
  if (sh.method == PromptMethod::Deep && prompt.reparameterize == "mlp")
    sh.trunk_elems = int64_t(prompt.length) * prompt_hidden_width(prompt, model);
}

}  // namespace sptrain
