#pragma once
// What the prompt import harnesses do with a prompt that loaded: check what
// read_stored_prompt promises (a 2-D prompt of finite values in the format
// its content says) and that the model check accepts it for a model of its
// width.
#include <cmath>

#include "fuzz_util.hpp"
#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain::fuzz {

inline void check_prompt(const StoredPrompt& p, const std::string& format) {
  if (p.format != format) bug("a " + format + " input read as format '" + p.format + "'");
  if (p.deep() || p.rows < 1 || p.cols < 1 || int64_t(p.values.size()) != p.rows * p.cols)
    bug("prompt [" + std::to_string(p.rows) + ", " + std::to_string(p.cols) + "] with " +
        std::to_string(p.values.size()) + " values");
  for (float v : p.values)
    if (!std::isfinite(v)) bug("a prompt that loaded holds a value that is not finite");
  if (p.cols <= kMaxWidth) {
    ModelConfig model;
    model.d_model = int(p.cols);
    model.fingerprint = p.model_fingerprint;
    try {
      check_prompt_matches_model(p, model, "model.h5");
    } catch (const Error& e) {
      bug(std::string("a prompt is refused by a model of its width: ") + e.what());
    }
  }
}

}  // namespace sptrain::fuzz
