// Positions (RoPE, learned) and causal attention over packed segments with
// shared prefixes and grouped-query heads, forward and backward side by side.
//
// A query row of a segment sees its prefix's rows (p of them, e.g. the shared
// prompt) and its own segment's rows up to itself: "column" c < p of its
// score row is prefix row p0 + c, column p + j is the segment's row j.
//
// Attention is a straightforward version, written for correctness: one block
// per (query row, query head) in the forward and for dQ, one block per (key
// row, kv head) for dK and dV, so every output element has exactly one writer
// (no atomics, deterministic). A block finds its segment by a binary search
// over the device offsets. No probability is stored: the forward keeps the
// log-sum-exp of each row's scores per head (lse, f32 [T, Hq]) and the
// backward recomputes P_ic = exp(S_ic − lse_i) where it needs it, flash-
// attention style. Every kernel computes a score S = scale · q·k with the same
// warp_dot, so the backward sees the forward's scores bit for bit.
//
// Backward, with dP = dO·Vᵀ:
//   dS = P ∘ (dP − rowdot),  rowdot_i = Σ_c P_ic dP_ic
//   dQ_h = scale · dS K,  dK_g = scale · Σ_{h in g} dSᵀ Q_h,  dV_g = Σ_{h in g} Pᵀ dO_h
// in three kernels:
//   1. rowdot per (row, head), stashed in dqkv at the first element(s) of
//      that row's q slice for that head (the slot kernel 3 overwrites last),
//   2. dK, dV per (key row, kv head), reading the stashed rowdots: from the
//      queries of the row's own segment and from every query of every
//      segment that has the row in its prefix,
//   3. dQ per (row, head): reads its own stash, then overwrites the slice.
// So attention keeps 4 bytes per row and head and needs no scratch memory
// (see docs/cuda.md).
#include "internal.cuh"

namespace sptrain {

using cuda::bf16;
using cuda::block_max;
using cuda::block_sum;
using cuda::find_sequence;
using cuda::grid_for;
using cuda::kThreads;
using cuda::load;
using cuda::store;
using cuda::warp_sum;

namespace {

// ---- RoPE and learned positions ----

// Rotate-half: for j < D/2, (x[j], x[j + D/2]) turns by pos * freq_j (or back,
// sign = -1). One thread per (row, head, j): each pair has one owner.
template <typename T>
__global__ void rope_kernel(T* qkv, const float* cos_sin, const int32_t* positions, int64_t T_rows,
                            int64_t W, int rot_heads, int D, int max_pos, float sign) {
  const int half = D / 2;
  const int64_t n = T_rows * rot_heads * half;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int j = int(k % half);
    const int h = int((k / half) % rot_heads);
    const int64_t t = k / (int64_t(half) * rot_heads);
    const int pos = positions[t];
    if (pos < 0 || pos >= max_pos) continue;  // the host checked max_len <= max_pos
    const float c = cos_sin[int64_t(pos) * D + j], s = cos_sin[int64_t(pos) * D + half + j];
    T* xh = qkv + t * W + int64_t(h) * D;
    const float a = load(xh, j), b = load(xh, j + half);
    store(xh, j, a * c - sign * b * s);
    store(xh, j + half, b * c + sign * a * s);
  }
}

// x[t, i] += table[positions[t], i].
template <typename T>
__global__ void add_positions_kernel(T* x, const T* table, const int32_t* positions, int64_t n,
                                     int64_t C, int max_pos) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = k / C, i = k % C;
    const int pos = positions[t];
    if (pos < 0 || pos >= max_pos) continue;  // the host checked max_len <= max_pos
    store(x, k, load(x, k) + load(table, int64_t(pos) * C + i));
  }
}

// ---- attention ----

constexpr int kAttnThreads = 128;  // 4 warps per block
constexpr int kAttnWarps = kAttnThreads / 32;
constexpr int kMaxHeadDim = 256;
constexpr int kPerLane = kMaxHeadDim / 32;  // head elements one lane owns in the dK/dV kernel

