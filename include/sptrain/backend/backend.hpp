#pragma once
// The op interface the model is written against. A back end (CPU, CUDA)
// implements every op; the model never touches memory directly.
//
// Conventions
// - Activations are packed: the B sequences of a micro-batch lie end to end,
//   T rows in all, no padding rows. SequenceIndex says where each starts.
// - Every sequence is [prompt rows (P), text rows]; a row's position counts
//   over the whole sequence, so prompt rows have positions 0..P-1.
// - Linear weights are [out, in] (the PyTorch layout): y = x·Wᵀ.
// - "act" dtype: F32 or F64 on the CPU, BF16 on CUDA. "stat" dtype (norm
//   statistics, prompt, prompt gradient, loss terms): F32, or F64 when act is F64.
// - Backward ops compute input gradients only. Ops whose name ends in
//   _backward ACCUMULATE (+=) into their input-gradient tensors unless the
//   comment says "overwrites".
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sptrain/core/error.hpp"
#include "sptrain/core/tensor.hpp"

namespace sptrain {

// Where the rows of one packed micro-batch lie. The rows form segments; a
// segment's rows attend causally to each other and, before that, to the rows
// of its prefix (another segment, or none). Prompt tuning packs a micro-batch
// as one prompt segment (P rows, positions 0..P-1) shared as the prefix of
// every example's text segment (positions P, P+1, ...): the prompt rows are
// the same in every example, so they are computed once. Without sharing each
// example is one segment [prompt rows, text rows] with no prefix; both
// layouts give the same results.
struct SequenceIndex {
  int num_segments = 0;  // S
  int num_rows = 0;      // T = sum of segment lengths
  int num_examples = 0;  // B: examples, one answer row each
  int max_len = 0;       // longest segment
  int max_keys = 0;      // most keys one query sees (prefix + own segment)
  int prompt_len = 0;    // P: rows with position < P are prompt rows
  std::vector<int32_t> host_offsets;       // [S+1] first row of each segment, then T
  std::vector<int32_t> host_prefix_start;  // [S] first row of the segment's prefix
  std::vector<int32_t> host_prefix_len;    // [S] rows in the prefix (0: none)
  std::vector<int64_t> host_prob_offsets;  // [S+1] start of segment s's L x (prefix + L) block, per head
  std::vector<int32_t> host_positions;     // [T] position of each row in its example
  std::vector<int32_t> host_answer_rows;   // [B] row whose output predicts the label
  Tensor offsets;       // i32 [S+1]
  Tensor prefix_start;  // i32 [S]
  Tensor prefix_len;    // i32 [S]
  Tensor prob_offsets;  // i64 [S+1]
  Tensor positions;     // i32 [T]
  Tensor answer_rows;   // i32 [B]

