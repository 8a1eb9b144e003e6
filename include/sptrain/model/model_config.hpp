#pragma once
// A model's hyper-parameters, read from the model file's root attributes
// (docs/formats.md). The family and dimensions come from the file, never the YAML.
#include <string>

#include "sptrain/backend/backend.hpp"
#include "sptrain/io/h5.hpp"

namespace sptrain {

enum class Family : uint8_t { Gpt, Llama };
enum class PositionKind : uint8_t { Learned, Rope };

struct ModelConfig {
  Family family = Family::Llama;
  std::string name;
  int n_layers = 0;
  int d_model = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int d_ffn = 0;
  int vocab_size = 0;
  int max_positions = 0;
  NormKind norm = NormKind::RmsNorm;
  float norm_eps = 1e-5f;
  Activation activation = Activation::SwiGlu;
  PositionKind position = PositionKind::Rope;
  float rope_theta = 10000.f;
  bool tied_embeddings = true;
  bool bias = false;
  std::string dtype = "f32";   // weights' dtype in the file
  bool random = false;         // written by init-model
  std::string fingerprint;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  // Weights in the transformer blocks (what forward and backward multiply by).
  int64_t block_params() const;
  int64_t embedding_params() const { return int64_t(vocab_size) * d_model; }
};

// Reads and validates the root attributes; errors name the file and attribute.
ModelConfig read_model_config(const h5::File& file);
// Writes the root attributes (all but fingerprint and source_*).
void write_model_config(h5::File& file, const ModelConfig& c);

const char* family_name(Family f);
const char* norm_name(NormKind n);
const char* activation_name(Activation a);
const char* position_name(PositionKind p);

}  // namespace sptrain
