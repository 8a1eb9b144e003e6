#pragma once
// What a trainable prompt puts into the frozen model on one rank, and the
// same shapes for where the model adds its gradient (docs/methods.md):
//   prompt  rows in front of the input embeddings (prompt tuning, and the
//           p-tuning encoder's output); read by the first pipeline stage
//   prefix  each layer's keys and values at the prompt rows (deep prompts:
//           prefix tuning, P-tuning v2); each stage reads its layers'
// A micro-batch's prompt rows (tokens < 0) say which row of these tensors
// they hold, so one batch can mix several prompts (infer, ensembles).
#include "sptrain/core/tensor.hpp"

namespace sptrain {

struct PromptInputs {
  // stat [rows, d_model]; empty: the prompt rows' embeddings are zero.
  Tensor prompt;
  // stat [layers of this stage, rows, 2 * kv heads of this rank * head_dim]:
  // per row the keys (after RoPE) of this rank's kv heads, then their values.
  // Empty: the prompt rows' keys and values are what the rows compute.
  Tensor prefix;
  // Instead of replacing the prompt rows' keys and values, copy them into
  // prefix (a deep prompt's start: the keys and values input rows produce).
  bool capture_prefix = false;

  PromptInputs() = default;
  PromptInputs(const Tensor& p) : prompt(p) {}  // NOLINT(google-explicit-constructor): a plain prompt
  PromptInputs(const Tensor& p, const Tensor& kv) : prompt(p), prefix(kv) {}

  // Local layer i's [rows, width] part of prefix (empty without one).
  Tensor layer_prefix(int i) const {
    if (prefix.empty()) return {};
    Tensor t = prefix.slice_rows(i, 1);
    t.shape = Shape{prefix.shape[1], prefix.shape[2]};
    return t;
  }
};

}  // namespace sptrain