struct AttnShape {
  int n_heads = 0, n_kv = 0, head_dim = 0, group = 0, num_segments = 0;
  int64_t qkv_width = 0, out_width = 0;
  float scale = 1.f;
};

// The segment tables on the device.
struct Segments {
  const int32_t* offsets;       // [S+1]
  const int32_t* prefix_start;  // [S]
  const int32_t* prefix_len;    // [S]
};

// A query row's place: segment s (rows r0.., length L), its prefix (p rows
// from p0), and the row's index i in the segment. Column c < p is prefix row
// p0 + c; column p + j is own row r0 + j.
struct RowPlace {
  int s;
  int64_t r0, p0;
  int L, p, i;
  __device__ int64_t key_row(int c) const { return c < p ? p0 + c : r0 + (c - p); }
};
__device__ __forceinline__ RowPlace place_row(const Segments& seg, int num_segments, int64_t t) {
  RowPlace q;
  q.s = find_sequence(seg.offsets, num_segments, t);
  q.r0 = seg.offsets[q.s];
  q.L = seg.offsets[q.s + 1] - seg.offsets[q.s];
  q.p0 = seg.prefix_start[q.s];
  q.p = seg.prefix_len[q.s];
  q.i = int(t - q.r0);
  return q;
}

// a · b over one head, by one warp: lane l sums elements l, l + 32, ... in
// f32, then the lanes' sums are combined; every lane gets the result. Every
// kernel computes its scores with this, so they agree bit for bit.
template <typename T>
__device__ __forceinline__ float warp_dot(const float* a, const T* b, int D) {
  float acc = 0.f;
  for (int d = threadIdx.x & 31; d < D; d += 32) acc += a[d] * load(b, d);
  return warp_sum(acc);
}

// The saved log-sum-exp of row t's scores for head h.
__device__ __forceinline__ int64_t lse_index(const AttnShape& s, int64_t t, int h) {
  return t * s.n_heads + h;
}

// The rowdot stash: one f32 in the first element(s) of a head's q slice of
// dqkv (two bf16 slots hold the f32's bits; head_dim >= 2 is checked).
__device__ __forceinline__ void stash_store(float* p, float v) { *p = v; }
__device__ __forceinline__ float stash_load(const float* p) { return *p; }
__device__ __forceinline__ void stash_store(bf16* p, float v) {
  const unsigned bits = __float_as_uint(v);
  p[0] = __ushort_as_bfloat16(static_cast<unsigned short>(bits & 0xffffu));
  p[1] = __ushort_as_bfloat16(static_cast<unsigned short>(bits >> 16));
}
__device__ __forceinline__ float stash_load(const bf16* p) {
  const unsigned lo = __bfloat16_as_ushort(p[0]), hi = __bfloat16_as_ushort(p[1]);
  return __uint_as_float(lo | (hi << 16));
}

