// Prompt ensembles: the combination rules against hand-worked answers, and
// `sptrain eval` / `sptrain infer` with several prompts against each prompt
// scored alone, combined here by the rules written out again.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/run_binary.hpp"
#include "../support/test_util.hpp"
#include "infer_env.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/infer/ensemble.hpp"
#include "sptrain/infer/predictor.hpp"
#include "sptrain/prompt/stored_prompt.hpp"
#include "sptrain/train/evaluate.hpp"
#include "sptrain/train/prompt_state.hpp"
#include "sptrain/train/session.hpp"

namespace sptrain {
namespace {

TEST(Ensemble, LabelProbabilitiesAreTheSoftmax) {
  const double logits[3] = {1.0, 3.0, -2.0};
  const std::vector<double> p = label_probabilities(logits, 3);
  const double z = std::exp(1.0) + std::exp(3.0) + std::exp(-2.0);
  EXPECT_NEAR(p[0], std::exp(1.0) / z, 1e-15);
  EXPECT_NEAR(p[1], std::exp(3.0) / z, 1e-15);
  EXPECT_NEAR(p[2], std::exp(-2.0) / z, 1e-15);
  // Large logits do not overflow: the shift by the largest one.
  const double big[2] = {1000.0, 999.0};
  const std::vector<double> q = label_probabilities(big, 2);
  EXPECT_NEAR(q[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-15);
}

TEST(Ensemble, MeanAndVoteCanDisagree) {
  // Two members lean weakly to label 0, one is sure of label 1: the vote says
  // 0, the mean of the probabilities (0.4, 0.6) says 1.
  const double a[2] = {0.55, 0.45}, b[2] = {0.55, 0.45}, c[2] = {0.1, 0.9};
  const EnsembleAnswer e = combine_ensemble({a, b, c}, 2);
  EXPECT_NEAR(e.mean_probs[0], 1.2 / 3, 1e-15);
  EXPECT_NEAR(e.mean_probs[1], 1.8 / 3, 1e-15);
  EXPECT_EQ(e.votes, (std::vector<int>{2, 1}));
  EXPECT_EQ(e.by_vote, 0);
  EXPECT_EQ(e.by_mean, 1);
}

TEST(Ensemble, ATiedVoteGoesToTheLargerMeanProbability) {
  // Labels 0 and 2 get one vote each; label 2's mean probability is larger.
  const double a[3] = {0.5, 0.2, 0.3}, b[3] = {0.1, 0.2, 0.7};
  const EnsembleAnswer e = combine_ensemble({a, b}, 3);
  EXPECT_EQ(e.votes, (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(e.by_vote, 2);
  EXPECT_EQ(e.by_mean, 2);
  // One member: both rules give its own answer.
  const EnsembleAnswer one = combine_ensemble({a}, 3);
  EXPECT_EQ(one.by_vote, 0);
  EXPECT_EQ(one.by_mean, 0);
  EXPECT_EQ(one.mean_probs, (std::vector<double>{0.5, 0.2, 0.3}));
}

// ---- the commands ----

using ::testing::AllOf;
using ::testing::HasSubstr;
using Result = test::CommandResult;

// The combination, written out again: per label the mean probability and the
// votes; by mean the first largest mean, by vote the most votes, a tie to the
// larger mean.
struct Combined {
  std::vector<double> mean;
  std::vector<int> votes;
  int by_mean = 0, by_vote = 0;
};
Combined combine_by_hand(const std::vector<std::vector<double>>& probs) {
  Combined c;
  const size_t L = probs[0].size();
  c.mean.assign(L, 0.0);
  c.votes.assign(L, 0);
  for (const std::vector<double>& p : probs) {
    size_t top = 0;
    for (size_t l = 0; l < L; ++l) {
      c.mean[l] += p[l] / double(probs.size());
      if (p[l] > p[top]) top = l;
    }
    ++c.votes[top];
  }
  for (size_t l = 0; l < L; ++l) {
    if (c.mean[l] > c.mean[size_t(c.by_mean)]) c.by_mean = int(l);
    if (c.votes[l] > c.votes[size_t(c.by_vote)] ||
        (c.votes[l] == c.votes[size_t(c.by_vote)] && c.mean[l] > c.mean[size_t(c.by_vote)]))
      c.by_vote = int(l);
  }
  return c;
}

std::vector<double> softmax(const double* z, size_t n) {
  double top = z[0], sum = 0;
  for (size_t i = 1; i < n; ++i) top = std::max(top, z[i]);
  std::vector<double> p(n);
  for (size_t i = 0; i < n; ++i) sum += p[i] = std::exp(z[i] - top);
  for (double& x : p) x /= sum;
  return p;
}

// Label words on which the random prompts below disagree for most texts
// (with "n" and "p" all three always answer "n").
const std::vector<std::pair<std::string, std::string>> kLabels = {{"0", "n"}, {"1", "t"}};

// Three prompts for one sentiment task on a tiny random model (random
// prompts, so that the members disagree), and a fourth of another length.
class EnsembleCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::temp_path("ensemble_cli");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    model_ = test::tiny_model(Family::Llama, "ensemble_cli/model.h5");
    for (uint64_t seed : {11, 12, 13}) {
      members_.push_back(dir_ + "/p" + std::to_string(seed) + ".h5");
      write_checkpoint(members_.back(),
                       test::task_checkpoint(model_, 4, seed, "Review: {text}\nSentiment:", kLabels, 48));
    }
    longer_ = dir_ + "/p6.h5";
    write_checkpoint(longer_, test::task_checkpoint(model_, 6, 14, "Review: {text}\nSentiment:",
                                                    kLabels, 48));
    const std::string data = test::sst2_subset("dev", 20, "ensemble_cli/dev.tsv");
    config_ = test::tiny_config_for(model_, data, data, dir_ + "/run");
    config_.task.labels = kLabels;
    config_.train.eval_batch_size = 6;  // several chunks, the last one short
    config_path_ = dir_ + "/config.yaml";
    std::ofstream(config_path_) << dump_config(config_);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  Result run(const std::vector<std::string>& args, const std::string& input = "") {
    const std::string in = dir_ + "/stdin.jsonl";
    std::ofstream(in, std::ios::binary) << input;
    return test::run_sptrain(args, dir_, in);
  }

  static std::string dir_, model_, longer_, config_path_;
  static std::vector<std::string> members_;
  static Config config_;
};
std::string EnsembleCli::dir_, EnsembleCli::model_, EnsembleCli::longer_, EnsembleCli::config_path_;
std::vector<std::string> EnsembleCli::members_;
Config EnsembleCli::config_;

TEST_F(EnsembleCli, EvalReportsEachMemberAndBothCombinations) {
  // Each member alone, in process: its figures, and its label logits per example.
  Config c = config_;
  Session s(c, make_solo_grid(), SessionMode::EvalOnly);
  const std::vector<EncodedExample>& data = s.data.eval;
  std::vector<std::vector<std::vector<double>>> probs(data.size());  // [example][member][label]
  std::vector<EvalResult> alone;
  for (const std::string& m : members_) {
    set_stored_prompt(s, read_stored_prompt(m));
    alone.push_back(evaluate(s, data));
    std::vector<double> logits;
    const EvalResult again = evaluate(s, data, &logits);
    ASSERT_EQ(logits.size(), data.size() * 2);
    // The logits are each example's, in data order: they give its accuracy.
    int64_t right = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      right += (logits[2 * i + 1] > logits[2 * i]) == (data[i].label == 1);
      probs[i].push_back(softmax(&logits[2 * i], 2));
    }
    EXPECT_DOUBLE_EQ(double(right) / double(data.size()), again.accuracy) << m;
    EXPECT_EQ(again.loss, alone.back().loss) << m;
  }
  int64_t by_mean = 0, by_vote = 0, disagree = 0;
  double nll = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const Combined k = combine_by_hand(probs[i]);
    by_mean += k.by_mean == data[i].label;
    by_vote += k.by_vote == data[i].label;
    disagree += k.votes[0] != 0 && k.votes[1] != 0;
    nll -= std::log(k.mean[size_t(data[i].label)]);
  }
  EXPECT_GT(disagree, 0) << "the members always agree: the test would not see the combination";

  const Result r = run({"eval", config_path_, "--prompt", members_[0], "--prompt", members_[1], "--prompt",
                        members_[2]});
  ASSERT_EQ(r.code, 0) << r.err;
  const double n = double(data.size());
  char line[256];
  EXPECT_THAT(r.out, HasSubstr("prompt ensemble of 3:")) << r.out;
  for (size_t m = 0; m < members_.size(); ++m) {
    std::snprintf(line, sizeof line, "(checkpoint, 4 x 16, step 7): loss %.4f, accuracy %.4f", alone[m].loss,
                  alone[m].accuracy);
    EXPECT_THAT(r.out, AllOf(HasSubstr(members_[m]), HasSubstr(line))) << r.out;
  }
  std::snprintf(line, sizeof line, "ensemble, mean of label probabilities: accuracy %.4f, label NLL %.4f\n",
                double(by_mean) / n, nll / n);
  EXPECT_THAT(r.out, HasSubstr(line)) << r.out;
  std::snprintf(line, sizeof line, "ensemble, majority vote: accuracy %.4f\n", double(by_vote) / n);
  EXPECT_THAT(r.out, HasSubstr(line)) << r.out;

  // One prompt twice: the ensemble is that prompt.
  const Result twice = run({"eval", config_path_, "--prompt", members_[0], "--prompt", members_[0]});
  ASSERT_EQ(twice.code, 0) << twice.err;
  std::snprintf(line, sizeof line, "ensemble, majority vote: accuracy %.4f\n", alone[0].accuracy);
  EXPECT_THAT(twice.out, HasSubstr(line)) << twice.out;
}

TEST_F(EnsembleCli, EvalRefusesMembersOfDifferentLengths) {
  const Result r = run({"eval", config_path_, "--prompt", members_[0], "--prompt", longer_});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("prompt ensemble"), HasSubstr(longer_), HasSubstr("same length")));
}

