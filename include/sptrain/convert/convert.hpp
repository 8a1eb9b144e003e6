#pragma once
// `sptrain convert` (run_convert, declared in sptrain/cli/commands.hpp): GGUF
// files and Hugging Face safetensors folders to the sptrain model file
// (docs/formats.md). Every tensor is checked against the hyper-parameters
// before anything is written; a mismatch is an Error naming the file, the
// tensor and the metadata/config key.
#include <string>

#include "sptrain/convert/model_writer.hpp"
#include "sptrain/core/dtype.hpp"

namespace sptrain::convert {

struct ConvertResult {
  ModelHeader header;
  WriteStats stats;
};

// GGUF, architecture `llama`: tensors dequantized (F32, F16, BF16, Q8_0, Q4_0,
// Q4_1), Q/K rows un-permuted back to rotate-half order, tokenizer from
// `tokenizer.ggml.*`.
ConvertResult convert_gguf(const std::string& path, const std::string& out, DType dtype);

// A Hugging Face folder (config.json + model.safetensors or shards):
// LlamaForCausalLM / MistralForCausalLM (llama family), OPTForCausalLM and
// GPT2LMHeadModel (gpt family). Tokenizer from tokenizer.json, or
// vocab.json + merges.txt; a folder without one is an Error.
ConvertResult convert_safetensors(const std::string& dir, const std::string& out, DType dtype);

}  // namespace sptrain::convert
