#pragma once
// The tensor-parallel mappings (Megatron-core's tensor_parallel/mappings.py):
// the only code that calls the tensor-parallel group, each mapping beside the
// bytes it sends. The model's passes are explicit (no autograd), so a mapping
// is named for what it does in the pass where it communicates; in the other
// pass it is the identity. Every mapping is a no-op with one tensor rank.
#include <cstdint>

#include "sptrain/model/context.hpp"

namespace sptrain::tensor_parallel {

// Forward of a row-parallel layer (attention output, MLP down) and of the
// vocabulary-parallel embedding: each rank holds a partial sum of the whole
// output; all-reduce it. (Backward: the identity.)
void reduce_from_region(const ModelContext& ctx, const Tensor& partial);

// Backward of the copy of a replicated input into the region, i.e. the input
// of a column-parallel layer (QKV, MLP up, the vocabulary-parallel LM head):
// each rank holds a partial input gradient; all-reduce it. (Forward: the identity.)
void copy_to_region_backward(const ModelContext& ctx, const Tensor& partial_grad);

// Vocabulary-parallel cross-entropy (forward): each rank's row maxima, sums
// of exp(logit - max) and target logits over its shard, combined over the shards.
void vocab_parallel_max(const ModelContext& ctx, const Tensor& row_max);
void vocab_parallel_sum(const ModelContext& ctx, const Tensor& partial);

// Deep prompts (docs/methods.md), once per step. With fewer key/value heads
// than tensor ranks a kv head is held by several ranks, each computing its
// query heads' part of the head's prefix gradient: sum_shared_kv_grad sums
// every head's parts over the ranks (grad: this rank's prefix gradient, of
// kv head `kv_head`; scratch: [n_kv_heads, grad.numel()]). Prefix tuning's
// MLP: the trunk's gradient [P, h] is a sum over every rank's units.
void sum_shared_kv_grad(const ModelContext& ctx, const Tensor& grad, int kv_head, const Tensor& scratch);
void sum_prefix_trunk_grad(const ModelContext& ctx, const Tensor& partial);
// Their bytes per step: the scratch (shared_kv_elems = n_kv_heads x this
// rank's prefix gradient, 0 when every rank has its own kv heads) and the
// trunk's gradient (trunk_elems = P x h, 0 without the MLP).
uint64_t prompt_bytes_per_step(int tensor_size, int64_t shared_kv_elems, int64_t trunk_elems,
                               int64_t stat_bytes);

// Generation: every rank has written its vocabulary rows of `full` [V, S]
// (the next-token logits, transposed) and zeroed the others; afterwards
// every rank holds all of them (an all-reduce: a sum with one term per row).
void gather_vocab_shards(const ModelContext& ctx, const Tensor& full);

// What one rank's stage holds, for counting.
struct StageParts {
  bool embedding = false;  // first pipeline stage
  int layers = 0;
  bool vocab_head = false;  // last stage with the loss over the whole vocabulary (always when generating)
};

// Bytes this rank sends through the mappings above for one micro-batch of
// `rows` rows and `targets` target rows (one per example for a classify
// task), forward and backward together (docs/parallelism.md, "Tensor
// parallel"): the embedding's reduce (rows x d), per layer two reduces
// forward (o, down) and two backward (up, qkv) of rows x d each, and with a
// vocabulary head three [targets] statistics forward and the head's input
// gradient [targets, d] backward. act_bytes / stat_bytes: the element sizes
// of activations and statistics.
uint64_t bytes_per_micro_batch(const StageParts& stage, int tensor_size, int64_t rows,
                               int64_t targets, int64_t d_model, int64_t act_bytes,
                               int64_t stat_bytes);

// Bytes this rank sends for one cached generation step of `rows` new rows
// and `seqs` sequences (forward only): the embedding's reduce (rows x d),
// per layer the two forward reduces (rows x d each), and on a stage with the
// head gather_vocab_shards ([vocab, seqs] statistics).
uint64_t bytes_per_cached_step(const StageParts& stage, int tensor_size, int64_t rows,
                               int64_t seqs, int64_t d_model, int64_t vocab, int64_t act_bytes,
                               int64_t stat_bytes);
// The all-reduces those bytes take, for the latency of each call: the same
// terms, one call each.
int calls_per_micro_batch(const StageParts& stage, int tensor_size);

}  // namespace sptrain::tensor_parallel
