#pragma once
// Generation with a key/value cache: the cache of one stage's layers, and
// the steps of new rows that extend it (backend.hpp, CacheIndex). Which
// cache rows belong to which sequence is the generator's business
// (generate/decoder.hpp); a step only says where its new rows go and what
// each run sees.
#include <cstdint>
#include <vector>

#include "sptrain/model/context.hpp"

namespace sptrain {

// One buffer per layer of the stage: [capacity, 2 * kv_heads * head_dim],
// the k heads then the v heads of every cached row, in the act dtype.
struct KvCache {
  std::vector<Buffer> layers;
  int64_t capacity = 0;

  KvCache() = default;
  KvCache(const ModelContext& ctx, int num_layers, int kv_heads, int head_dim, int64_t capacity);
};

// The new rows of one step: what the first stage embeds (token ids, or
// stacked prompt rows as -1 - row, as in MicroBatch), their positions, and
// where they lie in the cache.
struct CachedStep {
  CacheIndex index;
  SequenceIndex seq;  // num_rows and positions only (RoPE, learned positions)
  Tensor tokens;      // i32 [Q]
  Tensor last_rows;   // i32 [S] each run's last new row: where the next token's logits are read
  std::vector<int32_t> host_tokens, host_last_rows;
};

// Fills CachedSteps in device buffers sized once for up to max_rows new rows
// in up to max_seqs runs. A fill is begin(), add_run() per run, finish().
class CachedStepWriter {
 public:
  CachedStepWriter(Backend& backend, int64_t max_rows, int max_seqs);
  void begin(CachedStep& step);
  // A run of n new rows (tokens[0..n)) at positions first_pos.., continuing a
  // sequence whose prefix is cache rows [prefix_start, +prefix_len) and whose
  // own rows, these n last, are [own_start, +own_len).
  void add_run(const int32_t* tokens, int n, int first_pos, int prefix_start, int prefix_len,
               int own_start, int own_len);
  void finish();
  int64_t max_rows() const { return max_rows_; }
  int max_seqs() const { return max_seqs_; }

 private:
  Backend& backend_;
  int64_t max_rows_;
  int max_seqs_;
  Buffer q_offsets_, prefix_start_, prefix_len_, own_start_, own_len_, cache_rows_, positions_,
      tokens_, last_rows_;
  CachedStep* step_ = nullptr;
};

}  // namespace sptrain
