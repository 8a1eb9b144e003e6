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

// As train/head_tally.cpp adds up the host copies, in double, example by example.
void CpuBackend::accumulate_loss(const Tensor& sums, const Tensor& max, const Tensor& sumexp,
                                 const Tensor& target, const Tensor& label_logits,
                                 const Tensor& labels) {
  SPT_ASSERT(sums.dtype == DType::F64 && sums.numel() >= 2);
  const int64_t N = max.numel(), L = label_logits.cols();
  const int64_t B = L > 0 ? label_logits.rows() : 0;
  const int32_t* truth = B > 0 ? labels.ptr<int32_t>() : nullptr;
  double* out = sums.ptr<double>();
  dispatch_float(max.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F *m = max.ptr<F>(), *se = sumexp.ptr<F>(), *tg = target.ptr<F>(), *z = label_logits.ptr<F>();
    for (int64_t n = 0; n < N; ++n) out[0] += std::log(double(se[n])) + double(m[n]) - double(tg[n]);
    for (int64_t b = 0; b < B; ++b) {
      const F* row = z + b * L;
      out[1] += (std::max_element(row, row + L) - row) == truth[b] ? 1.0 : 0.0;
    }
  });
}

void CpuBackend::sum_squares(const Tensor& out, const Tensor& x) {
  SPT_ASSERT(out.dtype == DType::F64 && out.numel() >= 1);
  double s = 0;
  dispatch_float(x.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* v = x.ptr<F>();
    for (int64_t i = 0; i < x.numel(); ++i) s += double(v[i]) * double(v[i]);
  });
  out.ptr<double>()[0] = s;
}

}  // namespace sptrain
