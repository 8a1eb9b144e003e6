#pragma once
// Helpers shared by the configuration tests.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sptrain/config/load.hpp"
#include "sptrain/core/error.hpp"

namespace sptrain::testing {

// The smallest valid configuration: the three required keys.
inline const char* const kMinimal =
    "model:\n"
    "  path: m.h5\n"
    "task:\n"
    "  train: t.tsv\n"
    "  labels: {\"0\": \" negative\", \"1\": \" positive\"}\n";

// The message of the sptrain::Error that parsing `yaml` raises ("" and a test
// failure when it raises none).
inline std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, "configs/x.yaml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error for:\n" << yaml;
  return "";
}

// kMinimal with `extra` appended (extra starts at line 6).
inline std::string minimal_plus(const std::string& extra) { return std::string(kMinimal) + extra; }

// Every YAML key of a Config, written out here independently of the loader's table.
inline const std::vector<std::string>& all_keys() {
  static const std::vector<std::string> keys = {
      "backend", "threads", "model.path", "model.dtype", "task.kind", "task.train", "task.eval",
      "task.format", "task.template", "task.labels", "task.max_length", "task.loss",
      "task.max_target_length", "prompt.method", "prompt.reparameterize", "prompt.encoder",
      "prompt.encoder_hidden", "prompt.length", "prompt.init",
      "prompt.init_text", "prompt.init_range", "optim.name", "optim.lr", "optim.weight_decay",
      "optim.beta1", "optim.beta2", "optim.eps", "optim.warmup_steps", "optim.schedule",
      "optim.min_lr_ratio", "optim.clip_grad_norm", "optim.adafactor.decay_rate",
      "optim.adafactor.clip_threshold", "optim.adafactor.eps1", "optim.adafactor.eps2",
      "optim.adafactor.scale_parameter", "train.steps", "train.batch_size", "train.micro_batch_size",
      "train.eval_every", "train.eval_batch_size", "train.eval_max_examples", "train.checkpoint_every",
      "train.keep_checkpoints", "train.log_every", "train.run_dir", "train.resume", "train.seed",
      "train.shuffle", "parallel.tensor", "parallel.pipeline", "parallel.schedule",
      "parallel.stage_layers"};
  return keys;
}

}  // namespace sptrain::testing
