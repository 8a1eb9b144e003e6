#pragma once
#include <cstddef>

namespace sptrain {

// Global L2 gradient-norm clipping. Returns the norm before clipping (summed
// in double). When max_norm > 0 and norm > max_norm, scales grad by
// max_norm / norm; max_norm = 0 turns clipping off. A non-finite norm leaves
// grad untouched (scaling would only spread the NaN); the caller decides
// whether to skip the step.
double clip_grad_norm(float* grad, size_t n, double max_norm);
// The scaling alone, for a norm computed elsewhere (a gradient spread over
// ranks): grad *= max_norm / norm when max_norm > 0 and a finite norm exceeds it.
void clip_to_norm(float* grad, size_t n, double norm, double max_norm);

}  // namespace sptrain
