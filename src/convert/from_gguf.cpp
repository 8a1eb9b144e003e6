// GGUF (llama.cpp) -> sptrain model file.
#include <algorithm>
#include <filesystem>
#include <set>

#include "sptrain/convert/convert.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/fingerprint.hpp"
#include "sptrain/io/gguf.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::convert {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
  return out + "]";
}

std::vector<int64_t> dims_of(const Shape& s) { return {s.dims.begin(), s.dims.begin() + s.rank}; }

// Where a dataset of the model file comes from in a llama GGUF.
struct GgufSource {
  std::string tensor;
  int64_t rope_heads = 0;  // > 0: undo llama.cpp's Q/K row permutation over this many heads
  const char* keys;        // the metadata its expected shape comes from
};

GgufSource gguf_source(const std::string& dataset, const ModelHeader& h) {
  if (dataset == "embeddings/tokens")
    return {"token_embd.weight", 0, "token_embd.weight rows, llama.embedding_length"};
  if (dataset == "final_norm/weight") return {"output_norm.weight", 0, "llama.embedding_length"};
  if (dataset == "lm_head/weight") return {"output.weight", 0, "vocab size, llama.embedding_length"};
  // layers/<i>/<part>
  size_t slash = dataset.find('/', 7);
  std::string blk = "blk." + dataset.substr(7, slash - 7) + ".";
  std::string part = dataset.substr(slash + 1);
  if (part == "attn_norm/weight") return {blk + "attn_norm.weight", 0, "llama.embedding_length"};
  if (part == "attn/q/weight")
    return {blk + "attn_q.weight", h.n_heads,
            "llama.attention.head_count x head dim, llama.embedding_length"};
  if (part == "attn/k/weight")
    return {blk + "attn_k.weight", h.n_kv_heads,
            "llama.attention.head_count_kv x head dim, llama.embedding_length"};
  if (part == "attn/v/weight")
    return {blk + "attn_v.weight", 0, "llama.attention.head_count_kv x head dim, llama.embedding_length"};
  if (part == "attn/o/weight")
    return {blk + "attn_output.weight", 0, "llama.embedding_length, llama.attention.head_count x head dim"};
  if (part == "mlp_norm/weight") return {blk + "ffn_norm.weight", 0, "llama.embedding_length"};
  if (part == "mlp/gate/weight")
    return {blk + "ffn_gate.weight", 0, "llama.feed_forward_length, llama.embedding_length"};
  if (part == "mlp/up/weight")
    return {blk + "ffn_up.weight", 0, "llama.feed_forward_length, llama.embedding_length"};
  if (part == "mlp/down/weight")
    return {blk + "ffn_down.weight", 0, "llama.embedding_length, llama.feed_forward_length"};
  SPT_ASSERT(false);
}

// The number of transformer blocks the file has tensors for: one more than
// the highest N of the "blk.N." names (0 when there are none).
int64_t count_blocks(const gguf::File& file) {
  int64_t blocks = 0;
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (t.name.rfind("blk.", 0) != 0) continue;
    const size_t dot = t.name.find('.', 4);
    const std::string digits = t.name.substr(4, dot == std::string::npos ? std::string::npos : dot - 4);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
      continue;  // reported as an unexpected tensor
    blocks = std::max<int64_t>(blocks, std::stoll(digits) + 1);
  }
  return blocks;
}

}  // namespace

