#pragma once
// Stage 0: token embeddings split over the vocabulary (each tensor-parallel
// rank holds a range of rows, one all-reduce assembles them), the soft prompt
// placed in front, and learned positions for the GPT family.
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/transformer_layer.hpp"

namespace sptrain {

struct Embedding {
  Buffer tokens;     // [V_local, d]
  Range vocab;       // this rank's rows of the vocabulary
  Buffer positions;  // [max_positions, d] (learned positions) or empty

  void load(WeightLoader& loader, const ModelConfig& c, const LocalDims& dims);

  // x[T,d] = [prompt rows, token embeddings] (+ positions). The prompt
  // (stat [P,d]) is added by tensor-parallel rank 0 only, before the all-reduce.
  void forward(const ModelContext& ctx, const SequenceIndex& seq, const Tensor& token_ids,
               const Tensor& prompt, const Tensor& x) const;
  // dprompt[P,d] += the gradient at the prompt rows of every sequence.
  void backward(const ModelContext& ctx, const SequenceIndex& seq, const Tensor& token_ids,
                const Tensor& dx, const Tensor& dprompt) const;
};

}  // namespace sptrain
