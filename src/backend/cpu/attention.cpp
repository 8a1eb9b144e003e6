// Positions (RoPE, learned) and causal attention over packed sequences,
// forward and backward side by side. Matrix products through BLAS, one
// (sequence, head) pair per task.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "dispatch.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"

namespace sptrain {

using cpu::dispatch_float;
using cpu::gemm;

// Rotate-half RoPE: for j < D/2, (x[j], x[j+D/2]) is rotated by angle pos * freq_j.
void CpuBackend::rope(const Tensor& qkv, int rot_heads, int head_dim, const SequenceIndex& seq,
                      const Tensor& cos_sin, bool inverse) {
  const int64_t T = qkv.rows(), W = qkv.cols(), D = head_dim, half = D / 2;
  SPT_ASSERT(int64_t(rot_heads) * D <= W && cos_sin.cols() == D);
  const int32_t* pos = seq.positions.ptr<int32_t>();
  dispatch_float(qkv.dtype, [&](auto tag) {
    using F = decltype(tag);
    F* x = qkv.ptr<F>();
    const F* cs = cos_sin.ptr<F>();
    const F sign = inverse ? F(-1) : F(1);
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * W))
    for (int64_t t = 0; t < T; ++t) {
      const F* c = cs + int64_t(pos[t]) * D;
      const F* s = c + half;
      for (int h = 0; h < rot_heads; ++h) {
        F* xh = x + t * W + h * D;
        for (int64_t j = 0; j < half; ++j) {
          const F a = xh[j], b = xh[j + half];
          xh[j] = a * c[j] - sign * b * s[j];
          xh[j + half] = b * c[j] + sign * a * s[j];
        }
      }
    }
  });
}

void CpuBackend::add_positions(const Tensor& x, const Tensor& table, const SequenceIndex& seq) {
  const int64_t T = x.rows(), C = x.cols();
  const int32_t* pos = seq.positions.ptr<int32_t>();
  SPT_ASSERT(table.cols() == C);
  dispatch_float(x.dtype, [&](auto tag) {
    using F = decltype(tag);
    F* px = x.ptr<F>();
    const F* pt = table.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * C))
    for (int64_t t = 0; t < T; ++t) {
      SPT_ASSERT(pos[t] < table.rows());
      const F* row = pt + int64_t(pos[t]) * C;
      for (int64_t i = 0; i < C; ++i) px[t * C + i] += row[i];
    }
  });
}

namespace {
// Doubles of each thread's scratch: one L x (p + L) block (L <= max_keys),
// and the prefix rows' k/v gradient.
size_t block_scratch(int max_keys) { return size_t(max_keys) * size_t(max_keys); }
size_t prefix_scratch(int64_t max_rows, int qkv_width) { return size_t(max_rows) * size_t(qkv_width); }
}  // namespace

int64_t CpuBackend::attention_scratch_bytes_per_thread(int64_t max_rows, int max_keys, int qkv_width) {
  return int64_t((block_scratch(max_keys) + prefix_scratch(max_rows, qkv_width)) * sizeof(double));
}

int64_t CpuBackend::attention_scratch_bytes() const {
  size_t n = 0;
  for (size_t t = 0; t < scratch_.size(); ++t) n += scratch_[t].size() + prefix_grad_[t].size();
  return int64_t(n * sizeof(double));
}

AttentionSavedSize CpuBackend::attention_saved_size(int64_t max_rows, int64_t max_keys,
                                                    int n_heads, int head_dim) const {
  return saved_probabilities(max_rows, max_keys, n_heads, head_dim);
}

void CpuBackend::reserve_attention(int64_t max_rows, int max_keys, int /*n_heads*/,
                                   int qkv_width) {
  const size_t ds = block_scratch(max_keys);
  const size_t prefix = prefix_scratch(max_rows, qkv_width);
  for (auto& s : scratch_)
    if (s.size() < ds) s.assign(ds, 0.0);
  for (auto& s : prefix_grad_)
    if (s.size() < prefix) s.assign(prefix, 0.0);
  scratch_keys_ = std::max(scratch_keys_, max_keys);
  scratch_rows_ = std::max<int64_t>(scratch_rows_, max_rows);
}


