#pragma once
// Test fixtures: tiny GGUF and safetensors files written byte by byte, so the
// readers and converters are tested without Python or downloaded models.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sptrain/core/dtype.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::testing {

namespace fs = std::filesystem;

inline fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("sptrain_conv_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

inline void write_file(const fs::path& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

inline std::vector<unsigned char> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Little-endian byte buffer.
struct Bytes {
  std::vector<unsigned char> b;
  template <typename T>
  void put(T v) {
    unsigned char tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void raw(const void* p, size_t n) {
    auto* c = static_cast<const unsigned char*>(p);
    b.insert(b.end(), c, c + n);
  }
};

// Writes GGUF files: metadata entries are pre-encoded (type + value), tensors
// are given as raw block bytes with ggml dims (ne0 first).
class GgufWriter {
 public:
  // GGUF value type ids.
  enum : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };

  template <typename T>
  void kv(const std::string& key, uint32_t type, T value) {
    Bytes e;
    e.str(key);
    e.put<uint32_t>(type);
    e.put<T>(value);
    kvs_.push_back(e.b);
  }
  void kv_u32(const std::string& k, uint32_t v) { kv(k, U32, v); }
  void kv_f32(const std::string& k, float v) { kv(k, F32, v); }
  void kv_bool(const std::string& k, bool v) { kv(k, BOOL, uint8_t(v)); }
  void kv_str(const std::string& k, const std::string& v) {
    Bytes e;
    e.str(k);
    e.put<uint32_t>(STRING);
    e.str(v);
    kvs_.push_back(e.b);
  }
  void kv_strs(const std::string& k, const std::vector<std::string>& v) {
    Bytes e;
    e.str(k);
    e.put<uint32_t>(ARRAY);
    e.put<uint32_t>(STRING);
    e.put<uint64_t>(v.size());
    for (const auto& s : v) e.str(s);
    kvs_.push_back(e.b);
  }
  template <typename T>
  void kv_array(const std::string& k, uint32_t elem_type, const std::vector<T>& v) {
    Bytes e;
    e.str(k);
    e.put<uint32_t>(ARRAY);
    e.put<uint32_t>(elem_type);
    e.put<uint64_t>(v.size());
    for (T x : v) e.put<T>(x);
    kvs_.push_back(e.b);
  }
  void kv_raw(std::vector<unsigned char> entry) { kvs_.push_back(std::move(entry)); }

  void tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type,
              std::vector<unsigned char> data) {
    tensors_.push_back({name, std::move(dims), type, std::move(data)});
  }

  std::vector<unsigned char> bytes(uint32_t version = 3, uint64_t alignment = 32) const {
    Bytes f;
    f.put<uint32_t>(0x46554747);
    f.put<uint32_t>(version);
    f.put<uint64_t>(tensors_.size());
    f.put<uint64_t>(kvs_.size());
    for (const auto& e : kvs_) f.raw(e.data(), e.size());
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors_) {
      f.str(t.name);
      f.put<uint32_t>(uint32_t(t.dims.size()));
      for (uint64_t d : t.dims) f.put<uint64_t>(d);
      f.put<uint32_t>(t.type);
      f.put<uint64_t>(offset);
      offsets.push_back(offset);
      offset += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    while (f.b.size() % alignment) f.b.push_back(0);
    const size_t start = f.b.size();
    for (size_t k = 0; k < tensors_.size(); ++k) {
      f.b.resize(start + offsets[k], 0);
      f.raw(tensors_[k].data.data(), tensors_[k].data.size());
    }
    return f.b;
  }

 private:
  struct T {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::vector<unsigned char> data;
  };
  std::vector<std::vector<unsigned char>> kvs_;
  std::vector<T> tensors_;
};

// ---- quantized blocks built by hand: values exactly representable ----
// Each block's scale is a power of two, so d (and m) are exact in f16 and the
// expected value (q*d, (q-8)*d, q*d + m) is computed exactly in f32.

inline uint16_t f16_bits(float x) { return f32_to_f16(x); }

// Row-major [rows, cols] f32 values and the ggml blocks that encode them.
struct Quantized {
  std::vector<float> values;
  std::vector<unsigned char> bytes;
};

// Deterministic small integers from a seed (no <random>: the same everywhere).
struct Lcg {
  uint64_t s;
  explicit Lcg(uint64_t seed) : s(seed * 6364136223846793005ull + 1442695040888963407ull) {}
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return uint32_t(s >> 33);
  }
  int range(int lo, int hi) { return lo + int(next() % uint32_t(hi - lo + 1)); }  // [lo, hi]
};

inline Quantized make_q8_0(int64_t n, uint64_t seed) {
  Lcg r(seed);
  Quantized out;
  for (int64_t b = 0; b < n / 32; ++b) {
    float d = std::ldexp(1.0f, -r.range(3, 9));
    uint16_t dh = f16_bits(d);
    out.bytes.push_back(uint8_t(dh & 0xff));
    out.bytes.push_back(uint8_t(dh >> 8));
    for (int j = 0; j < 32; ++j) {
      int q = r.range(-127, 127);
      out.bytes.push_back(uint8_t(int8_t(q)));
      out.values.push_back(float(q) * d);
    }
  }
  return out;
}

