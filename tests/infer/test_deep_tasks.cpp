// Deep prompts (prefix tuning's keys and values) in `sptrain infer`: tasks'
// deep prompts stacked in one batch score as the training code's packing
// scores each with its own keys and values, and one command does not mix
// deep and input-vector prompts. (`sptrain generate`: test_generator.cpp and
// tests/distributed/test_generation.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "infer_env.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/infer/predictor.hpp"
#include "sptrain/model/batch.hpp"
#include "sptrain/model/stage.hpp"

namespace sptrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class DeepInfer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tasks_ = test::write_two_tasks("deep_infer_");
    deep_a_ = test::write_deep_task(tasks_.model, tasks_.a, 3, 31, test::temp_path("deep_infer_a_deep.h5"));
    deep_b_ = test::write_deep_task(tasks_.model, tasks_.b, 5, 32, test::temp_path("deep_infer_b_deep.h5"));
  }
  static test::TwoTasks tasks_;
  static std::string deep_a_, deep_b_;
};
test::TwoTasks DeepInfer::tasks_;
std::string DeepInfer::deep_a_, DeepInfer::deep_b_;

// Label scores of `examples` with one deep prompt `prefix` [layers, P, W],
// packed as training packs them (each example [prompt, text], no shared
// prompt segment), the head over `labels`.
std::vector<double> single_prompt_scores(const std::string& model_path, const std::vector<float>& prefix, int P,
                                         const std::vector<int32_t>& labels,
                                         const std::vector<const EncodedExample*>& examples) {
  CpuBackend be(1);
  ProcessGrid grid = make_solo_grid();
  const ModelContext ctx{be, *grid.tp, DType::F32, DType::F32};
  const h5::File f = h5::File::open_read(model_path);
  const ModelConfig m = read_model_config(f);
  const int B = int(examples.size());
  StageShape shape;
  shape.train = Capacity{1, 1};
  shape.activation_sets = 0;
  shape.eval = Capacity{B * (P + 48), P + 48};
  shape.eval_seqs = B;
  Stage stage(ctx, m, f, plan_stage(m.n_layers, 1, 0, {}), HeadSpec{LossKind::Labels, labels}, shape);
  BatchBuilder builder(be, P, shape.eval.rows, B, /*share_prompt=*/false);
  Buffer kv = ctx.alloc_stat(Shape{m.n_layers, P, 2 * int64_t(m.n_kv_heads) * m.head_dim});
  be.copy_from_host(kv, prefix.data());
  MicroBatch mb;
  builder.fill(mb, examples);
  stage.forward(-1, mb, PromptInputs(Tensor{}, kv.view()));
  const HeadOutput& out = stage.head_output();
  return std::vector<double>(out.label_scores.begin(), out.label_scores.begin() + int64_t(B * labels.size()));
}

TEST_F(DeepInfer, MixedBatchesScoreLikeTheSinglePromptPackingWithEachTasksKeysAndValues) {
  std::vector<TaskPrompt> prompts;
  prompts.push_back(parse_task_prompt("a=" + deep_a_));
  prompts.push_back(parse_task_prompt("b=" + deep_b_));
  Predictor both(tasks_.model, std::move(prompts), PredictorOptions{8, 1});
  const std::vector<std::string> t = {"a gripping, funny film", "dull", "the election results came in late",
                                      "new phone chips are faster", "I wanted to love it", "penalties", "ok",
                                      "style over substance"};
  std::vector<EncodedExample> encoded;
  std::vector<int> task_of;
  for (size_t i = 0; i < t.size(); ++i) {
    task_of.push_back(int(i % 2));  // a, b, a, b, ...
    encoded.push_back(both.encode(task_of.back(), t[i]));
  }
  std::vector<const EncodedExample*> batch;
  for (const auto& e : encoded) batch.push_back(&e);
  const std::vector<Prediction> mixed = both.predict(batch, task_of);

  for (int k = 0; k < 2; ++k) {
    const StoredPrompt p = read_stored_prompt(k == 0 ? deep_a_ : deep_b_);
    ASSERT_TRUE(p.deep());
    const std::vector<int32_t>& labels = both.task(k).label_tokens();
    std::vector<const EncodedExample*> mine;
    for (size_t i = size_t(k); i < encoded.size(); i += 2) mine.push_back(&encoded[i]);
    const std::vector<double> ref = single_prompt_scores(tasks_.model, p.prefix, int(p.rows), labels, mine);
    const std::vector<double> zero = single_prompt_scores(
        tasks_.model, std::vector<float>(p.prefix.size(), 0.f), int(p.rows), labels, mine);
    bool differs = false;
    for (size_t j = 0; j < mine.size(); ++j)
      for (size_t l = 0; l < labels.size(); ++l) {
        const double got = mixed[2 * j + size_t(k)].logits[l];
        EXPECT_NEAR(got, ref[j * labels.size() + l], 1e-5) << "task " << k << " example " << 2 * j + size_t(k);
        differs = differs || std::abs(got - zero[j * labels.size() + l]) > 1e-3;
      }
    EXPECT_TRUE(differs) << "task " << k << ": its keys and values changed no score";
  }
}

TEST_F(DeepInfer, DeepAndInputVectorPromptsAreNotMixed) {
  std::vector<TaskPrompt> prompts;
  prompts.push_back(parse_task_prompt("a=" + deep_a_));
  prompts.push_back(parse_task_prompt("b=" + tasks_.b));
  try {
    Predictor p(tasks_.model, std::move(prompts), PredictorOptions{4, 1});
    ADD_FAILURE() << "a deep and an input-vector prompt in one command";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), AllOf(HasSubstr("task 'b'"), HasSubstr(tasks_.b), HasSubstr("deep"),
                                             HasSubstr("not both")));
  }
}

}  // namespace
}  // namespace sptrain
