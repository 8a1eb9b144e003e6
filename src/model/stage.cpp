#include "sptrain/model/stage.hpp"

#include <cmath>
#include <numeric>

#include "sptrain/model/weight_loader.hpp"

namespace sptrain {

StageSpec plan_stage(int n_layers, int stages, int index, const std::vector<int>& explicit_layers) {
  SPT_CHECK(stages >= 1 && stages <= n_layers, "pipeline size ", stages,
            " must be between 1 and the model's ", n_layers, " layers");
  StageSpec s;
  s.index = index;
  s.count = stages;
  if (explicit_layers.empty()) {
    const Range r = split_range(n_layers, stages, index);
    s.first_layer = int(r.begin);
    s.num_layers = int(r.count);
    return s;
  }
  SPT_CHECK(int(explicit_layers.size()) == stages, "parallel.stage_layers lists ",
            explicit_layers.size(), " stages but parallel.pipeline is ", stages);
  const int total = std::accumulate(explicit_layers.begin(), explicit_layers.end(), 0);
  SPT_CHECK(total == n_layers, "parallel.stage_layers sums to ", total, " but the model has ",
            n_layers, " layers");
  for (int v : explicit_layers)
    SPT_CHECK(v >= 1, "parallel.stage_layers: every stage needs at least one layer");
  s.first_layer = std::accumulate(explicit_layers.begin(), explicit_layers.begin() + index, 0);
  s.num_layers = explicit_layers[size_t(index)];
  return s;
}

WeightShare stage_weights(const ModelConfig& m, const LocalDims& dims, const StageSpec& stage,
                          bool vocab_loss, int n_labels) {
  const int64_t d = m.d_model, hd = m.head_dim, heads = dims.heads, kv = dims.kv_heads,
                ffn = dims.ffn, v_local = dims.vocab_range.count;
  const int64_t norm = (m.norm == NormKind::LayerNorm && m.bias) ? 2 * d : d;
  WeightShare s;
  if (stage.first())
    s.embedding = v_local * d + (m.position == PositionKind::Learned ? int64_t(m.max_positions) * d : 0);
  const int64_t matrices = (heads + 2 * kv) * hd * d     // q, k, v rows of its heads
                           + d * heads * hd              // o: its heads' columns
                           + (dims.swiglu ? 2 : 1) * ffn * d  // gate and up rows
                           + d * ffn;                    // down: its columns
  int64_t vectors = 2 * norm;
  if (m.bias) vectors += (heads + 2 * kv) * hd + (dims.swiglu ? 0 : ffn)  // qkv and up biases: split
                         + 2 * d;                                        // o and down biases: whole
  s.blocks = stage.num_layers * matrices;
  s.vectors = stage.num_layers * vectors;
  // A tied head on the stage that holds the embedding reads its table: no second copy.
  const bool own_head_rows = vocab_loss && !(m.tied_embeddings && stage.first());
  if (stage.last()) s.head = norm + (own_head_rows ? v_local * d : 0) + int64_t(n_labels) * d;
  return s;
}

void Stage::list_buffers(Buffers& b, const ModelConfig& config, const LocalDims& dims,
                         const StageSpec& spec, const StageShape& shape, const AttentionSavedSizeFn& saved) {
  const Capacity cap = shape.train;
  const Capacity both{std::max(shape.train.rows, shape.eval.rows),
                      std::max(shape.train.max_keys, shape.eval.max_keys)};
  auto add = [](BufferList& to, BufferList more) { to.insert(to.end(), more.begin(), more.end()); };
  b.sets.resize(size_t(shape.activation_sets));
  for (ActivationSet& s : b.sets) {
    s.layers.resize(size_t(spec.num_layers));
    for (LayerActivations& a : s.layers)
      add(b.kept, a.buffers(dims, config.norm, cap, saved(cap.rows, cap.max_keys, dims.heads, dims.head_dim)));
    b.kept.push_back({&s.out, Elem::Act, Shape{cap.rows, config.d_model}});
  }
  // Evaluation: one layer's buffers, reused by every layer.
  b.eval_set.layers.resize(1);
  add(b.scratch, b.eval_set.layers[0].buffers(dims, config.norm, shape.eval,
                                               saved(shape.eval.rows, shape.eval.max_keys, dims.heads, dims.head_dim)));
  add(b.scratch, b.workspace.buffers(dims, both));
  b.scratch.push_back({&b.dx, Elem::Act, Shape{both.rows, config.d_model}});
  if (config.position == PositionKind::Rope)
    b.tables.push_back({&b.rope_table, Elem::Stat, Shape{config.max_positions, config.head_dim}});
}

StageMemory Stage::memory(const ModelConfig& config, const LocalDims& dims, const StageSpec& spec,
                          const HeadSpec& head, const StageShape& shape, const ElemTypes& types,
                          const AttentionSavedSizeFn& saved) {
  Buffers b;
  list_buffers(b, config, dims, spec, shape, saved);
  const bool vocab_loss = head.loss == LossKind::Vocab;
  StageMemory m;
  m.weights = stage_weights(config, dims, spec, vocab_loss, int(head.label_tokens.size())).total() *
              int64_t(dtype_size(types.act));
  m.activations = bytes(b.kept, types);
  m.workspace = bytes(b.scratch, types);
  m.tables = bytes(b.tables, types);
  if (spec.last()) {
    LmHead h;
    h.loss = head.loss;
    h.n_labels = int(head.label_tokens.size());
    h.vocab = dims.vocab_range;
    BufferList kept, scratch;
    h.list_buffers(config, shape.head_rows(), shape.activation_sets, kept, scratch);
    m.activations += bytes(kept, types);
    m.workspace += bytes(scratch, types);
  }
  return m;
}

Stage::Stage(const ModelContext& ctx, const ModelConfig& config, const h5::File& file,
             const StageSpec& spec, const HeadSpec& head, const StageShape& shape)
    : ctx_(ctx), config_(config), spec_(spec) {
  dims_ = local_dims(config, ctx.tp.rank(), ctx.tp.size());
  WeightLoader loader(file, ctx);
  if (spec.first()) embedding_.load(loader, config, dims_);
  layers_.resize(size_t(spec.num_layers));
  for (int i = 0; i < spec.num_layers; ++i)
    layers_[size_t(i)].load(loader, config, dims_, spec.first_layer + i);
  if (spec.last())
    head_.load(ctx, loader, config, dims_, head, shape.head_rows(), shape.activation_sets,
               spec.first() ? embedding_.tokens.view() : Tensor{});
  weight_bytes_ = loader.resident_bytes();

  const Backend& backend = ctx.backend;
  list_buffers(buffers_, config, dims_, spec, shape,
               [&backend](int64_t rows, int64_t keys, int heads, int head_dim) {
                 return backend.attention_saved_size(rows, keys, heads, head_dim);
               });
  allocate(ctx, buffers_.kept);
  allocate(ctx, buffers_.scratch);
  allocate(ctx, buffers_.tables);
  ctx.backend.reserve_attention(std::max(shape.train.rows, shape.eval.rows),
                                int(std::max(shape.train.max_keys, shape.eval.max_keys)), dims_.heads,
                                dims_.qkv_width());
  if (config.position == PositionKind::Rope) {
    // cos then sin of pos * theta^(-2j/D), j < D/2, computed in double.
    const int D = config.head_dim, half = D / 2, N = config.max_positions;
    std::vector<double> table(size_t(N) * size_t(D));
    for (int p = 0; p < N; ++p)
      for (int j = 0; j < half; ++j) {
        const double inv_freq = std::pow(double(config.rope_theta), -2.0 * j / D);
        table[size_t(p) * size_t(D) + size_t(j)] = std::cos(p * inv_freq);
        table[size_t(p) * size_t(D) + size_t(half + j)] = std::sin(p * inv_freq);
      }
    Buffer f64 = ctx.backend.allocate(DType::F64, Shape{N, D});
    ctx.backend.copy_from_host(f64, table.data());
    ctx.backend.convert(buffers_.rope_table, f64);
  }
}

Stage::Work Stage::work(const MicroBatch& mb) const {
  const double head_cols = !spec_.last() ? 0.0
                           : head_.loss == LossKind::Vocab ? double(head_.vocab.count)
                                                           : double(head_.n_labels);
  return work(config_, dims_, int(layers_.size()), head_cols, mb.targets, mb.seq);
}

Stage::Work Stage::work(const ModelConfig& config, const LocalDims& dims, int layers,
                        double head_cols, int64_t targets, const SequenceIndex& q) {
  const double d = config.d_model, D = dims.head_dim, H = dims.heads;
  const double linear_per_row = 2.0 * d * (dims.qkv_width() + dims.up_width()) +
                                2.0 * H * D * d + 2.0 * dims.ffn * d;
  // Keys seen, summed over query rows: a segment of L rows after p prefix
  // rows sees p + 1, p + 2, ..., p + L keys.
  double keys = 0;
  for (int s = 0; s < q.num_segments; ++s) {
    const double L = q.length(s), p = q.host_prefix_len[size_t(s)];
    keys += L * p + L * (L + 1) / 2;
  }
  const double n = layers;
  Work w;
  w.forward = n * (linear_per_row * q.num_rows + 4.0 * D * H * keys);
  w.backward = n * (linear_per_row * q.num_rows + 8.0 * D * H * keys);
  w.attention = n * 12.0 * D * H * keys;
  w.forward += 2.0 * d * head_cols * double(targets);
  w.backward += 2.0 * d * head_cols * double(targets);
  return w;
}

void Stage::for_each_weight(
    const std::function<void(const std::string&, const Tensor&)>& fn) const {
  auto visit = [&](const std::string& name, const Tensor& t) {
    if (!t.empty()) fn(name, t);
  };
  visit("embeddings/tokens", embedding_.tokens);
  visit("embeddings/positions", embedding_.positions);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const TransformerLayer& l = layers_[i];
    const std::string p = "layers/" + std::to_string(spec_.first_layer + int(i)) + "/";
    visit(p + "attn_norm/weight", l.attn_norm.weight);
    visit(p + "attn_norm/bias", l.attn_norm.bias);
    visit(p + "attn/qkv/weight", l.qkv.weight);
    visit(p + "attn/qkv/bias", l.qkv.bias);
    visit(p + "attn/o/weight", l.o.weight);
    visit(p + "attn/o/bias", l.o.bias);
    visit(p + "mlp_norm/weight", l.mlp_norm.weight);
    visit(p + "mlp_norm/bias", l.mlp_norm.bias);
    visit(p + "mlp/up/weight", l.up.weight);
    visit(p + "mlp/up/bias", l.up.bias);
    visit(p + "mlp/down/weight", l.down.weight);
    visit(p + "mlp/down/bias", l.down.bias);
  }
  visit("final_norm/weight", head_.final_norm.weight);
  visit("final_norm/bias", head_.final_norm.bias);
  visit("lm_head/weight", head_.own_weight);  // a tied head's view is the embedding's, above
  visit("lm_head/label_rows", head_.label_weight);
}

