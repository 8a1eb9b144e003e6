// Hugging Face safetensors folder -> sptrain model file.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "sptrain/convert/convert.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/fingerprint.hpp"
#include "sptrain/io/safetensors.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::convert {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
  return out + "]";
}

// Typed access to config.json; a null value counts as absent.
class Config {
 public:
  Config(const json& j, std::string path) : j_(j), path_(std::move(path)) {}
  bool has(const std::string& k) const { return j_.contains(k) && !j_[k].is_null(); }
  int64_t get_int(const std::string& k) const {
    if (!has(k)) fail(path_, ": missing key '", k, "'");
    if (!j_[k].is_number_integer()) fail(path_, ": '", k, "' must be an integer, not ", j_[k].dump());
    if (j_[k].is_number_unsigned() && j_[k].get<uint64_t>() > uint64_t(INT64_MAX))
      fail(path_, ": '", k, "' = ", j_[k].dump(), " is too large");
    int64_t v = j_[k].get<int64_t>();
    if (v <= 0) fail(path_, ": '", k, "' = ", v, " must be positive");
    return v;
  }
  int64_t get_int(const std::string& k, int64_t def) const { return has(k) ? get_int(k) : def; }
  double get_double(const std::string& k, double def) const {
    if (!has(k)) return def;
    if (!j_[k].is_number()) fail(path_, ": '", k, "' must be a number, not ", j_[k].dump());
    return j_[k].get<double>();
  }
  bool get_bool(const std::string& k, bool def) const {
    if (!has(k)) return def;
    if (!j_[k].is_boolean()) fail(path_, ": '", k, "' must be true or false, not ", j_[k].dump());
    return j_[k].get<bool>();
  }
  std::string get_string(const std::string& k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j_[k].is_string()) fail(path_, ": '", k, "' must be a string, not ", j_[k].dump());
    return j_[k].get<std::string>();
  }
  // A token id key that may be an integer or a list of them (the first counts).
  int32_t token_id(const std::string& k) const {
    if (!has(k)) return -1;
    const json& v = j_[k].is_array() && !j_[k].empty() ? j_[k][0] : j_[k];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX ||
        (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT32_MAX)))
      return -1;
    return int32_t(v.get<int64_t>());
  }
  const json& raw() const { return j_; }
  const std::string& path() const { return path_; }

 private:
  const json& j_;
  std::string path_;
};

// Where a dataset of the model file comes from: a source tensor of the given
// PyTorch shape, optionally transposed (GPT-2's Conv1D stores [in, out]),
// then rows [row0, row0 + n) of that.
struct Mapped {
  std::string tensor;
  std::vector<int64_t> src_shape;
  bool transpose = false;
  int64_t row0 = 0;
  std::string keys;  // config keys the expected shape comes from
};

// ---- families ----

struct Family {
  ModelHeader header;
  std::function<Mapped(const std::string& dataset, const std::vector<int64_t>& shape)> map;
  std::function<bool(const std::string& tensor)> ignorable;  // buffers that are not weights
};

// "layers/12/attn/q/weight" -> (12, "attn/q/weight")
std::pair<std::string, std::string> split_layer(const std::string& dataset) {
  size_t slash = dataset.find('/', 7);
  return {dataset.substr(7, slash - 7), dataset.substr(slash + 1)};
}


bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Family llama_family(const Config& c, const safetensors::Folder& f, const std::string& arch) {
  Family fam;
  ModelHeader& h = fam.header;
  h.family = "llama";
  h.n_layers = c.get_int("num_hidden_layers");
  h.d_model = c.get_int("hidden_size");
  h.d_ffn = c.get_int("intermediate_size");
  h.n_heads = c.get_int("num_attention_heads");
  h.n_kv_heads = c.get_int("num_key_value_heads", h.n_heads);
  if (!c.has("head_dim") && h.d_model % h.n_heads != 0)
    fail(c.path(), ": hidden_size ", h.d_model, " is not a multiple of num_attention_heads ", h.n_heads);
  h.head_dim = c.get_int("head_dim", h.d_model / h.n_heads);
  if (h.n_heads % h.n_kv_heads != 0)
    fail(c.path(), ": num_attention_heads ", h.n_heads, " is not a multiple of num_key_value_heads ",
         h.n_kv_heads);
  h.vocab_size = c.get_int("vocab_size");
  h.max_positions = c.get_int("max_position_embeddings");
  h.norm = "rmsnorm";
  h.norm_eps = c.get_double("rms_norm_eps", 1e-6);
  std::string act = c.get_string("hidden_act", "silu");
  if (act != "silu") fail(c.path(), ": hidden_act = '", act, "' is not supported for ", arch, " (only silu)");
  h.activation = "swiglu";
  h.position = "rope";
  h.rope_theta = c.get_double("rope_theta", 10000.0);
  if (c.has("rope_scaling"))
    fail(c.path(), ": rope_scaling = ", c.raw()["rope_scaling"].dump(), " is not supported");
  if (c.has("rope_parameters")) {  // newer transformers nest rope_theta here
    const json& rp = c.raw()["rope_parameters"];
    if (!rp.is_object()) fail(c.path(), ": rope_parameters must be an object, not ", rp.dump());
    if (rp.contains("rope_type") && !rp["rope_type"].is_string())
      fail(c.path(), ": rope_parameters.rope_type must be a string, not ", rp["rope_type"].dump());
    std::string type = rp.value("rope_type", "default");
    if (type != "default") fail(c.path(), ": rope_parameters.rope_type = '", type, "' is not supported");
    if (rp.contains("rope_theta") && rp["rope_theta"].is_number()) h.rope_theta = rp["rope_theta"].get<double>();
  }
  if (c.get_bool("attention_bias", false)) fail(c.path(), ": attention_bias = true is not supported");
  if (c.get_bool("mlp_bias", false)) fail(c.path(), ": mlp_bias = true is not supported");
  if (c.has("sliding_window") && c.get_int("sliding_window") < h.max_positions) {
    // Sequences up to the window are exact without windowed attention.
    h.max_positions = c.get_int("sliding_window");
  }
  h.bias = false;
  h.tied_embeddings = c.get_bool("tie_word_embeddings", false);
  h.source_keys = {{"n_layers", "num_hidden_layers"},      {"d_model", "hidden_size"},
                   {"d_ffn", "intermediate_size"},         {"n_heads", "num_attention_heads"},
                   {"n_kv_heads", "num_key_value_heads"},  {"head_dim", "head_dim"},
                   {"vocab_size", "vocab_size"},           {"max_positions", "max_position_embeddings"},
                   {"norm_eps", "rms_norm_eps"},           {"rope_theta", "rope_theta"}};
  if (!h.tied_embeddings && !f.find("lm_head.weight"))
    fail(f.dir(), ": missing tensor 'lm_head.weight' (config.json says tie_word_embeddings = false)");

  fam.map = [h](const std::string& d, const std::vector<int64_t>& shape) -> Mapped {
    if (d == "embeddings/tokens") return {"model.embed_tokens.weight", shape, false, 0, "vocab_size, hidden_size"};
    if (d == "final_norm/weight") return {"model.norm.weight", shape, false, 0, "hidden_size"};
    if (d == "lm_head/weight") return {"lm_head.weight", shape, false, 0, "vocab_size, hidden_size"};
    auto [i, part] = split_layer(d);
    std::string p = "model.layers." + i + ".";
    if (part == "attn_norm/weight") return {p + "input_layernorm.weight", shape, false, 0, "hidden_size"};
    if (part == "mlp_norm/weight") return {p + "post_attention_layernorm.weight", shape, false, 0, "hidden_size"};
    if (part == "attn/q/weight")
      return {p + "self_attn.q_proj.weight", shape, false, 0, "num_attention_heads x head_dim, hidden_size"};
    if (part == "attn/k/weight")
      return {p + "self_attn.k_proj.weight", shape, false, 0, "num_key_value_heads x head_dim, hidden_size"};
    if (part == "attn/v/weight")
      return {p + "self_attn.v_proj.weight", shape, false, 0, "num_key_value_heads x head_dim, hidden_size"};
    if (part == "attn/o/weight")
      return {p + "self_attn.o_proj.weight", shape, false, 0, "hidden_size, num_attention_heads x head_dim"};
    if (part == "mlp/gate/weight") return {p + "mlp.gate_proj.weight", shape, false, 0, "intermediate_size, hidden_size"};
    if (part == "mlp/up/weight") return {p + "mlp.up_proj.weight", shape, false, 0, "intermediate_size, hidden_size"};
    if (part == "mlp/down/weight") return {p + "mlp.down_proj.weight", shape, false, 0, "hidden_size, intermediate_size"};
    SPT_ASSERT(false);
  };
  fam.ignorable = [h](const std::string& t) {
    return ends_with(t, ".rotary_emb.inv_freq") || (h.tied_embeddings && t == "lm_head.weight");
  };
  return fam;
}

