#pragma once
// Loss, accuracy and confusion of a prompt over a data set, forward passes
// only, split over the replicas.
#include <cstdint>
#include <vector>

#include "sptrain/train/session.hpp"

namespace sptrain {

struct EvalResult {
  int64_t examples = 0;
  double loss = 0;       // mean cross-entropy
  double accuracy = 0;
  std::vector<int64_t> confusion;  // [true label][predicted label], n_labels^2
};

// Evaluates the session's prompt (prompt->values()) over `data` in chunks of
// train.eval_batch_size; every rank returns the same result.
EvalResult evaluate(Session& s, const std::vector<EncodedExample>& data);

}  // namespace sptrain
