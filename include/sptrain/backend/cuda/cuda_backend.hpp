#pragma once
// The CUDA back end: bf16 weights and activations ("act" = BF16), f32
// statistics ("stat" = F32) and f32 accumulation everywhere; matrix products
// through cuBLASLt, our own kernels for the rest (src/backend/cuda/). Every
// kernel also runs with act = F32, which the tests use to check the index
// math against the CPU back end tightly. docs/cuda.md describes the design.
//
// No CUDA header is exposed here (the state lives behind a pointer), so any
// translation unit may include this file; the class exists only when the
// CUDA back end is built (SPTRAIN_WITH_CUDA).
#include <memory>
#include <string>

#include "sptrain/backend/backend.hpp"

struct CUstream_st;  // what cudaStream_t points to: stream() converts to cudaStream_t

namespace sptrain {

#ifdef SPTRAIN_WITH_CUDA

// Whether a CUDA device can be used; when not, *reason (if given) says why
// (any failure of cudaGetDeviceCount counts as "no GPU": without a driver it
// reports "insufficient driver", not "no device").
bool cuda_device_available(std::string* reason);
// Visible CUDA devices, 0 when none can be used.
int cuda_device_count();

class CudaBackend final : public Backend {
 public:
  // Selects `device`, creates the compute stream, the cuBLASLt handle and
  // its workspace. Throws an Error naming the rank and device when no usable
  // GPU is there. `rank` only labels error messages.
  CudaBackend(int device, int rank);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::CUDA; }
  std::string name() const override;
  DeviceStats device_stats() const override;
  int device_index() const override;
  int rank() const;
  // The stream every op is queued on (communicators order their work after it).
  CUstream_st* stream() const;
  void* native_stream() const override { return stream(); }

  // Device memory, zero-filled. Every allocation is made at setup (weights,
  // activations, workspaces, batch buffers): a training step never allocates.
  Buffer allocate(DType dtype, Shape shape) override;
  // Both return when the copy is complete (the host buffer may be reused).
  void copy_from_host(const Tensor& dst, const void* src) override;
  void copy_to_host(void* dst, const Tensor& src) override;
  // Copies src into pinned staging memory and enqueues the copy from there:
  // the host does not wait. The staging space (reserve_staging, made at
  // setup) is reused after each wait; should it run out, the call waits first.
  void copy_from_host_async(const Tensor& dst, const void* src) override;
  void reserve_staging(int64_t bytes, int64_t copies) override;
  // Host waits so far (stream and event synchronisations, copies to the host):
  // what tests count to check a training step waits once.
  int64_t host_waits() const;
  void convert(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& t, double value) override;
  void synchronize() override;

  // a and b: both bf16 or both f32; c: bf16 or f32 (f32 when a, b are f32).
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

  // head_dim up to 256 (2 or more with bf16); up to the keys per query given
  // to reserve_attention, which must be called first. lse: f32 [T, Hq], the
  // log-sum-exp of each row's scores per head; the backward recomputes the
  // probabilities from it (none are stored).
  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int n_heads,
                         int n_kv_heads, const SequenceIndex& seq, float scale) override;
  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                          const Tensor& lse, int n_heads, int n_kv_heads,
                          const SequenceIndex& seq, float scale) override;
  // {max_rows * n_heads, stat}: one f32 per row and head.
  AttentionSavedSize attention_saved_size(int64_t max_rows, int64_t max_keys, int n_heads,
                                          int head_dim) const override;
  // Allocates nothing (the backward keeps its per-row scratch inside dqkv):
  // sets the kernels' shared-memory limit for max_keys keys per query and
  // fails clearly if the device cannot hold them.
  void reserve_attention(int64_t max_rows, int max_keys, int n_heads, int qkv_width) override;

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
  void clip_by_norm(const Tensor& grad, const Tensor& norm_sq, double max_norm) override;
  // f32 parameter, gradient and state; scratch f64 [adafactor_scratch_size(rows)].
  void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                    const Tensor& norm_sq, const AdamWStep& s) override;
  void adafactor_update(const Tensor& param, const Tensor& grad, const Tensor& row,
                        const Tensor& col, const Tensor& scratch, const Tensor& norm_sq,
                        const AdafactorStep& s) override;

 private:
  struct Impl;  // CUDA state; defined in src/backend/cuda/internal.cuh
  std::unique_ptr<Impl> impl_;
};

// The factory's entry point: `device` is the node-local rank, taken modulo
// the number of visible devices (ranks beyond the GPU count share GPUs).
std::unique_ptr<Backend> make_cuda_backend(int device, int rank);

#else  // built without CUDA: no device is ever available

inline bool cuda_device_available(std::string* reason) {
  if (reason) *reason = "sptrain was built without the CUDA back end";
  return false;
}
inline int cuda_device_count() { return 0; }

#endif  // SPTRAIN_WITH_CUDA

}  // namespace sptrain
