#include "sptrain/model/model_config.hpp"

namespace sptrain {

const char* family_name(Family f) { return f == Family::Gpt ? "gpt" : "llama"; }
const char* norm_name(NormKind n) { return n == NormKind::LayerNorm ? "layernorm" : "rmsnorm"; }
const char* position_name(PositionKind p) { return p == PositionKind::Learned ? "learned" : "rope"; }
const char* activation_name(Activation a) {
  switch (a) {
    case Activation::Gelu: return "gelu";
    case Activation::GeluTanh: return "gelu_tanh";
    case Activation::Relu: return "relu";
    case Activation::SwiGlu: return "swiglu";
  }
  return "?";
}

int64_t ModelConfig::block_params() const {
  const int64_t d = d_model;
  const int64_t attn = d * (q_dim() + 2 * kv_dim()) + int64_t(q_dim()) * d;
  const int64_t mlp = (activation == Activation::SwiGlu ? 3 : 2) * d * d_ffn;
  return int64_t(n_layers) * (attn + mlp);
}

namespace {
int positive_attr(const h5::File& f, const char* name) {
  const int64_t v = f.attr_int("/", name);
  if (v <= 0 || v > (int64_t(1) << 31) - 1)
    fail(f.path(), ": attribute '", name, "' must be a positive integer, got ", v);
  return int(v);
}
}  // namespace

ModelConfig read_model_config(const h5::File& f) {
  const std::string& p = f.path();
  if (!f.has_attr("/", "format") || f.attr_string("/", "format") != "sptrain-model")
    fail(p, ": not an sptrain model file (root attribute format != 'sptrain-model'); convert "
            "checkpoints with `sptrain convert`");
  const int64_t version = f.attr_int("/", "format_version");
  SPT_CHECK(version == 1, p, ": model format_version ", version, " is not supported (expected 1)");
  ModelConfig c;
  const std::string family = f.attr_string("/", "family");
  if (family == "gpt") {
    c.family = Family::Gpt;
  } else if (family == "llama") {
    c.family = Family::Llama;
  } else {
    fail(p, ": attribute 'family' is '", family, "', expected gpt or llama");
  }
  c.name = f.has_attr("/", "name") ? f.attr_string("/", "name") : "";
  c.n_layers = positive_attr(f, "n_layers");
  c.d_model = positive_attr(f, "d_model");
  c.n_heads = positive_attr(f, "n_heads");
  c.n_kv_heads = positive_attr(f, "n_kv_heads");
  c.head_dim = positive_attr(f, "head_dim");
  c.d_ffn = positive_attr(f, "d_ffn");
  c.vocab_size = positive_attr(f, "vocab_size");
  c.max_positions = positive_attr(f, "max_positions");
  const std::string norm = f.attr_string("/", "norm");
  if (norm == "layernorm") {
    c.norm = NormKind::LayerNorm;
  } else if (norm == "rmsnorm") {
    c.norm = NormKind::RmsNorm;
  } else {
    fail(p, ": attribute 'norm' is '", norm, "', expected layernorm or rmsnorm");
  }
  c.norm_eps = float(f.attr_double("/", "norm_eps"));
  const std::string act = f.attr_string("/", "activation");
  if (act == "gelu") {
    c.activation = Activation::Gelu;
  } else if (act == "gelu_tanh") {
    c.activation = Activation::GeluTanh;
  } else if (act == "relu") {
    c.activation = Activation::Relu;
  } else if (act == "swiglu") {
    c.activation = Activation::SwiGlu;
  } else {
    fail(p, ": attribute 'activation' is '", act, "', expected gelu, gelu_tanh, relu or swiglu");
  }
  const std::string pos = f.attr_string("/", "position");
  if (pos == "learned") {
    c.position = PositionKind::Learned;
  } else if (pos == "rope") {
    c.position = PositionKind::Rope;
    c.rope_theta = float(f.attr_double("/", "rope_theta"));
  } else {
    fail(p, ": attribute 'position' is '", pos, "', expected learned or rope");
  }
  c.tied_embeddings = f.attr_bool("/", "tied_embeddings");
  c.bias = f.attr_bool("/", "bias");
  c.dtype = f.has_attr("/", "dtype") ? f.attr_string("/", "dtype") : "f32";
  c.random = f.has_attr("/", "random") && f.attr_bool("/", "random");
  c.fingerprint = f.has_attr("/", "fingerprint") ? f.attr_string("/", "fingerprint") : "";
  SPT_CHECK(c.n_heads % c.n_kv_heads == 0, p, ": n_heads (", c.n_heads,
            ") is not a multiple of n_kv_heads (", c.n_kv_heads, ")");
  SPT_CHECK(c.position != PositionKind::Rope || c.head_dim % 2 == 0, p,
            ": RoPE needs an even head_dim, got ", c.head_dim);
  SPT_CHECK(c.norm_eps > 0, p, ": norm_eps must be > 0");
  return c;
}

void write_model_config(h5::File& f, const ModelConfig& c) {
  f.set_attr("/", "format", "sptrain-model");
  f.set_attr("/", "format_version", int64_t(1));
  f.set_attr("/", "family", family_name(c.family));
  f.set_attr("/", "name", c.name);
  f.set_attr("/", "n_layers", int64_t(c.n_layers));
  f.set_attr("/", "d_model", int64_t(c.d_model));
  f.set_attr("/", "n_heads", int64_t(c.n_heads));
  f.set_attr("/", "n_kv_heads", int64_t(c.n_kv_heads));
  f.set_attr("/", "head_dim", int64_t(c.head_dim));
  f.set_attr("/", "d_ffn", int64_t(c.d_ffn));
  f.set_attr("/", "vocab_size", int64_t(c.vocab_size));
  f.set_attr("/", "max_positions", int64_t(c.max_positions));
  f.set_attr("/", "norm", norm_name(c.norm));
  f.set_attr("/", "norm_eps", double(c.norm_eps));
  f.set_attr("/", "activation", activation_name(c.activation));
  f.set_attr("/", "position", position_name(c.position));
  f.set_attr("/", "rope_theta", double(c.rope_theta));
  f.set_attr("/", "tied_embeddings", c.tied_embeddings);
  f.set_attr("/", "bias", c.bias);
  f.set_attr("/", "dtype", c.dtype);
  f.set_attr("/", "random", c.random);
}

}  // namespace sptrain