// For each segment and query head h (kv head g = h / group):
//   S = scale * Q_h [K_prefix; K_own]ᵀ, masked causally on the own part,
//   P = softmax(S) (kept), O_h = P [V_prefix; V_own].
void CpuBackend::attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv,
                                   int n_heads, int n_kv_heads, const SequenceIndex& seq,
                                   float scale) {
  const int64_t W = qkv.cols();
  const int64_t D = W / (n_heads + 2 * n_kv_heads);
  const int64_t OW = out.cols();
  SPT_ASSERT(OW == n_heads * D && n_heads % n_kv_heads == 0);
  const int group = n_heads / n_kv_heads;
  const int S = seq.num_segments;
  dispatch_float(qkv.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* x = qkv.ptr<F>();
    F* o = out.ptr<F>();
    F* pr = probs.ptr<F>();
    const cpu::SerialBlas serial_blas;
#pragma omp parallel for schedule(dynamic) if (cpu::worth_threads(int64_t(seq.num_rows) * seq.max_keys * W))
    for (int64_t task = 0; task < int64_t(S) * n_heads; ++task) {
      const int s = int(task / n_heads), h = int(task % n_heads), g = h / group;
      const int64_t r0 = seq.host_offsets[size_t(s)], p0 = seq.host_prefix_start[size_t(s)];
      const int L = seq.length(s), p = seq.host_prefix_len[size_t(s)], keys = p + L;
      const F* q = x + r0 * W + h * D;
      const int64_t k_col = (n_heads + g) * D, v_col = (n_heads + n_kv_heads + g) * D;
      F* sc = pr + seq.host_prob_offsets[size_t(s)] * n_heads + int64_t(h) * L * keys;
      if (p > 0) gemm(false, true, L, p, int(D), F(scale), q, int(W), x + p0 * W + k_col, int(W), F(0), sc, keys);
      gemm(false, true, L, L, int(D), F(scale), q, int(W), x + r0 * W + k_col, int(W), F(0), sc + p, keys);
      cpu::causal_softmax_rows(sc, L, keys, p + 1);
      F* oh = o + r0 * OW + h * D;
      if (p > 0) gemm(false, false, L, int(D), p, F(1), sc, keys, x + p0 * W + v_col, int(W), F(0), oh, int(OW));
      gemm(false, false, L, int(D), L, F(1), sc + p, keys, x + r0 * W + v_col, int(W), p > 0 ? F(1) : F(0), oh, int(OW));
    }
  });
}

