// Generation with a key/value cache: storing the new rows' keys and values,
// and attention of the new rows over the cache (backend.hpp, CacheIndex).
// Matrix products through BLAS, one (run, query head) pair per task.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "dispatch.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"

namespace sptrain {

using cpu::dispatch_float;
using cpu::gemm;

void CpuBackend::kv_cache_store(const Tensor& cache, const Tensor& qkv, int n_heads, int n_kv_heads,
                                const CacheIndex& idx) {
  const int64_t W = qkv.cols(), D = W / (n_heads + 2 * n_kv_heads), KV = cache.cols();
  SPT_ASSERT(KV == 2 * n_kv_heads * D && qkv.rows() >= idx.num_rows && cache.dtype == qkv.dtype);
  const size_t bytes = size_t(KV) * dtype_size(qkv.dtype);
  const int32_t* to = idx.cache_rows.ptr<int32_t>();
  for (int64_t i = 0; i < idx.num_rows; ++i) {
    SPT_ASSERT(to[i] >= 0 && to[i] < cache.rows());
    std::memcpy(static_cast<char*>(cache.data) + size_t(to[i]) * bytes,
                static_cast<const char*>(qkv.data) + size_t(i * W + n_heads * D) * dtype_size(qkv.dtype),
                bytes);
  }
}

// For each run and query head h (kv head g = h / group), with K, V the
// run's prefix rows then its own rows in the cache:
//   S = scale * Q_h [K_prefix; K_own]ᵀ, masked causally on the own part,
//   O_h = softmax(S) [V_prefix; V_own].
void CpuBackend::attention_cached(const Tensor& out, const Tensor& qkv, const Tensor& cache,
                                  int n_heads, int n_kv_heads, const CacheIndex& idx, float scale) {
  const int64_t W = qkv.cols(), D = W / (n_heads + 2 * n_kv_heads), KV = cache.cols();
  const int64_t OW = out.cols();
  SPT_ASSERT(OW == n_heads * D && KV == 2 * n_kv_heads * D && n_heads % n_kv_heads == 0);
  SPT_CHECK(idx.max_keys <= scratch_keys_,
            "internal error: attention scratch too small for ", idx.max_keys, " keys (reserve_attention)");
  const int group = n_heads / n_kv_heads;
  const int S = idx.num_seqs;
  dispatch_float(qkv.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* x = qkv.ptr<F>();
    const F* c = cache.ptr<F>();
    F* o = out.ptr<F>();
#pragma omp parallel for schedule(dynamic) if (cpu::worth_threads(int64_t(idx.num_rows) * idx.max_keys * W))
    for (int64_t task = 0; task < int64_t(S) * n_heads; ++task) {
      const int s = int(task / n_heads), h = int(task % n_heads), g = h / group;
      const int64_t r0 = idx.host_q_offsets[size_t(s)];
      const int L = idx.host_q_offsets[size_t(s) + 1] - int(r0);
      const int p = idx.host_prefix_len[size_t(s)], own = idx.host_own_len[size_t(s)], keys = p + own;
      SPT_ASSERT(L >= 1 && L <= own && keys <= idx.max_keys);
      const F* q = x + r0 * W + h * D;
      const F* k_pre = c + int64_t(idx.host_prefix_start[size_t(s)]) * KV + g * D;
      const F* k_own = c + int64_t(idx.host_own_start[size_t(s)]) * KV + g * D;
      const int64_t v_col = int64_t(n_kv_heads) * D;
      F* sc = reinterpret_cast<F*>(scratch_[size_t(omp_get_thread_num())].data());
      if (p > 0) gemm(false, true, L, p, int(D), F(scale), q, int(W), k_pre, int(KV), F(0), sc, keys);
      gemm(false, true, L, own, int(D), F(scale), q, int(W), k_own, int(KV), F(0), sc + p, keys);
      cpu::causal_softmax_rows(sc, L, keys, p + own - L + 1);
      F* oh = o + r0 * OW + h * D;
      if (p > 0) gemm(false, false, L, int(D), p, F(1), sc, keys, k_pre + v_col, int(KV), F(0), oh, int(OW));
      gemm(false, false, L, int(D), own, F(1), sc + p, keys, k_own + v_col, int(KV), p > 0 ? F(1) : F(0), oh, int(OW));
    }
  });
}

}  // namespace sptrain
