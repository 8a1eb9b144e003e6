#include "sptrain/model/batch.hpp"

#include <algorithm>
#include <functional>
#include <utility>

namespace sptrain {

// ---- PackedBatchWriter: the packing both builders share ----

BufferList PackedBatchBuffers::list(int64_t max_rows, int max_seqs, int max_segments,
                                    int64_t max_targets) {
  return {{&offsets, Elem::I32, Shape{max_segments + 1}},
          {&prefix_start, Elem::I32, Shape{max_segments}},
          {&prefix_len, Elem::I32, Shape{max_segments}},
          {&prob_offsets, Elem::I64, Shape{max_segments + 1}},
          {&positions, Elem::I32, Shape{max_rows}},
          {&answer_rows, Elem::I32, Shape{max_seqs}},
          {&tokens, Elem::I32, Shape{max_rows}},
          {&label_targets, Elem::I32, Shape{max_seqs}},
          {&target_rows, Elem::I32, Shape{max_targets}},
          {&token_targets, Elem::I32, Shape{max_targets}}};
}

PackedBatchWriter::PackedBatchWriter(Backend& backend, int64_t max_rows, int max_seqs,
                                     int max_segments, int64_t prompt_rows, int64_t max_targets)
    : backend_(backend),
      max_rows_(max_rows),
      max_seqs_(max_seqs),
      max_segments_(max_segments),
      prompt_rows_(prompt_rows),
      max_targets_(max_targets) {
  allocate_upload_buffers(backend, buf_.list(max_rows, max_seqs, max_segments, max_targets));
  host_tokens_.reserve(size_t(max_rows));
  host_target_rows_.reserve(size_t(max_targets));
  host_token_targets_.reserve(size_t(max_targets));
}

void PackedBatchWriter::begin(MicroBatch& mb, int num_examples) {
  SPT_CHECK(num_examples >= 1 && num_examples <= max_seqs_, "internal error: micro-batch of ",
            num_examples, " examples (max ", max_seqs_, ")");
  mb_ = &mb;
  SequenceIndex& s = mb.seq;
  // Reserve the largest sizes once, so that later fills never allocate.
  const size_t segments = size_t(max_segments_);
  s.host_positions.reserve(size_t(max_rows_));
  s.host_offsets.reserve(segments + 1);
  s.host_prefix_start.reserve(segments);
  s.host_prefix_len.reserve(segments);
  s.host_prob_offsets.reserve(segments + 1);
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
  host_target_rows_.clear();
  host_token_targets_.clear();
  s.num_examples = num_examples;
  s.max_len = s.max_keys = 0;
  mb.prompt_rows = 0;
  row_ = probs_ = 0;
}

void PackedBatchWriter::add_segment(int len, int prefix_start, int prefix_len) {
  SequenceIndex& s = mb_->seq;
  SPT_CHECK(row_ + len <= max_rows_, "internal error: micro-batch needs more than ", max_rows_,
            " rows");
  SPT_CHECK(int(s.host_offsets.size()) < max_segments_, "internal error: more than ",
            max_segments_, " segments in a micro-batch");
  s.host_offsets.push_back(int32_t(row_));
  s.host_prefix_start.push_back(prefix_start);
  s.host_prefix_len.push_back(prefix_len);
  s.host_prob_offsets.push_back(probs_);
  probs_ += int64_t(len) * (prefix_len + len);
  s.max_len = std::max(s.max_len, len);
  s.max_keys = std::max(s.max_keys, prefix_len + len);
}

void PackedBatchWriter::add_prompt_rows(int64_t first_row, int P) {
  SPT_CHECK(first_row >= 0 && P >= 0 && first_row + P <= prompt_rows_, "internal error: prompt rows ",
            first_row, "..", first_row + P - 1, " outside the prompt's ", prompt_rows_, " rows");
  for (int i = 0; i < P; ++i) {
    mb_->seq.host_positions.push_back(i);
    host_tokens_.push_back(int32_t(-1 - (first_row + i)));  // stacked prompt row first_row + i
  }
  row_ += P;
  mb_->prompt_rows += P;
}

void PackedBatchWriter::add_example(const EncodedExample& ex, int first_pos) {
  const int n = int(ex.input_rows());
  SPT_CHECK(!ex.tokens.empty(), "internal error: an example without tokens");
  SPT_CHECK(int64_t(host_target_rows_.size()) + ex.answer_tokens() <= max_targets_,
            "internal error: micro-batch needs more than ", max_targets_, " target rows");
  for (int i = 0; i < n; ++i) mb_->seq.host_positions.push_back(first_pos + i);
  host_tokens_.insert(host_tokens_.end(), ex.tokens.begin(), ex.tokens.end());
  // Teacher forcing: the target's tokens but the last are input rows too.
  if (!ex.target.empty()) host_tokens_.insert(host_tokens_.end(), ex.target.begin(), ex.target.end() - 1);
  // The last text row's output predicts the label word (or the target's
  // first token) that would follow it; each target row the next token.
  const int32_t answer_row = int32_t(row_ + int64_t(ex.tokens.size()) - 1);
  row_ += n;
  mb_->seq.host_answer_rows.push_back(answer_row);
  mb_->host_labels.push_back(ex.label);
  if (ex.target.empty()) {
    host_target_rows_.push_back(answer_row);
    host_token_targets_.push_back(ex.label_token);
  } else {
    for (size_t i = 0; i < ex.target.size(); ++i) {
      host_target_rows_.push_back(answer_row + int32_t(i));
      host_token_targets_.push_back(ex.target[i]);
    }
  }
}

// Without waiting for the device (the back end stages the bytes; each
// writer reserves staging for its buffers).
void allocate_upload_buffers(Backend& backend, const BufferList& list) {
  allocate(backend, ElemTypes{}, list);
  // Every fill uploads these without waiting: staging space for all of them.
  backend.reserve_staging(bytes(list, ElemTypes{}), int64_t(list.size()));
}

Tensor upload_prefix(Backend& backend, const Buffer& buf, int64_t n, const void* src) {
  Tensor t = buf.view();
  t.shape = Shape{n};
  backend.copy_from_host_async(t, src);
  return t;
}

void PackedBatchWriter::finish() {
  MicroBatch& mb = *mb_;
  SequenceIndex& s = mb.seq;
  const int B = s.num_examples;
  SPT_CHECK(int(s.host_answer_rows.size()) == B, "internal error: ", s.host_answer_rows.size(),
            " examples packed of ", B);
  s.num_segments = int(s.host_prefix_len.size());
  s.host_offsets.push_back(int32_t(row_));
  s.host_prob_offsets.push_back(probs_);
  s.num_rows = int(row_);
  mb.text_rows = row_ - mb.prompt_rows;

  const int S = s.num_segments;
  s.offsets = upload_prefix(backend_, buf_.offsets, S + 1, s.host_offsets.data());
  s.prefix_start = upload_prefix(backend_, buf_.prefix_start, S, s.host_prefix_start.data());
  s.prefix_len = upload_prefix(backend_, buf_.prefix_len, S, s.host_prefix_len.data());
  s.prob_offsets = upload_prefix(backend_, buf_.prob_offsets, S + 1, s.host_prob_offsets.data());
  s.positions = upload_prefix(backend_, buf_.positions, row_, s.host_positions.data());
  s.answer_rows = upload_prefix(backend_, buf_.answer_rows, B, s.host_answer_rows.data());
  mb.tokens = upload_prefix(backend_, buf_.tokens, row_, host_tokens_.data());
  mb.label_targets = upload_prefix(backend_, buf_.label_targets, B, mb.host_labels.data());
  mb.targets = int64_t(host_target_rows_.size());
  mb.target_rows = upload_prefix(backend_, buf_.target_rows, mb.targets, host_target_rows_.data());
  mb.token_targets = upload_prefix(backend_, buf_.token_targets, mb.targets, host_token_targets_.data());
  mb_ = nullptr;
}

// ---- BatchBuilder: one prompt ----

namespace {
// One segment per example, and the shared prompt's.
int builder_segments(int max_seqs) { return max_seqs + 1; }
}  // namespace

BatchBuilder::BatchBuilder(Backend& backend, int prompt_len, int64_t max_rows, int max_seqs,
                           bool share_prompt, int64_t max_answer)
    : prompt_len_(prompt_len),
      share_prompt_(share_prompt),
      writer_(backend, max_rows, max_seqs, builder_segments(max_seqs), /*prompt_rows=*/prompt_len,
              /*max_targets=*/max_seqs * max_answer) {}

void BatchBuilder::fill(MicroBatch& mb, const std::vector<const EncodedExample*>& examples) {
  const int B = int(examples.size());
  const int P = prompt_len_;
  writer_.begin(mb, B);
  mb.seq.prompt_len = P;
  const bool shared = share_prompt_ && P > 0;
  if (shared) {
    // [prompt | text 1 | text 2 | ...]: the prompt's segment, then each text
    // segment with the prompt as its prefix.
    writer_.add_segment(P, 0, 0);
    writer_.add_prompt_rows(0, P);
    for (const EncodedExample* ex : examples) {
      writer_.add_segment(int(ex->input_rows()), 0, P);
      writer_.add_example(*ex, P);
    }
  } else {
    // [prompt, text 1 | prompt, text 2 | ...]: each example one segment.
    for (const EncodedExample* ex : examples) {
      writer_.add_segment(P + int(ex->input_rows()), 0, 0);
      writer_.add_prompt_rows(0, P);
      writer_.add_example(*ex, P);
    }
  }
  writer_.finish();
}

// ---- MicroBatchSet: one step's micro-batches ----

MicroBatchSet::MicroBatchSet(Backend& backend, int prompt_len, int64_t max_rows, int per_micro,
                             int count, int64_t max_answer)
    : per_micro_(per_micro), batches_(size_t(count)) {
  SPT_ASSERT(per_micro >= 1 && count >= 1);
  for (int i = 0; i < count; ++i)
    builders_.push_back(
        std::make_unique<BatchBuilder>(backend, prompt_len, max_rows, per_micro, true, max_answer));
  used_.reserve(size_t(count));
  part_.reserve(size_t(per_micro));
}

int64_t MicroBatchSet::device_bytes(int64_t max_rows, int per_micro, int count, int64_t max_answer) {
  PackedBatchBuffers b;
  return count * bytes(b.list(max_rows, per_micro, builder_segments(per_micro), per_micro * max_answer),
                       ElemTypes{});
}

void MicroBatchSet::fill(const std::vector<const EncodedExample*>& examples) {
  const size_t n = examples.size(), per = size_t(per_micro_);
  SPT_CHECK(n >= 1 && n <= per * batches_.size(), "internal error: ", n, " examples for ",
            batches_.size(), " micro-batches of ", per);
  used_.clear();
  text_rows_ = prompt_rows_ = targets_ = 0;
  for (size_t k = 0; k * per < n; ++k) {
    part_.assign(examples.begin() + long(k * per), examples.begin() + long(std::min(n, (k + 1) * per)));
    builders_[k]->fill(batches_[k], part_);
    used_.push_back(&batches_[k]);
    text_rows_ += batches_[k].text_rows;
    prompt_rows_ += batches_[k].prompt_rows;
    targets_ += batches_[k].targets;
  }
}

// ---- MixedPromptBatchBuilder: a prompt per example ----

int64_t MixedPromptBatchBuilder::rows_needed(const std::vector<int>& prompt_lens, int examples,
                                             int64_t max_tokens) {
  // At most min(K, examples) prompts are used: the longest ones in the worst case.
  std::vector<int> lens = prompt_lens;
  std::sort(lens.begin(), lens.end(), std::greater<int>());
  int64_t rows = int64_t(examples) * max_tokens;
  for (size_t k = 0; k < lens.size() && k < size_t(examples); ++k) rows += lens[k];
  return rows;
}

namespace {
std::vector<int64_t> stacked_offsets(const std::vector<int>& prompt_lens) {
  SPT_CHECK(!prompt_lens.empty(), "internal error: a mixed-prompt batch needs at least one prompt");
  std::vector<int64_t> offsets{0};
  for (int P : prompt_lens) {
    SPT_CHECK(P >= 1, "internal error: prompt of ", P, " rows");
    offsets.push_back(offsets.back() + P);
  }
  return offsets;
}
}  // namespace

MixedPromptBatchBuilder::MixedPromptBatchBuilder(Backend& backend, std::vector<int> prompt_lens,
                                                 int64_t max_rows, int max_seqs)
    : prompt_lens_(std::move(prompt_lens)),
      prompt_offsets_(stacked_offsets(prompt_lens_)),
      writer_(backend, max_rows, max_seqs,
              /*max_segments=*/std::min(int(prompt_lens_.size()), max_seqs) + max_seqs,
              /*prompt_rows=*/prompt_offsets_.back(), /*max_targets=*/max_seqs),
      segment_of_prompt_(prompt_lens_.size(), -1) {}

void MixedPromptBatchBuilder::fill(MicroBatch& mb, const std::vector<const EncodedExample*>& examples,
                                   const std::vector<int>& prompt_of) {
  const int B = int(examples.size());
  SPT_CHECK(prompt_of.size() == examples.size(), "internal error: ", prompt_of.size(),
            " prompt indices for ", B, " examples");
  writer_.begin(mb, B);
  std::fill(segment_of_prompt_.begin(), segment_of_prompt_.end(), -1);

  // The prompts used, in order of first use, each once.
  int shortest = 0;
  for (int b = 0; b < B; ++b) {
    const int k = prompt_of[size_t(b)];
    SPT_CHECK(k >= 0 && k < num_prompts(), "internal error: prompt index ", k, " of ", num_prompts());
    if (segment_of_prompt_[size_t(k)] >= 0) continue;
    const int P = prompt_lens_[size_t(k)];
    segment_of_prompt_[size_t(k)] = int32_t(writer_.row());
    writer_.add_segment(P, 0, 0);
    writer_.add_prompt_rows(prompt_offsets_[size_t(k)], P);
    shortest = shortest == 0 ? P : std::min(shortest, P);
  }
  mb.seq.prompt_len = shortest;

  // Each example after them, with its own prompt's segment as its prefix.
  for (int b = 0; b < B; ++b) {
    const EncodedExample& ex = *examples[size_t(b)];
    const int k = prompt_of[size_t(b)];
    const int P = prompt_lens_[size_t(k)];
    SPT_CHECK(ex.target.empty(), "internal error: a mixed-prompt batch scores label words only");
    writer_.add_segment(int(ex.tokens.size()), segment_of_prompt_[size_t(k)], P);
    writer_.add_example(ex, P);
  }
  writer_.finish();
}

}  // namespace sptrain