const Stage::ActivationSet& Stage::set(int slot) const {
  if (slot < 0) return buffers_.eval_set;
  SPT_ASSERT(slot < int(buffers_.sets.size()));
  return buffers_.sets[size_t(slot)];
}

Tensor Stage::input(int slot, int64_t rows) const {
  return set(slot).layers.front().x_in.view().slice_rows(0, rows);
}

Tensor Stage::output(int slot, int64_t rows) const {
  const ActivationSet& s = set(slot);
  // The evaluation set writes every layer's output over its input.
  const Buffer& out = slot < 0 ? s.layers.front().x_in : s.out;
  return out.view().slice_rows(0, rows);
}

void Stage::forward(int slot, const MicroBatch& mb, const PromptInputs& prompt) {
  const ActivationSet& s = set(slot);
  const int64_t T = mb.seq.num_rows;
  if (spec_.first()) embedding_.forward(ctx_, mb.seq, mb.tokens, prompt.prompt, input(slot, T));
  const Tensor rope = buffers_.rope_table.empty() ? Tensor{} : buffers_.rope_table.view();
  const int n = int(layers_.size());
  for (int i = 0; i < n; ++i) {
    const LayerActivations& acts = slot < 0 ? s.layers.front() : s.layers[size_t(i)];
    const Tensor x_out = (slot < 0 || i == n - 1)
                             ? output(slot, T)
                             : s.layers[size_t(i) + 1].x_in.view().slice_rows(0, T);
    layers_[size_t(i)].forward(ctx_, mb.seq, rope, acts, buffers_.workspace, x_out,
                               LayerPrefix{prompt.layer_prefix(i), mb.tokens, prompt.capture_prefix});
  }
  if (spec_.last()) head_.forward(ctx_, mb, output(slot, T), head_out_, slot);
}

