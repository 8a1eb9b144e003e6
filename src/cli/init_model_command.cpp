// `sptrain init-model`: a model file with seeded random weights, for tests
// and demos (its `random` attribute says so).
#include <cmath>
#include <cstdio>

#include "sptrain/cli/commands.hpp"
#include "sptrain/model/random_model.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain {

int run_init_model(const InitModelOptions& o) {
  SPT_CHECK(!o.out.empty(), "init-model: --out FILE is required");
  SPT_CHECK(o.family == "llama" || o.family == "gpt", "init-model: --family must be llama or gpt, got '",
            o.family, "'");
  SPT_CHECK(o.layers >= 1 && o.d_model >= 2 && o.heads >= 1,
            "init-model: --layers, --d-model and --heads must be positive");
  SPT_CHECK(o.head_dim > 0 || o.d_model % o.heads == 0, "init-model: --d-model (", o.d_model,
            ") must be a multiple of --heads (", o.heads, ") unless --head-dim is given");
  SPT_CHECK(o.head_dim >= 0, "init-model: --head-dim must be >= 0, got ", o.head_dim);
  // The default d_ffn is computed from d_model: bound it first (the rest is
  // checked with the whole configuration before anything is written).
  SPT_CHECK(o.d_model <= kMaxWidth, "init-model: --d-model must be <= ", kMaxWidth, ", got ", o.d_model);
  const Tokenizer tok = o.tokenizer.empty() ? Tokenizer::bytes_only() : Tokenizer::from_file(o.tokenizer);
  ModelConfig c;
  const bool gpt = o.family == "gpt";
  c.family = gpt ? Family::Gpt : Family::Llama;
  c.name = "random-" + o.family;
  c.n_layers = o.layers;
  c.d_model = o.d_model;
  c.n_heads = o.heads;
  c.n_kv_heads = o.kv_heads > 0 ? o.kv_heads : o.heads;
  SPT_CHECK(c.n_heads % c.n_kv_heads == 0, "init-model: --kv-heads (", c.n_kv_heads,
            ") must divide --heads (", c.n_heads, ")");
  c.head_dim = o.head_dim > 0 ? o.head_dim : o.d_model / o.heads;
  c.d_ffn = o.d_ffn > 0 ? o.d_ffn : (gpt ? 4 * o.d_model : (8 * o.d_model / 3 + 7) / 8 * 8);
  c.vocab_size = o.vocab > 0 ? o.vocab : tok.vocab_size();
  SPT_CHECK(c.vocab_size >= tok.vocab_size(), "init-model: --vocab (", c.vocab_size,
            ") is smaller than the tokenizer's ", tok.vocab_size(), " tokens");
  c.max_positions = o.max_positions;
  c.norm = gpt ? NormKind::LayerNorm : NormKind::RmsNorm;
  c.norm_eps = 1e-5f;
  const std::string act = o.activation.empty() ? (gpt ? "gelu" : "swiglu") : o.activation;
  if (act == "gelu") c.activation = Activation::Gelu;
  else if (act == "gelu_tanh") c.activation = Activation::GeluTanh;
  else if (act == "relu") c.activation = Activation::Relu;
  else if (act == "swiglu") c.activation = Activation::SwiGlu;
  else fail("init-model: --activation must be gelu, gelu_tanh, relu or swiglu, got '", act, "'");
  c.position = gpt ? PositionKind::Learned : PositionKind::Rope;
  c.rope_theta = 10000.f;
  c.tied_embeddings = gpt ? true : o.tied;
  c.bias = gpt;
  write_random_model(o.out, c, o.seed, o.std, [&](h5::File& f) { tok.save(f); });
  std::printf("wrote %s: random %s model, %d layers, d_model %d, %d heads (%d kv), ffn %d, vocab %d, "
              "%.2fM block parameters (seed %llu)\n",
              o.out.c_str(), o.family.c_str(), c.n_layers, c.d_model, c.n_heads, c.n_kv_heads,
              c.d_ffn, c.vocab_size, double(c.block_params()) / 1e6,
              static_cast<unsigned long long>(o.seed));
  return 0;
}

}  // namespace sptrain
