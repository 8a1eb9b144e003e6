#pragma once
// Writing safetensors files (the reader is io/safetensors.hpp): an 8-byte
// little-endian header length, the JSON header, then the tensors' bytes.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sptrain::safetensors {

struct TensorToWrite {
  std::string name;
  std::string dtype;           // safetensors dtype name: "F32", "BF16", ...
  std::vector<int64_t> shape;
  const void* data = nullptr;  // nbytes bytes, little-endian
  uint64_t nbytes = 0;
};

// Writes the tensors, in order, to `path` atomically (io/file.hpp). The
// header lists __metadata__ (when not empty) first, then the tensors, padded
// with spaces so that the data starts 8-byte aligned, as the safetensors
// library writes it.
void write_tensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                   const std::map<std::string, std::string>& metadata);

}  // namespace sptrain::safetensors