std::string gpt_activation(const Config& c, const std::string& def) {
  std::string a = c.get_string("activation_function", def);
  if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast") return "gelu_tanh";
  if (a == "gelu" || a == "relu") return a;
  fail(c.path(), ": activation_function = '", a, "' is not supported (gelu, gelu_new, relu)");
}

Family opt_family(const Config& c, const safetensors::Folder& f) {
  Family fam;
  ModelHeader& h = fam.header;
  h.family = "gpt";
  h.n_layers = c.get_int("num_hidden_layers");
  h.d_model = c.get_int("hidden_size");
  h.d_ffn = c.get_int("ffn_dim");
  h.n_heads = c.get_int("num_attention_heads");
  h.n_kv_heads = h.n_heads;
  if (h.d_model % h.n_heads != 0)
    fail(c.path(), ": hidden_size ", h.d_model, " is not a multiple of num_attention_heads ", h.n_heads);
  h.head_dim = h.d_model / h.n_heads;
  h.vocab_size = c.get_int("vocab_size");
  h.max_positions = c.get_int("max_position_embeddings");
  if (!c.get_bool("do_layer_norm_before", true))
    fail(c.path(), ": do_layer_norm_before = false (post-norm OPT, e.g. opt-350m) is not supported");
  if (c.get_int("word_embed_proj_dim", h.d_model) != h.d_model)
    fail(c.path(), ": word_embed_proj_dim = ", c.get_int("word_embed_proj_dim"),
         " differs from hidden_size (project_in/project_out) and is not supported");
  if (!c.get_bool("enable_bias", true)) fail(c.path(), ": enable_bias = false is not supported");
  if (!c.get_bool("layer_norm_elementwise_affine", true))
    fail(c.path(), ": layer_norm_elementwise_affine = false is not supported");
  h.norm = "layernorm";
  h.norm_eps = 1e-5;  // OPT's LayerNorm default; config.json does not record it
  h.source_keys = {{"n_layers", "num_hidden_layers"},   {"d_model", "hidden_size"},
                   {"d_ffn", "ffn_dim"},                {"n_heads", "num_attention_heads"},
                   {"n_kv_heads", "num_attention_heads"}, {"vocab_size", "vocab_size"},
                   {"max_positions", "max_position_embeddings"}};
  h.activation = gpt_activation(c, "relu");
  h.position = "learned";
  h.bias = true;
  h.tied_embeddings = c.get_bool("tie_word_embeddings", true);
  std::string p = f.find("model.decoder.embed_tokens.weight") ? "model.decoder." : "decoder.";
  if (!h.tied_embeddings && !f.find("lm_head.weight"))
    fail(f.dir(), ": missing tensor 'lm_head.weight' (config.json says tie_word_embeddings = false)");

  fam.map = [h, p](const std::string& d, const std::vector<int64_t>& shape) -> Mapped {
    if (d == "embeddings/tokens") return {p + "embed_tokens.weight", shape, false, 0, "vocab_size, hidden_size"};
    if (d == "embeddings/positions")  // OPT's learned positions start at row 2
      return {p + "embed_positions.weight", {shape[0] + 2, shape[1]}, false, 2,
              "max_position_embeddings + 2, hidden_size"};
    if (d == "lm_head/weight") return {"lm_head.weight", shape, false, 0, "vocab_size, hidden_size"};
    if (d.rfind("final_norm/", 0) == 0)
      return {p + "final_layer_norm." + d.substr(11), shape, false, 0, "hidden_size"};
    auto [i, part] = split_layer(d);
    std::string l = p + "layers." + i + ".";
    std::string wb = part.substr(part.rfind('/') + 1);  // weight | bias
    std::string module = part.substr(0, part.rfind('/'));
    if (module == "attn_norm") return {l + "self_attn_layer_norm." + wb, shape, false, 0, "hidden_size"};
    if (module == "mlp_norm") return {l + "final_layer_norm." + wb, shape, false, 0, "hidden_size"};
    if (module == "attn/q") return {l + "self_attn.q_proj." + wb, shape, false, 0, "hidden_size"};
    if (module == "attn/k") return {l + "self_attn.k_proj." + wb, shape, false, 0, "hidden_size"};
    if (module == "attn/v") return {l + "self_attn.v_proj." + wb, shape, false, 0, "hidden_size"};
    if (module == "attn/o") return {l + "self_attn.out_proj." + wb, shape, false, 0, "hidden_size"};
    if (module == "mlp/up") return {l + "fc1." + wb, shape, false, 0, "ffn_dim, hidden_size"};
    if (module == "mlp/down") return {l + "fc2." + wb, shape, false, 0, "hidden_size, ffn_dim"};
    SPT_ASSERT(false);
  };
  fam.ignorable = [h](const std::string& t) { return h.tied_embeddings && t == "lm_head.weight"; };
  return fam;
}

