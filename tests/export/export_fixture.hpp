#pragma once
// A tiny random model and a prompt checkpoint that belongs to it, written
// directly (no training), for the export tests and the Python check.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sptrain/io/checkpoint.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/random_model.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::test {

// A llama-shaped random model of width d_model with the byte tokenizer.
inline std::string write_fixture_model(const std::string& path, int d_model = 16, uint64_t seed = 7) {
  ModelConfig c;
  c.family = Family::Llama;
  c.name = "fixture-llama";
  c.n_layers = 2;
  c.d_model = d_model;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = d_model / 4;
  c.d_ffn = 2 * d_model;
  c.vocab_size = 256;
  c.max_positions = 128;
  c.norm = NormKind::RmsNorm;
  c.activation = Activation::SwiGlu;
  c.position = PositionKind::Rope;
  c.tied_embeddings = true;
  c.bias = false;
  const Tokenizer tok = Tokenizer::bytes_only();
  write_random_model(path, c, seed, 0.2, [&](h5::File& f) { tok.save(f); });
  return path;
}

// Values that catch any conversion on the way: random normals plus signed
// zero, a subnormal, the smallest normal and values near the top of bf16's
// range (prompts are finite: readers reject NaN and infinities, and f32's
// maximum would round to bf16's infinity).
inline std::vector<float> tricky_prompt(int64_t rows, int64_t cols, uint64_t seed) {
  std::vector<float> v(size_t(rows * cols));
  Rng rng(seed);
  for (float& x : v) x = float(rng.normal() * 0.1);
  const float special[] = {-0.0f,
                           std::numeric_limits<float>::denorm_min(),
                           -std::numeric_limits<float>::min(),
                           3.0e38f,
                           -3.0e38f,
                           1.00390625f /* 1 + 2^-8: a bf16 tie */};
  for (size_t i = 0; i < std::size(special) && i < v.size(); ++i) v[i * 3 % v.size()] = special[i];
  return v;
}

// A checkpoint of the model at model_path with prompt [rows, cols].
inline Checkpoint fixture_checkpoint(const std::string& model_path, int64_t rows, int64_t cols,
                                     uint64_t seed = 3) {
  Checkpoint c;
  c.step = 42;
  c.prompt_rows = rows;
  c.prompt_cols = cols;
  c.prompt = tricky_prompt(rows, cols, seed);
  c.optimizer_name = "adamw";
  c.optimizer.push_back(NamedState{"exp_avg", {rows, cols}, std::vector<float>(size_t(rows * cols), 0.5f)});
  c.config_yaml = "task:\n  max_length: 40\n  template: \"Review: {text}\\nSentiment:\"\n";
  if (!model_path.empty()) {
    const h5::File f = h5::File::open_read(model_path);
    c.model_fingerprint = read_model_config(f).fingerprint;
  } else {
    c.model_fingerprint = "0123456789abcdef";
  }
  c.model_path = model_path;
  c.eval_accuracy = 0.875;
  c.eval_loss = 0.25;
  c.task_template = "Review: {text}\nSentiment:";
  c.labels = {{"0", "n"}, {"1", "p"}};
  return c;
}

}  // namespace sptrain::test