// Block (t, h): the query sees seen = p + i + 1 keys (the prefix, then its
// own rows 0..i). S_c = scale q·k_c, P = softmax(S), out[t, h] = Σ_c P_c v_c,
// lse[t, h] = max + log Σ_c exp(S_c − max). Dynamic shared memory: max_keys floats.
template <typename T>
__global__ void attention_forward_kernel(T* out, float* lse, const T* qkv, Segments seg,
                                         AttnShape s) {
  extern __shared__ float row[];  // scores, then probabilities, of this query row
  __shared__ float q_s[kMaxHeadDim];
  __shared__ float red[33];
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y, g = h / s.group, D = s.head_dim;
  const int64_t W = s.qkv_width;
  const RowPlace q = place_row(seg, s.num_segments, t);
  const int seen = q.p + q.i + 1;
  const T* kcol = qkv + int64_t(s.n_heads + g) * D;
  const T* vcol = qkv + int64_t(s.n_heads + s.n_kv + g) * D;
  const T* qrow = qkv + t * W + int64_t(h) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) q_s[d] = load(qrow, d);
  __syncthreads();

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int c = warp; c < seen; c += warps) {  // one warp per key
    const float dot = warp_dot(q_s, kcol + q.key_row(c) * W, D);
    if (lane == 0) row[c] = dot * s.scale;
  }
  __syncthreads();

  float mx = -INFINITY;
  for (int c = threadIdx.x; c < seen; c += blockDim.x) mx = fmaxf(mx, row[c]);
  mx = block_max(mx, red);
  float sum = 0.f;
  for (int c = threadIdx.x; c < seen; c += blockDim.x) {
    const float e = expf(row[c] - mx);
    row[c] = e;
    sum += e;
  }
  sum = block_sum(sum, red);
  if (threadIdx.x == 0) lse[lse_index(s, t, h)] = mx + logf(sum);
  const float inv = 1.0f / sum;
  for (int c = threadIdx.x; c < seen; c += blockDim.x) row[c] *= inv;
  __syncthreads();

  T* o = out + t * s.out_width + int64_t(h) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int c = 0; c < seen; ++c) acc += row[c] * load(vcol + q.key_row(c) * W, d);
    store(o, d, acc);
  }
}

// Loads query row t's q and dO slices for head h into shared memory.
template <typename T>
__device__ __forceinline__ void load_q_do(float* q_s, float* do_s, const T* qkv, const T* dout,
                                          const AttnShape& s, int64_t t, int h) {
  const T* qrow = qkv + t * s.qkv_width + int64_t(h) * s.head_dim;
  const T* dO = dout + t * s.out_width + int64_t(h) * s.head_dim;
  for (int d = threadIdx.x; d < s.head_dim; d += blockDim.x) {
    q_s[d] = load(qrow, d);
    do_s[d] = load(dO, d);
  }
}

// Backward 1, block (t, h): rowdot = Σ_{c < seen} P_c (dO_t · v_c), stashed,
// with P_c = exp(S_c − lse) recomputed.
template <typename T>
__global__ void attention_rowdot_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse,
                                        Segments seg, AttnShape s) {
  __shared__ float q_s[kMaxHeadDim];
  __shared__ float do_s[kMaxHeadDim];
  __shared__ float red[33];
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y, g = h / s.group, D = s.head_dim;
  const int64_t W = s.qkv_width;
  const RowPlace q = place_row(seg, s.num_segments, t);
  const int seen = q.p + q.i + 1;
  const T* kcol = qkv + int64_t(s.n_heads + g) * D;
  const T* vcol = qkv + int64_t(s.n_heads + s.n_kv + g) * D;
  load_q_do(q_s, do_s, qkv, dout, s, t, h);
  const float row_lse = lse[lse_index(s, t, h)];
  __syncthreads();

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float acc = 0.f;  // meaningful in lane 0 of each warp
  for (int c = warp; c < seen; c += warps) {
    const int64_t kr = q.key_row(c);
    const float p = expf(warp_dot(q_s, kcol + kr * W, D) * s.scale - row_lse);
    const float dp = warp_dot(do_s, vcol + kr * W, D);
    if (lane == 0) acc += p * dp;
  }
  const float rowdot = block_sum(acc, red);
  if (threadIdx.x == 0) stash_store(dqkv + t * W + int64_t(h) * D, rowdot);
}

