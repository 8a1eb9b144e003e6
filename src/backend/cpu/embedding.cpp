// Token embedding with the soft prompt in front, the prompt's gradient, and
// the row gathers that pick the answer positions.
#include <cstring>

#include "dispatch.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"

namespace sptrain {

using cpu::dispatch_float;

void CpuBackend::embed_forward(const Tensor& x, const Tensor& tokens, const Tensor& table,
                               int64_t vocab_start, const Tensor& prompt,
                               const SequenceIndex& seq) {
  const int64_t T = x.rows(), C = x.cols(), V = table.rows();
  const int32_t* tok = tokens.ptr<int32_t>();
  const int64_t prompt_rows = prompt.empty() ? 0 : prompt.rows();
  (void)seq;
  dispatch_float(x.dtype, [&](auto tag) {
    using F = decltype(tag);
    F* px = x.ptr<F>();
    const F* pt = table.ptr<F>();
    const F* pp = prompt.empty() ? nullptr : prompt.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * C))
    for (int64_t t = 0; t < T; ++t) {
      F* row = px + t * C;
      const F* src = nullptr;
      if (tok[t] < 0) {
        const int64_t j = -1 - int64_t(tok[t]);
        SPT_ASSERT(!pp || j < prompt_rows);
        src = pp ? pp + j * C : nullptr;
      } else {
        const int64_t local = int64_t(tok[t]) - vocab_start;
        if (local >= 0 && local < V) src = pt + local * C;
      }
      if (src) {
        std::memcpy(row, src, size_t(C) * sizeof(F));
      } else {
        std::memset(row, 0, size_t(C) * sizeof(F));
      }
    }
  });
}

// A prompt row's gradient sums the gradient of every row that holds it (one
// row per micro-batch with a shared prompt segment, one per example without).
void CpuBackend::prompt_backward(const Tensor& dprompt, const Tensor& dx, const Tensor& tokens,
                                 const SequenceIndex& seq) {
  const int64_t C = dx.cols();
  const int32_t* tok = tokens.ptr<int32_t>();
  dispatch_float(dx.dtype, [&](auto tag) {
    using F = decltype(tag);
    F* dp = dprompt.ptr<F>();
    const F* g = dx.ptr<F>();
    for (int64_t t = 0; t < seq.num_rows; ++t) {
      if (tok[t] >= 0) continue;
      const int64_t j = -1 - int64_t(tok[t]);
      SPT_ASSERT(j < dprompt.rows());
      const F* src = g + t * C;
      F* dst = dp + j * C;
      for (int64_t i = 0; i < C; ++i) dst[i] += src[i];
    }
  });
}

// A deep prompt's keys and values at the prompt rows of a layer's qkv (on the
// CPU the stat dtype is the act dtype).
void CpuBackend::prefix_kv_forward(const Tensor& qkv, int64_t col, const Tensor& prefix,
                                   const Tensor& tokens, const SequenceIndex& seq) {
  const int64_t W = qkv.cols(), C = prefix.cols(), T = seq.num_rows;
  SPT_ASSERT(prefix.dtype == qkv.dtype && col >= 0 && col + C <= W && qkv.rows() >= T);
  const int32_t* tok = tokens.ptr<int32_t>();
  dispatch_float(qkv.dtype, [&](auto tag) {
    using F = decltype(tag);
    F* x = qkv.ptr<F>();
    const F* p = prefix.ptr<F>();
    for (int64_t t = 0; t < T; ++t) {
      if (tok[t] >= 0) continue;
      const int64_t j = -1 - int64_t(tok[t]);
      SPT_ASSERT(j < prefix.rows());
      std::memcpy(x + t * W + col, p + j * C, size_t(C) * sizeof(F));
    }
  });
}

// Serial, rows in order: a prompt row held by several rows (one per example
// without a shared prompt segment) sums them in the same order every run.
void CpuBackend::prefix_kv_backward(const Tensor& dprefix, const Tensor& dqkv, int64_t col,
                                    const Tensor& tokens, const SequenceIndex& seq) {
  const int64_t W = dqkv.cols(), C = dprefix.cols(), T = seq.num_rows;
  SPT_ASSERT(dprefix.dtype == dqkv.dtype && col >= 0 && col + C <= W && dqkv.rows() >= T);
  const int32_t* tok = tokens.ptr<int32_t>();
  dispatch_float(dqkv.dtype, [&](auto tag) {
    using F = decltype(tag);
    F* g = dqkv.ptr<F>();
    F* dp = dprefix.ptr<F>();
    for (int64_t t = 0; t < T; ++t) {
      if (tok[t] >= 0) continue;
      const int64_t j = -1 - int64_t(tok[t]);
      SPT_ASSERT(j < dprefix.rows());
      F* src = g + t * W + col;
      F* dst = dp + j * C;
      for (int64_t i = 0; i < C; ++i) dst[i] += src[i];
      std::memset(src, 0, size_t(C) * sizeof(F));
    }
  });
}

void CpuBackend::gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) {
  const int64_t C = x.cols(), n = rows.numel();
  const int32_t* r = rows.ptr<int32_t>();
  const size_t row_bytes = size_t(C) * dtype_size(x.dtype);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(static_cast<char*>(out.data) + size_t(i) * row_bytes,
                static_cast<const char*>(x.data) + size_t(r[i]) * row_bytes, row_bytes);
}

void CpuBackend::scatter_add_rows(const Tensor& dx, const Tensor& dout, const Tensor& rows) {
  const int64_t C = dx.cols(), n = rows.numel();
  const int32_t* r = rows.ptr<int32_t>();
  dispatch_float(dx.dtype, [&](auto tag) {
    using F = decltype(tag);
    F* d = dx.ptr<F>();
    const F* s = dout.ptr<F>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < C; ++j) d[int64_t(r[i]) * C + j] += s[i * C + j];
  });
}

}  // namespace sptrain
