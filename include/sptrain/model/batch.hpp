#pragma once
// A packed micro-batch on the device, no padding rows. With a shared prompt
// (the default) the P prompt rows come once, as the prefix of every
// example's text rows: [prompt | text 1 | text 2 | ...]. Without sharing each
// example is [prompt, text] on its own. Buffers are allocated once for the
// largest micro-batch; each fill() only copies.
#include <cstdint>
#include <memory>
#include <vector>

#include "sptrain/backend/backend.hpp"
#include "sptrain/data/encoded_example.hpp"
#include "sptrain/model/buffer_list.hpp"

namespace sptrain {

// The loss is computed at N target rows: each example's answer row (its
// last text row, seq.answer_rows) and, for a generate task, the rows of its
// target tokens but the last (teacher forcing); row r's output predicts the
// token at row r + 1. A classify task has one target row per example (N = B).
struct MicroBatch {
  SequenceIndex seq;
  Tensor tokens;         // i32 [T]; prompt row i holds -1 - i
  Tensor label_targets;  // i32 [B] class index
  Tensor target_rows;    // i32 [N] rows whose outputs the loss reads
  Tensor token_targets;  // i32 [N] vocabulary id each of them predicts (the label word, a target token)
  std::vector<int32_t> host_labels;  // class index per example
  int64_t targets = 0;               // N
  int64_t text_rows = 0;             // rows that are text (targets' input rows included)
  int64_t prompt_rows = 0;           // rows that are prompt (P shared, B*P unshared)
};

// The first n elements of `buf` (1-D), filled from host memory: how the
// batch writers here and in kv_cache.hpp upload their index tensors.
Tensor upload_prefix(Backend& backend, const Buffer& buf, int64_t n, const void* src);
// Allocates the writer's index buffers and reserves staging space for
// uploading all of them in one step without waiting (Backend::reserve_staging).
void allocate_upload_buffers(Backend& backend, const BufferList& list);

// What both builders below share: the device buffers of a packed
// micro-batch, sized once for the largest one, and the host-side packing of
// segments, prompt rows and examples into them. A fill is begin(), segments
// and rows in order, then finish() (which uploads).
// The device buffers of one packed micro-batch.
struct PackedBatchBuffers {
  Buffer offsets, prefix_start, prefix_len, positions, answer_rows, prob_offsets, tokens,
      label_targets, target_rows, token_targets;
  BufferList list(int64_t max_rows, int max_seqs, int max_segments, int64_t max_targets);
};

class PackedBatchWriter {
 public:
  // prompt_rows: rows of the (stacked) prompt tensor that prompt tokens index.
  // max_targets: most target rows (N) in one micro-batch.
  PackedBatchWriter(Backend& backend, int64_t max_rows, int max_seqs, int max_segments,
                    int64_t prompt_rows, int64_t max_targets);
  void begin(MicroBatch& mb, int num_examples);
  // A segment of `len` rows starting at the current row, attending to the
  // prefix_len rows from row prefix_start first.
  void add_segment(int len, int prefix_start, int prefix_len);
  // P prompt rows at positions 0..P-1 holding stacked prompt rows first_row.. .
  // Rows outside the prompt tensor are an error here, so no back end ever
  // sees a prompt token it cannot resolve.
  void add_prompt_rows(int64_t first_row, int P);
  // The example's input rows (EncodedExample::input_rows) at positions
  // first_pos.., its answer row and target rows.
  void add_example(const EncodedExample& ex, int first_pos);
  void finish();
  int64_t row() const { return row_; }
  int64_t max_rows() const { return max_rows_; }
  int max_seqs() const { return max_seqs_; }

