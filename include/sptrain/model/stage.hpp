#pragma once
// One pipeline stage of the frozen model on one tensor-parallel rank: the
// embedding and soft prompt (first stage), a run of transformer layers, the
// final norm, LM head and loss (last stage). With one stage it is the whole model.
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "sptrain/io/h5.hpp"
#include "sptrain/model/embedding.hpp"
#include "sptrain/model/lm_head.hpp"
#include "sptrain/model/prompt_inputs.hpp"

namespace sptrain {

struct StageSpec {
  int index = 0;  // pipeline stage
  int count = 1;  // number of stages
  int first_layer = 0;
  int num_layers = 0;
  bool first() const { return index == 0; }
  bool last() const { return index == count - 1; }
};
// Layers per stage: balanced (earlier stages take the remainder) unless
// `explicit_layers` lists them; errors name the numbers.
StageSpec plan_stage(int n_layers, int stages, int index, const std::vector<int>& explicit_layers);

// Values of the frozen weights one rank's stage loads, by part
// (docs/parallelism.md, "Loading"); Stage::weight_bytes() is their total
// times the act dtype's size.
struct WeightShare {
  int64_t embedding = 0;  // first stage: token rows of its vocabulary range (+ learned positions)
  int64_t blocks = 0;     // its layers' split matrices (q/k/v, o, up/gate, down)
  int64_t vectors = 0;    // its layers' norms and biases (q/k/v and up biases split, the rest whole)
  int64_t head = 0;       // last stage: final norm, LM head rows (vocab loss), label rows
  int64_t total() const { return embedding + blocks + vectors + head; }
};
WeightShare stage_weights(const ModelConfig& c, const LocalDims& dims, const StageSpec& stage,
                          bool vocab_loss, int n_labels);

struct StageShape {
  Capacity train;         // largest training micro-batch
  int train_seqs = 1;     // most examples in one training micro-batch
  int activation_sets = 1;  // micro-batches in flight (kept for backward)
  Capacity eval;          // largest evaluation micro-batch (or cached generation step)
  int eval_seqs = 1;
  // Most target rows (MicroBatch::targets) in one micro-batch, training and
  // evaluation; 0: one per example (a classify task).
  int64_t train_targets = 0, eval_targets = 0;
  // Rows the LM head is sized for: the most target rows of either.
  int64_t head_rows() const {
    return std::max(train_targets > 0 ? train_targets : int64_t(train_seqs),
                    eval_targets > 0 ? eval_targets : int64_t(eval_seqs));
  }
};

// The bytes a stage holds, by kind: what its constructor allocates (from
// the same buffer lists), for the memory planner (plan/).
struct StageMemory {
  int64_t weights = 0;      // this rank's slice of the frozen weights
  int64_t activations = 0;  // kept from forward to backward: every activation set, the head's saved sets
  int64_t workspace = 0;    // the layers' workspace, the input gradient, the head's, the evaluation set
  int64_t tables = 0;       // the RoPE table
  int64_t total() const { return weights + activations + workspace + tables; }
};

class Stage {
 public:
  Stage(const ModelContext& ctx, const ModelConfig& config, const h5::File& file,
        const StageSpec& spec, const HeadSpec& head, const StageShape& shape);

  // What the constructor would allocate on tensor rank dims (no file, no
  // back end), attention keeping what `saved` says; the back end's own
  // attention scratch (reserve_attention) is not included.
  static StageMemory memory(const ModelConfig& config, const LocalDims& dims, const StageSpec& spec,
                            const HeadSpec& head, const StageShape& shape, const ElemTypes& types,
                            const AttentionSavedSizeFn& saved);

  const StageSpec& spec() const { return spec_; }
  const ModelContext& context() const { return ctx_; }
  const LocalDims& dims() const { return dims_; }
  const ModelConfig& config() const { return config_; }
  int64_t weight_bytes() const { return weight_bytes_; }
  // Floating-point operations this rank does for one micro-batch, counted
  // as docs/performance.md writes out: 2 per multiply-add of every matrix
  // product, attention only over the keys a query sees (causal), the head
  // only at target rows. Backward is input gradients only.
  struct Work {
    double forward = 0, backward = 0;
    double attention = 0;  // the part of both that is attention's products
  };
  Work work(const MicroBatch& mb) const;
  // The same for a stage of `layers` layers on tensor rank dims; head_cols:
  // the LM head's columns on the last stage (label words, or the vocabulary
  // shard), 0 elsewhere; targets: the micro-batch's target rows
  // (MicroBatch::targets). Reads only the host side of seq.
  static Work work(const ModelConfig& config, const LocalDims& dims, int layers, double head_cols,
                   int64_t targets, const SequenceIndex& seq);

