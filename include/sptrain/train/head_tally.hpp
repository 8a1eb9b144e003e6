#pragma once
// Adds up the loss (over target rows), correct predictions and confusion
// matrix (classify tasks) of the examples the last stage scores,
// micro-batch by micro-batch, as the pipeline runner hands over its outputs.
#include <vector>

#include "sptrain/pipeline/runner.hpp"

namespace sptrain {

struct HeadTally final : PipelineRunner::OutputSink {
  const std::vector<MicroBatch*>* batches = nullptr;
  int n_labels = 0;  // 0: a generate task (no predictions to count)
  double loss_sum = 0;
  int64_t correct = 0, examples = 0, targets = 0;
  std::vector<int64_t> confusion;  // [true label][predicted label]
  // With keep_scores (evaluation for prompt ensembles): each micro-batch's
  // label logits [its examples, n_labels], by micro-batch index.
  bool keep_scores = false;
  std::vector<std::vector<double>> scores_of_batch;

  // Starts over for a new set of micro-batches; reserves, so that later resets do not allocate.
  void reset(const std::vector<MicroBatch*>* mbs, int labels);
  // An empty output (a GPU step's, whose sums stay on the device) adds nothing.
  void on_output(int micro_batch, const HeadOutput& out) override;
};

}  // namespace sptrain
