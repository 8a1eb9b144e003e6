#pragma once
// Reader for Hugging Face checkpoints in safetensors: a folder with
// `model.safetensors` (or shards listed by `model.safetensors.index.json`) and
// `config.json`. Each file is an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the data. Offsets are
// checked against the file size on open; tensors are read one at a time.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sptrain/io/file.hpp"

namespace sptrain::safetensors {

struct TensorInfo {
  std::string name;
  std::string dtype;           // as in the header: F32, F16, BF16, I64, ...
  std::vector<int64_t> shape;  // PyTorch order (slowest first)
  int64_t numel = 0;
  size_t shard = 0;            // index into Folder::shards()
  uint64_t file_offset = 0;    // absolute byte offset in the shard
  uint64_t nbytes = 0;
};

// One safetensors file, open for reading.
class Shard {
 public:
  static std::unique_ptr<Shard> open(const std::string& path);
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  const std::string& path() const { return path_; }
  uint64_t header_bytes() const { return header_bytes_; }  // 8 + JSON length
  const std::string& header_json() const { return header_json_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  void read(uint64_t offset, uint64_t n, void* out, const std::string& what) const;

 private:
  Shard() = default;
  std::string path_;
  FileDescriptor fd_;
  uint64_t file_size_ = 0;
  uint64_t header_bytes_ = 0;
  std::string header_json_;
  std::vector<TensorInfo> tensors_;
};

class Folder {
 public:
  // Opens DIR/model.safetensors, or the shards named by
  // DIR/model.safetensors.index.json, and parses DIR/config.json.
  static Folder open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }
  const std::string& config_text() const { return config_text_; }
  const std::vector<std::unique_ptr<Shard>>& shards() const { return shards_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  const TensorInfo& tensor(const std::string& name) const;  // Error naming the tensor when absent

  // Reads the raw bytes (nbytes) of a tensor.
  void read_raw(const TensorInfo& t, void* out) const;
  // Reads a tensor converted to f32 (dtype F32, F16 or BF16; others are an
  // Error naming the tensor and its dtype).
  void read_f32(const TensorInfo& t, float* out) const;
  // The file a tensor lives in (for messages).
  const std::string& file_of(const TensorInfo& t) const { return shards_[t.shard]->path(); }

 private:
  std::string dir_;
  nlohmann::json config_;
  std::string config_text_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::map<std::string, TensorInfo> tensors_;
};

// Bytes per element of a safetensors dtype name; 0 when unknown.
int dtype_bytes(const std::string& dtype);

}  // namespace sptrain::safetensors
