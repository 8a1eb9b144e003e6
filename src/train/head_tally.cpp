#include "sptrain/train/head_tally.hpp"

#include <algorithm>

namespace sptrain {

void HeadTally::reset(const std::vector<MicroBatch*>* mbs, int labels) {
  batches = mbs;
  n_labels = labels;
  loss_sum = 0;
  correct = examples = targets = 0;
  confusion.assign(size_t(labels) * size_t(labels), 0);
}

void HeadTally::on_output(int micro_batch, const HeadOutput& out) {
  // A GPU step adds the loss and the counts up on the device
  // (LmHead::device_sums): its outputs are empty and there is nothing here.
  if (out.loss.empty()) return;
  const MicroBatch& mb = *(*batches)[size_t(micro_batch)];
  for (double loss : out.loss) loss_sum += loss;
  targets += int64_t(out.loss.size());
  examples += mb.seq.num_examples;
  if (n_labels == 0) return;
  if (keep_scores)
    scores_of_batch[size_t(micro_batch)].assign(
        out.label_scores.begin(), out.label_scores.begin() + int64_t(mb.seq.num_examples) * n_labels);
  for (int b = 0; b < mb.seq.num_examples; ++b) {
    const double* s = out.label_scores.data() + size_t(b) * size_t(n_labels);
    const int pred = int(std::max_element(s, s + n_labels) - s);
    const int truth = mb.host_labels[size_t(b)];
    correct += pred == truth;
    ++confusion[size_t(truth * n_labels + pred)];
  }
}

}  // namespace sptrain
