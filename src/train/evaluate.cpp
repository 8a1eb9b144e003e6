#include "sptrain/train/evaluate.hpp"

#include <algorithm>
#include <cstdio>

#include "sptrain/comm/control.hpp"

namespace sptrain {

EvalResult evaluate(Session& s, const std::vector<EncodedExample>& data, std::vector<double>* label_logits) {
  const ParallelState& ps = *s.parallel;
  const int n_labels = s.task->num_labels();
  SPT_CHECK(!label_logits || n_labels > 0, "internal error: label logits of a task without labels");
  const Range share = split_range(int64_t(data.size()), ps.layout().data, ps.coords().dp);
  const int chunk = s.config.train.eval_batch_size;
  MicroBatchSet& mbs = *s.eval_batch;
  HeadTally& tally = s.tally;
  tally.keep_scores = label_logits != nullptr;
  tally.reset(nullptr, n_labels);
  // This replica's examples' logits at their place; the others' stay 0 for the sum below.
  if (label_logits) label_logits->assign(data.size() * size_t(n_labels), 0.0);
  for (int64_t begin = share.begin; begin < share.end(); begin += chunk) {
    s.examples.clear();
    for (int64_t i = begin; i < std::min(share.end(), begin + chunk); ++i) s.examples.push_back(&data[size_t(i)]);
    mbs.fill(s.examples);
    tally.batches = &mbs.batches();
    if (label_logits) tally.scores_of_batch.assign(mbs.batches().size(), {});
    s.runner->evaluate(mbs.batches(), s.prompt->device(), tally);  // device(): the newest values
    if (label_logits && s.reports_loss()) {
      // Micro-batches hold consecutive examples (MicroBatchSet::fill).
      double* at = label_logits->data() + size_t(begin) * size_t(n_labels);
      for (const std::vector<double>& scores : tally.scores_of_batch) at = std::copy(scores.begin(), scores.end(), at);
      SPT_CHECK(at == label_logits->data() + size_t(std::min(share.end(), begin + chunk)) * size_t(n_labels),
                "the ", s.backend->name(), " back end's evaluation does not return label scores to the host; ",
                "prompt ensembles need them");
    }
  }
  tally.keep_scores = false;
  if (label_logits) control_sum(ps.host(), *label_logits);
  // Only one rank per replica reports; the others add zeros.
  const bool reports = s.reports_loss();
  double examples = reports ? double(tally.examples) : 0.0;
  double targets = reports ? double(tally.targets) : 0.0;
  double loss_sum = reports ? tally.loss_sum : 0.0;
  double correct = reports ? double(tally.correct) : 0.0;
  control_sum(ps.host(), {&examples, &targets, &loss_sum, &correct});
  std::vector<double> confusion(tally.confusion.size(), 0.0);
  if (reports)
    for (size_t i = 0; i < confusion.size(); ++i) confusion[i] = double(tally.confusion[i]);
  control_sum(ps.host(), confusion);

  EvalResult r;
  r.examples = int64_t(examples);
  r.loss = targets > 0 ? loss_sum / targets : 0;
  r.accuracy = examples > 0 ? correct / examples : 0;
  for (double c : confusion) r.confusion.push_back(int64_t(c));
  return r;
}

TextScores evaluate_generation(Session& s, const std::vector<ReferencedInput>& inputs,
                               std::vector<std::string>* hypotheses, std::vector<int64_t>* indices) {
  SPT_CHECK(s.decoder, "internal error: generation in a session without a decoder");
  const ParallelState& ps = *s.parallel;
  const Range share = split_range(int64_t(inputs.size()), ps.layout().data, ps.coords().dp);
  const int chunk = s.config.train.eval_batch_size;
  DecodeOptions options;  // greedy
  options.max_new_tokens = s.task->max_target_length();
  std::vector<GenerationRequest> requests;
  std::vector<const GenerationRequest*> batch;
  TextScoreSums sums;
  for (int64_t begin = share.begin; begin < share.end(); begin += chunk) {
    const int64_t end = std::min(share.end(), begin + chunk);
    requests.clear();
    for (int64_t i = begin; i < end; ++i) requests.push_back({inputs[size_t(i)].tokens, 0, uint64_t(i)});
    batch.clear();
    for (const GenerationRequest& r : requests) batch.push_back(&r);
    const std::vector<Generation> out = s.decoder->generate(batch, s.prompt->device(), options);  // device(): the newest values
    for (int64_t i = begin; i < end; ++i) {
      const std::string& text = out[size_t(i - begin)].text;
      sums.add(text, inputs[size_t(i)].references);
      if (hypotheses) hypotheses->push_back(text);
      if (indices) indices->push_back(i);
    }
  }
  // Every rank of a replica generated the same texts: one per replica adds its sums.
  std::vector<double> v = sums.values();
  if (!s.reports_loss()) std::fill(v.begin(), v.end(), 0.0);
  control_sum(ps.host(), v);
  sums.set_values(v);
  return sums.scores();
}

EvalResult evaluate_task(Session& s) {
  EvalResult r = evaluate(s, s.data.eval);
  if (s.task->generative() && !s.data.eval_inputs.empty()) {
    if (s.decoder) {
      r.text = evaluate_generation(s, s.data.eval_inputs);
    } else if (s.parallel->world_rank() == 0) {
      std::fprintf(stderr, "sptrain: note: generation is not supported on the %s back end yet; "
                           "the evaluation reports the loss only\n", s.backend->name().c_str());
    }
  }
  return r;
}

}  // namespace sptrain
