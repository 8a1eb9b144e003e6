// BLEU, ROUGE-L and their tokenizers against sacreBLEU and rouge-score, on
// tests/golden/text_metrics.json (tools/gen_metrics_golden.py writes it with
// the two packages themselves).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "sptrain/metrics/text_metrics.hpp"

namespace sptrain {
namespace {

const nlohmann::json& golden() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(SPTRAIN_SOURCE_DIR) + "/tests/golden/text_metrics.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

TEST(TextMetrics, BleuTokensAreSacrebleus13a) {
  for (const auto& c : golden()["bleu_tokens"])
    EXPECT_EQ(bleu_tokens(c["text"].get<std::string>()), c["tokens"].get<std::vector<std::string>>())
        << c["text"];
}

TEST(TextMetrics, RougeTokensAreRougeScores) {
  for (const auto& c : golden()["rouge_tokens"])
    EXPECT_EQ(rouge_tokens(c["text"].get<std::string>()), c["tokens"].get<std::vector<std::string>>())
        << c["text"];
}

TEST(TextMetrics, CorpusBleuAndRougeLMatchTheReferenceTools) {
  int corpora = 0;
  for (const auto& c : golden()["corpora"]) {
    const auto hyps = c["hypotheses"].get<std::vector<std::string>>();
    const auto refs = c["references"].get<std::vector<std::vector<std::string>>>();
    const auto rouge = c["rouge_l"].get<std::vector<double>>();
    BleuStats sum;
    TextScoreSums sums;
    double rouge_sum = 0;
    for (size_t i = 0; i < hyps.size(); ++i) {
      const BleuStats s = bleu_stats(hyps[i], refs[i]);
      sum.hyp_len += s.hyp_len;
      sum.ref_len += s.ref_len;
      for (size_t n = 0; n < 4; ++n) {
        sum.correct[n] += s.correct[n];
        sum.total[n] += s.total[n];
      }
      EXPECT_NEAR(rouge_l(hyps[i], refs[i]), rouge[i], 1e-12) << c["name"] << " hypothesis " << i;
      rouge_sum += rouge[i];
      sums.add(hyps[i], refs[i]);
    }
    const std::string name = c["name"];
    EXPECT_EQ(sum.hyp_len, c["sys_len"].get<double>()) << name;
    EXPECT_EQ(sum.ref_len, c["ref_len"].get<double>()) << name;
    for (size_t n = 0; n < 4; ++n) {
      EXPECT_EQ(sum.correct[n], c["counts"][n].get<double>()) << name << " " << n + 1 << "-grams";
      EXPECT_EQ(sum.total[n], c["totals"][n].get<double>()) << name << " " << n + 1 << "-grams";
    }
    EXPECT_NEAR(bleu_score(sum), c["bleu"].get<double>(), 1e-9) << name;
    const TextScores t = sums.scores();
    EXPECT_NEAR(t.bleu, c["bleu"].get<double>(), 1e-9) << name;
    EXPECT_NEAR(t.rouge_l, 100.0 * rouge_sum / double(hyps.size()), 1e-9) << name;
    EXPECT_EQ(t.count, int64_t(hyps.size()));
    ++corpora;
  }
  EXPECT_GE(corpora, 8);
}

TEST(TextMetrics, ExactMatchIgnoresOuterWhitespaceOnly) {
  EXPECT_TRUE(exact_match("  The Eagle is a pub.\n", {"x", "The Eagle is a pub."}));
  EXPECT_FALSE(exact_match("The Eagle is a pub", {"The Eagle is a pub."}));
  EXPECT_FALSE(exact_match("the eagle is a pub.", {"The Eagle is a pub."}));
  TextScoreSums sums;
  sums.add("a b", {"a b"});
  sums.add("a c", {"a b"});
  EXPECT_DOUBLE_EQ(sums.scores().exact_match, 50.0);
}

TEST(TextMetrics, SumsAddOverShardsToTheWholeCorpusScore) {
  // Replicas score their shares and add the sums (control_sum).
  const auto& c = golden()["corpora"].back();
  const auto hyps = c["hypotheses"].get<std::vector<std::string>>();
  const auto refs = c["references"].get<std::vector<std::vector<std::string>>>();
  TextScoreSums a, b, whole;
  for (size_t i = 0; i < hyps.size(); ++i) {
    (i < hyps.size() / 3 ? a : b).add(hyps[i], refs[i]);
    whole.add(hyps[i], refs[i]);
  }
  std::vector<double> va = a.values(), vb = b.values();
  for (size_t i = 0; i < va.size(); ++i) va[i] += vb[i];
  TextScoreSums merged;
  merged.set_values(va);
  EXPECT_NEAR(merged.scores().bleu, whole.scores().bleu, 1e-12);
  EXPECT_NEAR(merged.scores().rouge_l, whole.scores().rouge_l, 1e-9);
  EXPECT_NEAR(merged.scores().bleu, c["bleu"].get<double>(), 1e-9);
}

}  // namespace
}  // namespace sptrain
