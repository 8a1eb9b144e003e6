#pragma once
// Choosing the next token from the logits over the vocabulary: greedy (the
// largest logit, the lowest id on ties) or sampling with a temperature,
// top-k and top-p (nucleus), from a seeded generator.
#include <cstdint>
#include <utility>
#include <vector>

#include "sptrain/model/random_model.hpp"

namespace sptrain {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy; else logits / temperature before the softmax
  int top_k = 0;           // keep the k largest logits (0: all)
  double top_p = 1.0;      // then the fewest most likely tokens whose probability reaches top_p
};

// Scratch of choose_token, kept between calls so that they do not allocate.
using SamplingScratch = std::vector<std::pair<double, int32_t>>;

// The next token from logits[0..V) (stride `stride` between entries).
int32_t choose_token(const double* logits, int64_t V, int64_t stride, const SamplingOptions& options,
                     Rng& rng, SamplingScratch& scratch);

}  // namespace sptrain