ConvertResult convert_gguf(const std::string& path, const std::string& out, DType dtype) {
  gguf::File file = gguf::File::open(path);
  const std::string arch = file.get_string("general.architecture", "");
  if (arch != "llama")
    fail(path, ": general.architecture = '", arch,
         "' is not supported (only 'llama'; convert other models from safetensors)");
  auto key_int = [&](const std::string& key) {
    int64_t v = file.get_int(key);
    if (v <= 0) fail(path, ": ", key, " = ", v, " must be positive");
    return v;
  };

  ModelHeader h;
  h.family = "llama";
  h.name = file.get_string("general.name", std::filesystem::path(path).stem().string());
  h.n_layers = key_int("llama.block_count");
  h.d_model = key_int("llama.embedding_length");
  h.d_ffn = key_int("llama.feed_forward_length");
  h.n_heads = key_int("llama.attention.head_count");
  h.n_kv_heads = file.has("llama.attention.head_count_kv") ? key_int("llama.attention.head_count_kv")
                                                           : h.n_heads;
  if (file.has("llama.attention.key_length")) {
    h.head_dim = key_int("llama.attention.key_length");
  } else {
    if (h.d_model % h.n_heads != 0)
      fail(path, ": llama.embedding_length ", h.d_model, " is not a multiple of llama.attention.head_count ",
           h.n_heads);
    h.head_dim = h.d_model / h.n_heads;
  }
  if (file.has("llama.attention.value_length") && key_int("llama.attention.value_length") != h.head_dim)
    fail(path, ": llama.attention.value_length differs from the key length (not supported)");
  if (file.get_int("llama.rope.dimension_count", h.head_dim) != h.head_dim)
    fail(path, ": llama.rope.dimension_count = ", file.get_int("llama.rope.dimension_count"),
         " rotates part of each head of ", h.head_dim, " (partial RoPE is not supported)");
  if (h.n_heads % h.n_kv_heads != 0)
    fail(path, ": llama.attention.head_count ", h.n_heads,
         " is not a multiple of llama.attention.head_count_kv ", h.n_kv_heads);
  if (file.get_int("llama.expert_count", 0) > 0)
    fail(path, ": llama.expert_count > 0: mixture-of-experts models are not supported");
  if (file.has("llama.rope.scaling.type") && file.get_string("llama.rope.scaling.type") != "none")
    fail(path, ": llama.rope.scaling.type = '", file.get_string("llama.rope.scaling.type"),
         "' is not supported");
  h.norm = "rmsnorm";
  h.norm_eps = file.get_float("llama.attention.layer_norm_rms_epsilon");
  h.activation = "swiglu";
  h.position = "rope";
  h.rope_theta = file.get_float("llama.rope.freq_base", 10000.0);
  h.max_positions = key_int("llama.context_length");
  h.bias = false;
  const gguf::TensorInfo& embd = file.tensor("token_embd.weight");
  if (embd.dims.size() != 2)
    fail(path, ": tensor 'token_embd.weight' has shape ", shape_str(embd.torch_shape()),
         " (expected [vocab, llama.embedding_length])");
  h.vocab_size = embd.dims[1];
  if (file.has("llama.vocab_size") && file.get_int("llama.vocab_size") != h.vocab_size)
    fail(path, ": llama.vocab_size = ", file.get_int("llama.vocab_size"),
         " but tensor 'token_embd.weight' has ", h.vocab_size, " rows");
  h.tied_embeddings = file.find_tensor("output.weight") == nullptr;
  h.source_keys = {{"n_layers", "llama.block_count"},
                   {"d_model", "llama.embedding_length"},
                   {"d_ffn", "llama.feed_forward_length"},
                   {"n_heads", "llama.attention.head_count"},
                   {"n_kv_heads", file.has("llama.attention.head_count_kv") ? "llama.attention.head_count_kv"
                                                                             : "llama.attention.head_count"},
                   {"head_dim", file.has("llama.attention.key_length") ? "llama.attention.key_length"
                                                                      : "llama.embedding_length / head_count"},
                   {"vocab_size", "tensor 'token_embd.weight'"},
                   {"max_positions", "llama.context_length"},
                   {"norm_eps", "llama.attention.layer_norm_rms_epsilon"},
                   {"rope_theta", "llama.rope.freq_base"}};
  model_config_of(h, path);  // what the loader would reject is not written
  const int64_t blocks = count_blocks(file);
  if (blocks < h.n_layers)  // more blocks than that: "unexpected tensor" below
    fail(path, ": llama.block_count = ", h.n_layers, " but the file has tensors of only ", blocks, " blocks");

  // Plan every dataset, checking its tensor, before writing anything.
  std::set<std::string> used;
  std::vector<WeightJob> jobs;
  for (const auto& dataset : expected_datasets(h)) {
    const std::string& name = dataset.first;
    const Shape shape = dataset.second;  // a copy the job keeps
    GgufSource src = gguf_source(name, h);
    const gguf::TensorInfo* t = file.find_tensor(src.tensor);
    if (!t) fail(path, ": missing tensor '", src.tensor, "' (needed for ", name, ")");
    if (t->torch_shape() != dims_of(shape))
      fail(path, ": tensor '", src.tensor, "' has shape ", shape_str(t->torch_shape()), " but ",
           shape.to_string(), " is expected from ", src.keys);
    const gguf::TypeTraits& traits = gguf::type_traits(t->type);
    if (!traits.dequantizable)
      fail(path, ": tensor '", src.tensor, "' has type ", traits.name,
           " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
    used.insert(src.tensor);
    jobs.push_back({name, shape, t->nbytes, [&file, t, shape, heads = src.rope_heads](float* dst) {
                      std::vector<unsigned char> raw(t->nbytes);
                      file.read_raw(*t, raw.data());
                      if (heads == 0) {
                        gguf::dequantize(t->type, raw.data(), dst, t->numel);
                        return;
                      }
                      std::vector<float> interleaved(size_t(t->numel));
                      gguf::dequantize(t->type, raw.data(), interleaved.data(), t->numel);
                      gguf::unpermute_rope_rows(interleaved.data(), dst, shape[0], shape[1], heads);
                    }});
  }
  for (const auto& t : file.tensors()) {
    if (used.count(t.name)) continue;
    if (t.name == "rope_freqs.weight")
      fail(path, ": tensor 'rope_freqs.weight' (RoPE frequency scaling) is not supported");
    fail(path, ": unexpected tensor '", t.name, "' (llama.block_count = ", h.n_layers, ")");
  }

  Tokenizer tokenizer = Tokenizer::from_gguf(file);
  Fingerprint header_hash;
  std::vector<unsigned char> head =
      file.read_bytes(0, std::min(file.data_offset(), file.file_size()));
  header_hash.update(head.data(), head.size());
  SourceInfo source{path, "gguf", header_hash.hex()};

  ConvertResult r;
  r.header = h;
  r.stats = write_model_file(out, dtype, h, jobs, tokenizer, source);
  return r;
}

}  // namespace sptrain::convert
