#include "sptrain/model/lm_head.hpp"

#include <algorithm>
#include <cmath>

#include "sptrain/model/tensor_parallel.hpp"

namespace sptrain {

void LmHead::load(const ModelContext& ctx, WeightLoader& loader, const ModelConfig& c,
                  const LocalDims& dims, const HeadSpec& spec, int64_t max_targets, int slots,
                  const Tensor& tied_table) {
  const Range all_d{0, c.d_model};
  final_norm.kind = c.norm;
  final_norm.eps = c.norm_eps;
  final_norm.weight = loader.read_vector("final_norm/weight", all_d);
  if (c.bias && c.norm == NormKind::LayerNorm)
    final_norm.bias = loader.read_vector("final_norm/bias", all_d);

  const std::string head = c.tied_embeddings ? "embeddings/tokens" : "lm_head/weight";
  loss = spec.loss;
  n_labels = int(spec.label_tokens.size());
  vocab = dims.vocab_range;
  if (loss == LossKind::Vocab) {
    if (c.tied_embeddings && !tied_table.empty()) {
      SPT_ASSERT(tied_table.rows() == vocab.count && tied_table.cols() == c.d_model);
      weight = tied_table;
    } else {
      own_weight = loader.read_matrix(head, vocab, all_d);
      weight = own_weight.view();
    }
  }
  label_weight = loader.allocate(Shape{n_labels, c.d_model});
  for (int i = 0; i < n_labels; ++i) {
    const int32_t tok = spec.label_tokens[size_t(i)];
    SPT_CHECK(tok >= 0 && tok < c.vocab_size, "label token id ", tok, " is outside the vocabulary");
    loader.read_into(label_weight, i, head, Range{tok, 1}, all_d);
  }

  BufferList kept, scratch;
  list_buffers(c, max_targets, slots, kept, scratch);
  allocate(ctx, kept);
  allocate(ctx, scratch);
  const int64_t B = max_targets;
  host_stats.resize(size_t(B) * std::max<int64_t>(n_labels, 1));
  host_max.reserve(size_t(B));
  host_sumexp.reserve(size_t(B));
  host_target.reserve(size_t(B));
}

void LmHead::list_buffers(const ModelConfig& c, int64_t max_targets, int slots, BufferList& kept,
                          BufferList& scratch) {
  const int64_t B = max_targets, d = c.d_model;
  const int64_t V = loss == LossKind::Vocab ? vocab.count : n_labels;
  saved.resize(size_t(std::max(slots, 1)));
  for (Saved& k : saved) {
    kept.push_back({&k.h, Elem::Act, Shape{B, d}});
    if (c.norm == NormKind::LayerNorm) kept.push_back({&k.mean, Elem::Stat, Shape{B}});
    kept.push_back({&k.rstd, Elem::Stat, Shape{B}});
    kept.push_back({&k.label_logits, Elem::Stat, Shape{B, n_labels}});
    if (loss == LossKind::Vocab) kept.push_back({&k.logits, Elem::Stat, Shape{B, vocab.count}});
    kept.push_back({&k.row_max, Elem::Stat, Shape{B}});
    kept.push_back({&k.row_sumexp, Elem::Stat, Shape{B}});
  }
  scratch.insert(scratch.end(), {{&hn, Elem::Act, Shape{B, d}},
                                 {&target, Elem::Stat, Shape{B}},
                                 {&dlogits, Elem::Act, Shape{B, V}},
                                 {&dhn, Elem::Act, Shape{B, d}},
                                 {&dh, Elem::Act, Shape{B, d}}});
}

namespace {
Tensor rows(const Buffer& b, int64_t n) { return b.view().slice_rows(0, n); }

// Copies a stat tensor to host doubles.
void to_host(Backend& be, const Tensor& t, std::vector<double>& out, std::vector<double>& staging) {
  const size_t n = size_t(t.numel());
  out.resize(n);
  if (t.dtype == DType::F64) {
    be.copy_to_host(out.data(), t);
    return;
  }
  SPT_ASSERT(t.dtype == DType::F32 && staging.size() >= (n + 1) / 2);
  auto* f = reinterpret_cast<float*>(staging.data());
  be.copy_to_host(f, t);
  for (size_t i = 0; i < n; ++i) out[i] = f[i];
}
}  // namespace

void LmHead::forward(const ModelContext& ctx, const MicroBatch& mb, const Tensor& x,
                     HeadOutput& out, int slot) {
  Backend& be = ctx.backend;
  // B here counts target rows: one per example for a classify task.
  const int64_t B = mb.targets;
  SPT_ASSERT(slot < int(saved.size()));
  latest = std::max(slot, 0);
  const Saved& k = saved[size_t(latest)];
  const Tensor hB = rows(k.h, B), hnB = rows(hn, B), rstdB = rows(k.rstd, B);
  const Tensor meanB = k.mean.empty() ? Tensor{} : rows(k.mean, B);
  be.gather_rows(hB, x, mb.target_rows);
  final_norm.forward(ctx, hnB, hB, meanB, rstdB);
  const Tensor label_logitsB = rows(k.label_logits, B);
  if (n_labels > 0) be.matmul(label_logitsB, hnB, label_weight, true, false);

  Tensor z = label_logitsB;
  int64_t offset = 0;
  if (loss == LossKind::Vocab) {
    z = rows(k.logits, B);
    be.matmul(z, hnB, weight, true, false);
    offset = vocab.begin;
  }
  const Tensor mx = rows(k.row_max, B), se = rows(k.row_sumexp, B), tg = rows(target, B);
  // Over the label words every rank holds the whole row; over the vocabulary
  // each holds its shard, and the statistics are combined across the shards.
  const bool shards = loss == LossKind::Vocab;
  be.row_max(mx, z);
  if (shards) tensor_parallel::vocab_parallel_max(ctx, mx);
  be.row_sumexp(se, z, mx);
  if (shards) tensor_parallel::vocab_parallel_sum(ctx, se);
  be.pick_target(tg, z, targets(mb), offset);
  if (shards) tensor_parallel::vocab_parallel_sum(ctx, tg);

  if (!device_sums.empty()) {
    be.accumulate_loss(device_sums, mx, se, tg, label_logitsB, mb.label_targets);
    out.loss.clear();
    out.label_scores.clear();
    return;
  }
  std::vector<double>& m = host_max;
  std::vector<double>& s = host_sumexp;
  std::vector<double>& t = host_target;
  to_host(be, mx, m, host_stats);
  to_host(be, se, s, host_stats);
  to_host(be, tg, t, host_stats);
  out.loss.resize(size_t(B));
  for (int64_t b = 0; b < B; ++b)
    out.loss[size_t(b)] = std::log(s[size_t(b)]) + m[size_t(b)] - t[size_t(b)];
  to_host(be, label_logitsB, out.label_scores, host_stats);
}

void LmHead::backward(const ModelContext& ctx, const MicroBatch& mb, float w, const Tensor& dx,
                      int slot) {
  Backend& be = ctx.backend;
  const int64_t B = mb.targets;
  SPT_ASSERT(slot >= 0 && slot < int(saved.size()));
  const Saved& k = saved[size_t(slot)];
  const bool vocab_loss = loss == LossKind::Vocab;
  const Tensor z = vocab_loss ? rows(k.logits, B) : rows(k.label_logits, B);
  const Tensor dz = rows(dlogits, B);
  be.cross_entropy_backward(dz, z, rows(k.row_max, B), rows(k.row_sumexp, B), targets(mb),
                            vocab_loss ? vocab.begin : 0, w);
  const Tensor dhnB = rows(dhn, B), dhB = rows(dh, B);
  be.matmul(dhnB, dz, vocab_loss ? weight : label_weight, false, false);
  if (vocab_loss) tensor_parallel::copy_to_region_backward(ctx, dhnB);
  be.fill(dhB, 0.0);
  final_norm.backward(ctx, dhB, dhnB, rows(k.h, B), k.mean.empty() ? Tensor{} : rows(k.mean, B),
                      rows(k.rstd, B));
  be.fill(dx, 0.0);
  be.scatter_add_rows(dx, dhB, mb.target_rows);
}

void LmHead::next_token_logits(const ModelContext& ctx, const Tensor& x, const Tensor& at,
                               const Tensor& full) {
  Backend& be = ctx.backend;
  const int64_t S = at.numel();
  SPT_CHECK(loss == LossKind::Vocab, "internal error: generation needs the head over the vocabulary");
  SPT_CHECK(S <= saved[0].h.view().rows(), "internal error: ", S, " sequences for a head of ",
            saved[0].h.view().rows(), " rows");
  SPT_ASSERT(full.cols() == S && full.rows() >= vocab.end());
  const Saved& k = saved[0];
  const Tensor hS = rows(k.h, S), hnS = rows(hn, S);
  be.gather_rows(hS, x, at);
  final_norm.forward(ctx, hnS, hS, k.mean.empty() ? Tensor{} : rows(k.mean, S), rows(k.rstd, S));
  // This rank's vocabulary rows of the transposed logits, the others' zero
  // until the shards are gathered.
  if (ctx.tp.size() > 1) be.fill(full, 0.0);
  be.matmul(full.slice_rows(vocab.begin, vocab.count), weight, hnS, true, false);
  tensor_parallel::gather_vocab_shards(ctx, full);
}

}  // namespace sptrain