// The dK/dV terms that key row kr (its k and v in k_s, v_s) receives from
// queries first_i..L-1 of segment rows r0.. over the heads of group g (one
// warp per query, lanes split the head dimension):
//   dk += dS_h[i] q_h[i],  dv += P_h[i] dO_h[i],
// P = exp(scale q·k − lse) recomputed, dS = P (dO·v − rowdot).
template <typename T>
__device__ __forceinline__ void accumulate_dkv(float (&dk)[kPerLane], float (&dv)[kPerLane],
                                               const float* k_s, const float* v_s, const T* dqkv,
                                               const T* dout, const T* qkv, const float* lse,
                                               const AttnShape& s, int64_t r0, int L, int first_i,
                                               int g) {
  const int D = s.head_dim;
  const int64_t W = s.qkv_width;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int hh = 0; hh < s.group; ++hh) {
    const int h = g * s.group + hh;
    for (int i = first_i + warp; i < L; i += warps) {
      const int64_t r = r0 + i;
      const T* dO = dout + r * s.out_width + int64_t(h) * D;
      const T* qh = qkv + r * W + int64_t(h) * D;
      const float pic = expf(warp_dot(k_s, qh, D) * s.scale - lse[lse_index(s, r, h)]);
      const float ds = pic * (warp_dot(v_s, dO, D) - stash_load(dqkv + r * W + int64_t(h) * D));
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) {
        const int d = lane + 32 * k;
        if (d < D) {
          dk[k] += ds * load(qh, d);
          dv[k] += pic * load(dO, d);
        }
      }
    }
  }
}

// Backward 2, block (t, g) for key row t and kv head g: the queries of its
// own segment at or after it, then every query of every segment whose prefix
// holds row t (a shared prompt row is read by every example), segments in
// index order:
//   dK_g[t] = scale Σ dS q,  dV_g[t] = Σ P dO.
// The block is the only writer of these two slices, and its sums run in an
// order fixed by the launch shape, not by timing: deterministic.
template <typename T>
__global__ void attention_dkv_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse,
                                     Segments seg, AttnShape s) {
  __shared__ float k_s[kMaxHeadDim];
  __shared__ float v_s[kMaxHeadDim];
  __shared__ float red_k[kAttnWarps][kMaxHeadDim];
  __shared__ float red_v[kAttnWarps][kMaxHeadDim];
  const int64_t t = blockIdx.x;
  const int g = blockIdx.y, D = s.head_dim;
  const int64_t W = s.qkv_width;
  const T* k = qkv + t * W + int64_t(s.n_heads + g) * D;
  const T* v = qkv + t * W + int64_t(s.n_heads + s.n_kv + g) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    k_s[d] = load(k, d);
    v_s[d] = load(v, d);
  }
  __syncthreads();

  float dk[kPerLane], dv[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) dk[j] = dv[j] = 0.f;
  // Own segment: row t is seen by the queries i >= its own index.
  const RowPlace own = place_row(seg, s.num_segments, t);
  accumulate_dkv(dk, dv, k_s, v_s, dqkv, dout, qkv, lse, s, own.r0, own.L, own.i, g);
  // Segments reading row t in their prefix: all their queries.
  for (int s2 = 0; s2 < s.num_segments; ++s2) {
    const int64_t p0 = seg.prefix_start[s2];
    const int p = seg.prefix_len[s2];
    if (t < p0 || t >= p0 + p) continue;
    const int64_t r0 = seg.offsets[s2];
    const int L = seg.offsets[s2 + 1] - seg.offsets[s2];
    accumulate_dkv(dk, dv, k_s, v_s, dqkv, dout, qkv, lse, s, r0, L, 0, g);
  }

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int d = lane + 32 * j;
    if (d < D) {
      red_k[warp][d] = dk[j];
      red_v[warp][d] = dv[j];
    }
  }
  __syncthreads();
  T* dkr = dqkv + t * W + int64_t(s.n_heads + g) * D;
  T* dvr = dqkv + t * W + int64_t(s.n_heads + s.n_kv + g) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float sk = 0.f, sv = 0.f;
    for (int w = 0; w < warps; ++w) {
      sk += red_k[w][d];
      sv += red_v[w][d];
    }
    store(dkr, d, s.scale * sk);
    store(dvr, d, sv);
  }
}

