#include "sptrain/plan/model_shapes.hpp"

#include "sptrain/core/error.hpp"

namespace sptrain::plan {

namespace {

ModelConfig gpt_like(const char* name, int layers, int d, int heads, int ffn, int vocab, int positions,
                     Activation activation) {
  ModelConfig c;
  c.family = Family::Gpt;
  c.name = name;
  c.n_layers = layers;
  c.d_model = d;
  c.n_heads = c.n_kv_heads = heads;
  c.head_dim = d / heads;
  c.d_ffn = ffn;
  c.vocab_size = vocab;
  c.max_positions = positions;
  c.norm = NormKind::LayerNorm;
  c.activation = activation;
  c.position = PositionKind::Learned;
  c.tied_embeddings = true;
  c.bias = true;
  return c;
}

ModelConfig llama3(const char* name, int layers, int d, int heads, int ffn, int positions) {
  ModelConfig c;
  c.family = Family::Llama;
  c.name = name;
  c.n_layers = layers;
  c.d_model = d;
  c.n_heads = heads;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.d_ffn = ffn;
  c.vocab_size = 128256;
  c.max_positions = positions;
  c.rope_theta = 500000.f;
  c.tied_embeddings = false;
  return c;
}

}  // namespace

std::vector<std::string> shape_names() {
  return {"gpt3-175b", "opt-175b", "bloom-176b", "llama3-70b", "llama3-405b"};
}

ModelConfig named_shape(const std::string& name) {
  // GPT-3 (Brown et al. 2020, table 2.1) with GPT-2's vocabulary.
  if (name == "gpt3-175b")
    return gpt_like("gpt3-175b", 96, 12288, 96, 49152, 50257, 2048, Activation::Gelu);
  // OPT-175B (Zhang et al. 2022): ReLU, learned positions with OPT's offset of 2.
  if (name == "opt-175b")
    return gpt_like("opt-175b", 96, 12288, 96, 49152, 50272, 2050, Activation::Relu);
  if (name == "bloom-176b") {
    // BLOOM (BigScience 2022): 70 layers, 112 heads of 128, a 250880-word
    // vocabulary; ALiBi has no position table, so none is counted (RoPE's
    // small [positions, head_dim] table stands in for it).
    ModelConfig c = gpt_like("bloom-176b", 70, 14336, 112, 57344, 250880, 2048, Activation::Gelu);
    c.position = PositionKind::Rope;
    return c;
  }
  // Llama 3 70B and Llama 3.1 405B (Meta's config.json files).
  if (name == "llama3-70b") return llama3("llama3-70b", 80, 8192, 64, 28672, 8192);
  if (name == "llama3-405b") return llama3("llama3-405b", 126, 16384, 128, 53248, 131072);
  std::string known;
  for (const std::string& n : shape_names()) known += (known.empty() ? "" : ", ") + n;
  fail("--shape: unknown model shape '", name, "' (known: ", known, ")");
}

}  // namespace sptrain::plan