Family gpt2_family(const Config& c, const safetensors::Folder& f) {
  Family fam;
  ModelHeader& h = fam.header;
  h.family = "gpt";
  h.n_layers = c.get_int("n_layer");
  h.d_model = c.get_int("n_embd");
  // n_inner defaults to 4 x n_embd; n_embd is range-checked later (model_config_of),
  // so the default is taken of a bounded value: a huge n_embd must not overflow here.
  h.d_ffn = c.has("n_inner") ? c.get_int("n_inner") : 4 * std::min(h.d_model, kMaxWidth + 1);
  h.n_heads = c.get_int("n_head");
  h.n_kv_heads = h.n_heads;
  if (h.d_model % h.n_heads != 0)
    fail(c.path(), ": n_embd ", h.d_model, " is not a multiple of n_head ", h.n_heads);
  h.head_dim = h.d_model / h.n_heads;
  h.vocab_size = c.get_int("vocab_size");
  h.max_positions = c.has("n_ctx") && !c.has("n_positions") ? c.get_int("n_ctx") : c.get_int("n_positions");
  if (!c.get_bool("scale_attn_weights", true))
    fail(c.path(), ": scale_attn_weights = false is not supported");
  if (c.get_bool("scale_attn_by_inverse_layer_idx", false))
    fail(c.path(), ": scale_attn_by_inverse_layer_idx = true is not supported");
  h.norm = "layernorm";
  h.norm_eps = c.get_double("layer_norm_epsilon", 1e-5);
  h.source_keys = {{"n_layers", "n_layer"},        {"d_model", "n_embd"},
                   {"d_ffn", "n_inner"},           {"n_heads", "n_head"},
                   {"n_kv_heads", "n_head"},       {"vocab_size", "vocab_size"},
                   {"max_positions", c.has("n_ctx") && !c.has("n_positions") ? "n_ctx" : "n_positions"},
                   {"norm_eps", "layer_norm_epsilon"}};
  h.activation = gpt_activation(c, "gelu_new");
  h.position = "learned";
  h.bias = true;
  h.tied_embeddings = c.get_bool("tie_word_embeddings", true);
  std::string p = f.find("transformer.wte.weight") ? "transformer." : "";
  if (!h.tied_embeddings && !f.find("lm_head.weight"))
    fail(f.dir(), ": missing tensor 'lm_head.weight' (config.json says tie_word_embeddings = false)");

  const int64_t d = h.d_model, ffn = h.d_ffn;
  fam.map = [h, p, d, ffn](const std::string& ds, const std::vector<int64_t>& shape) -> Mapped {
    if (ds == "embeddings/tokens") return {p + "wte.weight", shape, false, 0, "vocab_size, n_embd"};
    if (ds == "embeddings/positions") return {p + "wpe.weight", shape, false, 0, "n_positions, n_embd"};
    if (ds == "lm_head/weight") return {"lm_head.weight", shape, false, 0, "vocab_size, n_embd"};
    if (ds.rfind("final_norm/", 0) == 0) return {p + "ln_f." + ds.substr(11), shape, false, 0, "n_embd"};
    auto [i, part] = split_layer(ds);
    std::string l = p + "h." + i + ".";
    std::string wb = part.substr(part.rfind('/') + 1);
    std::string module = part.substr(0, part.rfind('/'));
    const bool w = wb == "weight";
    if (module == "attn_norm") return {l + "ln_1." + wb, shape, false, 0, "n_embd"};
    if (module == "mlp_norm") return {l + "ln_2." + wb, shape, false, 0, "n_embd"};
    // Conv1D weights are [in, out]: transposed to [out, in]. The fused
    // c_attn's outputs are q, k, v one after the other.
    if (module == "attn/q" || module == "attn/k" || module == "attn/v") {
      int64_t row0 = module == "attn/q" ? 0 : module == "attn/k" ? d : 2 * d;
      return {l + "attn.c_attn." + wb, w ? std::vector<int64_t>{d, 3 * d} : std::vector<int64_t>{3 * d},
              w, row0, "n_embd, 3 x n_embd"};
    }
    if (module == "attn/o")
      return {l + "attn.c_proj." + wb, w ? std::vector<int64_t>{d, d} : std::vector<int64_t>{d}, w, 0,
              "n_embd, n_embd"};
    if (module == "mlp/up")
      return {l + "mlp.c_fc." + wb, w ? std::vector<int64_t>{d, ffn} : std::vector<int64_t>{ffn}, w, 0,
              "n_embd, n_inner"};
    if (module == "mlp/down")
      return {l + "mlp.c_proj." + wb, w ? std::vector<int64_t>{ffn, d} : std::vector<int64_t>{d}, w, 0,
              "n_inner, n_embd"};
    SPT_ASSERT(false);
  };
  fam.ignorable = [h](const std::string& t) {
    return ends_with(t, ".attn.bias") || ends_with(t, ".attn.masked_bias") ||
           (h.tied_embeddings && t == "lm_head.weight");
  };
  return fam;
}