 private:
  Backend& backend_;
  int64_t max_rows_;
  int max_seqs_;
  int max_segments_;
  int64_t prompt_rows_;
  int64_t max_targets_;
  PackedBatchBuffers buf_;
  std::vector<int32_t> host_tokens_, host_target_rows_, host_token_targets_;
  MicroBatch* mb_ = nullptr;  // the batch being filled
  int64_t row_ = 0, probs_ = 0;
};

class BatchBuilder {
 public:
  // Rows a micro-batch of `examples` examples of at most `max_tokens` input rows needs.
  static int64_t rows_needed(int prompt_len, int examples, int64_t max_tokens, bool share_prompt) {
    return share_prompt ? prompt_len + examples * max_tokens : examples * (prompt_len + max_tokens);
  }
  // max_answer: most answer tokens of one example (1 for a classify task).
  BatchBuilder(Backend& backend, int prompt_len, int64_t max_rows, int max_seqs,
               bool share_prompt = true, int64_t max_answer = 1);
  // Packs the examples into mb (whose tensors point into this builder's buffers).
  void fill(MicroBatch& mb, const std::vector<const EncodedExample*>& examples);
  int64_t max_rows() const { return writer_.max_rows(); }
  int max_seqs() const { return writer_.max_seqs(); }

 private:
  int prompt_len_;
  bool share_prompt_;
  PackedBatchWriter writer_;
};

// The micro-batches of one step on one rank: up to `count` micro-batches of
// up to `per_micro` examples each, alive together (a pipeline schedule keeps
// several in flight), each with its own builder's buffers. Sized once; a
// fill only copies.
class MicroBatchSet {
 public:
  // max_answer: most answer tokens of one example (1 for a classify task).
  MicroBatchSet(Backend& backend, int prompt_len, int64_t max_rows, int per_micro, int count,
                int64_t max_answer = 1);
  // The bytes of the device buffers such a set allocates.
  static int64_t device_bytes(int64_t max_rows, int per_micro, int count, int64_t max_answer = 1);
  // Packs `examples`, in order, into consecutive micro-batches of per_micro
  // examples (the last may hold fewer).
  void fill(const std::vector<const EncodedExample*>& examples);
  // The micro-batches of the latest fill.
  const std::vector<MicroBatch*>& batches() const { return used_; }
  // Rows of the latest fill, all micro-batches together.
  int64_t text_rows() const { return text_rows_; }
  int64_t prompt_rows() const { return prompt_rows_; }
  int64_t targets() const { return targets_; }
  int per_micro() const { return per_micro_; }

 private:
  int per_micro_;
  std::vector<std::unique_ptr<BatchBuilder>> builders_;
  std::vector<MicroBatch> batches_;
  std::vector<MicroBatch*> used_;
  std::vector<const EncodedExample*> part_;
  int64_t text_rows_ = 0, prompt_rows_ = 0, targets_ = 0;
};

// A micro-batch whose examples use different prompts (several tasks served
// by one frozen model at once). The prompts lie stacked in one tensor
// [sum of P_k, d]: prompt k's row i is row offset_k + i (offset_k = P_0 + ...
// + P_{k-1}), so its rows carry token id -1 - (offset_k + i). Each prompt
// used in the batch is one prefix segment (positions 0..P_k-1), computed
// once; each example is a segment of text rows (positions P_k, P_k + 1, ...)
// whose prefix is its prompt's segment:
//   [prompt a | prompt b | text 1 (prefix a) | text 2 (prefix b) | text 3 (prefix a) ...]
// An example therefore sees exactly what it would see alone with its prompt.
class MixedPromptBatchBuilder {
 public:
  // Rows a micro-batch of `examples` examples of at most `max_tokens` tokens
  // needs in the worst case (it uses the longest prompts).
  static int64_t rows_needed(const std::vector<int>& prompt_lens, int examples, int64_t max_tokens);
  MixedPromptBatchBuilder(Backend& backend, std::vector<int> prompt_lens, int64_t max_rows,
                          int max_seqs);
  // Packs the examples; prompt_of[b] is the index of example b's prompt.
  // mb.seq.prompt_len is the shortest prompt used (rows with a smaller
  // position are prompt rows).
  void fill(MicroBatch& mb, const std::vector<const EncodedExample*>& examples,
            const std::vector<int>& prompt_of);
  int num_prompts() const { return int(prompt_lens_.size()); }
  int64_t prompt_rows() const { return prompt_offsets_.back(); }  // rows of the stacked prompts
  int64_t prompt_offset(int k) const { return prompt_offsets_[size_t(k)]; }

 private:
  std::vector<int> prompt_lens_;
  std::vector<int64_t> prompt_offsets_;  // [K+1]
  PackedBatchWriter writer_;
  std::vector<int32_t> segment_of_prompt_;  // first row of prompt k's segment, -1 = not in the batch
};

}  // namespace sptrain
