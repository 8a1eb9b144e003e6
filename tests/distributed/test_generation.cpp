// Generation on every layout: with the prompt that one rank trained on the
// generate task, every layout generates the same greedy texts for the
// evaluation inputs as one rank, scores them the same, and each cached step
// sends exactly the bytes docs/parallelism.md says (tensor_parallel::
// bytes_per_cached_step, pipeline_bytes_per_cached_step).
#include <gtest/gtest.h>

#include <cstdio>

#include "dist_env.hpp"
#include "sptrain/model/tensor_parallel.hpp"
#include "sptrain/train/evaluate.hpp"

namespace sptrain::dist {
namespace {

struct Generated {
  std::vector<std::string> texts;  // one per evaluation input
  TextScores scores;
};

// One rank's greedy texts with the reference's trained prompt (no MPI calls).
const Generated& one_rank(Family family) {
  static std::map<Family, Generated> cache;
  auto it = cache.find(family);
  if (it != cache.end()) return it->second;
  const Config c = make_config(family, "generate", "1f1b", 1, 1, test::temp_path("generate_reference"));
  Session s(c, make_solo_grid(), SessionMode::EvalOnly);
  s.prompt->values() = reference(family, "generate").prompt;
  Generated g;
  g.scores = evaluate_generation(s, s.data.eval_inputs, &g.texts);
  size_t chars = 0;
  for (const std::string& t : g.texts) chars += t.size();
  EXPECT_GT(chars, 3 * g.texts.size()) << "the reference generates (almost) nothing: the check would be vacuous";
  return cache[family] = std::move(g);
}

class GenerateLayout : public ::testing::TestWithParam<Family> {};

TEST_P(GenerateLayout, SameGreedyTextsAndScoresAsOneRankAndCountedBytes) {
  const Family family = GetParam();
  const Generated& ref = one_rank(family);
  const GridLayout& l = grid().layout;
  const Config c = make_config(family, "generate", "1f1b", l.tensor, l.pipeline, test::temp_path("generate_run"));
  Session s(c, new_grid(), SessionMode::EvalOnly);
  s.prompt->values() = reference(family, "generate").prompt;
  ASSERT_EQ(s.data.eval_inputs.size(), ref.texts.size());

  std::vector<std::string> texts;
  std::vector<int64_t> indices;
  const TextScores scores = evaluate_generation(s, s.data.eval_inputs, &texts, &indices);
  int differ = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(texts[i], ref.texts[size_t(indices[i])]) << "input " << indices[i];
    differ += texts[i] != ref.texts[size_t(indices[i])];
  }
  EXPECT_EQ(scores.bleu, ref.scores.bleu);
  EXPECT_EQ(scores.rouge_l, ref.scores.rouge_l);
  EXPECT_EQ(scores.count, int64_t(ref.texts.size()));

  // One generate() call on this replica's first two inputs, its bytes counted.
  const ParallelState& ps = *s.parallel;
  std::vector<GenerationRequest> requests;
  for (int64_t i = 0; i < 2; ++i) requests.push_back({s.data.eval_inputs[size_t(i)].tokens, 0, uint64_t(i)});
  std::vector<const GenerationRequest*> batch{&requests[0], &requests[1]};
  DecodeOptions options;
  options.max_new_tokens = c.task.max_target_length;
  const ByteCounter before = ps.bytes();
  s.decoder->generate(batch, s.prompt->device(), options);
  const PerKind<uint64_t> sent = ps.bytes().bytes_since(before);
  const StageSpec& stage = s.stage->spec();
  uint64_t tensor = 0, pipeline = 0;
  for (const Decoder::StepRecord& step : s.decoder->steps()) {
    const tensor_parallel::StageParts parts{stage.first(), stage.num_layers, stage.last() && step.tokens_chosen};
    tensor += tensor_parallel::bytes_per_cached_step(parts, l.tensor, step.rows, step.seqs, s.model.d_model,
                                                     s.model.vocab_size, 4, 4);
    pipeline += pipeline_bytes_per_cached_step(stage, step.rows, step.seqs, step.tokens_chosen, s.model.d_model, 4);
  }
  EXPECT_EQ(sent.tensor, tensor);
  EXPECT_EQ(sent.pipeline, pipeline);
  EXPECT_EQ(sent.data, 0u);

  const int64_t worst = world_sum(differ);
  if (world_rank() == 0)
    std::printf("[layout %s %s] greedy generation of %zu inputs: %lld texts differ from one rank; BLEU %.2f\n",
                layout_name().c_str(), family_label(family), ref.texts.size(), static_cast<long long>(worst),
                scores.bleu);
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, GenerateLayout, ::testing::Values(Family::Llama, Family::Gpt),
                         [](const auto& i) { return std::string(family_label(i.param)); });

}  // namespace
}  // namespace sptrain::dist
