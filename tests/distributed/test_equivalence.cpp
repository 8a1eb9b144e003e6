// Every parallel layout computes what one rank computes: the same loss and
// prompt gradient at every step and the same prompt after kSteps optimizer
// steps, for both families, both losses and both schedules; and each step
// sends exactly the bytes docs/parallelism.md says, by kind.
//
// The reference is computed in the same process with a grid of one rank.
// Errors are relative, in the 2-norm over all elements:
//   loss:   |L - L_ref| / |L_ref|            (L = mean loss of the global batch)
//   grad:   ||G - G_ref||_2 / ||G_ref||_2     (G = the [P, d] prompt gradient)
//   prompt: ||p - p_ref||_2 / ||p_ref||_2     after the last step
#include <gtest/gtest.h>

#include <cstdio>

#include "dist_env.hpp"
#include "sptrain/train/control.hpp"

namespace sptrain::dist {
namespace {

constexpr double kTolerance = 1e-5;

// The bytes one rank sends in one training step, by kind, from the formulas
// of docs/parallelism.md ("Tensor parallel", "Pipeline parallel", "Data
// parallel"), with the row count T of each of its micro-batches computed here
// from the examples' token counts.
struct StepBytes {
  uint64_t tensor = 0, pipeline = 0, data = 0;
};

StepBytes expected_bytes(Session& s, const std::vector<int64_t>& batch, int64_t& rows_out) {
  const Config& c = s.config();
  const ProcessGrid& g = s.grid();
  const StageSpec& stage = s.stage().spec();
  const uint64_t d = uint64_t(s.model().d_model), P = uint64_t(c.prompt.length), f32 = 4;
  const int tp = g.layout.tensor, pp = g.layout.pipeline, dp = g.layout.data;
  const int local = c.train.batch_size / dp, per_micro = c.train.micro_batch_size;
  const bool vocab = c.task.loss == "vocab";
  StepBytes b;
  rows_out = 0;
  for (int k = 0; k < local / per_micro; ++k) {
    // The micro-batch's rows: the shared prompt once, then each example's tokens.
    uint64_t T = P;
    const uint64_t B = uint64_t(per_micro);
    for (int e = 0; e < per_micro; ++e) {
      const int64_t index = batch[size_t(g.coords.dp * local + k * per_micro + e)];
      T += s.train_data()[size_t(index)].tokens.size();
    }
    rows_out += int64_t(T);
    if (tp > 1) {
      if (stage.first()) b.tensor += T * d;                      // embedding (vocab-parallel)
      b.tensor += uint64_t(stage.num_layers) * 2 * T * d;        // forward: after o and down
      b.tensor += uint64_t(stage.num_layers) * 2 * T * d;        // backward: after up and qkv
      if (stage.last() && vocab) b.tensor += 3 * B + B * d;      // max, sum exp, target; d(hn)
    }
    if (pp > 1) {
      if (!stage.last()) b.pipeline += T * d;   // activation to the next stage
      if (!stage.first()) b.pipeline += T * d;  // gradient to the previous stage
    }
  }
  if (stage.first() && dp > 1) b.data = P * d;  // the prompt's gradient, once per step
  b.tensor *= f32;
  b.pipeline *= f32;
  b.data *= f32;
  return b;
}

struct Case {
  Family family;
  const char* loss;
  const char* schedule;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(family_label(info.param.family)) + "_" + info.param.loss + "_" +
         info.param.schedule;
}

// Trains kSteps on this job's layout (layers per stage as `stage_layers`
// says, balanced when empty) and compares every step with one rank.
void check_against_one_rank(const Case& k, const std::vector<int>& stage_layers) {
  const Trajectory& ref = reference(k.family, k.loss);  // no MPI calls
  ProcessGrid& g = grid();
  Config c = make_config(k.family, k.loss, k.schedule, g.layout.tensor, g.layout.pipeline,
                         test::temp_path("equivalence_run"));
  c.parallel.stage_layers = stage_layers;
  Session s(c, g, /*eval_only=*/false);

  double loss_err = 0, grad_err = 0;
  int row_mismatches = 0;
  std::vector<double> sums(1);
  const uint64_t prompt_bytes = uint64_t(c.prompt.length) * uint64_t(s.model().d_model) * 4;
  // Between two forward_backward calls nothing is sent (the optimizer is
  // local), so the counter's change from one callback to the next is a step's.
  ByteCounter before = *g.bytes;
  run_steps(s, [&](int step, const std::vector<int64_t>& batch, double loss_sum) {
    const ByteCounter now = *g.bytes;
    int64_t rows = 0;
    const StepBytes want = expected_bytes(s, batch, rows);
    EXPECT_EQ(now.get(CommKind::Tensor) - before.get(CommKind::Tensor), want.tensor)
        << "tensor-parallel bytes, step " << step;
    EXPECT_EQ(now.get(CommKind::Pipeline) - before.get(CommKind::Pipeline), want.pipeline)
        << "pipeline bytes, step " << step;
    // The data-parallel traffic is exactly the prompt's gradient, P x d fp32,
    // on the ranks that hold the prompt, and nothing anywhere else.
    EXPECT_EQ(now.get(CommKind::Data) - before.get(CommKind::Data),
              s.holds_prompt() && g.layout.data > 1 ? prompt_bytes : 0)
        << "data-parallel bytes, step " << step;
    EXPECT_EQ(want.data, s.holds_prompt() && g.layout.data > 1 ? prompt_bytes : 0);
    before = now;
    // The micro-batches' rows as the Session packed them.
    row_mismatches += rows != s.text_rows_last_step() + s.prompt_rows_last_step();

    sums[0] = loss_sum;  // only the last stage's first tensor rank of each replica reports
    control_sum(g, sums);
    loss_err = std::max(loss_err, relative_error(sums[0] / c.train.batch_size, ref.loss[size_t(step)]));
    if (s.holds_prompt()) grad_err = std::max(grad_err, relative_error(s.grad(), ref.grad[size_t(step)]));
  });
  const double prompt_err = s.holds_prompt() ? relative_error(s.prompt(), ref.prompt) : 0.0;
  EXPECT_EQ(row_mismatches, 0);

  // Every rank checks its own numbers; rank 0 prints the worst over the job.
  EXPECT_LE(loss_err, kTolerance) << "loss";
  EXPECT_LE(grad_err, kTolerance) << "prompt gradient";
  EXPECT_LE(prompt_err, kTolerance) << "prompt after " << kSteps << " steps";
  const double w_loss = world_max(loss_err), w_grad = world_max(grad_err),
               w_prompt = world_max(prompt_err);
  if (world_rank() == 0)
    std::printf("[layout %s%s %s/%s/%s] max relative error over %d steps and all ranks: loss %.2e, "
                "gradient %.2e, prompt %.2e\n",
                layout_name().c_str(), stage_layers.empty() ? "" : " layers per stage 1,3",
                family_label(k.family), k.loss, k.schedule, kSteps, w_loss, w_grad, w_prompt);
}

class LayoutEquivalence : public ::testing::TestWithParam<Case> {};

TEST_P(LayoutEquivalence, SameLossGradientAndPromptAsOneRankAndCountedBytes) {
  check_against_one_rank(GetParam(), {});
}

// An explicit, unbalanced split (parallel.stage_layers): with two stages,
// one layer on the first and three on the last.
TEST(LayoutEquivalenceUnbalanced, ExplicitStageLayers) {
  if (grid().layout.pipeline != 2) GTEST_SKIP() << "only with two pipeline stages";
  check_against_one_rank(Case{Family::Gpt, "vocab", "1f1b"}, {1, 3});
  check_against_one_rank(Case{Family::Llama, "labels", "gpipe"}, {1, 3});
}

INSTANTIATE_TEST_SUITE_P(
    Layout, LayoutEquivalence,
    ::testing::Values(Case{Family::Llama, "labels", "gpipe"}, Case{Family::Llama, "labels", "1f1b"},
                      Case{Family::Llama, "vocab", "gpipe"}, Case{Family::Llama, "vocab", "1f1b"},
                      Case{Family::Gpt, "labels", "gpipe"}, Case{Family::Gpt, "labels", "1f1b"},
                      Case{Family::Gpt, "vocab", "gpipe"}, Case{Family::Gpt, "vocab", "1f1b"}),
    case_name);

}  // namespace
}  // namespace sptrain::dist