// For each segment and kv head g, over the query heads h of its group:
//   dP = dO_h Vᵀ; dS = P ∘ (dP - rowsum(P ∘ dP));
//   dQ_h = scale dS K; dK += scale dSᵀ Q_h; dV += Pᵀ dO_h,
// where K, V are [prefix; own]. The own rows' dK, dV are written by the task
// of their segment; a prefix's rows are read by many segments, so their
// share is summed in per-thread buffers and added at the end, in thread
// order. Tasks go to threads round-robin (static, 1), not dynamically: which
// thread sums which segment's share must not depend on timing, or the
// rounding of the prefix's gradient, and so the whole run, would differ from
// one run to the next.
void CpuBackend::attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                    const Tensor& probs, int n_heads, int n_kv_heads,
                                    const SequenceIndex& seq, float scale) {
  const int64_t W = qkv.cols();
  const int64_t D = W / (n_heads + 2 * n_kv_heads);
  const int64_t OW = dout.cols();
  const int group = n_heads / n_kv_heads;
  const int S = seq.num_segments;
  SPT_CHECK(seq.max_keys <= scratch_keys_ && seq.num_rows <= scratch_rows_,
            "internal error: attention scratch too small (reserve_attention)");
  const int64_t kv0 = int64_t(n_heads) * D, kv_width = 2 * int64_t(n_kv_heads) * D;
  // Rows that are some segment's prefix.
  bool any_prefix = false;
  for (int s = 0; s < S; ++s) any_prefix |= seq.host_prefix_len[size_t(s)] > 0;
  const int threads = int(prefix_grad_.size());
  dispatch_float(qkv.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* x = qkv.ptr<F>();
    const F* dO = dout.ptr<F>();
    const F* pr = probs.ptr<F>();
    F* dx = dqkv.ptr<F>();
    auto prefix_buf = [&](int t) { return reinterpret_cast<F*>(prefix_grad_[size_t(t)].data()); };
    if (any_prefix) {
      // Zero each thread's buffer on the prefix rows only.
      for (int t = 0; t < threads; ++t)
        for (int s = 0; s < S; ++s) {
          const int p = seq.host_prefix_len[size_t(s)];
          if (p > 0)
            std::fill(prefix_buf(t) + int64_t(seq.host_prefix_start[size_t(s)]) * kv_width,
                      prefix_buf(t) + (int64_t(seq.host_prefix_start[size_t(s)]) + p) * kv_width, F(0));
        }
    }
    const cpu::SerialBlas serial_blas;
#pragma omp parallel for schedule(static, 1) if (cpu::worth_threads(int64_t(seq.num_rows) * seq.max_keys * W))
    for (int64_t task = 0; task < int64_t(S) * n_kv_heads; ++task) {
      const int s = int(task / n_kv_heads), g = int(task % n_kv_heads);
      const int64_t r0 = seq.host_offsets[size_t(s)], p0 = seq.host_prefix_start[size_t(s)];
      const int L = seq.length(s), p = seq.host_prefix_len[size_t(s)], keys = p + L;
      F* ds = reinterpret_cast<F*>(scratch_[size_t(omp_get_thread_num())].data());
      const int64_t k_col = (n_heads + g) * D, v_col = (n_heads + n_kv_heads + g) * D;
      const F* k_own = x + r0 * W + k_col;
      const F* v_own = x + r0 * W + v_col;
      const F* k_pre = x + p0 * W + k_col;
      const F* v_pre = x + p0 * W + v_col;
      F* dk_own = dx + r0 * W + k_col;
      F* dv_own = dx + r0 * W + v_col;
      // The prefix's share goes to this thread's buffer (same column layout as qkv's k|v part).
      F* buf = prefix_buf(omp_get_thread_num());
      F* dk_pre = buf + p0 * kv_width + (k_col - kv0);
      F* dv_pre = buf + p0 * kv_width + (v_col - kv0);
      for (int hh = 0; hh < group; ++hh) {
        const int h = g * group + hh;
        const F* q = x + r0 * W + h * D;
        const F* P = pr + seq.host_prob_offsets[size_t(s)] * n_heads + int64_t(h) * L * keys;
        const F* dOh = dO + r0 * OW + h * D;
        const F beta = hh == 0 ? F(0) : F(1);
        if (p > 0) gemm(false, true, L, p, int(D), F(1), dOh, int(OW), v_pre, int(W), F(0), ds, keys);
        gemm(false, true, L, L, int(D), F(1), dOh, int(OW), v_own, int(W), F(0), ds + p, keys);
        for (int i = 0; i < L; ++i) {
          const F* prow = P + int64_t(i) * keys;
          F* drow = ds + int64_t(i) * keys;
          const int seen = p + i + 1;
          F dot = 0;
          for (int j = 0; j < seen; ++j) dot += prow[j] * drow[j];
          for (int j = 0; j < seen; ++j) drow[j] = prow[j] * (drow[j] - dot);
          for (int j = seen; j < keys; ++j) drow[j] = F(0);
        }
        F* dq = dx + r0 * W + h * D;
        if (p > 0) gemm(false, false, L, int(D), p, F(scale), ds, keys, k_pre, int(W), F(0), dq, int(W));
        gemm(false, false, L, int(D), L, F(scale), ds + p, keys, k_own, int(W), p > 0 ? F(1) : F(0), dq, int(W));
        gemm(true, false, L, int(D), L, F(scale), ds + p, keys, q, int(W), beta, dk_own, int(W));
        gemm(true, false, L, int(D), L, F(1), P + p, keys, dOh, int(OW), beta, dv_own, int(W));
        if (p > 0) {
          gemm(true, false, p, int(D), L, F(scale), ds, keys, q, int(W), F(1), dk_pre, int(kv_width));
          gemm(true, false, p, int(D), L, F(1), P, keys, dOh, int(OW), F(1), dv_pre, int(kv_width));
        }
      }
    }
    if (any_prefix) {
      // Add every thread's prefix share to the prefix rows' k and v gradient.
      for (int s = 0; s < S; ++s) {
        const int p = seq.host_prefix_len[size_t(s)];
        if (p == 0) continue;
        // A prefix is shared by many segments: add it once, at its first reader.
        bool first = true;
        for (int s2 = 0; s2 < s; ++s2)
          if (seq.host_prefix_len[size_t(s2)] > 0 &&
              seq.host_prefix_start[size_t(s2)] == seq.host_prefix_start[size_t(s)])
            first = false;
        if (!first) continue;
        const int64_t p0 = seq.host_prefix_start[size_t(s)];
        for (int t = 0; t < threads; ++t)
          for (int64_t r = p0; r < p0 + p; ++r) {
            const F* src = prefix_buf(t) + r * kv_width;
            F* dst = dx + r * W + kv0;
            for (int64_t c = 0; c < kv_width; ++c) dst[c] += src[c];
          }
      }
    }
  });
}

}  // namespace sptrain