TEST_F(EnsembleCli, InferCombinesTheMembersOfATask) {
  // Each member alone: its label probabilities per text.
  const std::vector<std::string> texts = {"a fine film", "dull and long", "I loved it", "no", "meh",
                                          "the best thing this year"};
  std::vector<std::vector<std::vector<double>>> probs(texts.size());
  for (const std::string& m : members_) {
    Predictor one(model_, {parse_task_prompt("s=" + m)}, PredictorOptions{1, 1});
    for (size_t i = 0; i < texts.size(); ++i) {
      const EncodedExample e = one.encode(0, texts[i]);
      probs[i].push_back(one.predict({&e}, {0})[0].probs);
    }
  }
  std::string input;
  for (size_t i = 0; i < texts.size(); ++i) {
    // The single-prompt task "one" between the ensemble's lines.
    input += nlohmann::json({{"task", "s"}, {"text", texts[i]}, {"id", int(i)}}).dump() + "\n";
    if (i % 2 == 0) input += nlohmann::json({{"task", "one"}, {"text", texts[i]}}).dump() + "\n";
  }
  const std::vector<std::string> labels = {"0", "1"};
  // Batches of 4 sequences hold one ensemble line (3) at a time; of 7, more.
  for (const char* batch : {"4", "7"}) {
    const Result r = run({"infer", "--model", model_, "--prompt", "s=" + members_[0], "--prompt", "one=" + members_[1],
                          "--prompt", "s=" + members_[1], "--prompt", "s=" + members_[2], "--batch-size", batch,
                          "--threads", "1"},
                         input);
    ASSERT_EQ(r.code, 0) << r.err;
    std::istringstream lines(r.out);
    std::string text;
    size_t i = 0, singles = 0, disagree = 0;
    while (std::getline(lines, text)) {
      const nlohmann::ordered_json j = nlohmann::ordered_json::parse(text);
      if (j["task"] == "one") {
        ++singles;
        EXPECT_TRUE(j["scores"]["0"].contains("logit")) << text;
        EXPECT_FALSE(j.contains("members")) << text;
        continue;
      }
      ASSERT_LT(i, texts.size());
      EXPECT_EQ(j["id"], int(i));
      const Combined k = combine_by_hand(probs[i]);
      EXPECT_EQ(j["label"], labels[size_t(k.by_mean)]) << text;
      EXPECT_EQ(j["vote"], labels[size_t(k.by_vote)]) << text;
      ASSERT_EQ(j["members"].size(), 3u) << text;
      for (size_t m = 0; m < 3; ++m)
        EXPECT_EQ(j["members"][m], labels[probs[i][m][1] > probs[i][m][0] ? 1 : 0]) << text;
      disagree += k.votes[0] != 0 && k.votes[1] != 0;
      for (size_t l = 0; l < 2; ++l) {
        EXPECT_NEAR(j["scores"][labels[l]]["prob"].get<double>(), k.mean[l], 1e-5) << text;
        EXPECT_EQ(j["scores"][labels[l]]["votes"].get<int>(), k.votes[l]) << text;
      }
      ++i;
    }
    EXPECT_EQ(i, texts.size()) << "batch " << batch;
    EXPECT_GT(disagree, 0u) << "the members always agree: the test would not see the combination";
    EXPECT_EQ(singles, 3u) << "batch " << batch;
  }
}

TEST_F(EnsembleCli, InferRefusesAnEnsembleLargerThanTheBatchOrOfTwoTasks) {
  const std::string line = nlohmann::json({{"task", "s"}, {"text", "x"}}).dump() + "\n";
  Result r = run({"infer", "--model", model_, "--prompt", "s=" + members_[0], "--prompt", "s=" + members_[1],
                  "--batch-size", "1"},
                 line);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("task 's'"), HasSubstr("--batch-size 2")));
  const std::string topic = dir_ + "/topic.h5";
  write_checkpoint(topic, test::task_checkpoint(model_, 4, 21, "Topic of {text}? ", {{"a", "a"}, {"b", "b"}}, 20));
  r = run({"infer", "--model", model_, "--prompt", "s=" + members_[0], "--prompt", "s=" + topic}, line);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("task 's'"), HasSubstr(topic), HasSubstr("different tasks")));
}

}  // namespace
}  // namespace sptrain