// Backward 3, block (t, h): dS_c = P_c (dO_t · v_c − rowdot) into shared
// memory (P recomputed), then dQ[t, h] = scale Σ_c dS_c k_c over the slice
// that held the stash.
template <typename T>
__global__ void attention_dq_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse,
                                    Segments seg, AttnShape s) {
  extern __shared__ float ds_row[];  // dS of this query row
  __shared__ float q_s[kMaxHeadDim];
  __shared__ float do_s[kMaxHeadDim];
  __shared__ float rowdot_s;
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y, g = h / s.group, D = s.head_dim;
  const int64_t W = s.qkv_width;
  const RowPlace q = place_row(seg, s.num_segments, t);
  const int seen = q.p + q.i + 1;
  const T* kcol = qkv + int64_t(s.n_heads + g) * D;
  const T* vcol = qkv + int64_t(s.n_heads + s.n_kv + g) * D;
  T* dq = dqkv + t * W + int64_t(h) * D;
  load_q_do(q_s, do_s, qkv, dout, s, t, h);
  const float row_lse = lse[lse_index(s, t, h)];
  if (threadIdx.x == 0) rowdot_s = stash_load(dq);
  __syncthreads();  // the stash is read before anyone writes dq below
  const float rowdot = rowdot_s;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int c = warp; c < seen; c += warps) {
    const int64_t kr = q.key_row(c);
    const float p = expf(warp_dot(q_s, kcol + kr * W, D) * s.scale - row_lse);
    const float dp = warp_dot(do_s, vcol + kr * W, D);
    if (lane == 0) ds_row[c] = p * (dp - rowdot);
  }
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int c = 0; c < seen; ++c) acc += ds_row[c] * load(kcol + q.key_row(c) * W, d);
    store(dq, d, s.scale * acc);
  }
}

// Checks shared by forward and backward; returns the kernels' shape.
AttnShape attention_shape(const char* op, const Tensor& qkv, const Tensor& o, const Tensor& lse,
                          int n_heads, int n_kv_heads, const SequenceIndex& seq, float scale,
                          int reserved_keys) {
  cuda::expect_device(qkv, op, "qkv");
  cuda::expect_device(o, op, "out");
  cuda::expect_device(lse, op, "lse");
  cuda::expect_device(seq.offsets, op, "seq.offsets");
  cuda::expect_device(seq.prefix_start, op, "seq.prefix_start");
  cuda::expect_device(seq.prefix_len, op, "seq.prefix_len");
  cuda::expect_same_dtype(qkv, o, op);
  cuda::expect_dtype(lse, DType::F32, op, "lse");
  SPT_ASSERT(n_heads > 0 && n_kv_heads > 0 && n_heads % n_kv_heads == 0);
  AttnShape s;
  s.n_heads = n_heads;
  s.n_kv = n_kv_heads;
  s.group = n_heads / n_kv_heads;
  s.qkv_width = qkv.cols();
  s.head_dim = int(s.qkv_width / (n_heads + 2 * n_kv_heads));
  s.out_width = o.cols();
  s.num_segments = seq.num_segments;
  s.scale = scale;
  SPT_ASSERT(int64_t(s.head_dim) * (n_heads + 2 * n_kv_heads) == s.qkv_width);
  SPT_ASSERT(s.out_width == int64_t(n_heads) * s.head_dim);
  SPT_CHECK(s.head_dim <= kMaxHeadDim, "CUDA attention: head_dim ", s.head_dim,
            " is larger than the kernels' limit of ", kMaxHeadDim);
  SPT_CHECK(qkv.dtype != DType::BF16 || s.head_dim >= 2,
            "CUDA attention: head_dim must be at least 2 with bf16");
  SPT_ASSERT(qkv.rows() >= seq.num_rows && o.rows() >= seq.num_rows);
  SPT_ASSERT(lse.numel() >= int64_t(seq.num_rows) * n_heads);
  const size_t S = size_t(seq.num_segments);
  SPT_ASSERT(seq.host_offsets.size() == S + 1 && seq.host_prefix_start.size() == S &&
             seq.host_prefix_len.size() == S);
  for (size_t i = 0; i < S; ++i)
    SPT_ASSERT(seq.host_prefix_start[i] >= 0 && seq.host_prefix_len[i] >= 0 &&
               seq.host_prefix_start[i] + seq.host_prefix_len[i] <= seq.num_rows);
  SPT_CHECK(seq.max_keys <= reserved_keys, "internal error: CUDA attention: reserve_attention ",
            "prepared for up to ", reserved_keys, " keys per query, this micro-batch has ",
            seq.max_keys);
  SPT_CHECK(n_heads <= 65535 && n_kv_heads <= 65535, "CUDA attention: more than 65535 heads");
  return s;
}

