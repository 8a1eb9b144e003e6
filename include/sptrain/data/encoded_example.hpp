#pragma once
// One example as the model takes it (data/task.hpp makes it, model/batch.hpp
// packs it into micro-batches).
#include <cstdint>
#include <vector>

namespace sptrain {

// The text tokens (template applied, truncated) and the answer: for a
// classify task the class index and the vocabulary id of the label word, for
// a generate task the target's tokens ending with end-of-sequence.
struct EncodedExample {
  std::vector<int32_t> tokens;
  int32_t label = 0;        // class index (order of task.labels)
  int32_t label_token = 0;  // vocabulary id of the label word
  std::vector<int32_t> target{};  // generate: target tokens + EOS; empty for classify

  // The tokens the model predicts: the label word, or the target.
  int64_t answer_tokens() const { return target.empty() ? 1 : int64_t(target.size()); }
  // Rows the example takes in a batch: its text, then (teacher forcing) every
  // target token but the last as input.
  int64_t input_rows() const { return int64_t(tokens.size()) + answer_tokens() - 1; }
};

}  // namespace sptrain
