#pragma once
// A small training setup for tests: a random model with the byte-level
// tokenizer and a few SST-2 lines, and a Config pointing at them.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "sptrain/config/config.hpp"
#include "sptrain/config/load.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::test {

// Every line of <run_dir>/metrics.jsonl, parsed.
inline std::vector<nlohmann::json> read_metrics(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The first n lines of data/sst2/<split>.tsv in a temporary file.
inline std::string sst2_subset(const std::string& split, int n, const std::string& name) {
  std::ifstream in(std::string(SPTRAIN_SOURCE_DIR) + "/data/sst2/" + split + ".tsv");
  const std::string path = temp_path(name);
  std::ofstream out(path);
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << '\n';
  return path;
}

// The byte-level tokenizer with an end-of-sequence token (id 256, "<eos>"),
// which generate tasks need.
inline Tokenizer bytes_with_eos() {
  TokenizerSpec s = Tokenizer::bytes_only().spec();
  s.tokens.push_back("<eos>");
  s.eos_id = 256;
  return Tokenizer(std::move(s));
}

// A small generate task in a temporary file: `n` lines of a short input and
// its target (the input's words reversed, or for every third input a second
// line with the words upper-cased: a second reference), TSV.
inline std::string generate_data(int n, int first, const std::string& name) {
  static const char* const words[] = {"red", "tea", "cat", "sun", "map", "owl", "fig", "jam"};
  const std::string path = temp_path(name);
  std::ofstream out(path);
  for (int i = first; i < first + n; ++i) {
    const std::string a = words[i % 8], b = words[(i / 8 + 3 * i) % 8];
    out << a << " " << b << "\t" << b << " " << a << "\n";
    if (i % 3 == 0) out << a << " " << b << "\t" << b << " " << a << " !\n";
  }
  return path;
}

inline std::string tiny_model(Family family, const std::string& name, int layers = 2,
                              uint64_t seed = 5, int d_model = 16) {
  ModelConfig c = tiny_config(family);
  c.n_layers = layers;
  if (d_model != 16) {
    c.d_model = d_model;
    c.head_dim = d_model / c.n_heads;
    c.d_ffn = 2 * d_model;
  }
  c.vocab_size = 256;
  c.max_positions = 256;
  const std::string path = temp_path(name);
  const Tokenizer tok = Tokenizer::bytes_only();
  write_random_model(path, c, seed, 0.2, [&](h5::File& f) { tok.save(f); });
  return path;
}

inline Config tiny_config_for(const std::string& model, const std::string& train,
                              const std::string& eval, const std::string& run_dir) {
  Config c;
  c.model.path = model;
  c.task.train = train;
  c.task.eval = eval;
  c.task.template_text = "Review: {text}\nSentiment:";
  c.task.labels = {{"0", "n"}, {"1", "p"}};
  c.task.max_length = 48;
  c.prompt.length = 4;
  c.prompt.init = "vocab_sample";
  c.optim.name = "adamw";
  c.optim.lr = 0.02;
  c.train.steps = 6;
  c.train.batch_size = 8;
  c.train.micro_batch_size = 4;
  c.train.eval_every = 0;
  c.train.checkpoint_every = 3;
  c.train.keep_checkpoints = 10;
  c.train.log_every = 1000;
  c.train.eval_batch_size = 8;
  c.train.run_dir = run_dir;
  c.threads = 1;
  validate_config(c);
  return c;
}

}  // namespace sptrain::test
