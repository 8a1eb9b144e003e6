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

Stage::Stage(const ModelContext& ctx, const ModelConfig& config, const h5::File& file,
             const StageSpec& spec, const HeadSpec& head, const StageShape& shape)
    : ctx_(ctx), config_(config), spec_(spec) {
  dims_ = local_dims(config, ctx.tp.rank(), ctx.tp.size());
  WeightLoader loader(file, ctx);
  if (spec.first()) embedding_.load(loader, config, dims_);
  layers_.resize(size_t(spec.num_layers));
  for (int i = 0; i < spec.num_layers; ++i)
    layers_[size_t(i)].load(loader, config, dims_, spec.first_layer + i);
  if (spec.last()) {
    const int64_t train_targets = shape.train_targets > 0 ? shape.train_targets : shape.train_seqs;
    const int64_t eval_targets = shape.eval_targets > 0 ? shape.eval_targets : shape.eval_seqs;
    head_.load(ctx, loader, config, dims_, head, std::max(train_targets, eval_targets),
               shape.activation_sets, spec.first() ? embedding_.tokens.view() : Tensor{});
  }
  weight_bytes_ = loader.resident_bytes();

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
    rope_table_ = ctx.alloc_stat(Shape{N, D});
    ctx.backend.convert(rope_table_, f64);
  }

  Capacity cap = shape.train;
  Capacity both{std::max(shape.train.rows, shape.eval.rows),
                std::max(shape.train.max_keys, shape.eval.max_keys)};
  sets_.resize(size_t(shape.activation_sets));
  for (auto& s : sets_) {
    for (int i = 0; i < spec.num_layers; ++i)
      s.layers.push_back(TransformerLayer::make_activations(ctx, dims_, config.norm, cap));
    s.out = ctx.alloc(Shape{cap.rows, config.d_model});
  }
  eval_set_.layers.push_back(TransformerLayer::make_activations(ctx, dims_, config.norm, shape.eval));
  workspace_ = TransformerLayer::make_workspace(ctx, dims_, both);
  dx_ = ctx.alloc(Shape{both.rows, config.d_model});
}

Stage::Work Stage::work(const MicroBatch& mb) const {
  const SequenceIndex& q = mb.seq;
  const double d = config_.d_model, D = dims_.head_dim, H = dims_.heads;
  const double linear_per_row = 2.0 * d * (dims_.qkv_width() + dims_.up_width()) +
                                2.0 * H * D * d + 2.0 * dims_.ffn * d;
  // Keys seen, summed over query rows: a segment of L rows after p prefix
  // rows sees p + 1, p + 2, ..., p + L keys.
  double keys = 0;
  for (int s = 0; s < q.num_segments; ++s) {
    const double L = q.length(s), p = q.host_prefix_len[size_t(s)];
    keys += L * p + L * (L + 1) / 2;
  }
  const double layers = double(layers_.size());
  Work w;
  w.forward = layers * (linear_per_row * q.num_rows + 4.0 * D * H * keys);
  w.backward = layers * (linear_per_row * q.num_rows + 8.0 * D * H * keys);
  if (spec_.last()) {
    const double cols = head_.loss == LossKind::Vocab ? double(head_.vocab.count) : head_.n_labels;
    w.forward += 2.0 * d * cols * double(mb.targets);
    w.backward += 2.0 * d * cols * double(mb.targets);
  }
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
  if (slot < 0) return eval_set_;
  SPT_ASSERT(slot < int(sets_.size()));
  return sets_[size_t(slot)];
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

void Stage::forward(int slot, const MicroBatch& mb, const Tensor& prompt) {
  const ActivationSet& s = set(slot);
  const int64_t T = mb.seq.num_rows;
  if (spec_.first()) embedding_.forward(ctx_, mb.seq, mb.tokens, prompt, input(slot, T));
  const Tensor rope = rope_table_.empty() ? Tensor{} : rope_table_.view();
  const int n = int(layers_.size());
  for (int i = 0; i < n; ++i) {
    const LayerActivations& acts = slot < 0 ? s.layers.front() : s.layers[size_t(i)];
    const Tensor x_out = (slot < 0 || i == n - 1)
                             ? output(slot, T)
                             : s.layers[size_t(i) + 1].x_in.view().slice_rows(0, T);
    layers_[size_t(i)].forward(ctx_, mb.seq, rope, acts, workspace_, x_out);
  }
  if (spec_.last()) head_.forward(ctx_, mb, output(slot, T), head_out_, slot);
}

void Stage::forward_cached(const CachedStep& step, const Tensor& prompt, KvCache& cache) {
  const int64_t Q = step.seq.num_rows;
  SPT_CHECK(Q <= eval_rows(), "internal error: a cached step of ", Q, " rows, capacity ", eval_rows());
  SPT_ASSERT(cache.layers.size() == layers_.size());
  const Tensor x = input(-1, Q);
  if (spec_.first()) embedding_.forward(ctx_, step.seq, step.tokens, prompt, x);
  const Tensor rope = rope_table_.empty() ? Tensor{} : rope_table_.view();
  // Like evaluation: one set of buffers, each layer's output over its input.
  for (size_t i = 0; i < layers_.size(); ++i)
    layers_[i].forward_cached(ctx_, step, rope, eval_set_.layers.front(), workspace_,
                              cache.layers[i].view(), x);
}

KvCache Stage::make_kv_cache(int64_t rows) const {
  return KvCache(ctx_, int(layers_.size()), dims_.kv_heads, dims_.head_dim, rows);
}

void Stage::next_token_logits(const CachedStep& step, const Tensor& full) {
  SPT_ASSERT(spec_.last());
  head_.next_token_logits(ctx_, output(-1, step.seq.num_rows), step.last_rows, full);
}

void Stage::backward(int slot, const MicroBatch& mb, float loss_weight, const Tensor& dprompt) {
  SPT_ASSERT(slot >= 0);
  const ActivationSet& s = set(slot);
  const int64_t T = mb.seq.num_rows;
  const Tensor dx = grad(T);
  if (spec_.last()) head_.backward(ctx_, mb, loss_weight, dx, slot);
  const Tensor rope = rope_table_.empty() ? Tensor{} : rope_table_.view();
  for (int i = int(layers_.size()) - 1; i >= 0; --i)
    layers_[size_t(i)].backward(ctx_, mb.seq, rope, s.layers[size_t(i)], workspace_, dx);
  if (spec_.first()) embedding_.backward(ctx_, mb.seq, mb.tokens, dx, dprompt);
}

}  // namespace sptrain