// The number of transformer layers the folder has tensors for: one more than
// the highest N of the names with a ".layers.N." or "h.N." part (Llama and OPT,
// GPT-2); 0 when there are none.
int64_t count_layers(const safetensors::Folder& folder) {
  int64_t layers = 0;
  for (const auto& entry : folder.tensors()) {
    const std::string& name = entry.first;
    for (const char* key : {"layers.", "h."}) {
      size_t at = name.find(key);
      while (at != std::string::npos && at != 0 && name[at - 1] != '.') at = name.find(key, at + 1);
      if (at == std::string::npos) continue;
      const size_t begin = at + std::strlen(key), dot = name.find('.', begin);
      const std::string digits = name.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
      if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
        continue;
      layers = std::max<int64_t>(layers, std::stoll(digits) + 1);
    }
  }
  return layers;
}

}  // namespace

ConvertResult convert_safetensors(const std::string& dir, const std::string& out, DType dtype) {
  safetensors::Folder folder = safetensors::Folder::open(dir);
  const std::string config_path = (fs::path(dir) / "config.json").string();
  Config c(folder.config(), config_path);
  std::string arch;
  if (c.has("architectures") && c.raw()["architectures"].is_array() && !c.raw()["architectures"].empty() &&
      c.raw()["architectures"][0].is_string())
    arch = c.raw()["architectures"][0].get<std::string>();
  else
    fail(config_path, ": missing 'architectures' (a list whose first entry names the model class)");

  Family fam;
  if (arch == "LlamaForCausalLM" || arch == "MistralForCausalLM") {
    fam = llama_family(c, folder, arch);
  } else if (arch == "OPTForCausalLM") {
    fam = opt_family(c, folder);
  } else if (arch == "GPT2LMHeadModel") {
    fam = gpt2_family(c, folder);
  } else {
    fail(config_path, ": architectures = '", arch,
         "' is not supported (LlamaForCausalLM, MistralForCausalLM, OPTForCausalLM, GPT2LMHeadModel)");
  }
  ModelHeader& h = fam.header;
  h.name = c.get_string("_name_or_path", "");
  if (h.name.empty()) h.name = fs::path(dir).lexically_normal().filename().string();
  if (h.name.empty()) h.name = fs::absolute(dir).parent_path().filename().string();

  model_config_of(h, config_path);  // what the loader would reject is not written
  const int64_t layers = count_layers(folder);
  if (layers < h.n_layers)  // more layers than that: "unexpected tensor" below
    fail(config_path, ": the model has ", h.n_layers, " layers but ", dir, " has tensors of only ", layers);

  // Plan every dataset, checking its tensor, before writing anything.
  std::set<std::string> used;
  std::vector<WeightJob> jobs;
  for (const auto& dataset : expected_datasets(h)) {
    const std::string& name = dataset.first;
    const Shape shape = dataset.second;  // a copy the job keeps
    std::vector<int64_t> dims(shape.dims.begin(), shape.dims.begin() + shape.rank);
    Mapped m = fam.map(name, dims);
    const safetensors::TensorInfo* t = folder.find(m.tensor);
    if (!t) fail(dir, ": missing tensor '", m.tensor, "' (needed for ", name, ")");
    if (t->shape != m.src_shape)
      fail(folder.file_of(*t), ": tensor '", m.tensor, "' has shape ", shape_str(t->shape), " but ",
           shape_str(m.src_shape), " is expected from config.json (", m.keys, ")");
    if (t->dtype != "F32" && t->dtype != "F16" && t->dtype != "BF16")
      fail(folder.file_of(*t), ": tensor '", m.tensor, "' has dtype ", t->dtype,
           "; only F32, F16 and BF16 weights are supported");
    used.insert(m.tensor);
    uint64_t share = t->nbytes * uint64_t(shape.numel()) / uint64_t(std::max<int64_t>(t->numel, 1));
    jobs.push_back({name, shape, share, [&folder, t, m, shape](float* dst) {
                      const int64_t rows = shape[0], cols = shape.rank == 2 ? shape[1] : 1;
                      if (!m.transpose && t->numel == shape.numel()) {  // the whole tensor
                        folder.read_f32(*t, dst);
                        return;
                      }
                      std::vector<float> src(size_t(t->numel));
                      folder.read_f32(*t, src.data());
                      if (!m.transpose) {
                        std::memcpy(dst, src.data() + m.row0 * cols, size_t(rows * cols) * sizeof(float));
                        return;
                      }
                      // Source [in, out]; dst row r is source column row0 + r.
                      const int64_t src_cols = m.src_shape[1];
                      for (int64_t r = 0; r < rows; ++r)
                        for (int64_t k = 0; k < cols; ++k)
                          dst[r * cols + k] = src[size_t(k * src_cols + m.row0 + r)];
                    }});
  }
  for (const auto& [name, t] : folder.tensors()) {
    if (used.count(name) || fam.ignorable(name)) continue;
    fail(folder.file_of(t), ": unexpected tensor '", name,
         "' (does config.json match the checkpoint? e.g. the number of layers)");
  }

  // The tokenizer, with special ids from config.json where it names none.
  Tokenizer tokenizer = Tokenizer::from_hf_folder(dir);
  TokenizerSpec spec = tokenizer.spec();
  bool changed = false;
  for (auto [key, id] : {std::pair<const char*, int32_t*>{"bos_token_id", &spec.bos_id},
                         {"eos_token_id", &spec.eos_id},
                         {"pad_token_id", &spec.pad_id}}) {
    int32_t v = c.token_id(key);
    if (*id < 0 && v >= 0 && v < int32_t(spec.tokens.size())) {
      *id = v;
      changed = true;
    }
  }
  if (changed) tokenizer = Tokenizer(std::move(spec));

  Fingerprint header_hash;
  header_hash.update(folder.config_text());
  for (const auto& shard : folder.shards()) {
    uint64_t len = shard->header_bytes() - 8;
    header_hash.update(&len, 8);
    header_hash.update(shard->header_json());
  }
  SourceInfo source{dir, "safetensors", header_hash.hex()};

  ConvertResult r;
  r.header = h;
  r.stats = write_model_file(out, dtype, h, jobs, tokenizer, source);
  return r;
}

}  // namespace sptrain::convert