Segments segments_of(const SequenceIndex& seq) {
  return Segments{static_cast<const int32_t*>(seq.offsets.data),
                  static_cast<const int32_t*>(seq.prefix_start.data),
                  static_cast<const int32_t*>(seq.prefix_len.data)};
}

// Lets `kernel` use `dynamic_bytes` of dynamic shared memory (one row's
// scores), failing clearly when the device cannot give that much.
template <typename Kernel>
void set_shared_limit(const cuda::Where& where, Kernel kernel, size_t dynamic_bytes, size_t optin) {
  cudaFuncAttributes attr{};
  SPT_CUDA(where, cudaFuncGetAttributes(&attr, kernel));
  SPT_CHECK(attr.sharedSizeBytes + dynamic_bytes <= optin, "rank ", where.rank, ", device ",
            where.device, ": CUDA attention over ", dynamic_bytes / sizeof(float),
            " keys per query needs ", attr.sharedSizeBytes + dynamic_bytes,
            " bytes of shared memory per block; the device allows ", optin,
            " (use shorter sequences)");
  SPT_CUDA(where, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(dynamic_bytes)));
}

}  // namespace

void CudaBackend::rope(const Tensor& qkv, int rot_heads, int head_dim, const SequenceIndex& seq,
                       const Tensor& cos_sin, bool inverse) {
  cuda::expect_device(qkv, "rope", "qkv");
  cuda::expect_device(cos_sin, "rope", "cos_sin");
  cuda::expect_device(seq.positions, "rope", "seq.positions");
  cuda::expect_dtype(cos_sin, DType::F32, "rope", "cos_sin");
  const int64_t T = qkv.rows(), W = qkv.cols(), D = head_dim;
  SPT_ASSERT(int64_t(rot_heads) * D <= W && cos_sin.cols() == D && D % 2 == 0);
  SPT_ASSERT(seq.positions.numel() >= T);
  SPT_CHECK(seq.max_len <= cos_sin.rows(), "rope: sequences of ", seq.max_len,
            " rows exceed the table's ", cos_sin.rows(), " positions");
  const int64_t n = T * rot_heads * (D / 2);
  if (n == 0) return;
  cuda::dispatch_act(qkv.dtype, "rope", [&](auto tag) {
    using F = typename decltype(tag)::type;
    rope_kernel<F><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(qkv.data), static_cast<const float*>(cos_sin.data),
        static_cast<const int32_t*>(seq.positions.data), T, W, rot_heads, int(D),
        int(cos_sin.rows()), inverse ? -1.0f : 1.0f);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "rope_kernel");
  });
}

void CudaBackend::add_positions(const Tensor& x, const Tensor& table, const SequenceIndex& seq) {
  cuda::expect_device(x, "add_positions", "x");
  cuda::expect_device(table, "add_positions", "table");
  cuda::expect_device(seq.positions, "add_positions", "seq.positions");
  cuda::expect_same_dtype(x, table, "add_positions");
  const int64_t T = x.rows(), C = x.cols(), n = x.numel();
  SPT_ASSERT(table.cols() == C && seq.positions.numel() >= T);
  SPT_CHECK(seq.max_len <= table.rows(), "add_positions: sequences of ", seq.max_len,
            " rows exceed the position table's ", table.rows(), " rows");
  if (n == 0) return;
  cuda::dispatch_act(x.dtype, "add_positions", [&](auto tag) {
    using F = typename decltype(tag)::type;
    add_positions_kernel<F><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(x.data), static_cast<const F*>(table.data),
        static_cast<const int32_t*>(seq.positions.data), n, C, int(table.rows()));
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "add_positions_kernel");
  });
}

