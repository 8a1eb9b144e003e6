// The real training loop, train(), on this job's layout against train() on
// one rank: the same loss at every step in metrics.jsonl, the same
// evaluation, the same prompt in the last checkpoint, and the per-step byte
// counts in metrics.jsonl (world rank 0's, which holds the prompt).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dist_env.hpp"
#include "../support/train_env.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/train/trainer.hpp"

namespace sptrain::dist {
namespace {

using test::read_metrics;

struct TrainCase {
  Family family;
  const char* loss;
  const char* schedule;
};

std::string trainer_case_name(const ::testing::TestParamInfo<TrainCase>& p) {
  return std::string(family_label(p.param.family)) + "_" + p.param.loss + "_" + p.param.schedule;
}

class TrainerEquivalence : public ::testing::TestWithParam<TrainCase> {};

TEST_P(TrainerEquivalence, TrainGivesTheOneRankLossesEvaluationAndPrompt) {
  const TrainCase& k = GetParam();
  const ProcessGrid& g = grid();
  const std::string tag = std::string(family_label(k.family)) + "_" + k.loss + "_" + k.schedule;
  // Only world rank 0 writes; the others' run_dir stays unused.
  const std::string run_dir = test::temp_path("trainer_" + tag);
  std::filesystem::remove_all(run_dir);
  Config c = make_config(k.family, k.loss, k.schedule, g.layout.tensor, g.layout.pipeline, run_dir);
  c.train.eval_every = 0;        // evaluate at the end only
  c.train.checkpoint_every = 0;  // checkpoint at the end only

  const TrainSummary got = train(c, new_grid());
  EXPECT_EQ(got.steps_done, kSteps);

  // The one-rank run, on rank 0 only (the others have nothing to compare).
  if (g.world_rank != 0) return;
  const std::string ref_dir = run_dir + "_one_rank";
  std::filesystem::remove_all(ref_dir);
  Config one = c;
  one.parallel.tensor = one.parallel.pipeline = 1;
  one.train.run_dir = ref_dir;
  const TrainSummary ref = train(one, make_solo_grid());

  EXPECT_LE(relative_error(got.final_loss, ref.final_loss), 1e-5);
  EXPECT_EQ(got.final_eval.examples, ref.final_eval.examples);
  EXPECT_LE(relative_error(got.final_eval.loss, ref.final_eval.loss), 1e-5);
  EXPECT_EQ(got.final_eval.confusion, ref.final_eval.confusion);

  const auto mg = read_metrics(run_dir), mr = read_metrics(ref_dir);
  ASSERT_EQ(mg.size(), mr.size());
  const uint64_t prompt_bytes = uint64_t(c.prompt.length) * uint64_t(model_config(k.family).d_model) * 4;
  int steps = 0;
  double worst = 0;
  for (size_t i = 0; i < mg.size(); ++i) {
    ASSERT_EQ(mg[i]["step"], mr[i]["step"]);
    if (!mg[i].contains("loss")) continue;
    ++steps;
    worst = std::max(worst, relative_error(mg[i]["loss"].get<double>(), mr[i]["loss"].get<double>()));
    EXPECT_EQ(mg[i]["text_tokens"], mr[i]["text_tokens"]);
    const nlohmann::json& bytes = mg[i]["comm_bytes"];
    EXPECT_EQ(bytes["data"].get<uint64_t>(), g.layout.data > 1 ? prompt_bytes : 0);
    EXPECT_EQ(bytes["tensor"].get<uint64_t>() > 0, g.layout.tensor > 1);
    EXPECT_EQ(bytes["pipeline"].get<uint64_t>() > 0, g.layout.pipeline > 1);
  }
  EXPECT_EQ(steps, kSteps);
  EXPECT_LE(worst, 1e-5) << "largest relative loss difference in metrics.jsonl";

  const std::string last = "/" + checkpoint_name(kSteps);
  const Checkpoint cg = read_checkpoint(run_dir + last), cr = read_checkpoint(ref_dir + last);
  const double prompt_err = relative_error(cg.prompt, cr.prompt);
  EXPECT_LE(prompt_err, 1e-5);
  std::printf("[layout %s %s/%s/%s] train(): loss %.2e, eval loss %.2e, prompt %.2e relative error\n",
              layout_name().c_str(), family_label(k.family), k.loss, k.schedule, worst,
              relative_error(got.final_eval.loss, ref.final_eval.loss), prompt_err);
}

INSTANTIATE_TEST_SUITE_P(Layout, TrainerEquivalence,
                         ::testing::Values(TrainCase{Family::Llama, "vocab", "1f1b"},
                                           TrainCase{Family::Gpt, "labels", "gpipe"}),
                         trainer_case_name);

}  // namespace
}  // namespace sptrain::dist
