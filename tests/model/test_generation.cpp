// Generative tasks in the model: the loss at every target row (teacher
// forcing) against finite differences and against the same tokens scored one
// at a time, and generation with the key/value cache against recomputing
// the whole sequence for every token (both families, inputs of different
// lengths and different prompts in one batch).
#include <gtest/gtest.h>

#include "../support/test_util.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/generate/decoder.hpp"
#include "sptrain/model/stage.hpp"

namespace sptrain {
namespace {

// A tiny random model of the family with a vocabulary of 260 rows (the byte
// tokenizer's 256 and an end-of-sequence token, 256) on one stage, vocab head.
struct TinyGenModel {
  CpuBackend be{1};
  SoloGroup tp{CommKind::Tensor, nullptr};
  SoloGroup pipe{CommKind::Pipeline, nullptr};
  ModelConfig config;
  std::unique_ptr<Stage> stage;
  std::unique_ptr<PipelineRunner> runner;

  TinyGenModel(Family family, DType dtype, int64_t rows, int64_t targets) {
    ModelConfig mc = test::tiny_config(family);
    mc.vocab_size = 260;
    const std::string path = test::temp_path(std::string("gen_") + family_name(family) + ".h5");
    write_random_model(path, mc, 21, 0.3, nullptr);
    const h5::File file = h5::File::open_read(path);
    config = read_model_config(file);
    StageShape shape;
    shape.train = Capacity{rows, 40};
    shape.train_seqs = 4;
    shape.train_targets = targets;
    shape.eval = Capacity{rows, 40};
    shape.eval_seqs = 4;
    shape.eval_targets = targets;
    stage = std::make_unique<Stage>(ModelContext{be, tp, dtype, dtype}, config, file,
                                    plan_stage(config.n_layers, 1, 0, {}), HeadSpec{LossKind::Vocab, {}}, shape);
    runner = std::make_unique<PipelineRunner>(*stage, pipe, ScheduleKind::GPipe);
  }
};

// The byte tokenizer with `eos` as its end-of-sequence token (-1: none).
Tokenizer tokenizer_with_eos(int32_t eos) {
  TokenizerSpec s = Tokenizer::bytes_only().spec();
  s.eos_id = eos;
  return Tokenizer(std::move(s));
}

// Three examples: text tokens, then a target ending with EOS (256).
const std::vector<EncodedExample> kGenExamples = {{{1, 2, 3, 4, 5}, 0, 0, {40, 41, 256}},
                                                  {{9, 8, 7, 6, 5, 4, 3}, 0, 0, {7, 256}},
                                                  {{30, 31}, 0, 0, {50, 51, 52, 53, 256}}};

class GenerativeLoss : public ::testing::TestWithParam<Family> {};

TEST_P(GenerativeLoss, EveryTargetTokenMatchesFiniteDifferencesAndScoringOneByOne) {
  TinyGenModel m(GetParam(), DType::F64, 64, 16);
  CpuBackend& be = m.be;
  Stage& stage = *m.stage;
  const int P = 3;
  std::vector<const EncodedExample*> ptrs;
  for (const auto& e : kGenExamples) ptrs.push_back(&e);
  BatchBuilder builder(be, P, 64, 4, true, /*max_answer=*/5);
  MicroBatch mb;
  builder.fill(mb, ptrs);
  ASSERT_EQ(mb.targets, 10);
  EXPECT_EQ(mb.seq.num_rows, P + (5 + 2) + (7 + 1) + (2 + 4));

  Rng rng(4);
  Buffer prompt = test::random_tensor(be, DType::F64, Shape{P, m.config.d_model}, rng, 0.5);
  const float weight = 1.0f / 10.0f;
  auto loss = [&] {
    stage.forward(0, mb, prompt);
    double s = 0;
    for (double l : stage.head_output().loss) s += weight * l;
    return s;
  };
  const double l0 = loss();
  Buffer dprompt = be.allocate(DType::F64, Shape{P, m.config.d_model});
  stage.backward(0, mb, weight, dprompt);
  test::expect_gradient(prompt, test::to_host(be, dprompt), loss, P * m.config.d_model, 1e-6, "dprompt");

  // Independently: each target token scored alone, as the label word of an
  // example whose text is the tokens before it.
  std::vector<EncodedExample> singles;
  for (const EncodedExample& e : kGenExamples)
    for (size_t i = 0; i < e.target.size(); ++i) {
      EncodedExample one;
      one.tokens = e.tokens;
      one.tokens.insert(one.tokens.end(), e.target.begin(), e.target.begin() + long(i));
      one.label_token = e.target[i];
      singles.push_back(one);
    }
  double sum = 0;
  for (const EncodedExample& one : singles) {
    BatchBuilder b1(be, P, 64, 4);
    MicroBatch m1;
    b1.fill(m1, {&one});
    ASSERT_EQ(m1.targets, 1);
    stage.forward(-1, m1, prompt);
    sum += stage.head_output().loss[0];
  }
  EXPECT_NEAR(weight * sum, l0, 1e-11);
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, GenerativeLoss, ::testing::Values(Family::Llama, Family::Gpt),
                         [](const auto& i) { return std::string(family_name(i.param)); });

class CachedGeneration : public ::testing::TestWithParam<Family> {};

// Greedy tokens without a cache: the whole sequence recomputed for every
// token (the vocabulary logits at its last row), its prompt in front.
std::vector<int32_t> greedy_without_cache(TinyGenModel& m, const PromptInputs& prompts, int prompt_offset,
                                          int P, std::vector<int32_t> tokens, int n, int64_t choosable) {
  std::vector<int32_t> out;
  const int64_t V = m.config.vocab_size;
  for (int k = 0; k < n; ++k) {
    EncodedExample e;
    e.tokens = tokens;
    MicroBatch mb;
    BatchBuilder one(m.be, P, 64, 1);
    one.fill(mb, {&e});
    // BatchBuilder numbers prompt rows from 0: point them at this prompt's
    // rows, after the earlier prompts' in the stacked tensor.
    std::vector<int32_t> ids(size_t(mb.seq.num_rows));
    m.be.copy_to_host(ids.data(), mb.tokens);
    for (int32_t& t : ids)
      if (t < 0) t -= prompt_offset;
    m.be.copy_from_host(mb.tokens, ids.data());
    m.stage->forward(-1, mb, prompts);
    const std::vector<double> logits = test::to_host(m.be, m.stage->vocab_logits(1));
    int64_t best = 0;
    for (int64_t v = 1; v < choosable; ++v)
      if (logits[size_t(v)] > logits[size_t(best)]) best = v;
    EXPECT_LT(best, V);
    out.push_back(int32_t(best));
    tokens.push_back(int32_t(best));
  }
  return out;
}

TEST_P(CachedGeneration, GreedyTokensEqualRecomputingEverySequence) {
  TinyGenModel m(GetParam(), DType::F64, 64, 16);
  const Tokenizer tok = tokenizer_with_eos(-1);  // no end-of-sequence: every sequence runs to the length
  // Two prompts of different lengths, stacked; four inputs of different lengths.
  const std::vector<int> lens{3, 5};
  Rng rng(8);
  Buffer prompts = test::random_tensor(m.be, DType::F64, Shape{8, m.config.d_model}, rng, 0.5);
  const std::vector<GenerationRequest> reqs = {
      {{72, 101, 108, 108, 111}, 0, 0}, {{32, 33}, 1, 1}, {{65, 66, 67, 68, 69, 70, 71}, 1, 2}, {{90}, 0, 3}};
  std::vector<const GenerationRequest*> batch;
  for (const auto& r : reqs) batch.push_back(&r);
  const int n = 6;
  Decoder dec(*m.stage, *m.runner, m.pipe, tok, DecoderShape{lens, 4, 8, n});
  DecodeOptions o;
  o.max_new_tokens = n;
  const std::vector<Generation> got = dec.generate(batch, prompts.view(), o);
  ASSERT_EQ(got.size(), reqs.size());
  for (size_t b = 0; b < reqs.size(); ++b) {
    const int k = reqs[b].prompt;
    const std::vector<int32_t> want =
        greedy_without_cache(m, prompts.view(), k == 0 ? 0 : lens[0], lens[size_t(k)], reqs[b].tokens, n, 256);
    EXPECT_EQ(got[b].tokens, want) << "request " << b;
    EXPECT_EQ(got[b].finish, "length");
    EXPECT_EQ(got[b].text, tok.decode(want));
  }
  // Each request alone gives what it gave in the mixed batch.
  for (size_t b = 0; b < reqs.size(); ++b) {
    const std::vector<Generation> alone = dec.generate({&reqs[b]}, prompts.view(), o);
    EXPECT_EQ(alone[0].tokens, got[b].tokens) << "request " << b << " alone";
  }
  // Steps: the prompts, the inputs, then one token per sequence (n - 1 more).
  EXPECT_EQ(dec.steps().size(), size_t(2 + n - 1));
}

// A deep prompt (prompt.method deep): its keys and values replace the
// prompt rows' at every layer in the cache too, so the cached tokens are the
// recomputed ones; and they differ from those with a zero prefix.
TEST_P(CachedGeneration, DeepPromptGreedyTokensEqualRecomputingEverySequence) {
  TinyGenModel m(GetParam(), DType::F64, 64, 16);
  const Tokenizer tok = tokenizer_with_eos(-1);
  const int P = 3;
  const ModelConfig& c = m.config;
  Rng rng(12);
  Buffer prefix = test::random_tensor(m.be, DType::F64, Shape{c.n_layers, P, 2 * c.n_kv_heads * c.head_dim},
                                      rng, 1.0);
  const PromptInputs deep(Tensor{}, prefix.view());
  const std::vector<GenerationRequest> reqs = {{{72, 101, 108, 108, 111}, 0, 0}, {{32, 33}, 0, 1}};
  std::vector<const GenerationRequest*> batch;
  for (const auto& r : reqs) batch.push_back(&r);
  const int n = 5;
  Decoder dec(*m.stage, *m.runner, m.pipe, tok, DecoderShape{{P}, 2, 8, n});
  DecodeOptions o;
  o.max_new_tokens = n;
  const std::vector<Generation> got = dec.generate(batch, deep, o);
  Buffer zero = m.be.allocate(DType::F64, prefix.shape());
  const std::vector<Generation> plain = dec.generate(batch, PromptInputs(Tensor{}, zero.view()), o);
  bool differs = false;
  for (size_t b = 0; b < reqs.size(); ++b) {
    EXPECT_EQ(got[b].tokens, greedy_without_cache(m, deep, 0, P, reqs[b].tokens, n, 256)) << "request " << b;
    differs = differs || got[b].tokens != plain[b].tokens;
  }
  EXPECT_TRUE(differs) << "the deep prompt changed no generated token";
}

TEST_P(CachedGeneration, StopsAtEndOfSequenceAndAtStopStrings) {
  TinyGenModel m(GetParam(), DType::F64, 64, 16);
  Rng rng(9);
  Buffer prompts = test::random_tensor(m.be, DType::F64, Shape{3, m.config.d_model}, rng, 0.5);
  const GenerationRequest req{{72, 101, 108}, 0, 0};
  DecodeOptions o;
  o.max_new_tokens = 6;
  std::vector<int32_t> free_run;
  {
    const Tokenizer tok = tokenizer_with_eos(-1);
    Decoder dec(*m.stage, *m.runner, m.pipe, tok, DecoderShape{{3}, 1, 3, 6});
    free_run = dec.generate({&req}, prompts.view(), o)[0].tokens;
  }
  ASSERT_EQ(free_run.size(), 6u);
  // The third token as end-of-sequence: two tokens, finish eos.
  {
    const Tokenizer tok = tokenizer_with_eos(free_run[2]);
    Decoder dec(*m.stage, *m.runner, m.pipe, tok, DecoderShape{{3}, 1, 3, 6});
    const Generation g = dec.generate({&req}, prompts.view(), o)[0];
    const size_t first = size_t(std::find(free_run.begin(), free_run.end(), free_run[2]) - free_run.begin());
    EXPECT_EQ(g.tokens, std::vector<int32_t>(free_run.begin(), free_run.begin() + long(first)));
    EXPECT_EQ(g.finish, "eos");
  }
  // A stop string made of the fourth and fifth tokens' text: cut before it.
  {
    const Tokenizer tok = tokenizer_with_eos(-1);
    Decoder dec(*m.stage, *m.runner, m.pipe, tok, DecoderShape{{3}, 1, 3, 6});
    o.stop = {tok.decode({free_run[3], free_run[4]})};
    const Generation g = dec.generate({&req}, prompts.view(), o)[0];
    const std::string all = tok.decode(free_run);
    EXPECT_EQ(g.finish, "stop");
    EXPECT_EQ(g.text, all.substr(0, all.find(o.stop[0])));
    EXPECT_LE(g.tokens.size(), 5u);
  }
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, CachedGeneration, ::testing::Values(Family::Llama, Family::Gpt),
                         [](const auto& i) { return std::string(family_name(i.param)); });

}  // namespace
}  // namespace sptrain
