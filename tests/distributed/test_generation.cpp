// Generation on every layout: with the prompt that one rank trained on the
// generate task, every layout generates the same greedy texts for the
// evaluation inputs as one rank, scores them the same, and each cached step
// sends exactly the bytes docs/parallelism.md says (tensor_parallel::
// bytes_per_cached_step, pipeline_bytes_per_cached_step).
#include <gtest/gtest.h>

#include <cstdio>

#include "../infer/infer_env.hpp"
#include "dist_env.hpp"
#include "sptrain/infer/generator.hpp"
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

// Deep prompts in `sptrain generate` (Generator): two tasks' keys and values,
// stacked, each rank holding those of its layers and kv heads
// (TaskPrompts::stacked_prefix); every layout generates one rank's tokens
// for requests of both tasks in one batch.
TEST_P(GenerateLayout, DeepTaskPromptsGenerateOneRanksTokens) {
  const Family family = GetParam();
  const GridLayout& l = grid().layout;
  if (l.data > 1) GTEST_SKIP() << "sptrain generate has no data parallelism";
  const std::string& model = model_path(family);
  auto deep_task = [&](const std::string& name, int P, uint64_t seed, const std::string& templ) {
    Checkpoint k = test::task_checkpoint(model, 2, seed, templ, {}, 24);
    k.config_yaml = "task:\n  kind: generate\n  max_length: 24\n  max_target_length: 8\n";
    const std::string ckpt = test::temp_path(name + "_task.h5");
    write_checkpoint(ckpt, k);
    return name + "=" + test::write_deep_task(model, ckpt, P, seed, test::temp_path(name + "_deep.h5"));
  };
  const std::vector<std::string> args{deep_task("a", 3, 21, "Q: {text}\nA: "), deep_task("b", 5, 22, "{text} => ")};
  auto tasks = [&] {
    std::vector<TaskPrompt> t;
    for (const std::string& a : args) t.push_back(parse_task_prompt(a));
    return t;
  };
  const std::vector<std::pair<int, std::string>> inputs{{0, "red tea"}, {1, "a longer input"}, {0, "x"}, {1, "yes"}};
  auto run = [&](Generator& gen) {
    std::vector<GenerationRequest> requests;
    for (size_t i = 0; i < inputs.size(); ++i)
      requests.push_back({gen.tasks()[inputs[i].first].task->encode_input(inputs[i].second), inputs[i].first, i});
    std::vector<const GenerationRequest*> batch;
    for (const auto& r : requests) batch.push_back(&r);
    DecodeOptions o;
    o.max_new_tokens = 8;
    std::vector<std::vector<int32_t>> tokens;
    for (const Generation& g : gen.generate(batch, o)) tokens.push_back(g.tokens);
    return tokens;
  };
  GeneratorOptions options;
  options.batch_size = 4;
  options.max_new_tokens = 8;
  Generator one(model, tasks(), make_solo_grid(), options);
  const std::vector<std::vector<int32_t>> ref = run(one);
  size_t generated = 0;
  for (const auto& t : ref) generated += t.size();
  EXPECT_GT(generated, 2 * ref.size()) << "one rank generates (almost) nothing: the check would be vacuous";
  Generator split(model, tasks(), new_grid(), options);
  const std::vector<std::vector<int32_t>> got = run(split);
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(got[i], ref[i]) << "request " << i;
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, GenerateLayout, ::testing::Values(Family::Llama, Family::Gpt),
                         [](const auto& i) { return std::string(family_label(i.param)); });

}  // namespace
}  // namespace sptrain::dist
