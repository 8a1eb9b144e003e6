#pragma once
// Loss, accuracy and confusion of a prompt over a data set, forward passes
// only, split over the replicas; for a generate task also the text it
// generates, scored against the references (BLEU, ROUGE-L, exact match).
#include <cstdint>
#include <vector>

#include "sptrain/metrics/text_metrics.hpp"
#include "sptrain/train/session.hpp"

namespace sptrain {

struct EvalResult {
  int64_t examples = 0;
  double loss = 0;       // mean cross-entropy over target tokens (one per example: classify)
  double accuracy = 0;   // classify
  std::vector<int64_t> confusion;  // [true label][predicted label], n_labels^2
  TextScores text;       // generate: greedy generation of task.eval's inputs
};

// Evaluates the session's prompt (prompt->values()) over `data` in chunks of
// train.eval_batch_size; every rank returns the same result. With
// `label_logits` (classify tasks), every rank also receives each example's
// label logits, [data.size(), labels] in data order (prompt ensembles).
EvalResult evaluate(Session& s, const std::vector<EncodedExample>& data,
                    std::vector<double>* label_logits = nullptr);

// Generate task: greedy generation (up to task.max_target_length new tokens)
// for each input, in chunks of train.eval_batch_size, scored against its
// references. Every rank returns the same scores; `hypotheses` (when given)
// receives the generated texts of this replica's share of the inputs, with
// their indices in `indices`.
TextScores evaluate_generation(Session& s, const std::vector<ReferencedInput>& inputs,
                               std::vector<std::string>* hypotheses = nullptr,
                               std::vector<int64_t>* indices = nullptr);

// Both, for the session's evaluation data: the loss (and accuracy) over
// data.eval and, for a generate task, the generation scores over data.eval_inputs.
EvalResult evaluate_task(Session& s);

}  // namespace sptrain
