#include "sptrain/train/evaluate.hpp"

#include <algorithm>

#include "sptrain/comm/control.hpp"

namespace sptrain {

EvalResult evaluate(Session& s, const std::vector<EncodedExample>& data) {
  const ParallelState& ps = *s.parallel;
  const int n_labels = s.task->num_labels();
  const Range share = split_range(int64_t(data.size()), ps.layout().data, ps.coords().dp);
  const int chunk = s.config.train.eval_batch_size;
  MicroBatchSet& mbs = *s.eval_batch;
  HeadTally& tally = s.tally;
  tally.reset(nullptr, n_labels);
  for (int64_t begin = share.begin; begin < share.end(); begin += chunk) {
    s.examples.clear();
    for (int64_t i = begin; i < std::min(share.end(), begin + chunk); ++i) s.examples.push_back(&data[size_t(i)]);
    mbs.fill(s.examples);
    tally.batches = &mbs.batches();
    s.runner->evaluate(mbs.batches(), s.prompt->device(), tally);  // device(): the newest values
  }
  // Only one rank per replica reports; the others add zeros.
  const bool reports = s.reports_loss();
  double examples = reports ? double(tally.examples) : 0.0;
  double loss_sum = reports ? tally.loss_sum : 0.0;
  double correct = reports ? double(tally.correct) : 0.0;
  control_sum(ps.host(), {&examples, &loss_sum, &correct});
  std::vector<double> confusion(tally.confusion.size(), 0.0);
  if (reports)
    for (size_t i = 0; i < confusion.size(); ++i) confusion[i] = double(tally.confusion[i]);
  control_sum(ps.host(), confusion);

  EvalResult r;
  r.examples = int64_t(examples);
  r.loss = examples > 0 ? loss_sum / examples : 0;
  r.accuracy = examples > 0 ? correct / examples : 0;
  for (double c : confusion) r.confusion.push_back(int64_t(c));
  return r;
}

}  // namespace sptrain