void CudaBackend::reserve_attention(int64_t /*max_rows*/, int max_keys, int /*n_heads*/,
                                    int /*qkv_width*/) {
  if (max_keys <= impl_->attention_keys) return;
  const size_t bytes = size_t(max_keys) * sizeof(float);
  const size_t optin = impl_->shared_optin;
  set_shared_limit(impl_->where, attention_forward_kernel<float>, bytes, optin);
  set_shared_limit(impl_->where, attention_forward_kernel<bf16>, bytes, optin);
  set_shared_limit(impl_->where, attention_dq_kernel<float>, bytes, optin);
  set_shared_limit(impl_->where, attention_dq_kernel<bf16>, bytes, optin);
  impl_->attention_keys = max_keys;
}

AttentionSavedSize CudaBackend::attention_saved_size(int64_t max_rows, int64_t max_keys,
                                                     int n_heads, int head_dim) const {
  return saved_log_sum_exp(max_rows, max_keys, n_heads, head_dim);
}

void CudaBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                                    int n_heads, int n_kv_heads, const SequenceIndex& seq,
                                    float scale) {
  const AttnShape s = attention_shape("attention_forward", qkv, out, lse, n_heads, n_kv_heads,
                                      seq, scale, impl_->attention_keys);
  if (seq.num_rows == 0) return;
  const dim3 grid(unsigned(seq.num_rows), unsigned(n_heads));
  const size_t shared = size_t(seq.max_keys) * sizeof(float);
  cuda::dispatch_act(qkv.dtype, "attention_forward", [&](auto tag) {
    using F = typename decltype(tag)::type;
    attention_forward_kernel<F><<<grid, kAttnThreads, shared, impl_->stream>>>(
        static_cast<F*>(out.data), static_cast<float*>(lse.data), static_cast<const F*>(qkv.data),
        segments_of(seq), s);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "attention_forward_kernel");
  });
}

void CudaBackend::attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                     const Tensor& lse, int n_heads, int n_kv_heads,
                                     const SequenceIndex& seq, float scale) {
  const AttnShape s = attention_shape("attention_backward", qkv, dout, lse, n_heads, n_kv_heads,
                                      seq, scale, impl_->attention_keys);
  cuda::expect_device(dqkv, "attention_backward", "dqkv");
  cuda::expect_same_dtype(qkv, dqkv, "attention_backward");
  SPT_ASSERT(dqkv.cols() == qkv.cols() && dqkv.rows() >= seq.num_rows);
  SPT_ASSERT(dqkv.data != qkv.data && dqkv.data != dout.data);
  if (seq.num_rows == 0) return;
  const dim3 q_grid(unsigned(seq.num_rows), unsigned(n_heads));
  const dim3 kv_grid(unsigned(seq.num_rows), unsigned(n_kv_heads));
  const size_t shared = size_t(seq.max_keys) * sizeof(float);
  const Segments seg = segments_of(seq);
  cuda::dispatch_act(qkv.dtype, "attention_backward", [&](auto tag) {
    using F = typename decltype(tag)::type;
    auto* dx = static_cast<F*>(dqkv.data);
    auto* dO = static_cast<const F*>(dout.data);
    auto* x = static_cast<const F*>(qkv.data);
    auto* L = static_cast<const float*>(lse.data);
    attention_rowdot_kernel<F><<<q_grid, kAttnThreads, 0, impl_->stream>>>(dx, dO, x, L, seg, s);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "attention_rowdot_kernel");
    attention_dkv_kernel<F><<<kv_grid, kAttnThreads, 0, impl_->stream>>>(dx, dO, x, L, seg, s);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "attention_dkv_kernel");
    attention_dq_kernel<F><<<q_grid, kAttnThreads, shared, impl_->stream>>>(dx, dO, x, L, seg, s);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "attention_dq_kernel");
  });
}

}  // namespace sptrain
