#pragma once
// Exporting a trained soft prompt, and reading it back from any format
// (docs/export.md):
//   hdf5  the prompt alone with its metadata (model fingerprint, task, step...)
//   npy   a NumPy array [P, d_model]: f32, or bf16 bits as uint16 ('<u2')
//   peft  a Hugging Face PEFT prompt-tuning folder: adapter_model.safetensors
//         (`prompt_embeddings` [P, d_model] F32) + adapter_config.json
// Every file is written to a temporary name and renamed, so an export is
// either complete or absent.
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sptrain/io/checkpoint.hpp"
#include "sptrain/model/model_config.hpp"

namespace sptrain {

// A soft prompt and what its file says about where it came from. Checkpoints
// and hdf5 exports carry all of it; npy files carry only the values; PEFT
// folders the values (and, when sptrain wrote them, the model fingerprint
// and step in the safetensors metadata).
struct StoredPrompt {
  std::string path;
  std::string format;          // checkpoint | hdf5 | npy | peft
  std::vector<float> values;   // [rows, cols] fp32, row-major
  int64_t rows = 0, cols = 0;  // P, d_model
  std::string model_fingerprint;  // "" = unknown (not checked)
  std::string model_path;
  int64_t step = -1;              // -1 = unknown
  double eval_accuracy = std::numeric_limits<double>::quiet_NaN();
  double eval_loss = std::numeric_limits<double>::quiet_NaN();
  // The task the prompt was trained for; has_task is false for npy and PEFT.
  bool has_task = false;
  std::string task_template;
  std::vector<std::pair<std::string, std::string>> labels;  // label value -> verbalizer word
  int task_max_length = 0;
};

// Reads a prompt from a checkpoint, an hdf5 export, a .npy file, a PEFT folder
// or its adapter_model.safetensors. The format is told by the file's content
// (HDF5 signature and `format` attribute, NumPy magic, safetensors header),
// not by its name. Errors name the file and what is wrong with it.
StoredPrompt read_stored_prompt(const std::string& path);

// The prompt of a checkpoint with its metadata (task.max_length comes from
// the configuration the run recorded).
StoredPrompt stored_prompt_of(const Checkpoint& ckpt, const std::string& path);

// Fails, naming the prompt's file and which check, when the prompt cannot be
// used with the model: its d_model differs, or both record a fingerprint and
// they differ (npy files and PEFT adapters not written by sptrain record
// none: only their shape is checked). `model_path` is for the message.
void check_prompt_matches_model(const StoredPrompt& prompt, const ModelConfig& model,
                                const std::string& model_path);

enum class ExportFormat { Hdf5, Npy, Peft };
ExportFormat parse_export_format(const std::string& name);  // hdf5 | npy | peft
const char* export_format_name(ExportFormat f);

// What the PEFT adapter_config.json needs from the model file.
struct PeftModelInfo {
  int num_layers = 0;
  int num_attention_heads = 0;
  std::string base_model_name_or_path;
};

struct ExportResult {
  std::vector<std::string> files;  // written, in order
  int64_t bytes = 0;               // all files together
  int64_t value_bytes = 0;         // of which the prompt's values
};

// hdf5: the prompt [P, d] f32 and its metadata. Overwrites `out`.
ExportResult export_hdf5(const StoredPrompt& prompt, const std::string& out);
// npy: dtype "f32" ('<f4', bit-exact) or "bf16" ('<u2' holding the bf16 bits,
// rounded to nearest even). Overwrites `out`.
ExportResult export_npy(const StoredPrompt& prompt, const std::string& out, const std::string& dtype);
// peft: the folder `out` (created if needed) with adapter_model.safetensors
// and adapter_config.json, each replaced atomically.
ExportResult export_peft(const StoredPrompt& prompt, const std::string& out, const PeftModelInfo& model);

// The bytes an npy file of [rows, cols] takes: the v1.0 header (128 bytes
// for any 2-D shape: the dimensions' digits would need to exceed 60 to grow
// it) plus the values.
int64_t npy_file_bytes(int64_t rows, int64_t cols, int bytes_per_value);

}  // namespace sptrain
