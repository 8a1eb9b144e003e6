#pragma once
// Text generation with a frozen model and soft prompts: a key/value cache
// (model/kv_cache.hpp), so every row is computed once; each step feeds one
// new token per unfinished sequence. Sequences of different lengths and of
// different prompts share the steps. Runs on this rank's pipeline stage
// with its tensor-parallel group: every rank of a replica calls generate()
// with the same requests, the last stage chooses the tokens and broadcasts
// them over the pipeline group, and every rank returns the same results.
//
// A step: the prompts used (one run each: positions 0..P-1, computed once
// per batch), then every input (its prompt's rows as prefix, positions P..),
// then one token per unfinished sequence until it ends with end-of-sequence,
// a stop string or max_new_tokens.
#include <cstdint>
#include <string>
#include <vector>

#include "sptrain/generate/sampling.hpp"
#include "sptrain/pipeline/runner.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain {

struct DecodeOptions {
  int max_new_tokens = 64;
  SamplingOptions sampling;        // greedy by default
  uint64_t seed = 0;               // with request.index, each request's own random stream
  std::vector<std::string> stop;   // stop strings: the text ends before the first one
};

struct GenerationRequest {
  std::vector<int32_t> tokens;  // the model's input (template applied)
  int prompt = 0;               // index of its prompt among the stacked prompts
  uint64_t index = 0;           // e.g. the input line: the same request samples the same text in any batch
};

struct Generation {
  std::vector<int32_t> tokens;  // generated, end-of-sequence excluded
  std::string text;             // decoded, cut before a stop string
  std::string finish;           // eos | stop | length
};

// What a decoder must hold at once.
struct DecoderShape {
  std::vector<int> prompt_lens;  // rows of each stacked prompt (all 0: no prompt)
  int max_batch = 1;             // requests per generate() call
  int64_t max_input = 1;         // tokens of the longest request
  int max_new_tokens = 1;        // the most any call asks for
};

class Decoder {
 public:
  // Allocates the cache and the step buffers once. The stage's evaluation
  // capacity must hold a step of every prompt's rows and of max_batch inputs.
  Decoder(Stage& stage, PipelineRunner& runner, Group& pipeline, const Tokenizer& tokenizer,
          DecoderShape shape);
  // Up to max_batch requests; prompts: the stacked prompts [sum P, d] (stat)
  // on the first stage (ignored elsewhere), or one deep prompt's keys and
  // values of this stage's layers (PromptInputs::prefix). Results in request order.
  std::vector<Generation> generate(const std::vector<const GenerationRequest*>& requests,
                                   const PromptInputs& prompts, const DecodeOptions& options);
  // The cached steps the latest generate() ran: (new rows, runs, whether their
  // tokens were chosen), for the byte counts (pipeline_bytes_per_cached_step).
  struct StepRecord {
    int64_t rows = 0, seqs = 0;
    bool tokens_chosen = false;
  };
  const std::vector<StepRecord>& steps() const { return steps_; }

 private:
  struct Sequence;
  void run_step(const PromptInputs& prompts, bool choose, std::vector<Sequence>& seqs,
                const std::vector<int>& runs, const DecodeOptions& o);
  int64_t prompt_start(int k) const { return prompt_offsets_[size_t(k)]; }
  int64_t sequence_start(int slot) const {
    return prompt_offsets_.back() + int64_t(slot) * (shape_.max_input + shape_.max_new_tokens);
  }

  Stage& stage_;
  PipelineRunner& runner_;
  Group& pipe_;
  const Tokenizer& tokenizer_;
  DecoderShape shape_;
  std::vector<int64_t> prompt_offsets_;  // [K+1]
  KvCache cache_;
  CachedStepWriter writer_;
  CachedStep step_;
  Buffer logits_;        // [V, max_batch] stat, the last stage's next-token logits
  Buffer chosen_;        // i32 [max_batch], broadcast from the last stage
  std::vector<double> host_logits_;
  std::vector<float> host_staging_;
  std::vector<int32_t> host_chosen_;
  SamplingScratch scratch_;
  std::vector<StepRecord> steps_;
};

}  // namespace sptrain
