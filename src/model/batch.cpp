#include "sptrain/model/batch.hpp"

#include <algorithm>
#include <functional>
#include <utility>

namespace sptrain {

BatchBuilder::BatchBuilder(Backend& backend, int prompt_len, int64_t max_rows, int max_seqs,
                           bool share_prompt)
    : backend_(backend),
      prompt_len_(prompt_len),
      max_rows_(max_rows),
      max_seqs_(max_seqs),
      share_prompt_(share_prompt) {
  const int max_segments = max_seqs + 1;
  offsets_ = backend.allocate(DType::I32, Shape{max_segments + 1});
  prefix_start_ = backend.allocate(DType::I32, Shape{max_segments});
  prefix_len_ = backend.allocate(DType::I32, Shape{max_segments});
  prob_offsets_ = backend.allocate(DType::I64, Shape{max_segments + 1});
  positions_ = backend.allocate(DType::I32, Shape{max_rows});
  answer_rows_ = backend.allocate(DType::I32, Shape{max_seqs});
  tokens_ = backend.allocate(DType::I32, Shape{max_rows});
  label_targets_ = backend.allocate(DType::I32, Shape{max_seqs});
  token_targets_ = backend.allocate(DType::I32, Shape{max_seqs});
  host_tokens_.reserve(size_t(max_rows));
  host_token_targets_.reserve(size_t(max_seqs));
}

void BatchBuilder::fill(MicroBatch& mb, const std::vector<const EncodedExample*>& examples) {
  const int B = int(examples.size());
  SPT_CHECK(B >= 1 && B <= max_seqs_, "internal error: micro-batch of ", B, " examples (max ",
            max_seqs_, ")");
  const int P = prompt_len_;
  SequenceIndex& s = mb.seq;
  // Reserve the largest sizes once, so that later fills never allocate.
  const size_t max_segments = size_t(max_seqs_) + 1;
  s.host_positions.reserve(size_t(max_rows_));
  s.host_offsets.reserve(max_segments + 1);
  s.host_prefix_start.reserve(max_segments);
  s.host_prefix_len.reserve(max_segments);
  s.host_prob_offsets.reserve(max_segments + 1);
  s.host_answer_rows.reserve(size_t(max_seqs_));
  mb.host_labels.reserve(size_t(max_seqs_));
  s.host_offsets.clear();
  s.host_prefix_start.clear();
  s.host_prefix_len.clear();
  s.host_prob_offsets.clear();
  s.host_positions.clear();
  s.host_answer_rows.clear();
  mb.host_labels.clear();
  host_tokens_.clear();
  host_token_targets_.clear();
  s.num_examples = B;
  s.prompt_len = P;
  s.max_len = s.max_keys = 0;

  int64_t row = 0, probs = 0;
  // A segment of `len` rows whose first own position is `first_pos`.
  auto add_segment = [&](int len, int prefix_start, int prefix_len) {
    s.host_offsets.push_back(int32_t(row));
    s.host_prefix_start.push_back(prefix_start);
    s.host_prefix_len.push_back(prefix_len);
    s.host_prob_offsets.push_back(probs);
    probs += int64_t(len) * (prefix_len + len);
    s.max_len = std::max(s.max_len, len);
    s.max_keys = std::max(s.max_keys, prefix_len + len);
  };
  auto add_prompt_rows = [&] {
    for (int i = 0; i < P; ++i) {
      s.host_positions.push_back(i);
      host_tokens_.push_back(-1 - i);  // prompt row i
    }
    row += P;
  };
  const bool shared = share_prompt_ && P > 0;
  if (shared) {
    add_segment(P, 0, 0);
    add_prompt_rows();
  }
  mb.prompt_rows = shared ? P : int64_t(B) * P;
  for (int b = 0; b < B; ++b) {
    const EncodedExample& ex = *examples[size_t(b)];
    const int n = int(ex.tokens.size());
    const int L = shared ? n : P + n;
    SPT_CHECK(row + L <= max_rows_, "internal error: micro-batch needs more than ", max_rows_,
              " rows");
    add_segment(L, 0, shared ? P : 0);
    if (!shared) add_prompt_rows();
    for (int i = 0; i < n; ++i) s.host_positions.push_back(P + i);
    host_tokens_.insert(host_tokens_.end(), ex.tokens.begin(), ex.tokens.end());
    row += n;
    // The last row's output predicts the label word that would follow it.
    s.host_answer_rows.push_back(int32_t(row - 1));
    mb.host_labels.push_back(ex.label);
    host_token_targets_.push_back(ex.label_token);
  }
  s.num_segments = int(s.host_prefix_len.size());
  s.host_offsets.push_back(int32_t(row));
  s.host_prob_offsets.push_back(probs);
  s.num_rows = int(row);
  mb.text_rows = row - mb.prompt_rows;

  const int S = s.num_segments;
  auto upload = [&](const Buffer& buf, int64_t n, const void* src) {
    Tensor t = buf.view();
    t.shape = Shape{n};
    backend_.copy_from_host(t, src);
    return t;
  };
  s.offsets = upload(offsets_, S + 1, s.host_offsets.data());
  s.prefix_start = upload(prefix_start_, S, s.host_prefix_start.data());
  s.prefix_len = upload(prefix_len_, S, s.host_prefix_len.data());
  s.prob_offsets = upload(prob_offsets_, S + 1, s.host_prob_offsets.data());
  s.positions = upload(positions_, row, s.host_positions.data());
  s.answer_rows = upload(answer_rows_, B, s.host_answer_rows.data());
  mb.tokens = upload(tokens_, row, host_tokens_.data());
  mb.label_targets = upload(label_targets_, B, mb.host_labels.data());
  mb.token_targets = upload(token_targets_, B, host_token_targets_.data());
}

int64_t MixedPromptBatchBuilder::rows_needed(const std::vector<int>& prompt_lens, int examples,
                                             int64_t max_tokens) {
  // At most min(K, examples) prompts are used: the longest ones in the worst case.
  std::vector<int> lens = prompt_lens;
  std::sort(lens.begin(), lens.end(), std::greater<int>());
  int64_t rows = int64_t(examples) * max_tokens;
  for (size_t k = 0; k < lens.size() && k < size_t(examples); ++k) rows += lens[k];
  return rows;
}

MixedPromptBatchBuilder::MixedPromptBatchBuilder(Backend& backend, std::vector<int> prompt_lens,
                                                 int64_t max_rows, int max_seqs)
    : backend_(backend), prompt_lens_(std::move(prompt_lens)), max_rows_(max_rows), max_seqs_(max_seqs) {
  SPT_CHECK(!prompt_lens_.empty(), "internal error: a mixed-prompt batch needs at least one prompt");
  prompt_offsets_.push_back(0);
  for (int P : prompt_lens_) {
    SPT_CHECK(P >= 1, "internal error: prompt of ", P, " rows");
    prompt_offsets_.push_back(prompt_offsets_.back() + P);
  }
  max_segments_ = std::min(num_prompts(), max_seqs) + max_seqs;
  offsets_ = backend.allocate(DType::I32, Shape{max_segments_ + 1});
  prefix_start_ = backend.allocate(DType::I32, Shape{max_segments_});
  prefix_len_ = backend.allocate(DType::I32, Shape{max_segments_});
  prob_offsets_ = backend.allocate(DType::I64, Shape{max_segments_ + 1});
  positions_ = backend.allocate(DType::I32, Shape{max_rows});
  answer_rows_ = backend.allocate(DType::I32, Shape{max_seqs});
  tokens_ = backend.allocate(DType::I32, Shape{max_rows});
  label_targets_ = backend.allocate(DType::I32, Shape{max_seqs});
  token_targets_ = backend.allocate(DType::I32, Shape{max_seqs});
  host_tokens_.reserve(size_t(max_rows));
  host_token_targets_.reserve(size_t(max_seqs));
  segment_of_prompt_.assign(prompt_lens_.size(), -1);
}

void MixedPromptBatchBuilder::fill(MicroBatch& mb, const std::vector<const EncodedExample*>& examples,
                                   const std::vector<int>& prompt_of) {
  const int B = int(examples.size());
  SPT_CHECK(B >= 1 && B <= max_seqs_, "internal error: micro-batch of ", B, " examples (max ",
            max_seqs_, ")");
  SPT_CHECK(prompt_of.size() == examples.size(), "internal error: ", prompt_of.size(),
            " prompt indices for ", B, " examples");
  SequenceIndex& s = mb.seq;
  s.host_offsets.clear();
  s.host_prefix_start.clear();
  s.host_prefix_len.clear();
  s.host_prob_offsets.clear();
  s.host_positions.clear();
  s.host_answer_rows.clear();
  mb.host_labels.clear();
  host_tokens_.clear();
  host_token_targets_.clear();
  std::fill(segment_of_prompt_.begin(), segment_of_prompt_.end(), -1);
  s.num_examples = B;
  s.max_len = s.max_keys = 0;

  int64_t row = 0, probs = 0;
  auto add_segment = [&](int len, int prefix_start, int prefix_len) {
    SPT_CHECK(row + len <= max_rows_, "internal error: micro-batch needs more than ", max_rows_, " rows");
    s.host_offsets.push_back(int32_t(row));
    s.host_prefix_start.push_back(prefix_start);
    s.host_prefix_len.push_back(prefix_len);
    s.host_prob_offsets.push_back(probs);
    probs += int64_t(len) * (prefix_len + len);
    s.max_len = std::max(s.max_len, len);
    s.max_keys = std::max(s.max_keys, prefix_len + len);
  };

  // The prompts used, in order of first use, each once.
  int shortest = 0;
  mb.prompt_rows = 0;
  for (int b = 0; b < B; ++b) {
    const int k = prompt_of[size_t(b)];
    SPT_CHECK(k >= 0 && k < num_prompts(), "internal error: prompt index ", k, " of ", num_prompts());
    if (segment_of_prompt_[size_t(k)] >= 0) continue;
    const int P = prompt_lens_[size_t(k)];
    segment_of_prompt_[size_t(k)] = int32_t(row);
    add_segment(P, 0, 0);
    for (int i = 0; i < P; ++i) {
      s.host_positions.push_back(i);
      host_tokens_.push_back(int32_t(-1 - (prompt_offsets_[size_t(k)] + i)));
    }
    row += P;
    mb.prompt_rows += P;
    shortest = shortest == 0 ? P : std::min(shortest, P);
  }
  s.prompt_len = shortest;

  for (int b = 0; b < B; ++b) {
    const EncodedExample& ex = *examples[size_t(b)];
    const int k = prompt_of[size_t(b)];
    const int P = prompt_lens_[size_t(k)];
    const int n = int(ex.tokens.size());
    SPT_CHECK(n >= 1, "internal error: an example without tokens");
    add_segment(n, segment_of_prompt_[size_t(k)], P);
    for (int i = 0; i < n; ++i) s.host_positions.push_back(P + i);
    host_tokens_.insert(host_tokens_.end(), ex.tokens.begin(), ex.tokens.end());
    row += n;
    s.host_answer_rows.push_back(int32_t(row - 1));
    mb.host_labels.push_back(ex.label);
    host_token_targets_.push_back(ex.label_token);
  }
  s.num_segments = int(s.host_prefix_len.size());
  s.host_offsets.push_back(int32_t(row));
  s.host_prob_offsets.push_back(probs);
  s.num_rows = int(row);
  mb.text_rows = row - mb.prompt_rows;

  const int S = s.num_segments;
  auto upload = [&](const Buffer& buf, int64_t n, const void* src) {
    Tensor t = buf.view();
    t.shape = Shape{n};
    backend_.copy_from_host(t, src);
    return t;
  };
  s.offsets = upload(offsets_, S + 1, s.host_offsets.data());
  s.prefix_start = upload(prefix_start_, S, s.host_prefix_start.data());
  s.prefix_len = upload(prefix_len_, S, s.host_prefix_len.data());
  s.prob_offsets = upload(prob_offsets_, S + 1, s.host_prob_offsets.data());
  s.positions = upload(positions_, row, s.host_positions.data());
  s.answer_rows = upload(answer_rows_, B, s.host_answer_rows.data());
  mb.tokens = upload(tokens_, row, host_tokens_.data());
  mb.label_targets = upload(label_targets_, B, mb.host_labels.data());
  mb.token_targets = upload(token_targets_, B, host_token_targets_.data());
}

}  // namespace sptrain
