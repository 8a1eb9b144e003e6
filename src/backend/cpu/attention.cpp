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
#pragma omp parallel for schedule(static)
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
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      SPT_ASSERT(pos[t] < table.rows());
      const F* row = pt + int64_t(pos[t]) * C;
      for (int64_t i = 0; i < C; ++i) px[t * C + i] += row[i];
    }
  });
}

void CpuBackend::reserve_attention(int max_len, int /*n_heads*/) {
  if (max_len <= scratch_len_) return;
  for (auto& s : scratch_) s.assign(size_t(max_len) * size_t(max_len), 0.0);
  scratch_len_ = max_len;
}

// For each sequence b and query head h (kv head g = h / group):
//   S = scale * Q_h K_gᵀ, masked causally, P = softmax(S) (kept), O_h = P V_g.
void CpuBackend::attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv,
                                   int n_heads, int n_kv_heads, const SequenceIndex& seq,
                                   float scale) {
  const int64_t W = qkv.cols();
  const int64_t D = W / (n_heads + 2 * n_kv_heads);
  const int64_t OW = out.cols();
  SPT_ASSERT(OW == n_heads * D && n_heads % n_kv_heads == 0);
  const int group = n_heads / n_kv_heads;
  const int B = seq.num_seqs;
  dispatch_float(qkv.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* x = qkv.ptr<F>();
    F* o = out.ptr<F>();
    F* p = probs.ptr<F>();
#pragma omp parallel for schedule(dynamic)
    for (int64_t task = 0; task < int64_t(B) * n_heads; ++task) {
      const int b = int(task / n_heads), h = int(task % n_heads), g = h / group;
      const int64_t r0 = seq.host_offsets[size_t(b)];
      const int L = seq.length(b);
      const F* q = x + r0 * W + h * D;
      const F* k = x + r0 * W + (n_heads + g) * D;
      const F* v = x + r0 * W + (n_heads + n_kv_heads + g) * D;
      F* s = p + (seq.host_prob_offsets[size_t(b)] * n_heads) + int64_t(h) * L * L;
      gemm(false, true, L, L, int(D), F(scale), q, int(W), k, int(W), F(0), s, L);
      for (int i = 0; i < L; ++i) {
        F* row = s + int64_t(i) * L;
        F mx = -std::numeric_limits<F>::infinity();
        for (int j = 0; j <= i; ++j) mx = std::max(mx, row[j]);
        F sum = 0;
        for (int j = 0; j <= i; ++j) {
          row[j] = std::exp(row[j] - mx);
          sum += row[j];
        }
        const F inv = F(1) / sum;
        for (int j = 0; j <= i; ++j) row[j] *= inv;
        for (int j = i + 1; j < L; ++j) row[j] = F(0);
      }
      gemm(false, false, L, int(D), L, F(1), s, L, v, int(W), F(0), o + r0 * OW + h * D, int(OW));
    }
  });
}

// For each sequence b and kv head g, over the query heads h of its group:
//   dP = dO_h V_gᵀ; dS = P ∘ (dP - rowsum(P ∘ dP));
//   dQ_h = scale dS K_g; dK_g += scale dSᵀ Q_h; dV_g += Pᵀ dO_h.
void CpuBackend::attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                    const Tensor& probs, int n_heads, int n_kv_heads,
                                    const SequenceIndex& seq, float scale) {
  const int64_t W = qkv.cols();
  const int64_t D = W / (n_heads + 2 * n_kv_heads);
  const int64_t OW = dout.cols();
  const int group = n_heads / n_kv_heads;
  const int B = seq.num_seqs;
  SPT_CHECK(seq.max_len <= scratch_len_,
            "internal error: attention scratch reserved for ", scratch_len_, " rows, need ",
            seq.max_len);
  dispatch_float(qkv.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* x = qkv.ptr<F>();
    const F* dO = dout.ptr<F>();
    const F* p = probs.ptr<F>();
    F* dx = dqkv.ptr<F>();
#pragma omp parallel for schedule(dynamic)
    for (int64_t task = 0; task < int64_t(B) * n_kv_heads; ++task) {
      const int b = int(task / n_kv_heads), g = int(task % n_kv_heads);
      const int64_t r0 = seq.host_offsets[size_t(b)];
      const int L = seq.length(b);
      F* ds = reinterpret_cast<F*>(scratch_[size_t(omp_get_thread_num())].data());
      const F* k = x + r0 * W + (n_heads + g) * D;
      const F* v = x + r0 * W + (n_heads + n_kv_heads + g) * D;
      F* dk = dx + r0 * W + (n_heads + g) * D;
      F* dv = dx + r0 * W + (n_heads + n_kv_heads + g) * D;
      for (int hh = 0; hh < group; ++hh) {
        const int h = g * group + hh;
        const F* q = x + r0 * W + h * D;
        const F* P = p + (seq.host_prob_offsets[size_t(b)] * n_heads) + int64_t(h) * L * L;
        const F* dOh = dO + r0 * OW + h * D;
        const F beta = hh == 0 ? F(0) : F(1);
        gemm(false, true, L, L, int(D), F(1), dOh, int(OW), v, int(W), F(0), ds, L);
        for (int i = 0; i < L; ++i) {
          const F* pr = P + int64_t(i) * L;
          F* dr = ds + int64_t(i) * L;
          F dot = 0;
          for (int j = 0; j <= i; ++j) dot += pr[j] * dr[j];
          for (int j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - dot);
          for (int j = i + 1; j < L; ++j) dr[j] = F(0);
        }
        gemm(false, false, L, int(D), L, F(scale), ds, L, k, int(W), F(0), dx + r0 * W + h * D, int(W));
        gemm(true, false, L, int(D), L, F(scale), ds, L, q, int(W), beta, dk, int(W));
        gemm(true, false, L, int(D), L, F(1), P, L, dOh, int(OW), beta, dv, int(W));
      }
    }
  });
}

}  // namespace sptrain
