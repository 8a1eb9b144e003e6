#include "sptrain/model/transformer_layer.hpp"

#include <cmath>

namespace sptrain {

LocalDims local_dims(const ModelConfig& c, int tp_rank, int tp_size) {
  SPT_CHECK(c.n_heads % tp_size == 0, "tensor parallel size ", tp_size,
            " does not divide the model's ", c.n_heads, " attention heads");
  SPT_CHECK(c.d_ffn % tp_size == 0, "tensor parallel size ", tp_size,
            " does not divide the model's FFN width ", c.d_ffn);
  SPT_CHECK(c.n_kv_heads % tp_size == 0 || tp_size % c.n_kv_heads == 0,
            "tensor parallel size ", tp_size, " and the model's ", c.n_kv_heads,
            " key/value heads: one must divide the other");
  SPT_CHECK(tp_size <= c.vocab_size, "tensor parallel size ", tp_size, " exceeds the vocabulary");
  LocalDims d;
  d.d_model = c.d_model;
  d.head_dim = c.head_dim;
  d.heads = c.n_heads / tp_size;
  d.head_range = split_range(c.n_heads, tp_size, tp_rank);
  if (c.n_kv_heads >= tp_size) {
    d.kv_heads = c.n_kv_heads / tp_size;
    d.kv_range = split_range(c.n_kv_heads, tp_size, tp_rank);
  } else {
    // Fewer kv heads than ranks: each rank keeps the one kv head its query heads read.
    const int group = c.n_heads / c.n_kv_heads;
    d.kv_heads = 1;
    d.kv_range = Range{d.head_range.begin / group, 1};
  }
  d.ffn = c.d_ffn / tp_size;
  d.ffn_range = split_range(c.d_ffn, tp_size, tp_rank);
  d.swiglu = c.activation == Activation::SwiGlu;
  d.vocab_range = split_range(c.vocab_size, tp_size, tp_rank);
  return d;
}

namespace {

Norm load_norm(WeightLoader& loader, const ModelConfig& c, const std::string& prefix) {
  Norm n;
  n.kind = c.norm;
  n.eps = c.norm_eps;
  n.weight = loader.read_vector(prefix + "/weight", Range{0, c.d_model});
  if (c.bias && c.norm == NormKind::LayerNorm)
    n.bias = loader.read_vector(prefix + "/bias", Range{0, c.d_model});
  return n;
}

}  // namespace

void TransformerLayer::load(WeightLoader& loader, const ModelConfig& c, const LocalDims& d,
                            int layer) {
  const std::string p = "layers/" + std::to_string(layer);
  const Range all_d{0, c.d_model};
  const int64_t hd = c.head_dim;
  dims = d;
  activation = c.activation;
  attn_scale = float(1.0 / std::sqrt(double(c.head_dim)));

  attn_norm = load_norm(loader, c, p + "/attn_norm");
  // q, k, v rows of this rank's heads, stacked into one matrix.
  const Range q_rows{d.head_range.begin * hd, d.heads * hd};
  const Range kv_rows{d.kv_range.begin * hd, d.kv_heads * hd};
  qkv.weight = loader.allocate(Shape{d.qkv_width(), c.d_model});
  loader.read_into(qkv.weight, 0, p + "/attn/q/weight", q_rows, all_d);
  loader.read_into(qkv.weight, q_rows.count, p + "/attn/k/weight", kv_rows, all_d);
  loader.read_into(qkv.weight, q_rows.count + kv_rows.count, p + "/attn/v/weight", kv_rows, all_d);
  if (c.bias) {
    qkv.bias = loader.allocate(Shape{d.qkv_width()});
    const Tensor b = qkv.bias.view().reshape(Shape{1, d.qkv_width()});
    // Read each piece as a 1 x n block into its column range of the stacked bias.
    auto read_piece = [&](const std::string& name, Range rows, int64_t at) {
      Tensor dst = b;
      dst.data = static_cast<char*>(b.data) + size_t(at) * dtype_size(b.dtype);
      dst.shape = Shape{1, rows.count};
      loader.read_into(dst, 0, name, Range{0, 1}, rows);
    };
    read_piece(p + "/attn/q/bias", q_rows, 0);
    read_piece(p + "/attn/k/bias", kv_rows, q_rows.count);
    read_piece(p + "/attn/v/bias", kv_rows, q_rows.count + kv_rows.count);
  }
  o.weight = loader.read_matrix(p + "/attn/o/weight", all_d, q_rows);
  if (c.bias) o.bias = loader.read_vector(p + "/attn/o/bias", all_d);

  mlp_norm = load_norm(loader, c, p + "/mlp_norm");
  const Range f_rows{d.ffn_range.begin, d.ffn};
  if (d.swiglu) {
    up.weight = loader.allocate(Shape{2 * d.ffn, c.d_model});
    loader.read_into(up.weight, 0, p + "/mlp/gate/weight", f_rows, all_d);
    loader.read_into(up.weight, d.ffn, p + "/mlp/up/weight", f_rows, all_d);
    SPT_CHECK(!c.bias, "SwiGLU with biases is not supported");
  } else {
    up.weight = loader.read_matrix(p + "/mlp/up/weight", f_rows, all_d);
    if (c.bias) up.bias = loader.read_vector(p + "/mlp/up/bias", f_rows);
  }
  down.weight = loader.read_matrix(p + "/mlp/down/weight", all_d, f_rows);
  if (c.bias) down.bias = loader.read_vector(p + "/mlp/down/bias", all_d);
}

BufferList LayerActivations::buffers(const LocalDims& d, NormKind norm, Capacity cap,
                                     const AttentionSavedSize& saved) {
  const int64_t R = cap.rows;
  BufferList list = {{&x_in, Elem::Act, Shape{R, d.d_model}}};
  if (norm == NormKind::LayerNorm) list.push_back({&attn_mean, Elem::Stat, Shape{R}});
  list.push_back({&attn_rstd, Elem::Stat, Shape{R}});
  list.push_back({&qkv, Elem::Act, Shape{R, d.qkv_width()}});
  list.push_back({&attn_saved, saved.stat_dtype ? Elem::Stat : Elem::Act, Shape{saved.elems}});
  list.push_back({&x_mid, Elem::Act, Shape{R, d.d_model}});
  if (norm == NormKind::LayerNorm) list.push_back({&mlp_mean, Elem::Stat, Shape{R}});
  list.push_back({&mlp_rstd, Elem::Stat, Shape{R}});
  list.push_back({&pre_act, Elem::Act, Shape{R, d.up_width()}});
  return list;
}

BufferList LayerWorkspace::buffers(const LocalDims& d, Capacity cap) {
  const int64_t R = cap.rows, A = int64_t(d.heads) * d.head_dim;
  return {{&norm_out, Elem::Act, Shape{R, d.d_model}}, {&attn_out, Elem::Act, Shape{R, A}},
          {&proj_out, Elem::Act, Shape{R, d.d_model}}, {&act_out, Elem::Act, Shape{R, d.ffn}},
          {&d_norm, Elem::Act, Shape{R, d.d_model}},   {&d_attn, Elem::Act, Shape{R, A}},
          {&d_qkv, Elem::Act, Shape{R, d.qkv_width()}}, {&d_act, Elem::Act, Shape{R, d.ffn}},
          {&d_pre, Elem::Act, Shape{R, d.up_width()}}};
}

namespace {
// The first T rows of a buffer.
Tensor rows(const Buffer& b, int64_t T) { return b.view().slice_rows(0, T); }
}  // namespace

void TransformerLayer::forward(const ModelContext& ctx, const SequenceIndex& seq,
                               const Tensor& rope_table, const LayerActivations& a,
                               const LayerWorkspace& w, const Tensor& x_out,
                               const LayerPrefix& prefix) const {
  Backend& be = ctx.backend;
  const int64_t T = seq.num_rows;
  const Tensor qkv_t = rows(a.qkv, T);
  attention_input(ctx, seq, rope_table, a, w, prefix);
  be.attention_forward(rows(w.attn_out, T), a.attn_saved, qkv_t, dims.heads, dims.kv_heads, seq,
                       attn_scale);
  attention_output_and_mlp(ctx, T, a, w, x_out);
}

void TransformerLayer::forward_cached(const ModelContext& ctx, const CachedStep& step,
                                      const Tensor& rope_table, const LayerActivations& a,
                                      const LayerWorkspace& w, const Tensor& cache,
                                      const Tensor& x_out, const LayerPrefix& prefix) const {
  Backend& be = ctx.backend;
  const int64_t Q = step.seq.num_rows;
  const Tensor qkv_t = rows(a.qkv, Q);
  attention_input(ctx, step.seq, rope_table, a, w, prefix);
  be.kv_cache_store(cache, qkv_t, dims.heads, dims.kv_heads, step.index);
  be.attention_cached(rows(w.attn_out, Q), qkv_t, cache, dims.heads, dims.kv_heads, step.index,
                      attn_scale);
  attention_output_and_mlp(ctx, Q, a, w, x_out);
}

void TransformerLayer::attention_input(const ModelContext& ctx, const SequenceIndex& seq,
                                       const Tensor& rope_table, const LayerActivations& a,
                                       const LayerWorkspace& w, const LayerPrefix& prefix) const {
  Backend& be = ctx.backend;
  const int64_t T = seq.num_rows;
  const Tensor norm_out = rows(w.norm_out, T), qkv_t = rows(a.qkv, T);
  const Tensor a_mean = a.attn_mean.empty() ? Tensor{} : rows(a.attn_mean, T);
  attn_norm.forward(ctx, norm_out, rows(a.x_in, T), a_mean, rows(a.attn_rstd, T));
  qkv.forward(ctx, qkv_t, norm_out);
  if (!rope_table.empty())
    be.rope(qkv_t, dims.heads + dims.kv_heads, dims.head_dim, seq, rope_table, false);
  if (!prefix.kv.empty()) {
    const int64_t col = int64_t(dims.heads) * dims.head_dim;
    // Capture: gather the rows' keys and values into kv (zero on entry),
    // which clears them in qkv, then put them back.
    if (prefix.capture) be.prefix_kv_backward(prefix.kv, qkv_t, col, prefix.tokens, seq);
    be.prefix_kv_forward(qkv_t, col, prefix.kv, prefix.tokens, seq);
  }
}

void TransformerLayer::attention_output_and_mlp(const ModelContext& ctx, int64_t T,
                                                const LayerActivations& a, const LayerWorkspace& w,
                                                const Tensor& x_out) const {
  Backend& be = ctx.backend;
  const Tensor x_in = rows(a.x_in, T), x_mid = rows(a.x_mid, T);
  const Tensor norm_out = rows(w.norm_out, T), proj = rows(w.proj_out, T);
  const Tensor m_mean = a.mlp_mean.empty() ? Tensor{} : rows(a.mlp_mean, T);
  o.forward(ctx, proj, rows(w.attn_out, T));
  be.convert(x_mid, x_in);
  be.add(x_mid, proj);

  // MLP.
  mlp_norm.forward(ctx, norm_out, x_mid, m_mean, rows(a.mlp_rstd, T));
  const Tensor pre = rows(a.pre_act, T), act = rows(w.act_out, T);
  up.forward(ctx, pre, norm_out);
  if (dims.swiglu) {
    be.swiglu_forward(act, pre);
  } else {
    be.activation_forward(activation, act, pre);
  }
  down.forward(ctx, proj, act);
  be.convert(x_out, x_mid);
  be.add(x_out, proj);
}

void TransformerLayer::backward(const ModelContext& ctx, const SequenceIndex& seq,
                                const Tensor& rope_table, const LayerActivations& a,
                                const LayerWorkspace& w, const Tensor& dx,
                                const LayerPrefix& dprefix) const {
  Backend& be = ctx.backend;
  const int64_t T = seq.num_rows;
  const Tensor d_norm = rows(w.d_norm, T);
  const Tensor a_mean = a.attn_mean.empty() ? Tensor{} : rows(a.attn_mean, T);
  const Tensor m_mean = a.mlp_mean.empty() ? Tensor{} : rows(a.mlp_mean, T);

  // MLP: dx is d(x_out); the residual passes it to x_mid unchanged.
  const Tensor d_act = rows(w.d_act, T), d_pre = rows(w.d_pre, T), pre = rows(a.pre_act, T);
  down.backward(ctx, d_act, dx);
  if (dims.swiglu) {
    be.swiglu_backward(d_pre, d_act, pre);
  } else {
    be.activation_backward(activation, d_pre, d_act, pre);
  }
  up.backward(ctx, d_norm, d_pre);
  mlp_norm.backward(ctx, dx, d_norm, rows(a.x_mid, T), m_mean, rows(a.mlp_rstd, T));

  // Attention: dx is now d(x_mid).
  const Tensor d_attn = rows(w.d_attn, T), d_qkv = rows(w.d_qkv, T);
  o.backward(ctx, d_attn, dx);
  be.attention_backward(d_qkv, d_attn, rows(a.qkv, T), a.attn_saved, dims.heads, dims.kv_heads, seq,
                        attn_scale);
  if (!dprefix.kv.empty())
    be.prefix_kv_backward(dprefix.kv, d_qkv, int64_t(dims.heads) * dims.head_dim, dprefix.tokens, seq);
  if (!rope_table.empty())
    be.rope(d_qkv, dims.heads + dims.kv_heads, dims.head_dim, seq, rope_table, true);
  qkv.backward(ctx, d_norm, d_qkv);
  attn_norm.backward(ctx, dx, d_norm, rows(a.x_in, T), a_mean, rows(a.attn_rstd, T));
}

}  // namespace sptrain
