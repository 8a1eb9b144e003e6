#include "sptrain/model/kv_cache.hpp"

#include "sptrain/model/batch.hpp"

#include <algorithm>

namespace sptrain {

KvCache::KvCache(const ModelContext& ctx, int num_layers, int kv_heads, int head_dim,
                 int64_t rows)
    : capacity(rows) {
  for (int i = 0; i < num_layers; ++i)
    layers.push_back(ctx.alloc(Shape{rows, 2 * int64_t(kv_heads) * head_dim}));
}

CachedStepWriter::CachedStepWriter(Backend& backend, int64_t max_rows, int max_seqs)
    : backend_(backend), max_rows_(max_rows), max_seqs_(max_seqs) {
  allocate_upload_buffers(backend, {{&q_offsets_, Elem::I32, Shape{max_seqs + 1}},
                                    {&prefix_start_, Elem::I32, Shape{max_seqs}},
                                    {&prefix_len_, Elem::I32, Shape{max_seqs}},
                                    {&own_start_, Elem::I32, Shape{max_seqs}},
                                    {&own_len_, Elem::I32, Shape{max_seqs}},
                                    {&last_rows_, Elem::I32, Shape{max_seqs}},
                                    {&cache_rows_, Elem::I32, Shape{max_rows}},
                                    {&positions_, Elem::I32, Shape{max_rows}},
                                    {&tokens_, Elem::I32, Shape{max_rows}}});
}

void CachedStepWriter::begin(CachedStep& step) {
  step_ = &step;
  CacheIndex& x = step.index;
  for (auto* v : {&x.host_q_offsets, &x.host_prefix_start, &x.host_prefix_len, &x.host_own_start,
                  &x.host_own_len, &x.host_cache_rows, &step.seq.host_positions, &step.host_tokens,
                  &step.host_last_rows})
    v->clear();
  x.host_q_offsets.push_back(0);
  x.num_seqs = x.num_rows = x.max_keys = 0;
}

void CachedStepWriter::add_run(const int32_t* tokens, int n, int first_pos, int prefix_start,
                               int prefix_len, int own_start, int own_len) {
  CachedStep& st = *step_;
  CacheIndex& x = st.index;
  SPT_CHECK(n >= 1 && n <= own_len && prefix_len >= 0, "internal error: a run of ", n,
            " rows in ", own_len, " own rows");
  SPT_CHECK(x.num_rows + n <= max_rows_ && x.num_seqs < max_seqs_, "internal error: a cached step of more than ",
            max_rows_, " rows or ", max_seqs_, " runs");
  for (int i = 0; i < n; ++i) {
    st.host_tokens.push_back(tokens[i]);
    st.seq.host_positions.push_back(first_pos + i);
    x.host_cache_rows.push_back(own_start + own_len - n + i);
  }
  x.num_rows += n;
  ++x.num_seqs;
  x.host_q_offsets.push_back(x.num_rows);
  x.host_prefix_start.push_back(prefix_start);
  x.host_prefix_len.push_back(prefix_len);
  x.host_own_start.push_back(own_start);
  x.host_own_len.push_back(own_len);
  st.host_last_rows.push_back(x.num_rows - 1);
  x.max_keys = std::max(x.max_keys, prefix_len + own_len);
}

void CachedStepWriter::finish() {
  CachedStep& st = *step_;
  CacheIndex& x = st.index;
  const int S = x.num_seqs;
  const int64_t Q = x.num_rows;
  SPT_CHECK(S >= 1, "internal error: a cached step without runs");
  x.q_offsets = upload_prefix(backend_, q_offsets_, S + 1, x.host_q_offsets.data());
  x.prefix_start = upload_prefix(backend_, prefix_start_, S, x.host_prefix_start.data());
  x.prefix_len = upload_prefix(backend_, prefix_len_, S, x.host_prefix_len.data());
  x.own_start = upload_prefix(backend_, own_start_, S, x.host_own_start.data());
  x.own_len = upload_prefix(backend_, own_len_, S, x.host_own_len.data());
  x.cache_rows = upload_prefix(backend_, cache_rows_, Q, x.host_cache_rows.data());
  st.seq.num_rows = int(Q);
  st.seq.positions = upload_prefix(backend_, positions_, Q, st.seq.host_positions.data());
  st.tokens = upload_prefix(backend_, tokens_, Q, st.host_tokens.data());
  st.last_rows = upload_prefix(backend_, last_rows_, S, st.host_last_rows.data());
  step_ = nullptr;
}

}  // namespace sptrain
