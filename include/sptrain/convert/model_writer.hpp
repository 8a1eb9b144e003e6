#pragma once
// Writes an sptrain model file (docs/formats.md) from a list of weights, one
// at a time: peak memory is about one tensor (f32) plus its source bytes.
// The file is written as `<out>.tmp` and renamed at the end; on any error the
// temporary file is removed, so no partial model file is ever left behind.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sptrain/core/dtype.hpp"
#include "sptrain/core/tensor.hpp"
#include "sptrain/model/model_config.hpp"

namespace sptrain {
class Tokenizer;
}

namespace sptrain::convert {

// The root attributes that describe the model (docs/formats.md).
struct ModelHeader {
  std::string family;      // gpt | llama
  std::string name;
  int64_t n_layers = 0, d_model = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, d_ffn = 0;
  int64_t vocab_size = 0, max_positions = 0;
  std::string norm;        // layernorm | rmsnorm
  double norm_eps = 0;
  std::string activation;  // gelu | gelu_tanh | relu | swiglu
  std::string position;    // learned | rope
  double rope_theta = 0;   // rope only
  bool tied_embeddings = false;
  bool bias = false;
  // For messages: the source's key behind a field ("n_layers" ->
  // "llama.block_count"), so an error names what to look for in the source.
  std::map<std::string, std::string> source_keys;
};

// One dataset to write: `fill` produces its values in f32 ([rows, cols]
// row-major, PyTorch layout), reading only what it needs from the source.
struct WeightJob {
  std::string name;       // dataset name, e.g. "layers/0/attn/q/weight"
  Shape shape;
  uint64_t source_bytes;  // bytes read from the source, for the progress bar
  std::function<void(float* out)> fill;
};

struct SourceInfo {
  std::string path;    // source_path attribute
  std::string format;  // gguf | safetensors
  std::string hash;    // hash of the source's header bytes (16 hex digits)
};

struct WriteStats {
  int64_t parameters = 0;
  uint64_t bytes_written = 0;  // weight bytes in the output dtype
  std::string fingerprint;
};

// Checks that `jobs` holds exactly the datasets `header` calls for, writes
// them in order (converted to `dtype`: f32 or bf16, round to nearest even),
// the tokenizer under tokenizer/, and the root attributes, including the
// fingerprint: FNV-1a 64 over each weight's name then its bytes as written.
WriteStats write_model_file(const std::string& out, DType dtype, const ModelHeader& header,
                            const std::vector<WeightJob>& jobs, const Tokenizer& tokenizer,
                            const SourceInfo& source);

// The header as the loader will read it, checked as the loader checks it
// (check_model_config): converters call it before planning anything, so they
// never write a model the loader rejects. Errors name `where`.
ModelConfig model_config_of(const ModelHeader& header, const std::string& where);

// The dataset names and shapes a model file of this header holds, in the
// order they are written (model_datasets: the table in docs/formats.md).
std::vector<std::pair<std::string, Shape>> expected_datasets(const ModelHeader& header);

// Writes progress on stderr: a bar redrawn in place on a terminal, otherwise
// a line every 10%. Silent for sources under 16 MB.
class Progress {
 public:
  static constexpr uint64_t kMinBytes = 16u << 20;
  Progress(std::string label, uint64_t total);
  void add(uint64_t bytes);
  void finish();

 private:
  void draw();
  std::string label_;
  uint64_t total_, done_ = 0;
  int last_tenth_ = 0;
  bool tty_;
  bool finished_ = false;
};

}  // namespace sptrain::convert
