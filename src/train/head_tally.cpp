#include "sptrain/train/head_tally.hpp"

#include <algorithm>

namespace sptrain {

void HeadTally::reset(const std::vector<MicroBatch*>* mbs, int labels) {
  batches = mbs;
  n_labels = labels;
  loss_sum = 0;
  correct = examples = 0;
  confusion.assign(size_t(labels) * size_t(labels), 0);
}

void HeadTally::on_output(int micro_batch, const HeadOutput& out) {
  const MicroBatch& mb = *(*batches)[size_t(micro_batch)];
  for (size_t b = 0; b < out.loss.size(); ++b) {
    const double* s = out.label_scores.data() + b * size_t(n_labels);
    const int pred = int(std::max_element(s, s + n_labels) - s);
    const int truth = mb.host_labels[b];
    loss_sum += out.loss[b];
    correct += pred == truth;
    ++examples;
    ++confusion[size_t(truth * n_labels + pred)];
  }
}

}  // namespace sptrain