inline Quantized make_q4_0(int64_t n, uint64_t seed) {
  Lcg r(seed);
  Quantized out;
  for (int64_t b = 0; b < n / 32; ++b) {
    float d = std::ldexp(1.0f, -r.range(3, 9));
    uint16_t dh = f16_bits(d);
    out.bytes.push_back(uint8_t(dh & 0xff));
    out.bytes.push_back(uint8_t(dh >> 8));
    int q[32];
    for (int& v : q) v = r.range(0, 15);
    for (int j = 0; j < 16; ++j) out.bytes.push_back(uint8_t(q[j] | (q[16 + j] << 4)));
    for (int j = 0; j < 32; ++j) out.values.push_back(float(q[j] - 8) * d);
  }
  return out;
}

inline Quantized make_q4_1(int64_t n, uint64_t seed) {
  Lcg r(seed);
  Quantized out;
  for (int64_t b = 0; b < n / 32; ++b) {
    float d = std::ldexp(1.0f, -r.range(3, 9));
    float m = -float(r.range(0, 64)) * std::ldexp(1.0f, -8);
    for (uint16_t h : {f16_bits(d), f16_bits(m)}) {
      out.bytes.push_back(uint8_t(h & 0xff));
      out.bytes.push_back(uint8_t(h >> 8));
    }
    int q[32];
    for (int& v : q) v = r.range(0, 15);
    for (int j = 0; j < 16; ++j) out.bytes.push_back(uint8_t(q[j] | (q[16 + j] << 4)));
    for (int j = 0; j < 32; ++j) out.values.push_back(float(q[j]) * d + m);
  }
  return out;
}

// Plain types: values exact in f32, f16 and bf16 (k/32 with |k| < 256: at most
// 8 significant bits).
inline Quantized make_plain(int64_t n, uint32_t type, uint64_t seed) {
  Lcg r(seed);
  Quantized out;
  for (int64_t k = 0; k < n; ++k) {
    float v = float(r.range(-255, 255)) / 32.0f;
    out.values.push_back(v);
    if (type == 0) {  // F32
      Bytes b;
      b.put<float>(v);
      out.bytes.insert(out.bytes.end(), b.b.begin(), b.b.end());
    } else {
      uint16_t h = type == 1 ? f16_bits(v) : f32_to_bf16(v);  // F16 or BF16
      out.bytes.push_back(uint8_t(h & 0xff));
      out.bytes.push_back(uint8_t(h >> 8));
    }
  }
  return out;
}

// llama.cpp's HF -> GGUF row permutation of Q and K, written from its
// definition w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2): GGUF row
// (h, i, j) of shape (n_head, hd/2, 2) is HF row (h, j, i) of (n_head, 2, hd/2).
inline std::vector<float> permute_hf_to_gguf(const std::vector<float>& hf, int64_t rows, int64_t cols,
                                             int64_t n_head) {
  std::vector<float> out(hf.size());
  const int64_t hd = rows / n_head;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < hd / 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t c = 0; c < cols; ++c)
          out[size_t(((h * (hd / 2) + i) * 2 + j) * cols + c)] = hf[size_t(((h * 2 + j) * (hd / 2) + i) * cols + c)];
  return out;
}

// A tiny byte-level vocabulary: 256 bytes, "he", "ll", and two control tokens.
inline TokenizerSpec tiny_tokenizer_spec() {
  TokenizerSpec s;
  for (int b = 0; b < 256; ++b) s.tokens.push_back(byte_to_unicode(static_cast<unsigned char>(b)));
  s.tokens.insert(s.tokens.end(), {"he", "ll", "<s>", "</s>"});
  s.token_types.assign(s.tokens.size(), 1);
  s.token_types[258] = s.token_types[259] = 3;
  s.merges = {"h e", "l l"};
  s.patterns = {kGpt2Pattern};
  s.bos_id = 258;
  s.eos_id = 259;
  return s;
}

// ---- safetensors ----

struct StTensor {
  std::string dtype;  // F32, F16, BF16, I64
  std::vector<int64_t> shape;
  std::vector<float> values;  // written converted to dtype
};

inline std::vector<unsigned char> safetensors_bytes(const std::map<std::string, StTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  Bytes data;
  for (const auto& [name, t] : tensors) {
    size_t begin = data.b.size();
    for (float v : t.values) {
      if (t.dtype == "F32") data.put<float>(v);
      else if (t.dtype == "F16") data.put<uint16_t>(f32_to_f16(v));
      else if (t.dtype == "BF16") data.put<uint16_t>(f32_to_bf16(v));
      else if (t.dtype == "I64") data.put<int64_t>(int64_t(v));
    }
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.b.size()}}};
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  Bytes f;
  f.put<uint64_t>(h.size());
  f.raw(h.data(), h.size());
  f.raw(data.b.data(), data.b.size());
  return f.b;
}

// A tokenizer.json for tiny_tokenizer_spec().
inline std::string tiny_tokenizer_json() {
  using nlohmann::json;
  TokenizerSpec s = tiny_tokenizer_spec();
  json vocab = json::object();
  for (size_t k = 0; k < 258; ++k) vocab[s.tokens[k]] = k;
  json j;
  j["added_tokens"] = json::array(
      {{{"id", 258}, {"content", "<s>"}, {"special", true}, {"lstrip", false}, {"rstrip", false}},
       {{"id", 259}, {"content", "</s>"}, {"special", true}, {"lstrip", false}, {"rstrip", false}}});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  j["post_processor"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", s.merges}};
  return j.dump();
}

}  // namespace sptrain::testing
