#pragma once
// Hugging Face PEFT prompt-tuning adapters: a folder with
// adapter_model.safetensors (`prompt_embeddings` [P, d_model]) and
// adapter_config.json (docs/export.md).
#include <string>

#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain {

// What the PEFT adapter_config.json needs from the model file.
struct PeftModelInfo {
  int num_layers = 0;
  int num_attention_heads = 0;
  std::string base_model_name_or_path;
};

// Writes the folder `out` (created if needed): adapter_model.safetensors
// (F32) and adapter_config.json, each replaced atomically.
ExportResult export_peft(const StoredPrompt& prompt, const std::string& out, const PeftModelInfo& model);

// Reads a PEFT folder (its weights, checked against adapter_config.json when
// present) or an adapter_model.safetensors file (F32, BF16 or F16).
StoredPrompt read_peft_folder(const std::string& dir);
StoredPrompt read_peft_weights(const std::string& path);

// The weights file's name in the folder.
inline constexpr const char* kPeftWeightsFile = "adapter_model.safetensors";

}  // namespace sptrain
