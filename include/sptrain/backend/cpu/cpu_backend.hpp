#pragma once
// The CPU back end: fp32 (or fp64 for the finite-difference tests), OpenBLAS
// for every matrix product, OpenMP threads for the rest. It is the reference
// every GPU kernel is checked against.
#include <string>
#include <vector>

#include "sptrain/backend/backend.hpp"

namespace sptrain {

class CpuBackend final : public Backend {
 public:
  // threads: OpenMP and BLAS threads (0 = leave the libraries' defaults).
  explicit CpuBackend(int threads = 0);

  Device device() const override { return Device::CPU; }
  std::string name() const override;
  int threads() const { return threads_; }
  // Bytes of every buffer allocate() has returned (freed ones included) and
  // of the attention scratch now reserved: what memory plans are checked against.
  int64_t bytes_allocated() const { return bytes_allocated_; }
  int64_t attention_scratch_bytes() const;

  Buffer allocate(DType dtype, Shape shape) override;
  void copy_from_host(const Tensor& dst, const void* src) override;
  void copy_to_host(void* dst, const Tensor& src) override;
  void convert(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& t, double value) override;
  void synchronize() override {}

  void matmul(const Tensor& c, const Tensor& a, const Tensor& b, bool trans_b,
              bool accumulate) override;
  void add_bias(const Tensor& x, const Tensor& bias) override;
  void add(const Tensor& y, const Tensor& x) override;

  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                         const Tensor& x, const Tensor& w, const Tensor& b, float eps) override;
  void layernorm_backward(const Tensor& dx, const Tensor& dout, const Tensor& x,
                          const Tensor& mean, const Tensor& rstd, const Tensor& w) override;
  void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x, const Tensor& w,
                       float eps) override;
  void rmsnorm_backward(const Tensor& dx, const Tensor& dout, const Tensor& x,
                        const Tensor& rstd, const Tensor& w) override;

  void activation_forward(Activation kind, const Tensor& out, const Tensor& in) override;
  void activation_backward(Activation kind, const Tensor& din, const Tensor& dout,
                           const Tensor& in) override;
  void swiglu_forward(const Tensor& out, const Tensor& gate_up) override;
  void swiglu_backward(const Tensor& dgate_up, const Tensor& dout, const Tensor& gate_up) override;

  void rope(const Tensor& qkv, int rot_heads, int head_dim, const SequenceIndex& seq,
            const Tensor& cos_sin, bool inverse) override;
  void add_positions(const Tensor& x, const Tensor& table, const SequenceIndex& seq) override;

  // saved: the probabilities (see Backend::attention_forward).
  void attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv, int n_heads,
                         int n_kv_heads, const SequenceIndex& seq, float scale) override;
  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                          const Tensor& probs, int n_heads, int n_kv_heads,
                          const SequenceIndex& seq, float scale) override;
  AttentionSavedSize attention_saved_size(int64_t max_rows, int64_t max_keys, int n_heads,
                                          int head_dim) const override;
  void reserve_attention(int64_t max_rows, int max_keys, int n_heads, int qkv_width) override;
  // Bytes of the scratch reserve_attention keeps on each thread (memory plans).
  static int64_t attention_scratch_bytes_per_thread(int64_t max_rows, int max_keys, int qkv_width);
  void kv_cache_store(const Tensor& cache, const Tensor& qkv, int n_heads, int n_kv_heads,
                      const CacheIndex& idx) override;
  void attention_cached(const Tensor& out, const Tensor& qkv, const Tensor& cache, int n_heads,
                        int n_kv_heads, const CacheIndex& idx, float scale) override;

  void embed_forward(const Tensor& x, const Tensor& tokens, const Tensor& table,
                     int64_t vocab_start, const Tensor& prompt, const SequenceIndex& seq) override;
  void prompt_backward(const Tensor& dprompt, const Tensor& dx, const Tensor& tokens,
                       const SequenceIndex& seq) override;
  void prefix_kv_forward(const Tensor& qkv, int64_t col, const Tensor& prefix, const Tensor& tokens,
                         const SequenceIndex& seq) override;
  void prefix_kv_backward(const Tensor& dprefix, const Tensor& dqkv, int64_t col,
                          const Tensor& tokens, const SequenceIndex& seq) override;

  void gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) override;
  void scatter_add_rows(const Tensor& dx, const Tensor& dout, const Tensor& rows) override;

  void row_max(const Tensor& out, const Tensor& logits) override;
  void row_sumexp(const Tensor& out, const Tensor& logits, const Tensor& max) override;
  void pick_target(const Tensor& out, const Tensor& logits, const Tensor& targets,
                   int64_t offset) override;
  void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& max,
                              const Tensor& sumexp, const Tensor& targets, int64_t offset,
                              float weight) override;
  void accumulate_loss(const Tensor& sums, const Tensor& max, const Tensor& sumexp,
                       const Tensor& target, const Tensor& label_logits,
                       const Tensor& labels) override;
  void sum_squares(const Tensor& out, const Tensor& x) override;

 private:
  int threads_ = 0;
  // Per-thread attention scratch, sized by reserve_attention: one
  // L x (prefix + L) block each, and each thread's share of the prefix rows'
  // k/v gradient (rows x k|v columns).
  std::vector<std::vector<double>> scratch_, prefix_grad_;
  int scratch_keys_ = 0;
  int64_t scratch_rows_ = 0;
  int64_t bytes_allocated_ = 0;
};

}  // namespace sptrain
