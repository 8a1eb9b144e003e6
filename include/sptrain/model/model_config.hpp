#pragma once
// A model's hyper-parameters, read from the model file's root attributes
// (docs/formats.md). The family and dimensions come from the file, never the YAML.
#include <string>
#include <utility>
#include <vector>

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

// Upper limits of a model's sizes (docs/formats.md): far above any real model,
// low enough that every product of them fits in 64 bits (and q_dim() in an int).
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxWidth = int64_t(1) << 20;  // d_model, d_ffn, n_heads x head_dim
inline constexpr int64_t kMaxRows = int64_t(1) << 24;   // vocab_size, max_positions

// Fails, naming `where`, unless the configuration is one sptrain can run:
// every size positive and within the limits above, n_kv_heads dividing
// n_heads, an even head_dim for RoPE, norm_eps and rope_theta finite and > 0,
// no biases with SwiGLU, dtype f32 or bf16. Readers and writers both check it,
// so sptrain never writes a model it would not load.
void check_model_config(const ModelConfig& c, const std::string& where);

// The datasets a model file of this configuration holds, with their shapes,
// in the order writers write them (the table of docs/formats.md).
std::vector<std::pair<std::string, Shape>> model_datasets(const ModelConfig& c);

// Reads and validates the root attributes, then checks that the file holds
// exactly the layers they describe and every weight with the shape they imply
// and a floating-point type; errors name the file and the attribute or dataset.
ModelConfig read_model_config(const h5::File& file);
// Writes the root attributes (all but fingerprint and source_*).
void write_model_config(h5::File& file, const ModelConfig& c);

const char* family_name(Family f);
const char* norm_name(NormKind n);
const char* activation_name(Activation a);
const char* position_name(PositionKind p);

}  // namespace sptrain
