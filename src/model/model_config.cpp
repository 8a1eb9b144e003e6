#include "sptrain/model/model_config.hpp"

#include <cmath>

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

void check_model_config(const ModelConfig& c, const std::string& where) {
  auto within = [&](int64_t v, int64_t max, const char* name) {
    SPT_CHECK(v >= 1 && v <= max, where, ": ", name, " = ", v, " is outside [1, ", max, "]");
  };
  within(c.n_layers, kMaxLayers, "n_layers");
  within(c.d_model, kMaxWidth, "d_model");
  within(c.n_heads, kMaxWidth, "n_heads");
  within(c.n_kv_heads, kMaxWidth, "n_kv_heads");
  within(c.head_dim, kMaxWidth, "head_dim");
  within(int64_t(c.n_heads) * c.head_dim, kMaxWidth, "n_heads x head_dim");
  within(c.d_ffn, kMaxWidth, "d_ffn");
  within(c.vocab_size, kMaxRows, "vocab_size");
  within(c.max_positions, kMaxRows, "max_positions");
  SPT_CHECK(c.n_heads % c.n_kv_heads == 0, where, ": n_heads (", c.n_heads,
            ") is not a multiple of n_kv_heads (", c.n_kv_heads, ")");
  SPT_CHECK(c.position != PositionKind::Rope || c.head_dim % 2 == 0, where,
            ": RoPE needs an even head_dim, got ", c.head_dim);
  SPT_CHECK(std::isfinite(c.norm_eps) && c.norm_eps > 0, where, ": norm_eps = ", c.norm_eps,
            " must be a finite number > 0");
  SPT_CHECK(c.position != PositionKind::Rope || (std::isfinite(c.rope_theta) && c.rope_theta > 0), where,
            ": rope_theta = ", c.rope_theta, " must be a finite number > 0");
  SPT_CHECK(!(c.bias && c.activation == Activation::SwiGlu), where,
            ": biases with the swiglu activation are not supported");
  SPT_CHECK(c.dtype == "f32" || c.dtype == "bf16", where, ": dtype '", c.dtype, "' (f32 or bf16)");
}

std::vector<std::pair<std::string, Shape>> model_datasets(const ModelConfig& c) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ffn = c.d_ffn;
  const bool norm_bias = c.bias && c.norm == NormKind::LayerNorm;
  std::vector<std::pair<std::string, Shape>> out;
  auto add = [&](std::string name, Shape s) { out.emplace_back(std::move(name), s); };
  auto linear = [&](const std::string& p, int64_t rows, int64_t cols) {
    add(p + "/weight", {rows, cols});
    if (c.bias) add(p + "/bias", {rows});
  };
  auto norm = [&](const std::string& p) {
    add(p + "/weight", {d});
    if (norm_bias) add(p + "/bias", {d});
  };
  add("embeddings/tokens", {c.vocab_size, d});
  if (c.position == PositionKind::Learned) add("embeddings/positions", {c.max_positions, d});
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string l = "layers/" + std::to_string(i);
    norm(l + "/attn_norm");
    linear(l + "/attn/q", q, d);
    linear(l + "/attn/k", kv, d);
    linear(l + "/attn/v", kv, d);
    linear(l + "/attn/o", d, q);
    norm(l + "/mlp_norm");
    if (c.activation == Activation::SwiGlu) add(l + "/mlp/gate/weight", {ffn, d});
    linear(l + "/mlp/up", ffn, d);
    linear(l + "/mlp/down", d, ffn);
  }
  norm("final_norm");
  if (!c.tied_embeddings) add("lm_head/weight", {c.vocab_size, d});
  return out;
}

namespace {

int int_attr(const h5::File& f, const char* name) {
  const int64_t v = f.attr_int("/", name);
  if (v <= 0 || v > (int64_t(1) << 31) - 1)
    fail(f.path(), ": attribute '", name, "' must be a positive integer, got ", v);
  return int(v);
}

// The file's layers and weights against the attributes (see read_model_config).
void check_model_datasets(const h5::File& f, const ModelConfig& c) {
  const std::string& p = f.path();
  if (!f.exists("layers/" + std::to_string(c.n_layers - 1)))
    fail(p, ": attribute 'n_layers' is ", c.n_layers, " but there is no group 'layers/", c.n_layers - 1, "'");
  if (f.exists("layers/" + std::to_string(c.n_layers)))
    fail(p, ": attribute 'n_layers' is ", c.n_layers, " but the file has a group 'layers/", c.n_layers,
         "' too");
  for (const auto& [name, shape] : model_datasets(c)) {
    if (!f.exists(name)) fail(p, ": missing dataset '", name, "' (the attributes call for it)");
    const h5::DatasetInfo info = f.info(name);
    if (!(info.shape == shape))
      fail(p, ": dataset '", name, "' has shape ", info.shape.to_string(), " but the attributes (d_model ",
           c.d_model, ", n_heads ", c.n_heads, ", n_kv_heads ", c.n_kv_heads, ", head_dim ", c.head_dim,
           ", d_ffn ", c.d_ffn, ", vocab_size ", c.vocab_size, ", max_positions ", c.max_positions,
           ") make it ", shape.to_string());
    if (info.dtype == DType::I32 || info.dtype == DType::I64)
      fail(p, ": dataset '", name, "' holds integers (", dtype_name(info.dtype),
           "); weights are floating point");
  }
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
  c.n_layers = int_attr(f, "n_layers");
  c.d_model = int_attr(f, "d_model");
  c.n_heads = int_attr(f, "n_heads");
  c.n_kv_heads = int_attr(f, "n_kv_heads");
  c.head_dim = int_attr(f, "head_dim");
  c.d_ffn = int_attr(f, "d_ffn");
  c.vocab_size = int_attr(f, "vocab_size");
  c.max_positions = int_attr(f, "max_positions");
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
  // The fingerprint ties prompts to this model: a model without one would
  // accept any prompt of its width.
  SPT_CHECK(f.has_attr("/", "fingerprint"), p, ": no 'fingerprint' attribute (every sptrain model has one; "
            "convert the model again with `sptrain convert`)");
  c.fingerprint = f.attr_string("/", "fingerprint");
  SPT_CHECK(c.fingerprint.size() == 16 && c.fingerprint.find_first_not_of("0123456789abcdef") == std::string::npos,
            p, ": attribute 'fingerprint' is '", c.fingerprint, "', expected 16 hex digits");
  check_model_config(c, p);
  check_model_datasets(f, c);
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
