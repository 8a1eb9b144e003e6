#pragma once
// Scores of generated text against references, as the reference tools
// compute them (tests/metrics checks both on a golden file that
// tools/gen_metrics_golden.py writes with the tools themselves):
// - BLEU: sacreBLEU's corpus BLEU with its defaults (13a tokenization, case
//   kept, exp smoothing, 4-grams, the closest reference length, n-gram
//   counts clipped by their most frequent reference), several references
//   per hypothesis; 0-100.
// - ROUGE-L: rouge-score's F-measure (its default tokenizer: lowercase, runs
//   of [a-z0-9]; no stemming) against the reference that scores best
//   (score_multi), averaged over the hypotheses; reported x 100.
// - exact match: the hypothesis equals one reference, both with leading and
//   trailing whitespace removed; the share of hypotheses, x 100.
// Every score is built from sums over hypotheses, so replicas can each score
// their share and add (TextScoreSums::values).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace sptrain {

// sacreBLEU's `13a` tokenizer (mteval-v13a): the tokens of the text.
std::vector<std::string> bleu_tokens(const std::string& text);
// rouge-score's default tokenizer without stemming.
std::vector<std::string> rouge_tokens(const std::string& text);

// One hypothesis's BLEU statistics against its references.
struct BleuStats {
  double hyp_len = 0, ref_len = 0;
  std::array<double, 4> correct{}, total{};
};
BleuStats bleu_stats(const std::string& hypothesis, const std::vector<std::string>& references);
// Corpus BLEU (0-100) from statistics summed over the hypotheses.
double bleu_score(const BleuStats& sums);

// ROUGE-L F-measure (0-1) of the hypothesis against its best reference.
double rouge_l(const std::string& hypothesis, const std::vector<std::string>& references);
bool exact_match(const std::string& hypothesis, const std::vector<std::string>& references);

struct TextScores {
  double bleu = 0, rouge_l = 0, exact_match = 0;  // 0-100 each
  int64_t count = 0;                              // hypotheses scored
};

// Sums over hypotheses, from which the corpus scores follow.
class TextScoreSums {
 public:
  void add(const std::string& hypothesis, const std::vector<std::string>& references);
  TextScores scores() const;
  // The sums as numbers, to add over ranks (comm/control.hpp's control_sum) and back.
  std::vector<double> values() const;
  void set_values(const std::vector<double>& v);

 private:
  BleuStats bleu_;
  double rouge_l_ = 0, exact_ = 0, count_ = 0;
};

}  // namespace sptrain
