// The training loop on a small random model: resuming is exact, the prompt
// learns, the frozen weights never change, and a step allocates nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <filesystem>
#include <fstream>
#include <new>
#include <nlohmann/json.hpp>

#include "../support/train_env.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/io/fingerprint.hpp"
#include "sptrain/optim/optimizer.hpp"
#include "sptrain/prompt/prompt_init.hpp"
#include "sptrain/train/head_tally.hpp"
#include "sptrain/train/sampler.hpp"
#include "sptrain/train/train_step.hpp"
#include "sptrain/train/trainer.hpp"

// Counts heap allocations while g_counting is set. The replacement operators
// pair malloc with free; GCC cannot see that and warns, wrongly.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<bool> g_counting{false};
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
  if (g_counting) ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace sptrain {
namespace {

using test::read_metrics;

std::map<int64_t, double> losses(const std::vector<nlohmann::json>& metrics) {
  std::map<int64_t, double> out;
  for (const auto& j : metrics)
    if (j.contains("loss")) out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  return out;
}

TEST(Training, ResumedRunMatchesUninterruptedRunBitForBit) {
  const std::string model = test::tiny_model(Family::Llama, "resume_model.h5");
  const std::string train_data = test::sst2_subset("train", 40, "resume_train.tsv");
  const std::string dir_a = test::temp_path("resume_a"), dir_b = test::temp_path("resume_b");
  std::filesystem::remove_all(dir_a);
  std::filesystem::remove_all(dir_b);

  // A: 6 steps without a break.
  Config a = test::tiny_config_for(model, train_data, "", dir_a);
  train(a, make_solo_grid());
  // B: stop after 3 steps (the checkpoint at step 3), then resume to 6.
  Config b = test::tiny_config_for(model, train_data, "", dir_b);
  b.train.steps = 3;
  train(b, make_solo_grid());
  ASSERT_TRUE(std::filesystem::exists(dir_b + "/step_000003.h5"));
  b.train.steps = 6;
  const TrainSummary resumed = train(b, make_solo_grid());
  EXPECT_EQ(resumed.steps_done, 6);

  const auto la = losses(read_metrics(dir_a)), lb = losses(read_metrics(dir_b));
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 6u);  // the resumed log keeps steps 1-3 once
  for (int64_t s = 1; s <= 6; ++s) EXPECT_EQ(la.at(s), lb.at(s)) << "step " << s;
  // The final prompts are identical too.
  const Checkpoint ca = read_checkpoint(dir_a + "/step_000006.h5");
  const Checkpoint cb = read_checkpoint(dir_b + "/step_000006.h5");
  EXPECT_EQ(ca.prompt, cb.prompt);
}

TEST(Training, PromptLearnsAFixedBatchAndWeightsNeverChange) {
  const std::string model = test::tiny_model(Family::Gpt, "learn_model.h5", 2, 5, 64);
  const std::string data = test::sst2_subset("train", 8, "learn_train.tsv");
  Config c = test::tiny_config_for(model, data, data, test::temp_path("learn_run"));
  c.train.batch_size = 8;
  c.train.micro_batch_size = 8;
  c.train.resume = "never";
  c.prompt.length = 16;
  c.optim.lr = 0.1;
  Session session(c, make_solo_grid(), SessionMode::Train);
  Rng rng(c.train.seed);
  session.prompt->values() = init_prompt(c.prompt, session.model, session.model_file,
                                         *session.tokenizer, *session.task, rng);
  auto weights_hash = [&] {
    Fingerprint f;
    std::vector<char> host;
    session.stage->for_each_weight([&](const std::string& name, const Tensor& t) {
      host.resize(t.bytes());
      session.backend->copy_to_host(host.data(), t);
      f.update(name);
      f.update(host.data(), host.size());
    });
    return f.hex();
  };
  const std::string before = weights_hash();
  auto optimizer = make_prompt_optimizer(session);
  std::vector<int64_t> batch = {0, 1, 2, 3, 4, 5, 6, 7};
  double first = 0, last = 0;
  for (int step = 1; step <= 150; ++step) {
    const StepResult r = train_step(session, *optimizer, batch, c.optim.lr);
    if (step == 1) first = r.loss;
    last = r.loss;
  }
  std::printf("label loss %.4f -> %.4f\n", first, last);
  EXPECT_LT(last, 0.5 * first) << "label loss went " << first << " -> " << last;
  EXPECT_EQ(weights_hash(), before) << "a frozen weight changed";
}

// A gradient that is not finite skips the update (the prompt stays as it
// was) and the optimizer's step count still advances with the schedule.
TEST(Training, ANonFiniteGradientSkipsTheUpdate) {
  const std::string model = test::tiny_model(Family::Llama, "nonfinite_model.h5");
  const std::string data = test::sst2_subset("train", 8, "nonfinite_train.tsv");
  Config c = test::tiny_config_for(model, data, "", test::temp_path("nonfinite_run"));
  Session session(c, make_solo_grid(), SessionMode::Train);
  Rng rng(c.train.seed);
  session.prompt->values() = init_prompt(c.prompt, session.model, session.model_file,
                                         *session.tokenizer, *session.task, rng);
  auto optimizer = make_prompt_optimizer(session);
  const std::vector<int64_t> batch = {0, 1, 2, 3, 4, 5, 6, 7};
  const StepResult ok = train_step(session, *optimizer, batch, c.optim.lr);
  EXPECT_FALSE(ok.skipped);
  session.prompt->values()[3] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> before = session.prompt->values();
  const StepResult bad = train_step(session, *optimizer, batch, c.optim.lr);
  EXPECT_TRUE(bad.skipped);
  EXPECT_FALSE(std::isfinite(bad.grad_norm));
  EXPECT_EQ(optimizer->step_count(), 2);
  const std::vector<float>& after = session.prompt->values();
  for (size_t i = 0; i < after.size(); ++i)
    if (i != 3) {
      ASSERT_EQ(after[i], before[i]) << "value " << i << " changed on a skipped step";
    }
}

TEST(Training, AStepAllocatesNothing) {
  const std::string model = test::tiny_model(Family::Llama, "alloc_model.h5");
  const std::string data = test::sst2_subset("train", 32, "alloc_train.tsv");
  Config c = test::tiny_config_for(model, data, "", test::temp_path("alloc_run"));
  Session session(c, make_solo_grid(), SessionMode::Train);
  auto optimizer = make_prompt_optimizer(session);
  DataSampler sampler(32, 1, true);
  std::vector<int64_t> batch;
  batch.reserve(8);
  auto step = [&] {
    sampler.next(8, batch);
    train_step(session, *optimizer, batch, 0.01);
  };
  // Warm up over a whole epoch so every buffer has seen its largest batch.
  for (int i = 0; i < 4; ++i) step();
  g_allocations = 0;
  g_counting = true;
  for (int i = 0; i < 8; ++i) step();
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0) << "heap allocations during 8 training steps";
}

