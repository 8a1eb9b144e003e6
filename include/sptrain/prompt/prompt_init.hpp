#pragma once
// The soft prompt's starting values, as in Lester et al. (2021):
//   random_uniform  U(-r, r) in every entry
//   vocab_sample    embeddings of tokens drawn from the 5,000 lowest-id normal
//                   tokens (BPE ids follow merge order, so these are frequent tokens,
//                   standing in for Lester's "5,000 most common")
//   text            embeddings of init_text's tokens, cycled to length P
//   labels          the label words' embeddings first, then vocabulary samples
//   file:PATH       the prompt of a checkpoint or an export: hdf5, .npy, a PEFT
//                   folder or its adapter_model.safetensors (docs/export.md)
#include <vector>

#include "sptrain/config/config.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/random_model.hpp"
#include "sptrain/data/task.hpp"

namespace sptrain {

// Returns the prompt [P, d] (fp32, row-major).
std::vector<float> init_prompt(const PromptSection& section, const ModelConfig& model,
                               const h5::File& model_file, const Tokenizer& tokenizer,
                               const Task& task, Rng& rng);

// Reads the prompt from a checkpoint or an export in any format
// (read_stored_prompt), checking its shape against the model and prompt_len,
// and its model fingerprint when the file records one.
std::vector<float> load_prompt_file(const std::string& path, int prompt_len,
                                    const ModelConfig& model);

// Root-mean-square of the token embeddings (all rows, fp64 sum): the scale a
// prompt's entries should live at.
double embedding_rms(const h5::File& model_file, const ModelConfig& model);

}  // namespace sptrain
