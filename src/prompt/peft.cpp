#include "sptrain/prompt/peft.hpp"

#include <filesystem>
#include <map>

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
}  // namespace

StoredPrompt read_peft_weights(const std::string& path) {
  auto shard = safetensors::Shard::open(path);
  const safetensors::TensorInfo* t = nullptr;
  std::string names;
  for (const auto& info : shard->tensors()) {
    if (info.name == kPeftTensor) t = &info;
    names += (names.empty() ? "" : ", ") + info.name;
  }
  if (!t)
    fail(path, ": no tensor '", kPeftTensor, "' (a PEFT prompt-tuning adapter has it); the file has: ",
         names.empty() ? "no tensors" : names);
  SPT_CHECK(t->shape.size() == 2 && t->shape[0] >= 1 && t->shape[1] >= 1, path, ": '", kPeftTensor,
            "' has ", t->shape.size(), " dimensions; expected [P, d_model]");
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

StoredPrompt read_peft_folder(const std::string& dir) {
  const std::string weights = (fs::path(dir) / kPeftWeightsFile).string();
  std::error_code ec;
  if (!fs::exists(weights, ec))
    fail(dir, ": a folder without ", kPeftWeightsFile,
         " (only a PEFT prompt-tuning folder can be read as a prompt)");
  StoredPrompt p = read_peft_weights(weights);
  const std::string config_path = (fs::path(dir) / kPeftConfig).string();
  if (!fs::exists(config_path, ec)) return p;
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
  SPT_CHECK(type == "PROMPT_TUNING", config_path, ": peft_type is '", type,
            "'; only PROMPT_TUNING adapters are soft prompts sptrain can use");
  const int64_t submodules = get_int("num_transformer_submodules", 1);
  SPT_CHECK(submodules == 1, config_path, ": num_transformer_submodules is ", submodules,
            " (an encoder-decoder prompt); sptrain's models are decoders (1)");
  const int64_t virtual_tokens = get_int("num_virtual_tokens", p.rows);
  const int64_t token_dim = get_int("token_dim", p.cols);
  SPT_CHECK(virtual_tokens == p.rows && token_dim == p.cols, config_path,
            ": num_virtual_tokens ", virtual_tokens, " and token_dim ", token_dim,
            " disagree with '", kPeftTensor, "' [", p.rows, ", ", p.cols, "] in ", weights);
  p.path = dir;
  return p;
}

ExportResult export_peft(const StoredPrompt& p, const std::string& out, const PeftModelInfo& model) {
  check_prompt_exportable(p);
  SPT_CHECK(model.num_layers >= 1 && model.num_attention_heads >= 1,
            "peft export: num_layers and num_attention_heads of the model are needed");
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    fail(out, ": exists and is not a folder (a PEFT adapter is a folder)");
  fs::create_directories(out, ec);
  if (ec) fail(out, ": cannot create the folder: ", ec.message());

  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (!p.model_fingerprint.empty()) metadata["sptrain_model_fingerprint"] = p.model_fingerprint;
  if (p.step >= 0) metadata["sptrain_step"] = std::to_string(p.step);
  const uint64_t nbytes = uint64_t(p.values.size()) * 4;
  const std::string weights = (fs::path(out) / kPeftWeightsFile).string();
  safetensors::write_tensors(weights, {{kPeftTensor, "F32", {p.rows, p.cols}, p.values.data(), nbytes}},
                             metadata);

  // The fields of PEFT's PromptTuningConfig (what save_pretrained writes).
  ordered_json c;
  c["task_type"] = "CAUSAL_LM";
  c["peft_type"] = "PROMPT_TUNING";
  c["auto_mapping"] = nullptr;
  c["base_model_name_or_path"] = model.base_model_name_or_path;
  c["revision"] = nullptr;
  c["inference_mode"] = true;
  c["num_virtual_tokens"] = p.rows;
  c["token_dim"] = p.cols;
  c["num_transformer_submodules"] = 1;
  c["num_attention_heads"] = model.num_attention_heads;
  c["num_layers"] = model.num_layers;
  c["modules_to_save"] = nullptr;
  c["prompt_tuning_init"] = "RANDOM";
  c["prompt_tuning_init_text"] = nullptr;
  c["tokenizer_name_or_path"] = nullptr;
  c["tokenizer_kwargs"] = nullptr;
  const std::string text = c.dump(2) + "\n";
  const std::string config = (fs::path(out) / kPeftConfig).string();
  write_file_atomically(config, {{text.data(), text.size()}});
  return ExportResult{{weights, config}, file_size_of(weights) + file_size_of(config), int64_t(nbytes)};
}

}  // namespace sptrain