TEST(Sampler, SameOrderForSameSeedAndSeekContinuesExactly) {
  DataSampler a(10, 7, true), b(10, 7, true);
  std::vector<int64_t> x, y;
  a.next(25, x);
  b.next(13, y);
  DataSampler c(10, 7, true);
  c.seek(b.epoch(), b.position());
  std::vector<int64_t> rest;
  c.next(12, rest);
  y.insert(y.end(), rest.begin(), rest.end());
  EXPECT_EQ(x, y);
  // Each epoch is a permutation.
  std::vector<int64_t> epoch(x.begin(), x.begin() + 10);
  std::sort(epoch.begin(), epoch.end());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(epoch[size_t(i)], i);
  DataSampler plain(5, 7, false);
  plain.next(5, x);
  EXPECT_EQ(x, (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

}  // namespace
// A GPU step's last stage hands the tally empty outputs (its loss and counts
// add up on the device): the tally adds nothing and reads no label scores
// (it crashed on every GPU classify step before). A host output counts.
TEST(HeadTally, AnEmptyOutputAddsNothing) {
  MicroBatch mb;
  mb.seq.num_examples = 3;
  mb.host_labels = {0, 1, 0};
  std::vector<MicroBatch*> mbs{&mb};
  HeadTally tally;
  tally.reset(&mbs, 2);
  tally.on_output(0, HeadOutput{});
  EXPECT_EQ(tally.examples, 0);
  EXPECT_EQ(tally.targets, 0);
  EXPECT_EQ(tally.correct, 0);
  EXPECT_EQ(tally.loss_sum, 0.0);
  HeadOutput out;
  out.loss = {0.5, 1.0, 2.0};
  out.label_scores = {1, 0, 0, 1, 0, 1};  // predicts 0, 1, 1
  tally.on_output(0, out);
  EXPECT_EQ(tally.examples, 3);
  EXPECT_EQ(tally.correct, 2);
  EXPECT_EQ(tally.loss_sum, 3.5);
}

}  // namespace sptrain
