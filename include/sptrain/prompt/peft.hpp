#pragma once
// Hugging Face PEFT prompt-learning adapters: a folder with
// adapter_model.safetensors and adapter_config.json (docs/export.md).
//   PROMPT_TUNING   `prompt_embeddings` [P, d_model]: a prompt_tuning prompt
//   PREFIX_TUNING   `prompt_embeddings` [P, layers * 2 * kv_heads * head_dim]
//                   (prefix_projection false): a deep prompt, row p holding
//                   layer by layer the keys of every kv head then their values
#include <string>

#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain {

// What the PEFT adapter_config.json needs from the model file.
struct PeftModelInfo {
  int num_layers = 0;
  int num_attention_heads = 0;
  std::string base_model_name_or_path;
  // For a deep prompt (PREFIX_TUNING): the model's key/value heads and head size.
  int num_key_value_heads = 0;
  int head_dim = 0;
};

// Writes the folder `out` (created if needed): adapter_model.safetensors
// (F32) and adapter_config.json, each replaced atomically. A deep prompt is
// written as PREFIX_TUNING (needs num_key_value_heads and head_dim).
ExportResult export_peft(const StoredPrompt& prompt, const std::string& out, const PeftModelInfo& model);

// Reads a PEFT folder (its weights, read as adapter_config.json says when
// present) or an adapter_model.safetensors file (F32, BF16 or F16; with the
// adapter_config.json in its folder when there is one). Without a config the
// tensor is a PROMPT_TUNING prompt.
StoredPrompt read_peft_folder(const std::string& dir);
StoredPrompt read_peft_weights(const std::string& path);

// The weights file's name in the folder.
inline constexpr const char* kPeftWeightsFile = "adapter_model.safetensors";

}  // namespace sptrain
