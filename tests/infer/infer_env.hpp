#pragma once
// Two tasks for one tiny random model: prompts of different lengths,
// templates, max_length and label words (one word, "p", shared), written as
// checkpoints.
#include <string>

#include "../support/train_env.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/prompt/hdf5_export.hpp"
#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain::test {

struct TwoTasks {
  std::string model, a, b;  // model file, checkpoints of task a and task b
};

inline Checkpoint task_checkpoint(const std::string& model, int P, uint64_t seed, const std::string& templ,
                                  std::vector<std::pair<std::string, std::string>> labels, int max_length) {
  const h5::File f = h5::File::open_read(model);
  const ModelConfig m = read_model_config(f);
  Checkpoint c;
  c.step = 7;
  c.prompt_rows = P;
  c.prompt_cols = m.d_model;
  Rng rng(seed);
  for (int64_t i = 0; i < c.prompt_rows * c.prompt_cols; ++i) c.prompt.push_back(float(0.5 * rng.normal()));
  c.optimizer_name = "adamw";
  c.config_yaml = "task:\n  max_length: " + std::to_string(max_length) + "\n";
  c.model_fingerprint = m.fingerprint;
  c.model_path = model;
  c.task_template = templ;
  c.labels = std::move(labels);
  return c;
}

inline TwoTasks write_two_tasks(const std::string& prefix, Family family = Family::Llama) {
  TwoTasks t;
  t.model = tiny_model(family, prefix + "model.h5", 2, 5, 16);
  t.a = temp_path(prefix + "a.h5");
  t.b = temp_path(prefix + "b.h5");
  write_checkpoint(t.a, task_checkpoint(t.model, 4, 1, "Review: {text}\nSentiment:", {{"0", "n"}, {"1", "p"}}, 48));
  write_checkpoint(t.b, task_checkpoint(t.model, 6, 2, "Topic of {text}? ",
                                        {{"sport", "s"}, {"politics", "p"}, {"tech", "t"}}, 20));
  return t;
}

// The task of the prompt at `task_file` with a deep prompt of P rows in its
// place: random keys and values [layers, P, 2 * kv heads * head_dim] (from
// `seed`, the same on every rank), written as an hdf5 export at `out`.
inline std::string write_deep_task(const std::string& model, const std::string& task_file, int P, uint64_t seed,
                                   const std::string& out) {
  const h5::File f = h5::File::open_read(model);
  const ModelConfig m = read_model_config(f);
  StoredPrompt p = read_stored_prompt(task_file);
  p.values.clear();
  p.cols = 0;
  p.rows = P;
  p.prefix_layers = m.n_layers;
  p.prefix_cols = 2 * int64_t(m.n_kv_heads) * m.head_dim;
  Rng rng(seed);
  p.prefix.resize(size_t(p.prefix_layers * p.rows * p.prefix_cols));
  for (float& x : p.prefix) x = float(rng.normal());
  export_hdf5(p, out);
  return out;
}

}  // namespace sptrain::test
