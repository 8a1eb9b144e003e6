#pragma once
// What the prompt import harnesses do with a prompt that loaded: check what
// read_stored_prompt promises (a 2-D prompt, or a deep prompt's keys and
// values, of finite values in the format its content says) and that the model
// check accepts it for a model of its shape.
#include <cmath>

#include "fuzz_util.hpp"
#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain::fuzz {

inline void check_prompt(const StoredPrompt& p, const std::string& format) {
  if (p.format != format) bug("a " + format + " input read as format '" + p.format + "'");
  ModelConfig model;
  model.fingerprint = p.model_fingerprint;
  if (p.deep()) {
    // A deep prompt (a PEFT PREFIX_TUNING adapter): [layers, P, 2 x kv x D] of finite values.
    if (p.rows < 1 || p.prefix_cols < 2 || p.prefix_cols % 2 != 0 || !p.values.empty() ||
        int64_t(p.prefix.size()) != p.prefix_layers * p.rows * p.prefix_cols)
      bug("deep prompt [" + std::to_string(p.prefix_layers) + ", " + std::to_string(p.rows) + ", " +
          std::to_string(p.prefix_cols) + "] with " + std::to_string(p.prefix.size()) + " values");
    for (float v : p.prefix)
      if (!std::isfinite(v)) bug("a deep prompt that loaded holds a value that is not finite");
    const int64_t kv = p.prefix_kv_heads > 0 ? p.prefix_kv_heads : 1;
    if (p.prefix_layers > kMaxLayers || p.prefix_cols > kMaxWidth || (p.prefix_cols / 2) % kv != 0) return;
    model.n_layers = int(p.prefix_layers);
    model.n_kv_heads = int(kv);
    model.head_dim = int(p.prefix_cols / 2 / kv);
  } else {
    if (p.rows < 1 || p.cols < 1 || int64_t(p.values.size()) != p.rows * p.cols)
      bug("prompt [" + std::to_string(p.rows) + ", " + std::to_string(p.cols) + "] with " +
          std::to_string(p.values.size()) + " values");
    for (float v : p.values)
      if (!std::isfinite(v)) bug("a prompt that loaded holds a value that is not finite");
    if (p.cols > kMaxWidth) return;
    model.d_model = int(p.cols);
  }
  try {
    check_prompt_matches_model(p, model, "model.h5");
  } catch (const Error& e) {
    bug(std::string("a prompt is refused by a model of its shape: ") + e.what());
  }
}

}  // namespace sptrain::fuzz
