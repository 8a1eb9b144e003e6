#include "sptrain/optim/clip.hpp"

#include <cmath>

#include "sptrain/core/error.hpp"

namespace sptrain {

double clip_grad_norm(float* grad, size_t n, double max_norm) {
  SPT_CHECK(max_norm >= 0, "optim.clip_grad_norm = ", max_norm, " must be >= 0 (0 = off)");
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += double(grad[i]) * double(grad[i]);
  const double norm = std::sqrt(sum);
  clip_to_norm(grad, n, norm, max_norm);
  return norm;
}

void clip_to_norm(float* grad, size_t n, double norm, double max_norm) {
  SPT_CHECK(max_norm >= 0, "optim.clip_grad_norm = ", max_norm, " must be >= 0 (0 = off)");
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const double scale = max_norm / norm;
    for (size_t i = 0; i < n; ++i) grad[i] = float(double(grad[i]) * scale);
  }
}

}  // namespace sptrain
