#include "sptrain/model/tensor_parallel.hpp"

namespace sptrain::tensor_parallel {

void reduce_from_region(const ModelContext& ctx, const Tensor& partial) {
  if (ctx.tp.size() > 1) ctx.tp.all_reduce(partial, ReduceOp::Sum);
}

void copy_to_region_backward(const ModelContext& ctx, const Tensor& partial_grad) {
  if (ctx.tp.size() > 1) ctx.tp.all_reduce(partial_grad, ReduceOp::Sum);
}

void vocab_parallel_max(const ModelContext& ctx, const Tensor& row_max) {
  if (ctx.tp.size() > 1) ctx.tp.all_reduce(row_max, ReduceOp::Max);
}

void vocab_parallel_sum(const ModelContext& ctx, const Tensor& partial) {
  if (ctx.tp.size() > 1) ctx.tp.all_reduce(partial, ReduceOp::Sum);
}

void sum_shared_kv_grad(const ModelContext& ctx, const Tensor& grad, int kv_head, const Tensor& scratch) {
  if (ctx.tp.size() <= 1) return;
  const Tensor mine = scratch.slice_rows(kv_head, 1).reshape(grad.shape);
  ctx.backend.fill(scratch, 0.0);
  ctx.backend.convert(mine, grad);
  ctx.tp.all_reduce(scratch, ReduceOp::Sum);
  ctx.backend.convert(grad, mine);
}

void sum_prefix_trunk_grad(const ModelContext& ctx, const Tensor& partial) {
  if (ctx.tp.size() > 1) ctx.tp.all_reduce(partial, ReduceOp::Sum);
}

uint64_t prompt_bytes_per_step(int tensor_size, int64_t shared_kv_elems, int64_t trunk_elems,
                               int64_t stat_bytes) {
  if (tensor_size <= 1) return 0;
  return uint64_t((shared_kv_elems + trunk_elems) * stat_bytes);
}

void gather_vocab_shards(const ModelContext& ctx, const Tensor& full) {
  if (ctx.tp.size() > 1) ctx.tp.all_reduce(full, ReduceOp::Sum);
}

uint64_t bytes_per_micro_batch(const StageParts& s, int tensor_size, int64_t rows, int64_t targets,
                               int64_t d, int64_t act_bytes, int64_t stat_bytes) {
  if (tensor_size <= 1) return 0;
  int64_t bytes = 0;
  if (s.embedding) bytes += rows * d * act_bytes;            // reduce_from_region
  bytes += int64_t(s.layers) * 2 * rows * d * act_bytes;     // forward: after o and down
  bytes += int64_t(s.layers) * 2 * rows * d * act_bytes;     // backward: before up and qkv
  if (s.vocab_head) {
    bytes += 3 * targets * stat_bytes;                        // max, sum of exp, target logit
    bytes += targets * d * act_bytes;                         // the head's input gradient
  }
  return uint64_t(bytes);
}

uint64_t bytes_per_cached_step(const StageParts& s, int tensor_size, int64_t rows, int64_t seqs,
                               int64_t d, int64_t vocab, int64_t act_bytes, int64_t stat_bytes) {
  if (tensor_size <= 1) return 0;
  int64_t bytes = 0;
  if (s.embedding) bytes += rows * d * act_bytes;            // reduce_from_region
  bytes += int64_t(s.layers) * 2 * rows * d * act_bytes;     // after o and down
  if (s.vocab_head) bytes += vocab * seqs * stat_bytes;      // gather_vocab_shards
  return uint64_t(bytes);
}

int calls_per_micro_batch(const StageParts& s, int tensor_size) {
  if (tensor_size <= 1) return 0;
  return (s.embedding ? 1 : 0) + 4 * s.layers + (s.vocab_head ? 4 : 0);
}

}  // namespace sptrain::tensor_parallel
