#include "sptrain/prompt/prompt_init.hpp"

#include <cmath>
#include <utility>

#include "sptrain/prompt/export.hpp"

namespace sptrain {

namespace {

void read_embedding_row(const h5::File& f, const ModelConfig& m, int32_t token, float* out) {
  SPT_CHECK(token >= 0 && token < m.vocab_size, "token id ", token, " is outside the vocabulary");
  f.read_block("embeddings/tokens", token, 1, 0, m.d_model, DType::F32, out);
}

// Token ids to sample from: the first 5,000 normal tokens of the vocabulary.
std::vector<int32_t> sample_pool(const Tokenizer& tok, const ModelConfig& m) {
  std::vector<int32_t> pool;
  const int32_t n = std::min<int32_t>(tok.vocab_size(), m.vocab_size);
  for (int32_t id = 0; id < n && pool.size() < 5000; ++id)
    if (tok.token_type(id) == TokenType::Normal) pool.push_back(id);
  SPT_CHECK(!pool.empty(), "the tokenizer has no normal tokens to sample the prompt from");
  return pool;
}

}  // namespace

std::vector<float> init_prompt(const PromptSection& s, const ModelConfig& m, const h5::File& f,
                               const Tokenizer& tok, const Task& task, Rng& rng) {
  const int P = s.length, d = m.d_model;
  std::vector<float> prompt(size_t(P) * size_t(d));
  auto row = [&](int i) { return prompt.data() + size_t(i) * size_t(d); };

  if (s.init.rfind("file:", 0) == 0) return load_prompt_file(s.init.substr(5), P, m);
  if (s.init == "random_uniform") {
    for (float& v : prompt) v = float((2 * rng.uniform() - 1) * s.init_range);
    return prompt;
  }
  std::vector<int32_t> ids;
  if (s.init == "text") {
    const std::vector<int32_t> text = tok.encode(s.init_text, false);
    SPT_CHECK(!text.empty(), "prompt.init_text has no tokens");
    for (int i = 0; i < P; ++i) ids.push_back(text[size_t(i) % text.size()]);
  } else if (s.init == "labels" || s.init == "vocab_sample") {
    if (s.init == "labels")
      for (int32_t t : task.label_tokens())
        if (int(ids.size()) < P) ids.push_back(t);
    const std::vector<int32_t> pool = sample_pool(tok, m);
    while (int(ids.size()) < P) ids.push_back(pool[rng.below(pool.size())]);
  } else {
    fail("prompt.init: unknown initializer '", s.init, "'");
  }
  for (int i = 0; i < P; ++i) read_embedding_row(f, m, ids[size_t(i)], row(i));
  return prompt;
}

std::vector<float> load_prompt_file(const std::string& path, int prompt_len, const ModelConfig& m) {
  // A checkpoint, an hdf5 export, a .npy file or a PEFT adapter.
  StoredPrompt p = read_stored_prompt(path);
  SPT_CHECK(!p.deep(), "prompt.init: ", path, " holds a deep prompt (keys and values at every "
            "layer); it can start only prompt.method deep");
  check_prompt_matches_model(p, m, "in use");
  SPT_CHECK(p.rows == prompt_len, path, ": the prompt has ", p.rows,
            " vectors but prompt.length is ", prompt_len);
  return std::move(p.values);
}

double embedding_rms(const h5::File& f, const ModelConfig& m) {
  std::vector<float> rows(size_t(1024) * size_t(m.d_model));
  double sum = 0;
  int64_t n = 0;
  for (int64_t r0 = 0; r0 < m.vocab_size; r0 += 1024) {
    const int64_t nr = std::min<int64_t>(1024, m.vocab_size - r0);
    f.read_block("embeddings/tokens", r0, nr, 0, m.d_model, DType::F32, rows.data());
    for (int64_t i = 0; i < nr * m.d_model; ++i) sum += double(rows[size_t(i)]) * rows[size_t(i)];
    n += nr * m.d_model;
  }
  return std::sqrt(sum / double(n));
}

}  // namespace sptrain
