#pragma once
// Exporting a trained soft prompt (docs/export.md):
//   hdf5  the prompt alone with its metadata (model fingerprint, task, step...);
//         a deep prompt's keys and values as `prefix` [layers, P, 2 * kv * D]
//   npy   a NumPy array [P, d_model]: f32, or bf16 bits as uint16 ('<u2');
//         not for deep prompts
//   peft  a Hugging Face PEFT folder: adapter_model.safetensors + adapter_config.json;
//         PROMPT_TUNING (`prompt_embeddings` [P, d_model] F32) or, for a deep
//         prompt, PREFIX_TUNING (`prompt_embeddings` [P, layers * 2 * kv * D] F32)
// Every file is written to a temporary name and renamed, so an export is
// either complete or absent. Reading any of them back: stored_prompt.hpp.
#include <string>

#include "sptrain/prompt/hdf5_export.hpp"
#include "sptrain/prompt/peft.hpp"
#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain {

enum class ExportFormat { Hdf5, Npy, Peft };
ExportFormat parse_export_format(const std::string& name);  // hdf5 | npy | peft
const char* export_format_name(ExportFormat f);

// npy: dtype "f32" ('<f4', bit-exact) or "bf16" ('<u2' holding the bf16 bits,
// rounded to nearest even). Overwrites `out`. io/npy.hpp is the codec.
ExportResult export_npy(const StoredPrompt& prompt, const std::string& out, const std::string& dtype);

}  // namespace sptrain
