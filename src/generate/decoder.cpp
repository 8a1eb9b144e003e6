#include "sptrain/generate/decoder.hpp"

#include <algorithm>

namespace sptrain {

// One request being generated: where its rows lie in the cache and what it has produced.
struct Decoder::Sequence {
  const GenerationRequest* request = nullptr;
  int prompt_len = 0;
  int64_t own_start = 0;  // its rows in the cache: the input, then each token fed back
  Rng rng{0};
  Generation out;
  bool done = false;
  int32_t last = 0;       // the token to feed next
};

namespace {
std::vector<int64_t> offsets_of(const std::vector<int>& lens) {
  std::vector<int64_t> off{0};
  for (int P : lens) off.push_back(off.back() + P);
  return off;
}
}  // namespace

Decoder::Decoder(Stage& stage, PipelineRunner& runner, Group& pipeline, const Tokenizer& tokenizer,
                 DecoderShape shape)
    : stage_(stage),
      runner_(runner),
      pipe_(pipeline),
      tokenizer_(tokenizer),
      shape_(std::move(shape)),
      prompt_offsets_(offsets_of(shape_.prompt_lens)),
      writer_(stage.context().backend,
              std::max<int64_t>(prompt_offsets_.back(), int64_t(shape_.max_batch) * shape_.max_input),
              std::max(int(shape_.prompt_lens.size()), shape_.max_batch)) {
  SPT_CHECK(shape_.max_batch >= 1 && shape_.max_input >= 1 && shape_.max_new_tokens >= 1,
            "internal error: decoder of batch ", shape_.max_batch, ", input ", shape_.max_input,
            ", ", shape_.max_new_tokens, " new tokens");
  SPT_CHECK(writer_.max_rows() <= stage.eval_rows(), "internal error: a generation step of ",
            writer_.max_rows(), " rows exceeds the stage's ", stage.eval_rows());
  const ModelContext& ctx = stage.context();
  const int longest_prompt =
      shape_.prompt_lens.empty() ? 0 : *std::max_element(shape_.prompt_lens.begin(), shape_.prompt_lens.end());
  const int64_t max_keys = longest_prompt + shape_.max_input + shape_.max_new_tokens;
  SPT_CHECK(max_keys <= stage.config().max_positions, "a prompt of ", longest_prompt, " rows, ",
            shape_.max_input, " input tokens and ", shape_.max_new_tokens,
            " new tokens exceed the model's ", stage.config().max_positions, " positions");
  cache_ = stage.make_kv_cache(sequence_start(shape_.max_batch));
  ctx.backend.reserve_attention(stage.eval_rows(), int(max_keys), stage.dims().heads, stage.dims().qkv_width());
  if (stage.spec().last()) {
    logits_ = ctx.alloc_stat(Shape{stage.config().vocab_size, shape_.max_batch});
    host_logits_.reserve(size_t(stage.config().vocab_size) * size_t(shape_.max_batch));
  }
  chosen_ = ctx.backend.allocate(DType::I32, Shape{shape_.max_batch});
}

void Decoder::run_step(const PromptInputs& prompts, bool choose, std::vector<Sequence>& seqs,
                       const std::vector<int>& runs, const DecodeOptions& o) {
  runner_.forward_cached(step_, prompts, cache_);
  steps_.push_back({step_.seq.num_rows, step_.index.num_seqs, choose});
  if (!choose) return;
  // The last stage chooses every run's next token; the pipeline group hears it.
  const int S = int(runs.size());
  host_chosen_.assign(size_t(S), 0);
  if (stage_.spec().last()) {
    Backend& be = stage_.context().backend;
    const int64_t V = stage_.config().vocab_size;
    Tensor full = logits_.view();
    full.shape = Shape{V, S};
    stage_.next_token_logits(step_, full);
    host_logits_.resize(size_t(V * S));
    if (full.dtype == DType::F64) {
      be.copy_to_host(host_logits_.data(), full);
    } else {
      host_staging_.resize(size_t(V * S));
      be.copy_to_host(host_staging_.data(), full);
      std::copy(host_staging_.begin(), host_staging_.end(), host_logits_.begin());
    }
    // Only tokens the tokenizer can write: a model may have spare rows past its vocabulary.
    const int64_t choosable = std::min<int64_t>(V, tokenizer_.vocab_size());
    for (int s = 0; s < S; ++s) {
      Sequence& q = seqs[size_t(runs[size_t(s)])];
      host_chosen_[size_t(s)] = choose_token(host_logits_.data() + s, choosable, S, o.sampling, q.rng, scratch_);
    }
  }
  if (pipe_.size() > 1) {
    Tensor t = chosen_.view();
    t.shape = Shape{S};
    stage_.context().backend.copy_from_host(t, host_chosen_.data());
    pipe_.broadcast(t, pipe_.size() - 1);
    stage_.context().backend.copy_to_host(host_chosen_.data(), t);
  }
  // Every rank applies the same tokens: end-of-sequence, stop strings, length.
  for (int s = 0; s < S; ++s) {
    Sequence& q = seqs[size_t(runs[size_t(s)])];
    const int32_t tok = host_chosen_[size_t(s)];
    if (tok == tokenizer_.eos_id()) {
      q.done = true;
      q.out.finish = "eos";
      continue;
    }
    q.out.tokens.push_back(tok);
    q.last = tok;
    q.out.text = tokenizer_.decode(q.out.tokens);
    size_t cut = std::string::npos;
    for (const std::string& stop : o.stop)
      if (!stop.empty()) cut = std::min(cut, q.out.text.find(stop));
    if (cut != std::string::npos) {
      q.out.text.resize(cut);
      q.done = true;
      q.out.finish = "stop";
    } else if (int(q.out.tokens.size()) >= o.max_new_tokens) {
      q.done = true;
      q.out.finish = "length";
    }
  }
}

std::vector<Generation> Decoder::generate(const std::vector<const GenerationRequest*>& requests,
                                          const PromptInputs& prompts, const DecodeOptions& o) {
  const int B = int(requests.size());
  SPT_CHECK(B >= 1 && B <= shape_.max_batch, "internal error: ", B, " requests for a decoder of ",
            shape_.max_batch);
  SPT_CHECK(o.max_new_tokens >= 1 && o.max_new_tokens <= shape_.max_new_tokens,
            "max_new_tokens must be between 1 and ", shape_.max_new_tokens, ", is ", o.max_new_tokens);
  const int K = int(shape_.prompt_lens.size());
  steps_.clear();
  std::vector<Sequence> seqs(static_cast<size_t>(B));
  std::vector<char> prompt_used(static_cast<size_t>(K), 0);
  for (int b = 0; b < B; ++b) {
    const GenerationRequest& r = *requests[size_t(b)];
    SPT_CHECK(r.prompt >= 0 && r.prompt < std::max(K, 1), "internal error: prompt ", r.prompt, " of ", K);
    SPT_CHECK(!r.tokens.empty() && int64_t(r.tokens.size()) <= shape_.max_input, "internal error: a request of ",
              r.tokens.size(), " tokens (at most ", shape_.max_input, ")");
    Sequence& q = seqs[size_t(b)];
    q.request = &r;
    q.prompt_len = K > 0 ? shape_.prompt_lens[size_t(r.prompt)] : 0;
    q.own_start = sequence_start(b);
    // SplitMix64 streams that differ for each request index.
    q.rng = Rng(o.seed ^ (0x9e3779b97f4a7c15ull * (r.index + 1)));
    if (K > 0) prompt_used[size_t(r.prompt)] = 1;
  }

  // The prompts used: their rows, once, at positions 0..P-1.
  writer_.begin(step_);
  std::vector<int32_t> prompt_tokens;
  for (int k = 0; k < K; ++k) {
    const int P = shape_.prompt_lens[size_t(k)];
    if (!prompt_used[size_t(k)] || P == 0) continue;
    prompt_tokens.resize(size_t(P));
    for (int i = 0; i < P; ++i) prompt_tokens[size_t(i)] = int32_t(-1 - (prompt_start(k) + i));
    writer_.add_run(prompt_tokens.data(), P, 0, 0, 0, int(prompt_start(k)), P);
  }
  std::vector<int> runs;
  if (step_.index.num_seqs > 0) {
    writer_.finish();
    run_step(prompts, false, seqs, runs, o);
  }
  // The inputs after their prompts; each run's last row gives the first token.
  writer_.begin(step_);
  for (int b = 0; b < B; ++b) {
    const Sequence& q = seqs[size_t(b)];
    const std::vector<int32_t>& t = q.request->tokens;
    const int n = int(t.size());
    writer_.add_run(t.data(), n, q.prompt_len, q.prompt_len > 0 ? int(prompt_start(q.request->prompt)) : 0,
                    q.prompt_len, int(q.own_start), n);
    runs.push_back(b);
  }
  writer_.finish();
  run_step(prompts, true, seqs, runs, o);
  // One token per unfinished sequence per step.
  while (true) {
    runs.clear();
    writer_.begin(step_);
    for (int b = 0; b < B; ++b) {
      const Sequence& q = seqs[size_t(b)];
      if (q.done) continue;
      const int n = int(q.request->tokens.size() + q.out.tokens.size());
      writer_.add_run(&q.last, 1, q.prompt_len + n - 1,
                      q.prompt_len > 0 ? int(prompt_start(q.request->prompt)) : 0, q.prompt_len,
                      int(q.own_start), n);
      runs.push_back(b);
    }
    if (runs.empty()) break;
    writer_.finish();
    run_step(prompts, true, seqs, runs, o);
  }
  std::vector<Generation> out;
  out.reserve(size_t(B));
  for (Sequence& q : seqs) out.push_back(std::move(q.out));
  return out;
}

}  // namespace sptrain
