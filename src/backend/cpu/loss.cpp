// Cross-entropy over a (shard of the) vocabulary, in pieces that the model
// all-reduces between when the vocabulary is split over tensor-parallel ranks.
#include <algorithm>
#include <cmath>
#include <limits>

#include "dispatch.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"

namespace sptrain {

using cpu::dispatch_float;

void CpuBackend::row_max(const Tensor& out, const Tensor& logits) {
  const int64_t B = logits.rows(), V = logits.cols();
  dispatch_float(logits.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* l = logits.ptr<F>();
    F* o = out.ptr<F>();
    for (int64_t b = 0; b < B; ++b) {
      F m = -std::numeric_limits<F>::infinity();
      for (int64_t v = 0; v < V; ++v) m = std::max(m, l[b * V + v]);
      o[b] = m;
    }
  });
}

void CpuBackend::row_sumexp(const Tensor& out, const Tensor& logits, const Tensor& max) {
  const int64_t B = logits.rows(), V = logits.cols();
  dispatch_float(logits.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* l = logits.ptr<F>();
    const F* m = max.ptr<F>();
    F* o = out.ptr<F>();
    for (int64_t b = 0; b < B; ++b) {
      double s = 0;
      for (int64_t v = 0; v < V; ++v) s += std::exp(double(l[b * V + v] - m[b]));
      o[b] = F(s);
    }
  });
}

void CpuBackend::pick_target(const Tensor& out, const Tensor& logits, const Tensor& targets,
                             int64_t offset) {
  const int64_t B = logits.rows(), V = logits.cols();
  const int32_t* tg = targets.ptr<int32_t>();
  dispatch_float(logits.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* l = logits.ptr<F>();
    F* o = out.ptr<F>();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t local = int64_t(tg[b]) - offset;
      o[b] = (local >= 0 && local < V) ? l[b * V + local] : F(0);
    }
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& dlogits, const Tensor& logits,
                                        const Tensor& max, const Tensor& sumexp,
                                        const Tensor& targets, int64_t offset, float weight) {
  const int64_t B = logits.rows(), V = logits.cols();
  const int32_t* tg = targets.ptr<int32_t>();
  dispatch_float(logits.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* l = logits.ptr<F>();
    const F* m = max.ptr<F>();
    const F* se = sumexp.ptr<F>();
    F* d = dlogits.ptr<F>();
    for (int64_t b = 0; b < B; ++b) {
      const F inv = F(1) / se[b];
      for (int64_t v = 0; v < V; ++v) d[b * V + v] = F(weight) * std::exp(l[b * V + v] - m[b]) * inv;
      const int64_t local = int64_t(tg[b]) - offset;
      if (local >= 0 && local < V) d[b * V + local] -= F(weight);
    }
  });
}

}  // namespace sptrain
