#include "sptrain/prompt/peft.hpp"

#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "sptrain/core/dtype.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/core/json.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/io/safetensors.hpp"
#include "sptrain/io/safetensors_writer.hpp"

namespace sptrain {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {
// PEFT's config file name and the tensor name its prompt-tuning state dict uses.
constexpr const char* kPeftConfig = "adapter_config.json";
constexpr const char* kPeftTensor = "prompt_embeddings";
// adapter_config.json is under a kilobyte; this only stops a wrong path from reading a huge file.
constexpr uint64_t kMaxConfigBytes = 16u << 20;

// [a, b, c] -> [b, a, c]: sptrain's prefix [layers, P, C] and PEFT's rows
// [P, layers * C] are each other's leading axes swapped.
std::vector<float> swap_leading_axes(const float* x, int64_t a, int64_t b, int64_t c) {
  std::vector<float> y(size_t(a * b * c));
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      std::memcpy(y.data() + (j * a + i) * c, x + (i * b + j) * c, size_t(c) * sizeof(float));
  return y;
}
}  // namespace

namespace {
// The tensor `prompt_embeddings` of a weights file as f32 [rows, cols] in
// p.values, with the model fingerprint and step sptrain records.
StoredPrompt read_peft_tensor(const std::string& path) {
  auto shard = safetensors::Shard::open(path);
  const safetensors::TensorInfo* t = nullptr;
  std::string names;
  for (const auto& info : shard->tensors()) {
    if (info.name == kPeftTensor) t = &info;
    names += (names.empty() ? "" : ", ") + info.name;
  }
  if (!t)
    fail(path, ": no tensor '", kPeftTensor,
         "' (a PEFT prompt-tuning or prefix-tuning adapter has it); the file has: ",
         names.empty() ? "no tensors" : names);
  SPT_CHECK(t->shape.size() == 2 && t->shape[0] >= 1 && t->shape[1] >= 1, path, ": '", kPeftTensor,
            "' has ", t->shape.size(),
            " dimensions; expected [P, d_model] (or, prefix tuning, [P, layers x 2 x token_dim])");
  StoredPrompt p;
  p.path = path;
  p.format = "peft";
  p.rows = t->shape[0];
  p.cols = t->shape[1];
  const size_t n = size_t(t->numel);
  p.values.resize(n);
  if (t->dtype == "F32") {
    shard->read(t->file_offset, t->nbytes, p.values.data(), kPeftTensor);
  } else if (t->dtype == "BF16" || t->dtype == "F16") {
    std::vector<uint16_t> half(n);
    shard->read(t->file_offset, t->nbytes, half.data(), kPeftTensor);
    for (size_t i = 0; i < n; ++i)
      p.values[i] = t->dtype == "BF16" ? bf16_to_f32(half[i]) : f16_to_f32(half[i]);
  } else {
    fail(path, ": '", kPeftTensor, "' is ", t->dtype, "; F32, BF16 or F16 expected");
  }
  // sptrain records the model's fingerprint and the step in the metadata;
  // adapters from elsewhere have neither.
  const json h = json::parse(shard->header_json(), nullptr, false);
  if (h.is_object() && h.contains("__metadata__") && h["__metadata__"].is_object()) {
    const json& m = h["__metadata__"];
    if (m.contains("sptrain_model_fingerprint") && m["sptrain_model_fingerprint"].is_string())
      p.model_fingerprint = m["sptrain_model_fingerprint"].get<std::string>();
    if (m.contains("sptrain_step") && m["sptrain_step"].is_string()) {
      try {
        p.step = std::stoll(m["sptrain_step"].get<std::string>());
      } catch (const std::exception&) {
        p.step = -1;
      }
    }
  }
  return p;
}

// Larger than any model's layers, heads or width, small enough that their
// products cannot overflow.
constexpr int64_t kMaxPeftDim = int64_t(1) << 24;

// Reads the tensor of p (read_peft_tensor) as the adapter_config.json at
// config_path says: a PROMPT_TUNING prompt is checked against it, a
// PREFIX_TUNING one becomes a deep prompt.
void apply_peft_config(StoredPrompt& p, const std::string& config_path, const std::string& weights) {
  // parse_json: a number beyond a double and deep nesting are Errors naming the file too.
  const json c = parse_json(read_whole_file(config_path, kMaxConfigBytes, "PEFT adapter config"), config_path);
  SPT_CHECK(c.is_object(), config_path, ": not a JSON object");
  auto get_string = [&](const char* key) {
    return c.contains(key) && c[key].is_string() ? c[key].get<std::string>() : std::string();
  };
  auto get_int = [&](const char* key, int64_t fallback) {
    return c.contains(key) && c[key].is_number_integer() ? c[key].get<int64_t>() : fallback;
  };
  const std::string type = get_string("peft_type");
  SPT_CHECK(type == "PROMPT_TUNING" || type == "PREFIX_TUNING", config_path, ": peft_type is '", type,
            "'; only PROMPT_TUNING and PREFIX_TUNING adapters are soft prompts sptrain can use");
  const int64_t submodules = get_int("num_transformer_submodules", 1);
  SPT_CHECK(submodules == 1, config_path, ": num_transformer_submodules is ", submodules,
            " (an encoder-decoder prompt); sptrain's models are decoders (1)");
  if (type == "PROMPT_TUNING") {
    const int64_t virtual_tokens = get_int("num_virtual_tokens", p.rows);
    const int64_t token_dim = get_int("token_dim", p.cols);
    SPT_CHECK(virtual_tokens == p.rows && token_dim == p.cols, config_path,
              ": num_virtual_tokens ", virtual_tokens, " and token_dim ", token_dim,
              " disagree with '", kPeftTensor, "' [", p.rows, ", ", p.cols, "] in ", weights);
    return;
  }

  // PREFIX_TUNING. With prefix_projection PEFT computes the keys and values
  // with an MLP (PrefixEncoder.transform) that sptrain does not run.
  if (c.contains("prefix_projection") && !c["prefix_projection"].is_null()) {
    SPT_CHECK(c["prefix_projection"].is_boolean(), config_path, ": prefix_projection is ",
              c["prefix_projection"].dump(), "; true or false expected");
    SPT_CHECK(!c["prefix_projection"].get<bool>(), config_path,
              ": prefix_projection is true: PEFT computes this adapter's keys and values with its prefix "
              "MLP, which sptrain does not run; sptrain reads PREFIX_TUNING adapters with prefix_projection "
              "false only");
  }
  auto required = [&](const char* key) {
    SPT_CHECK(c.contains(key) && c[key].is_number_integer(), config_path, ": ", key,
              " is missing or not an integer (a PREFIX_TUNING adapter needs num_virtual_tokens, "
              "num_layers, token_dim and num_attention_heads to lay out its keys and values)");
    const int64_t v = c[key].get<int64_t>();
    SPT_CHECK(v >= 1 && v <= kMaxPeftDim, config_path, ": ", key, " is ", v, " (1 to ", kMaxPeftDim, ")");
    return v;
  };
  const int64_t virtual_tokens = required("num_virtual_tokens");
  const int64_t layers = required("num_layers");
  const int64_t token_dim = required("token_dim");
  const int64_t heads = required("num_attention_heads");
  SPT_CHECK(token_dim % heads == 0, config_path, ": token_dim ", token_dim,
            " is not a multiple of num_attention_heads ", heads, " (PEFT splits it into heads of token_dim / heads)");
  const int64_t width = layers * 2 * token_dim;
  SPT_CHECK(p.rows == virtual_tokens && p.cols == width, config_path, ": num_virtual_tokens ", virtual_tokens,
            ", num_layers ", layers, " and token_dim ", token_dim, " make '", kPeftTensor, "' [",
            virtual_tokens, ", ", layers, " x 2 x ", token_dim, " = ", width, "], but ", weights, " holds [",
            p.rows, ", ", p.cols, "]");
  // PEFT's get_prompt views the tensor as [batch, P, 2 * layers, heads,
  // token_dim / heads], permutes it to [2 * layers, batch, heads, P, head_dim]
  // and splits it in twos: layer l's keys are index 2l, its values 2l + 1.
  // So row p is, layer by layer, that layer's keys of every head then their
  // values: [p, l * 2 * token_dim + c] = prefix[l, p, c].
  const int64_t C = 2 * token_dim;
  p.prefix = swap_leading_axes(p.values.data(), p.rows, layers, C);
  p.prefix_layers = layers;
  p.prefix_cols = C;
  p.prefix_kv_heads = heads;
  p.cols = 0;
  p.values.clear();
}
}  // namespace

StoredPrompt read_peft_weights(const std::string& path) {
  StoredPrompt p = read_peft_tensor(path);
  // The config beside the weights says how to read them.
  std::error_code ec;
  const std::string config = (fs::path(path).parent_path() / kPeftConfig).string();
  if (fs::exists(config, ec)) apply_peft_config(p, config, path);
  return p;
}

StoredPrompt read_peft_folder(const std::string& dir) {
  const std::string weights = (fs::path(dir) / kPeftWeightsFile).string();
  std::error_code ec;
  if (!fs::exists(weights, ec))
    fail(dir, ": a folder without ", kPeftWeightsFile,
         " (only a PEFT prompt-tuning or prefix-tuning folder can be read as a prompt)");
  StoredPrompt p = read_peft_tensor(weights);
  const std::string config = (fs::path(dir) / kPeftConfig).string();
  if (!fs::exists(config, ec)) return p;
  apply_peft_config(p, config, weights);
  p.path = dir;
  return p;
}

ExportResult export_peft(const StoredPrompt& p, const std::string& out, const PeftModelInfo& model) {
  check_prompt_exportable(p);
  SPT_CHECK(model.num_layers >= 1 && model.num_attention_heads >= 1,
            "peft export: num_layers and num_attention_heads of the model are needed");
  const bool deep = p.deep();
  // A deep prompt: PEFT's PrefixEncoder (prefix_projection false) holds
  // [P, num_layers * 2 * token_dim], token_dim = kv heads x head_dim (PEFT's
  // _prepare_prompt_learning_config sets token_dim and num_attention_heads
  // from num_key_value_heads for grouped-query attention).
  const int64_t token_dim = deep ? int64_t(model.num_key_value_heads) * model.head_dim : p.cols;
  if (deep)
    SPT_CHECK(model.num_key_value_heads >= 1 && model.head_dim >= 1 && p.prefix_layers == model.num_layers &&
                  p.prefix_cols == 2 * token_dim,
              p.path, ": the deep prompt [", p.prefix_layers, ", ", p.rows, ", ", p.prefix_cols,
              "] does not fit the model's ", model.num_layers, " layers and 2 x ", model.num_key_value_heads,
              " kv heads x ", model.head_dim);
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    fail(out, ": exists and is not a folder (a PEFT adapter is a folder)");
  fs::create_directories(out, ec);
  if (ec) fail(out, ": cannot create the folder: ", ec.message());

  // PEFT's get_prompt views row p as [num_layers * 2, heads, head_dim] and
  // takes index 2l as layer l's keys and 2l + 1 as its values: row p is
  // prefix[0, p, :], prefix[1, p, :], ... (each [k heads | v heads]).
  std::vector<float> rows_of_layers;
  int64_t cols = p.cols;
  const float* values = p.values.data();
  if (deep) {
    cols = p.prefix_layers * p.prefix_cols;
    rows_of_layers = swap_leading_axes(p.prefix.data(), p.prefix_layers, p.rows, p.prefix_cols);
    values = rows_of_layers.data();
  }

  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (!p.model_fingerprint.empty()) metadata["sptrain_model_fingerprint"] = p.model_fingerprint;
  if (p.step >= 0) metadata["sptrain_step"] = std::to_string(p.step);
  const uint64_t nbytes = uint64_t(p.rows * cols) * 4;
  const std::string weights = (fs::path(out) / kPeftWeightsFile).string();
  safetensors::write_tensors(weights, {{kPeftTensor, "F32", {p.rows, cols}, values, nbytes}}, metadata);

  // The fields save_pretrained writes: those both configs share, in PEFT's
  // order, then PrefixTuningConfig's (filled in from the model's config, so
  // the heads are the kv heads) or PromptTuningConfig's.
  ordered_json c;
  c["task_type"] = "CAUSAL_LM";
  c["peft_type"] = deep ? "PREFIX_TUNING" : "PROMPT_TUNING";
  c["auto_mapping"] = nullptr;
  c["base_model_name_or_path"] = model.base_model_name_or_path;
  c["revision"] = nullptr;
  c["inference_mode"] = true;
  c["num_virtual_tokens"] = p.rows;
  c["token_dim"] = token_dim;
  c["num_transformer_submodules"] = 1;
  c["num_attention_heads"] = deep ? model.num_key_value_heads : model.num_attention_heads;
  c["num_layers"] = model.num_layers;
  c["modules_to_save"] = nullptr;
  if (deep) {
    c["encoder_hidden_size"] = token_dim;
    c["prefix_projection"] = false;
    c["init_weights"] = nullptr;
  } else {
    c["prompt_tuning_init"] = "RANDOM";
    c["prompt_tuning_init_text"] = nullptr;
    c["tokenizer_name_or_path"] = nullptr;
    c["tokenizer_kwargs"] = nullptr;
  }
  const std::string text = c.dump(2) + "\n";
  const std::string config = (fs::path(out) / kPeftConfig).string();
  write_file_atomically(config, {{text.data(), text.size()}});
  return ExportResult{{weights, config}, file_size_of(weights) + file_size_of(config), int64_t(nbytes)};
}

}  // namespace sptrain
