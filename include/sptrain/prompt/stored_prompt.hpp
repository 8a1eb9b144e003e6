#pragma once
// A soft prompt as files store it, read back from any format (docs/export.md):
// a checkpoint, an hdf5 export, a .npy file, or a PEFT prompt-tuning or
// prefix-tuning folder.
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sptrain/config/config.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/model/model_config.hpp"

namespace sptrain {

// A soft prompt and what its file says about where it came from. Checkpoints
// and hdf5 exports carry all of it; npy files carry only the values; PEFT
// folders the values (and, when sptrain wrote them, the model fingerprint
// and step in the safetensors metadata).
// The metadata (PromptMetadata, io/checkpoint.hpp): model fingerprint ("" =
// unknown, not checked), model path, step (-1 = unknown), evaluation, task
// template and verbalizer (empty for npy and PEFT).
struct StoredPrompt : PromptMetadata {
  std::string path;
  std::string format;          // checkpoint | hdf5 | npy | peft
  std::vector<float> values;   // [rows, cols] fp32, row-major (input rows; empty for a deep prompt)
  int64_t rows = 0, cols = 0;  // P, d_model (cols 0 for a deep prompt)
  // A deep prompt (prefix tuning, P-tuning v2): every layer's keys and values
  // [prefix_layers, rows, prefix_cols], per row the keys (after RoPE) of the
  // kv heads then their values (PrefixShape's layout, prompt/prompt_parameter.hpp).
  std::vector<float> prefix;
  int64_t prefix_layers = 0, prefix_cols = 0;
  // The key/value heads the file records (a PEFT PREFIX_TUNING adapter's
  // num_attention_heads); 0 when it records none (sptrain's own files, whose
  // model fingerprint stands for the whole shape).
  int64_t prefix_kv_heads = 0;
  bool deep() const { return prefix_layers > 0; }
  // The task the prompt was trained for; has_task is false for npy and PEFT.
  bool has_task = false;
  std::string task_kind = "classify";  // classify | generate
  int task_max_length = 0;
  int task_max_target_length = 0;  // generate
};

// The task section a stored prompt's task describes (has_task must hold):
// kind, template, labels, max_length and max_target_length.
TaskSection task_section_of(const StoredPrompt& prompt);

// Reads a prompt from a checkpoint, an hdf5 export, a .npy file, a PEFT folder
// (PROMPT_TUNING, or PREFIX_TUNING without projection: a deep prompt) or its
// adapter_model.safetensors (read with the adapter_config.json beside it). The format is told by the file's content
// (HDF5 signature and `format` attribute, NumPy magic, safetensors header),
// not by its name. Errors name the file and what is wrong with it.
StoredPrompt read_stored_prompt(const std::string& path);

// The prompt of a checkpoint with its metadata (task.max_length comes from
// the configuration the run recorded).
StoredPrompt stored_prompt_of(const Checkpoint& ckpt, const std::string& path);

// Fails, naming the prompt's file and which check, when the prompt cannot be
// used with the model: its d_model differs (a deep prompt: its layers, its
// key/value width, or the kv heads its file records), or its fingerprint differs from the model's. A checkpoint
// or hdf5 export must record one (sptrain always wrote one); npy files and
// PEFT adapters not written by sptrain record none, and only their shape is
// checked. `model_path` is for the message.
void check_prompt_matches_model(const StoredPrompt& prompt, const ModelConfig& model,
                                const std::string& model_path);

// Fails, naming the prompt's file, unless it holds rows x cols >= 1 values
// (a deep prompt: layers x rows x prefix_cols), all finite: every reader
// checks what it read.
void check_prompt_values(const StoredPrompt& prompt);
// check_prompt_values: every exporter checks this first (npy also refuses
// a deep prompt, docs/export.md).
void check_prompt_exportable(const StoredPrompt& prompt);

// What an export wrote.
struct ExportResult {
  std::vector<std::string> files;  // written, in order
  int64_t bytes = 0;               // all files together
  int64_t value_bytes = 0;         // of which the prompt's values
};

}  // namespace sptrain
