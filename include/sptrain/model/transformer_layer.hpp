#pragma once
// One transformer block, pre-norm:
//   x_mid = x_in + O(attention(RoPE(QKV(norm1(x_in)))))
//   x_out = x_mid + Down(act(Up(norm2(x_mid))))
// QKV and Up (with the SwiGLU gate) are column-parallel, O and Down
// row-parallel. forward() and backward() sit side by side; backward computes
// the gradient with respect to x_in only.
#include <string>

#include "sptrain/model/buffer_list.hpp"
#include "sptrain/model/kv_cache.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/norm.hpp"
#include "sptrain/model/parallel_linear.hpp"
#include "sptrain/model/weight_loader.hpp"

namespace sptrain {

// What one tensor-parallel rank holds of the model's dimensions.
struct LocalDims {
  int d_model = 0;
  int head_dim = 0;
  int heads = 0;      // query heads on this rank
  int kv_heads = 0;   // key/value heads on this rank (replicated when fewer than ranks)
  int ffn = 0;        // MLP columns on this rank
  bool swiglu = false;
  Range head_range, kv_range, ffn_range, vocab_range;

  int qkv_width() const { return (heads + 2 * kv_heads) * head_dim; }
  int up_width() const { return swiglu ? 2 * ffn : ffn; }
};
// Checks that the layout divides the model; the error names the numbers.
LocalDims local_dims(const ModelConfig& c, int tp_rank, int tp_size);

struct Capacity {
  int64_t rows = 0;      // most rows in one micro-batch
  int64_t max_keys = 0;  // most keys one query sees (prefix + segment)
};

// Saved by forward for backward, per layer and micro-batch in flight.
struct LayerActivations {
  Buffer x_in;                  // [R, d]
  Buffer attn_mean, attn_rstd;  // [R] stat
  Buffer qkv;                   // [R, qkv_width], after RoPE
  Buffer attn_saved;            // what the back end keeps for the attention backward
  Buffer x_mid;                 // [R, d]
  Buffer mlp_mean, mlp_rstd;    // [R] stat
  Buffer pre_act;               // [R, up_width], the MLP's input to its activation

  // The buffers for micro-batches of up to cap rows (a Stage allocates them).
  BufferList buffers(const LocalDims& dims, NormKind norm, Capacity cap,
                     const AttentionSavedSize& saved);
};

// Scratch shared by all layers of a stage.
struct LayerWorkspace {
  Buffer norm_out, attn_out, proj_out, act_out;  // forward
  Buffer d_norm, d_attn, d_qkv, d_act, d_pre;    // backward

  BufferList buffers(const LocalDims& dims, Capacity cap);
};

// A deep prompt's keys and values for one layer (include/sptrain/model/prompt_inputs.hpp):
// kv [rows, 2 * kv_heads * head_dim] (forward: the values; backward: where
// their gradient is added) and the micro-batch's tokens, which say which
// row of kv each prompt row holds. Empty kv: no deep prompt.
struct LayerPrefix {
  Tensor kv;
  Tensor tokens;
  bool capture = false;  // forward: copy the rows' keys and values into kv instead
};

struct TransformerLayer {
  Norm attn_norm;
  ColumnParallelLinear qkv;  // q, k and v stacked: [qkv_width, d]
  RowParallelLinear o;       // [d, heads*head_dim]
  Norm mlp_norm;
  ColumnParallelLinear up;   // SwiGLU: gate and up stacked: [2*ffn, d]
  RowParallelLinear down;    // [d, ffn]
  Activation activation = Activation::SwiGlu;
  LocalDims dims;
  float attn_scale = 1.f;

  void load(WeightLoader& loader, const ModelConfig& c, const LocalDims& dims, int layer);

  // acts.x_in holds the input; x_out receives the output (both [T, d]).
  // A deep prompt's keys and values replace those of the prompt rows after RoPE.
  void forward(const ModelContext& ctx, const SequenceIndex& seq, const Tensor& rope_table,
               const LayerActivations& acts, const LayerWorkspace& ws, const Tensor& x_out,
               const LayerPrefix& prefix = {}) const;
  // dx: on entry the gradient w.r.t. x_out, on exit the gradient w.r.t. x_in.
  // dprefix.kv (when given) gathers the gradient of the prefix's keys and values.
  void backward(const ModelContext& ctx, const SequenceIndex& seq, const Tensor& rope_table,
                const LayerActivations& acts, const LayerWorkspace& ws, const Tensor& dx,
                const LayerPrefix& dprefix = {}) const;
  // Generation: forward of a step's new rows, whose keys and values go into
  // this layer's cache [C, 2*kv_heads*head_dim] and whose attention reads it
  // (model/kv_cache.hpp). acts.x_in holds the input, x_out receives the output.
  // A deep prompt's keys and values replace those of the prompt rows, as in forward.
  void forward_cached(const ModelContext& ctx, const CachedStep& step, const Tensor& rope_table,
                      const LayerActivations& acts, const LayerWorkspace& ws, const Tensor& cache,
                      const Tensor& x_out, const LayerPrefix& prefix = {}) const;

 private:
  // The two halves of forward around the attention: norm, QKV, RoPE and a
  // deep prompt's keys and values into acts.qkv; then the output projection,
  // the residual and the MLP block.
  void attention_input(const ModelContext& ctx, const SequenceIndex& seq, const Tensor& rope_table,
                       const LayerActivations& acts, const LayerWorkspace& ws,
                       const LayerPrefix& prefix) const;
  void attention_output_and_mlp(const ModelContext& ctx, int64_t rows, const LayerActivations& acts,
                                const LayerWorkspace& ws, const Tensor& x_out) const;
};

}  // namespace sptrain
