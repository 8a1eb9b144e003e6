#include "sptrain/model/embedding.hpp"

#include "sptrain/model/tensor_parallel.hpp"

namespace sptrain {

void Embedding::load(WeightLoader& loader, const ModelConfig& c, const LocalDims& dims) {
  vocab = dims.vocab_range;
  tokens = loader.read_matrix("embeddings/tokens", vocab, Range{0, c.d_model});
  if (c.position == PositionKind::Learned)
    positions = loader.read_matrix("embeddings/positions", Range{0, c.max_positions},
                                   Range{0, c.d_model});
}

void Embedding::forward(const ModelContext& ctx, const SequenceIndex& seq,
                        const Tensor& token_ids, const Tensor& prompt, const Tensor& x) const {
  const bool add_prompt = ctx.tp.rank() == 0;
  ctx.backend.embed_forward(x, token_ids, tokens, vocab.begin, add_prompt ? prompt : Tensor{}, seq);
  tensor_parallel::reduce_from_region(ctx, x);
  if (!positions.empty()) ctx.backend.add_positions(x, positions, seq);
}

void Embedding::backward(const ModelContext& ctx, const SequenceIndex& seq,
                         const Tensor& token_ids, const Tensor& dx, const Tensor& dprompt) const {
  ctx.backend.prompt_backward(dprompt, dx, token_ids, seq);
}

}  // namespace sptrain