  int length(int s) const { return host_offsets[size_t(s) + 1] - host_offsets[size_t(s)]; }
};

// Where the new rows of one step of generation with a key/value cache lie.
// Per layer, the cache holds the keys and values of every row computed so
// far, one cache row each: [C, 2 * Hkv * D], the k heads then the v heads.
// The step's Q new rows form S runs; run s (rows q_offsets[s] ..
// q_offsets[s+1] - 1) continues sequence s, whose keys and values lie in two
// ranges of the cache: its prefix [prefix_start[s], +prefix_len[s]) (a
// prompt shared by several sequences, or none) and its own rows
// [own_start[s], +own_len[s]), of which the run's new rows are the last
// (kv_cache_store puts them there first). New row i of a run of L rows sees
// the prefix and its own rows 0 .. own_len - L + i: causal within the run,
// so one op serves the prompt and the input (a run of many rows) and each
// generated token (a run of one).
struct CacheIndex {
  int num_seqs = 0;  // S
  int num_rows = 0;  // Q
  int max_keys = 0;  // most keys one new row sees (prefix + own)
  std::vector<int32_t> host_q_offsets;     // [S+1]
  std::vector<int32_t> host_prefix_start;  // [S]
  std::vector<int32_t> host_prefix_len;    // [S]
  std::vector<int32_t> host_own_start;     // [S]
  std::vector<int32_t> host_own_len;       // [S]
  std::vector<int32_t> host_cache_rows;    // [Q] the cache row of each new row
  Tensor q_offsets, prefix_start, prefix_len, own_start, own_len, cache_rows;  // i32, as above
};

enum class NormKind : uint8_t { LayerNorm, RmsNorm };
enum class Activation : uint8_t { Gelu, GeluTanh, Relu, SwiGlu };

// The accelerator as a benchmark reports it; all zero for the CPU.
struct DeviceStats {
  std::string name;                // cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3"
  int cc_major = 0, cc_minor = 0;  // compute capability
  double memory_used_mb = 0;       // device memory in use now, by every process
  double memory_total_mb = 0;
};

// The size of what attention_forward keeps for attention_backward (per layer
// and micro-batch in flight): `elems` elements of the act dtype, or of the
// stat dtype when `stat_dtype`.
struct AttentionSavedSize {
  int64_t elems = 0;
  bool stat_dtype = false;
};
// The two choices, as formulas that need no back end (the planner models a
// GPU from a CPU-only build): every probability, [heads, rows, keys] of act
// (CPU), or one f32 log-sum-exp per row and query head (CUDA).
inline AttentionSavedSize saved_probabilities(int64_t max_rows, int64_t max_keys, int n_heads,
                                              int /*head_dim*/) {
  return {int64_t(n_heads) * max_rows * max_keys, false};
}
inline AttentionSavedSize saved_log_sum_exp(int64_t max_rows, int64_t /*max_keys*/, int n_heads,
                                            int /*head_dim*/) {
  return {max_rows * int64_t(n_heads), true};
}
using AttentionSavedSizeFn =
    std::function<AttentionSavedSize(int64_t max_rows, int64_t max_keys, int n_heads, int head_dim)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;  // e.g. "cpu (OpenBLAS Haswell, 2 threads)"
  virtual DeviceStats device_stats() const { return {}; }
  // The accelerator this back end runs on and the stream its ops are queued
  // on (a cudaStream_t), for the communicators that order their work after
  // it (comm/parallel_state.hpp); -1 and null on the CPU.
  virtual int device_index() const { return -1; }
  virtual void* native_stream() const { return nullptr; }

  // ---- memory ----
  virtual Buffer allocate(DType dtype, Shape shape) = 0;  // zero-filled
  virtual void copy_from_host(const Tensor& dst, const void* src) = 0;  // bytes as dst.dtype
  virtual void copy_to_host(void* dst, const Tensor& src) = 0;
  // copy_from_host without the host waiting for the device; `src` may be
  // reused at once. The CPU back end copies; CUDA copies src into pinned
  // staging memory (reserve_staging(), at setup) and enqueues the rest.
  virtual void copy_from_host_async(const Tensor& dst, const void* src) { copy_from_host(dst, src); }
  // Room for `copies` uploads of `bytes` in all between two host waits (each
  // writer of batch buffers reserves for its buffers, at setup).
  virtual void reserve_staging(int64_t bytes, int64_t copies) { (void)bytes, (void)copies; }
  // dst = src, converting between float dtypes (f64/f32/bf16) when they differ.
  virtual void convert(const Tensor& dst, const Tensor& src) = 0;
  virtual void fill(const Tensor& t, double value) = 0;
  virtual void synchronize() = 0;

  // ---- dense ----
  // c[M,N] = a[M,K]·bᵀ (b is [N,K]) when trans_b, else a·b (b is [K,N]);
  // accumulate: c += instead of c =.
  virtual void matmul(const Tensor& c, const Tensor& a, const Tensor& b, bool trans_b,
                      bool accumulate) = 0;
  virtual void add_bias(const Tensor& x, const Tensor& bias) = 0;  // x[R,N] += bias[N]
  virtual void add(const Tensor& y, const Tensor& x) = 0;          // y += x (same shape)

