#pragma once
// Last stage: final norm and the LM head, applied only at the micro-batch's
// target rows (each example's answer row; for a generate task also its
// target's rows), then cross-entropy either over the label words or over the
// whole vocabulary (split over tensor-parallel ranks: no rank ever holds the
// full-vocabulary logits of a training step). For generation, the logits of
// the next token over the whole vocabulary.
#include <vector>

#include "sptrain/model/batch.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/transformer_layer.hpp"

namespace sptrain {

enum class LossKind : uint8_t { Labels, Vocab };

struct HeadSpec {
  LossKind loss = LossKind::Labels;
  std::vector<int32_t> label_tokens;  // vocabulary id of each label word, class order (none: generate)
};

// Per micro-batch results, on the host.
struct HeadOutput {
  std::vector<double> loss;          // [N] cross-entropy at each target row (one per example: classify)
  std::vector<double> label_scores;  // [B, n_labels] logits of the label words (classify)
};

struct LmHead {
  Norm final_norm;
  // [V_local, d] this rank's rows of the LM head (vocab loss): own_weight, or
  // with tied embeddings on a stage that also holds the embedding, a view of
  // the embedding's table (one copy of the vocabulary, not two).
  Buffer own_weight;
  Tensor weight;
  Range vocab;
  Buffer label_weight;  // [n_labels, d] the LM head's rows of the label words
  LossKind loss = LossKind::Labels;
  int n_labels = 0;

  // What forward keeps for backward, for up to max_targets target rows: one set
  // per activation slot of the stage, since a schedule may run several
  // forwards before their backwards (gpipe runs them all first).
  struct Saved {
    Buffer h, mean, rstd, label_logits, logits, row_max, row_sumexp;
  };
  std::vector<Saved> saved;
  int latest = 0;  // the set of the latest forward
  // Workspace, not kept between forward and backward.
  Buffer hn, target, dlogits, dhn, dh;
  std::vector<double> host_stats, host_max, host_sumexp, host_target;  // reused every step
  // When set (f64 [2], on the device): forward adds each micro-batch's loss
  // and correct count to it there (Backend::accumulate_loss) and leaves
  // HeadOutput empty, so a GPU step does not wait for them (train_step).
  Tensor device_sums;

  // The saved sets (kept) and the workspace (scratch) for up to max_targets
  // target rows and `slots` sets, once loss, n_labels and vocab are set:
  // load() allocates them.
  void list_buffers(const ModelConfig& c, int64_t max_targets, int slots, BufferList& kept,
                    BufferList& scratch);

  // tied_table: the embedding's rows of this rank when this stage holds them
  // and the model ties the head to them (empty otherwise); it must outlive the head.
  void load(const ModelContext& ctx, WeightLoader& loader, const ModelConfig& c,
            const LocalDims& dims, const HeadSpec& spec, int64_t max_targets, int slots,
            const Tensor& tied_table = Tensor{});

  // x: [T,d] the last layer's output. Fills out (host; or device_sums). Keeps what backward
  // needs in set `slot`; slot -1 (evaluation, no backward) uses set 0.
  void forward(const ModelContext& ctx, const MicroBatch& mb, const Tensor& x, HeadOutput& out,
               int slot);
  // dx[T,d] (overwrites) = d(weight * sum of losses)/dx; zero except at target
  // rows. mb and slot are those of the micro-batch's forward.
  void backward(const ModelContext& ctx, const MicroBatch& mb, float weight, const Tensor& dx,
                int slot);

  // Generation (loss vocab): full[V, S] (stat; note the layout, one column
  // per sequence) = the logits of the token after row rows[s] of x[Q,d], over
  // the whole vocabulary, on every tensor-parallel rank. S must not exceed
  // max_targets.
  void next_token_logits(const ModelContext& ctx, const Tensor& x, const Tensor& rows,
                         const Tensor& full);

 private:
  const Tensor& targets(const MicroBatch& mb) const {
    return loss == LossKind::Labels ? mb.label_targets : mb.token_targets;
  }
};

}  // namespace sptrain