  // Every frozen weight this stage holds, by name: for checks that training
  // never changes them.
  void for_each_weight(const std::function<void(const std::string&, const Tensor&)>& fn) const;

  // Activations in slot `slot` are kept for backward; slot -1 is the
  // evaluation slot (nothing kept, one set of buffers reused by all layers).
  // Stages after the first read their input from input(slot, T).
  // `prompt` holds what a trainable prompt puts in (prompt_inputs.hpp).
  void forward(int slot, const MicroBatch& mb, const PromptInputs& prompt);
  void forward(int slot, const MicroBatch& mb, const Tensor& prompt) {
    forward(slot, mb, PromptInputs(prompt));
  }
  Tensor input(int slot, int64_t rows) const;
  Tensor output(int slot, int64_t rows) const;
  // The last stage's loss and label scores for the latest forward.
  const HeadOutput& head_output() const { return head_out_; }
  // Last stage: add the loss and correct count to `sums` on the device
  // instead (LmHead::device_sums); an empty tensor goes back to the host.
  void set_device_sums(const Tensor& sums) { head_.device_sums = sums; }
  // The latest forward's logits over this rank's vocabulary shard at the
  // answer rows [B, V_local] (loss `vocab` only): for parity checks.
  Tensor vocab_logits(int64_t examples) const {
    const Buffer& logits = head_.saved[size_t(head_.latest)].logits;
    SPT_CHECK(!logits.empty(), "vocab logits exist only with loss: vocab");
    return logits.view().slice_rows(0, examples);
  }

  // Generation with a key/value cache (model/kv_cache.hpp): the new rows of
  // `step` through this stage's layers, whose keys and values extend `cache`
  // (from make_kv_cache). The first stage embeds step.tokens (prompt rows from
  // prompt.prompt); the others read their input from input(-1, Q); a deep
  // prompt's keys and values (prompt.prefix) replace the prompt rows'. The
  // output is output(-1, Q). A step holds at most the evaluation capacity's rows.
  void forward_cached(const CachedStep& step, const PromptInputs& prompt, KvCache& cache);
  KvCache make_kv_cache(int64_t rows) const;
  // Last stage, after forward_cached: full [V, S] (stat) = the logits of the
  // next token after each run's last row, over the whole vocabulary, on
  // every tensor-parallel rank (loss vocab only).
  void next_token_logits(const CachedStep& step, const Tensor& full);
  int64_t eval_rows() const { return buffers_.eval_set.layers.front().x_in.view().rows(); }

  // Last stage: starts from the loss, scaled by loss_weight. Other stages:
  // grad(T) must hold the gradient w.r.t. this stage's output. On return
  // grad(T) holds the gradient w.r.t. the stage's input; the first stage adds
  // the prompt's part to dprompt.prompt (stat [P, d]), each layer its deep
  // prompt's part to its slice of dprompt.prefix (the shapes of the forward's).
  void backward(int slot, const MicroBatch& mb, float loss_weight, const PromptInputs& dprompt);
  void backward(int slot, const MicroBatch& mb, float loss_weight, const Tensor& dprompt) {
    backward(slot, mb, loss_weight, PromptInputs(dprompt));
  }
  Tensor grad(int64_t rows) const { return buffers_.dx.view().slice_rows(0, rows); }

 private:
  struct ActivationSet {
    std::vector<LayerActivations> layers;
    Buffer out;  // [R, d] the last layer's output (absent in the evaluation set)
  };
  const ActivationSet& set(int slot) const;
  // The buffers besides the weights and the head's, listed for allocate()
  // (the constructor) and bytes() (memory()).
  struct Buffers {
    std::vector<ActivationSet> sets;
    ActivationSet eval_set;
    LayerWorkspace workspace;
    Buffer dx, rope_table;
    BufferList kept, scratch, tables;
  };
  static void list_buffers(Buffers& b, const ModelConfig& config, const LocalDims& dims,
                           const StageSpec& spec, const StageShape& shape, const AttentionSavedSizeFn& saved);

  ModelContext ctx_;
  ModelConfig config_;
  StageSpec spec_;
  LocalDims dims_;
  Embedding embedding_;
  std::vector<TransformerLayer> layers_;
  LmHead head_;
  Buffers buffers_;  // rope_table: [max_positions, head_dim] (RoPE only); dx: the input gradient
  HeadOutput head_out_;
  int64_t weight_bytes_ = 0;
};

}  // namespace sptrain
