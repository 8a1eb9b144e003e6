#include "sptrain/model/batch.hpp"

namespace sptrain {

BatchBuilder::BatchBuilder(Backend& backend, int prompt_len, int64_t max_rows, int max_seqs)
    : backend_(backend), prompt_len_(prompt_len), max_rows_(max_rows), max_seqs_(max_seqs) {
  offsets_ = backend.allocate(DType::I32, Shape{max_seqs + 1});
  positions_ = backend.allocate(DType::I32, Shape{max_rows});
  answer_rows_ = backend.allocate(DType::I32, Shape{max_seqs});
  prob_offsets_ = backend.allocate(DType::I64, Shape{max_seqs + 1});
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
  SequenceIndex& s = mb.seq;
  // Reserve the largest sizes once, so that later fills never allocate.
  s.host_positions.reserve(size_t(max_rows_));
  s.host_offsets.reserve(size_t(max_seqs_) + 1);
  s.host_prob_offsets.reserve(size_t(max_seqs_) + 1);
  s.host_answer_rows.reserve(size_t(max_seqs_));
  mb.host_labels.reserve(size_t(max_seqs_));
  s.num_seqs = B;
  s.prompt_len = prompt_len_;
  s.host_offsets.resize(size_t(B) + 1);
  s.host_answer_rows.resize(size_t(B));
  s.host_prob_offsets.resize(size_t(B) + 1);
  mb.host_labels.resize(size_t(B));
  host_token_targets_.resize(size_t(B));
  s.host_positions.clear();
  host_tokens_.clear();
  int64_t row = 0, probs = 0;
  s.max_len = 0;
  for (int b = 0; b < B; ++b) {
    const EncodedExample& ex = *examples[size_t(b)];
    const int L = prompt_len_ + int(ex.tokens.size());
    SPT_CHECK(row + L <= max_rows_, "internal error: micro-batch needs more than ", max_rows_,
              " rows");
    s.host_offsets[size_t(b)] = int32_t(row);
    s.host_prob_offsets[size_t(b)] = probs;
    for (int i = 0; i < L; ++i) s.host_positions.push_back(i);
    for (int i = 0; i < prompt_len_; ++i) host_tokens_.push_back(-1);
    host_tokens_.insert(host_tokens_.end(), ex.tokens.begin(), ex.tokens.end());
    // The last row's output predicts the label word that would follow it.
    s.host_answer_rows[size_t(b)] = int32_t(row + L - 1);
    mb.host_labels[size_t(b)] = ex.label;
    host_token_targets_[size_t(b)] = ex.label_token;
    row += L;
    probs += int64_t(L) * L;
    s.max_len = std::max(s.max_len, L);
  }
  s.host_offsets[size_t(B)] = int32_t(row);
  s.host_prob_offsets[size_t(B)] = probs;
  s.num_rows = int(row);
  mb.text_rows = row - int64_t(B) * prompt_len_;

  auto upload = [&](const Buffer& buf, int64_t n, const void* src) {
    Tensor t = buf.view();
    t.shape = Shape{n};
    backend_.copy_from_host(t, src);
    return t;
  };
  s.offsets = upload(offsets_, B + 1, s.host_offsets.data());
  s.positions = upload(positions_, row, s.host_positions.data());
  s.answer_rows = upload(answer_rows_, B, s.host_answer_rows.data());
  s.prob_offsets = upload(prob_offsets_, B + 1, s.host_prob_offsets.data());
  mb.tokens = upload(tokens_, row, host_tokens_.data());
  mb.label_targets = upload(label_targets_, B, mb.host_labels.data());
  mb.token_targets = upload(token_targets_, B, host_token_targets_.data());
}

}  // namespace sptrain