void Stage::forward_cached(const CachedStep& step, const PromptInputs& prompt, KvCache& cache) {
  const int64_t Q = step.seq.num_rows;
  SPT_CHECK(Q <= eval_rows(), "internal error: a cached step of ", Q, " rows, capacity ", eval_rows());
  SPT_ASSERT(cache.layers.size() == layers_.size());
  const Tensor x = input(-1, Q);
  if (spec_.first()) embedding_.forward(ctx_, step.seq, step.tokens, prompt.prompt, x);
  const Tensor rope = buffers_.rope_table.empty() ? Tensor{} : buffers_.rope_table.view();
  // Like evaluation: one set of buffers, each layer's output over its input.
  for (size_t i = 0; i < layers_.size(); ++i)
    layers_[i].forward_cached(ctx_, step, rope, buffers_.eval_set.layers.front(), buffers_.workspace,
                              cache.layers[i].view(), x,
                              LayerPrefix{prompt.layer_prefix(int(i)), step.tokens, false});
}

KvCache Stage::make_kv_cache(int64_t rows) const {
  return KvCache(ctx_, int(layers_.size()), dims_.kv_heads, dims_.head_dim, rows);
}

void Stage::next_token_logits(const CachedStep& step, const Tensor& full) {
  SPT_ASSERT(spec_.last());
  head_.next_token_logits(ctx_, output(-1, step.seq.num_rows), step.last_rows, full);
}

void Stage::backward(int slot, const MicroBatch& mb, float loss_weight, const PromptInputs& dprompt) {
  SPT_ASSERT(slot >= 0);
  const ActivationSet& s = set(slot);
  const int64_t T = mb.seq.num_rows;
  const Tensor dx = grad(T);
  if (spec_.last()) head_.backward(ctx_, mb, loss_weight, dx, slot);
  const Tensor rope = buffers_.rope_table.empty() ? Tensor{} : buffers_.rope_table.view();
  for (int i = int(layers_.size()) - 1; i >= 0; --i)
    layers_[size_t(i)].backward(ctx_, mb.seq, rope, s.layers[size_t(i)], buffers_.workspace, dx,
                                LayerPrefix{dprompt.layer_prefix(i), mb.tokens});
  if (spec_.first() && !dprompt.prompt.empty())
    embedding_.backward(ctx_, mb.seq, mb.tokens, dx, dprompt.prompt);
}

}  // namespace sptrain
