#include "sptrain/io/safetensors_writer.hpp"

#include <nlohmann/json.hpp>

#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"

namespace sptrain::safetensors {

void write_tensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h;
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    SPT_CHECK(!h.contains(t.name), path, ": tensor '", t.name, "' appears twice");
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text = h.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  std::string length(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) length[size_t(i)] = char((n >> (8 * i)) & 0xff);

  std::vector<ByteRange> parts = {{length.data(), length.size()}, {text.data(), text.size()}};
  for (const TensorToWrite& t : tensors) parts.push_back({t.data, size_t(t.nbytes)});
  write_file_atomically(path, parts);
}

}  // namespace sptrain::safetensors
