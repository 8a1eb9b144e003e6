#pragma once
// Prompt ensembles (Lester et al. 2021, section 7): several prompts trained for
// one task score the same example, and their answers are combined two ways,
// by the mean of the members' label probabilities and by majority vote.
// `sptrain eval` and `sptrain infer` take several --prompt files for a task.
#include <vector>

namespace sptrain {

struct EnsembleAnswer {
  std::vector<double> mean_probs;  // per label: the mean of the members' probabilities
  std::vector<int> votes;          // per label: how many members predicted it
  int by_mean = 0;                 // the label of the largest mean probability
  // The label most members predicted; a tie goes to the tied label with the
  // larger mean probability (then the first), so the answer is deterministic.
  int by_vote = 0;
};

// Softmax over one member's label logits (shifted by the largest logit).
std::vector<double> label_probabilities(const double* logits, int n_labels);

// Combines the members' label probabilities (each n_labels long, summing to 1).
// A member's prediction is its most probable label (the first of equals).
EnsembleAnswer combine_ensemble(const std::vector<const double*>& member_probs, int n_labels);

}  // namespace sptrain