  // ---- norms (per row of x[T,d]) ----
  // LayerNorm: out = (x-mean)*rstd*w + b; mean, rstd: stat [T].
  virtual void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                                 const Tensor& x, const Tensor& w, const Tensor& b,
                                 float eps) = 0;
  virtual void layernorm_backward(const Tensor& dx, const Tensor& dout, const Tensor& x,
                                  const Tensor& mean, const Tensor& rstd, const Tensor& w) = 0;
  // RMSNorm: out = x*rstd*w; rstd: stat [T].
  virtual void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x,
                               const Tensor& w, float eps) = 0;
  virtual void rmsnorm_backward(const Tensor& dx, const Tensor& dout, const Tensor& x,
                                const Tensor& rstd, const Tensor& w) = 0;

  // ---- activations ----
  // Gelu/GeluTanh/Relu: out = f(in).
  virtual void activation_forward(Activation kind, const Tensor& out, const Tensor& in) = 0;
  // din (overwrites) = f'(in) * dout.
  virtual void activation_backward(Activation kind, const Tensor& din, const Tensor& dout,
                                   const Tensor& in) = 0;
  // gate_up[T, 2F] holds [gate | up] (one fused projection); out[T,F] = silu(gate) * up.
  virtual void swiglu_forward(const Tensor& out, const Tensor& gate_up) = 0;
  // dgate_up[T, 2F] (overwrites) from dout[T,F].
  virtual void swiglu_backward(const Tensor& dgate_up, const Tensor& dout,
                               const Tensor& gate_up) = 0;

  // ---- attention inputs: one fused projection ----
  // qkv[T, (Hq + 2*Hkv) * D] holds per row [q heads | k heads | v heads].

  // Rotary embedding, in place, on the first `rot_heads` heads of each row of
  // qkv (q and k: rot_heads = Hq + Hkv), rotate-half convention of Hugging
  // Face Llama. cos_sin: stat [max_pos, D], cos of the D/2 frequencies then
  // their sin. inverse rotates by -angle (the backward).
  virtual void rope(const Tensor& qkv, int rot_heads, int head_dim, const SequenceIndex& seq,
                    const Tensor& cos_sin, bool inverse) = 0;
  // x[T,d] += table[positions[t]] (learned positions).
  virtual void add_positions(const Tensor& x, const Tensor& table, const SequenceIndex& seq) = 0;

  // ---- attention: causal within each segment after its prefix, grouped-query heads ----
  // out[T, Hq*D]; query head h reads kv head h / (Hq/Hkv). Query i of a
  // segment of length L with a prefix of p rows sees the p prefix rows and
  // rows 0..i of its segment. `saved` is what the back end keeps for the
  // backward, sized by attention_saved_size: the CPU keeps the probabilities
  // (act [Hq * prob_offsets[S]]; segment s's block starts at
  // Hq*prob_offsets[s], laid out [Hq, L, p + L]: row = query, columns =
  // prefix keys then segment keys); CUDA keeps each row's log-sum-exp of its
  // scores (stat [T, Hq]) and recomputes the probabilities in the backward.
  virtual void attention_forward(const Tensor& out, const Tensor& saved, const Tensor& qkv,
                                 int n_heads, int n_kv_heads, const SequenceIndex& seq,
                                 float scale) = 0;
  // dqkv (overwrites) from dout[T, Hq*D]; a prefix's k and v rows gather the
  // gradient of every segment that reads them.
  virtual void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                  const Tensor& saved, int n_heads, int n_kv_heads,
                                  const SequenceIndex& seq, float scale) = 0;
  // The size of `saved` for batches of up to max_rows rows whose queries see
  // up to max_keys keys, with n_heads query heads of head_dim.
  virtual AttentionSavedSize attention_saved_size(int64_t max_rows, int64_t max_keys, int n_heads,
                                                  int head_dim) const = 0;
  // Scratch for batches of up to max_rows rows, segments seeing up to
  // max_keys keys, qkv rows of qkv_width: reserved before training so that a
  // step never allocates.
  virtual void reserve_attention(int64_t max_rows, int max_keys, int n_heads, int qkv_width) = 0;

  // ---- embedding and prompt ----
  // Text rows (tokens[t] >= 0): x[t] = table[tokens[t] - vocab_start] when
  // the token is in this shard's range [vocab_start, vocab_start +
  // table.rows()), else 0. Prompt rows (tokens[t] < 0): x[t] = prompt[-1 -
  // tokens[t]] (stat dtype, converted), or 0 when prompt is empty (other
  // tensor-parallel ranks). The prompt tensor may stack several prompts
  // (one per task) so that one batch can mix them. tokens: i32 [T].
  virtual void embed_forward(const Tensor& x, const Tensor& tokens, const Tensor& table,
                             int64_t vocab_start, const Tensor& prompt,
                             const SequenceIndex& seq) = 0;
  // dprompt (stat) row -1 - tokens[t] += dx[t] for every prompt row t.
  virtual void prompt_backward(const Tensor& dprompt, const Tensor& dx, const Tensor& tokens,
                               const SequenceIndex& seq) = 0;

  // ---- deep prompts (prefix tuning, P-tuning v2): a layer's trainable keys and values ----
  // For every prompt row t (tokens[t] < 0): qkv[t, col .. col + prefix.cols()) =
  // prefix[-1 - tokens[t]] (stat dtype, converted to act): the layer's prefix
  // keys and values (after RoPE) replace what the row computed. col is where
  // the row's k heads start; prefix rows are [k heads | v heads] of this rank.
  virtual void prefix_kv_forward(const Tensor& qkv, int64_t col, const Tensor& prefix,
                                 const Tensor& tokens, const SequenceIndex& seq) = 0;
  // For every prompt row t: dprefix (stat) row -1 - tokens[t] += dqkv[t, col ..
  // col + dprefix.cols()), then that part of dqkv = 0 (the replaced keys and
  // values pass no gradient back into the row). Rows are added in order.
  virtual void prefix_kv_backward(const Tensor& dprefix, const Tensor& dqkv, int64_t col,
                                  const Tensor& tokens, const SequenceIndex& seq) = 0;

  // ---- answer rows ----
  virtual void gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) = 0;      // out[i] = x[rows[i]]
  virtual void scatter_add_rows(const Tensor& dx, const Tensor& dout, const Tensor& rows) = 0;  // dx[rows[i]] += dout[i]

  // ---- cross-entropy over (a shard of) the vocabulary, logits [B, V_local] ----
  // The pieces are separate so that a vocabulary split over tensor-parallel
  // ranks can all-reduce max, sum-exp and target logit in between.
  // row_max: stat [B]. row_sumexp: stat [B] = sum exp(logit - max).
  virtual void row_max(const Tensor& out, const Tensor& logits) = 0;
  virtual void row_sumexp(const Tensor& out, const Tensor& logits, const Tensor& max) = 0;
  // out[b] (stat) = logits[b, target[b] - offset] if in this shard, else 0. targets: i32 [B].
  virtual void pick_target(const Tensor& out, const Tensor& logits, const Tensor& targets,
                           int64_t offset) = 0;
  // dlogits (overwrites) = weight * (softmax - onehot(target)); softmax from
  // the all-reduced max and sumexp; weight (usually 1/global batch).
  virtual void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits,
                                      const Tensor& max, const Tensor& sumexp,
                                      const Tensor& targets, int64_t offset, float weight) = 0;

  // ---- generation: attention over a key/value cache (CacheIndex) ----
  // A back end without them fails with a message naming it.
  // cache[cache_rows[i]] = the k and v heads of qkv row i (qkv [Q, W], cache [C, 2*Hkv*D]).
  virtual void kv_cache_store(const Tensor& cache, const Tensor& qkv, int n_heads, int n_kv_heads,
                              const CacheIndex& idx) {
    (void)cache, (void)qkv, (void)n_heads, (void)n_kv_heads, (void)idx;
    fail(name(), ": generation (a key/value cache) is not supported on this back end yet");
  }
  // out[Q, Hq*D]: the query heads of each new row (from qkv) attend over the
  // keys and values its run sees in the cache, grouped-query heads as in
  // attention_forward. Needs reserve_attention(.., max_keys >= idx.max_keys, ..).
  virtual void attention_cached(const Tensor& out, const Tensor& qkv, const Tensor& cache,
                                int n_heads, int n_kv_heads, const CacheIndex& idx, float scale) {
    (void)out, (void)qkv, (void)cache, (void)n_heads, (void)n_kv_heads, (void)idx, (void)scale;
    fail(name(), ": generation (attention over a key/value cache) is not supported on this back end yet");
  }

  // ---- a training step's figures and the prompt's update, on the device ----
  // A GPU step finishes its loss, accuracy count, gradient norm and update on
  // the device, so the host waits once per step, for the step's scalars
  // (docs/cuda.md). The CPU back end keeps these on the host (train_step, optim/)
  // and implements only what tests compare the device with.

  // sums (f64 [2]) += {sum over the N target rows n of log(sumexp[n]) + max[n] - target[n],
  //                    number of examples b whose largest label_logits[b, :] is at labels[b]}
  // (ties: the first largest, as std::max_element). max, sumexp, target: stat [N];
  // label_logits: stat [B, n_labels], one row per example (a classify task: N = B;
  // n_labels 0, a generate task: no count); labels: i32 [B].
  virtual void accumulate_loss(const Tensor& sums, const Tensor& max, const Tensor& sumexp,
                               const Tensor& target, const Tensor& label_logits,
                               const Tensor& labels) = 0;
  // out (f64 [1]) = the sum of the squares of x (stat), in double.
  virtual void sum_squares(const Tensor& out, const Tensor& x) = 0;
  // grad *= max_norm / norm when norm = sqrt(norm_sq[0]) is finite and above
  // max_norm (max_norm 0: never), as optim/clip.cpp does on the host.
  virtual void clip_by_norm(const Tensor& grad, const Tensor& norm_sq, double max_norm);

  // One optimizer update of the f32 parameter, the host optimizers' formulas
  // (optim/adamw.hpp, adafactor.hpp), skipped when sqrt(norm_sq[0]) is not
  // finite (the gradient's norm before clipping). step: t, the first update is 1.
  struct AdamWStep {
    int64_t step = 1;
    double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  };
  virtual void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m,
                            const Tensor& v, const Tensor& norm_sq, const AdamWStep& s);
  struct AdafactorStep {
    int64_t step = 1;
    double lr = 0, decay_rate = 0.8, clip_threshold = 1.0, eps1 = 1e-30, eps2 = 1e-3;
    bool scale_parameter = true;
    double weight_decay = 0;
  };
  // f64 elements of the scratch adafactor_update needs for a parameter of `rows` rows.
  static int64_t adafactor_scratch_size(int64_t rows) { return 2 * rows + 4; }
  // param [rows, cols]; row [rows] and col [cols]: the factored second moments.
  virtual void adafactor_update(const Tensor& param, const Tensor& grad, const Tensor& row,
                                const Tensor& col, const Tensor& scratch, const Tensor& norm_sq,
                                const AdafactorStep& s);
};

// The CPU back end updates the prompt on the host (optim/): these are CUDA's.
inline void Backend::clip_by_norm(const Tensor&, const Tensor&, double) {
  fail("internal error: clip_by_norm runs on the host with the ", name(), " back end (optim/clip.cpp)");
}
inline void Backend::adamw_update(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                  const Tensor&, const AdamWStep&) {
  fail("internal error: adamw_update runs on the host with the ", name(), " back end (optim/adamw.cpp)");
}
inline void Backend::adafactor_update(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                      const Tensor&, const Tensor&, const AdafactorStep&) {
  fail("internal error: adafactor_update runs on the host with the ", name(),
       " back end (optim/adafactor.cpp)");
}

}  // namespace sptrain
