#pragma once
// Last stage: final norm and the LM head, applied only at each sequence's
// answer row, then cross-entropy either over the label words or over the
// whole vocabulary (split over tensor-parallel ranks: no rank ever holds the
// full-vocabulary logits).
#include <vector>

#include "sptrain/model/batch.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/transformer_layer.hpp"

namespace sptrain {

enum class LossKind : uint8_t { Labels, Vocab };

struct HeadSpec {
  LossKind loss = LossKind::Labels;
  std::vector<int32_t> label_tokens;  // vocabulary id of each label word, class order
};

// Per micro-batch results, on the host.
struct HeadOutput {
  std::vector<double> loss;          // [B] cross-entropy of each example
  std::vector<double> label_scores;  // [B, n_labels] logits of the label words
};

struct LmHead {
  Norm final_norm;
  Buffer weight;        // [V_local, d] this rank's rows of the LM head (vocab loss)
  Range vocab;
  Buffer label_weight;  // [n_labels, d] the LM head's rows of the label words
  LossKind loss = LossKind::Labels;
  int n_labels = 0;

  // Workspace for up to max_seqs answer rows.
  Buffer h, hn, mean, rstd, label_logits, logits, row_max, row_sumexp, target;
  Buffer dlogits, dhn, dh;
  std::vector<double> host_stats, host_max, host_sumexp, host_target;  // reused every step

  void load(const ModelContext& ctx, WeightLoader& loader, const ModelConfig& c,
            const LocalDims& dims, const HeadSpec& spec, int max_seqs);

  // x: [T,d] the last layer's output. Fills out (host).
  void forward(const ModelContext& ctx, const MicroBatch& mb, const Tensor& x, HeadOutput& out);
  // dx[T,d] (overwrites) = d(weight * sum of losses)/dx; zero except at answer rows.
  void backward(const ModelContext& ctx, const MicroBatch& mb, float weight, const Tensor& dx);

 private:
  const Tensor& targets(const MicroBatch& mb) const {
    return loss == LossKind::Labels ? mb.label_targets : mb.token_targets;
  }
};

}  // namespace sptrain
