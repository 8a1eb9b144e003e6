#pragma once
// A packed micro-batch on the device, no padding rows. With a shared prompt
// (the default) the P prompt rows come once, as the prefix of every
// example's text rows: [prompt | text 1 | text 2 | ...]. Without sharing each
// example is [prompt, text] on its own. Buffers are allocated once for the
// largest micro-batch; each fill() only copies.
#include <cstdint>
#include <vector>

#include "sptrain/backend/backend.hpp"

namespace sptrain {

// One example, tokenized: the text tokens (template applied, truncated), its
// class index and the vocabulary id of its label word.
struct EncodedExample {
  std::vector<int32_t> tokens;
  int32_t label = 0;        // class index (order of task.labels)
  int32_t label_token = 0;  // vocabulary id of the label word
};

struct MicroBatch {
  SequenceIndex seq;
  Tensor tokens;         // i32 [T]; prompt row i holds -1 - i
  Tensor label_targets;  // i32 [B] class index
  Tensor token_targets;  // i32 [B] vocabulary id of the label word
  std::vector<int32_t> host_labels;  // class index per example
  int64_t text_rows = 0;             // rows that are text
  int64_t prompt_rows = 0;           // rows that are prompt (P shared, B*P unshared)
};

class BatchBuilder {
 public:
  // Rows a micro-batch of `examples` examples of at most `max_tokens` tokens needs.
  static int64_t rows_needed(int prompt_len, int examples, int64_t max_tokens, bool share_prompt) {
    return share_prompt ? prompt_len + examples * max_tokens : examples * (prompt_len + max_tokens);
  }
  BatchBuilder(Backend& backend, int prompt_len, int64_t max_rows, int max_seqs,
               bool share_prompt = true);
  // Packs the examples into mb (whose tensors point into this builder's buffers).
  void fill(MicroBatch& mb, const std::vector<const EncodedExample*>& examples);
  int64_t max_rows() const { return max_rows_; }
  int max_seqs() const { return max_seqs_; }

 private:
  Backend& backend_;
  int prompt_len_;
  int64_t max_rows_;
  int max_seqs_;
  bool share_prompt_;
  Buffer offsets_, prefix_start_, prefix_len_, positions_, answer_rows_, prob_offsets_, tokens_,
      label_targets_, token_targets_;
  std::vector<int32_t> host_tokens_, host_token_targets_;
};

}  // namespace sptrain
