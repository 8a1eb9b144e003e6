#include "sptrain/infer/ensemble.hpp"

#include <algorithm>
#include <cmath>

#include "sptrain/core/error.hpp"

namespace sptrain {

std::vector<double> label_probabilities(const double* logits, int n_labels) {
  const double top = *std::max_element(logits, logits + n_labels);
  std::vector<double> p(static_cast<size_t>(n_labels));
  double sum = 0;
  for (int l = 0; l < n_labels; ++l) sum += p[size_t(l)] = std::exp(logits[l] - top);
  for (double& x : p) x /= sum;
  return p;
}

EnsembleAnswer combine_ensemble(const std::vector<const double*>& member_probs, int n_labels) {
  SPT_CHECK(!member_probs.empty() && n_labels >= 1, "internal error: an ensemble of ", member_probs.size(),
            " members over ", n_labels, " labels");
  EnsembleAnswer a;
  a.mean_probs.assign(size_t(n_labels), 0.0);
  a.votes.assign(size_t(n_labels), 0);
  for (const double* p : member_probs) {
    for (int l = 0; l < n_labels; ++l) a.mean_probs[size_t(l)] += p[l];
    ++a.votes[size_t(std::max_element(p, p + n_labels) - p)];
  }
  for (double& x : a.mean_probs) x /= double(member_probs.size());
  a.by_mean = int(std::max_element(a.mean_probs.begin(), a.mean_probs.end()) - a.mean_probs.begin());
  a.by_vote = 0;
  for (int l = 1; l < n_labels; ++l) {
    const int v = a.votes[size_t(l)], best = a.votes[size_t(a.by_vote)];
    if (v > best || (v == best && a.mean_probs[size_t(l)] > a.mean_probs[size_t(a.by_vote)])) a.by_vote = l;
  }
  return a;
}

}  // namespace sptrain
