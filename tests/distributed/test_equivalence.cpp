// Every parallel layout computes what one rank computes: the same loss and
// prompt gradient at every step and the same prompt after kSteps optimizer
// steps, for both families, both losses and both schedules, and generate
// tasks (the loss at every target token); and each step
// sends exactly the bytes docs/parallelism.md says, by kind.
//
// The reference is computed in the same process with a grid of one rank.
// Errors are relative, in the 2-norm over all elements:
//   loss:   |L - L_ref| / |L_ref|            (L = mean loss of the global batch)
//   grad:   ||G - G_ref||_2 / ||G_ref||_2     (G = the [P, d] prompt gradient, clipped)
//   prompt: ||p - p_ref||_2 / ||p_ref||_2     after the last step
#include <gtest/gtest.h>

#include <cstdio>

#include "dist_env.hpp"

namespace sptrain::dist {
namespace {

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
  const GridLayout& l = grid().layout;
  Config c = make_config(k.family, k.loss, k.schedule, l.tensor, l.pipeline,
                         test::temp_path("equivalence_run"));
  c.parallel.stage_layers = stage_layers;
  Session s(c, new_grid(), SessionMode::Train);

  double loss_err = 0, grad_err = 0;
  int row_mismatches = 0;
  // The data-parallel traffic is exactly the prompt's gradient, P x d fp32,
  // on the ranks that hold the prompt, and nothing anywhere else.
  const uint64_t prompt_bytes = uint64_t(c.prompt.length) * uint64_t(s.model.d_model) * 4;
  run_steps(s, [&](int step, const std::vector<int64_t>& batch, const StepResult& r) {
    const std::vector<MicroBatchSize> sizes = micro_batch_sizes(s, batch);
    const PerKind<uint64_t> want = step_bytes(step_shape(s), sizes);
    EXPECT_EQ(r.bytes.tensor, want.tensor) << "tensor-parallel bytes, step " << step;
    EXPECT_EQ(r.bytes.pipeline, want.pipeline) << "pipeline bytes, step " << step;
    EXPECT_EQ(r.bytes.data, want.data) << "data-parallel bytes, step " << step;
    EXPECT_EQ(r.bytes.data, s.holds_prompt() && l.data > 1 ? prompt_bytes : 0)
        << "data-parallel bytes, step " << step;
    // The micro-batches' rows as train_step packed them.
    int64_t total = 0, targets = 0;
    for (const MicroBatchSize& m : sizes) total += m.rows, targets += m.targets;
    row_mismatches += total != s.train_batches->text_rows() + s.train_batches->prompt_rows();
    row_mismatches += targets != s.train_batches->targets();

    loss_err = std::max(loss_err, relative_error(r.loss, ref.loss[size_t(step)]));
    if (s.holds_prompt()) grad_err = std::max(grad_err, relative_error(s.prompt->grad(), ref.grad[size_t(step)]));
  });
  const double prompt_err = s.holds_prompt() ? relative_error(s.prompt->values(), ref.prompt) : 0.0;
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
                      Case{Family::Gpt, "vocab", "gpipe"}, Case{Family::Gpt, "vocab", "1f1b"},
                      // generate tasks: the loss at every target token
                      Case{Family::Llama, "generate", "1f1b"}, Case{Family::Gpt, "generate", "gpipe"}),
    case_name);

}  // namespace
}  // namespace sptrain::dist
