// Harness: `sptrain convert --from safetensors` (convert::convert_safetensors,
// src/convert/from_safetensors.cpp, which the CLI calls) and the safetensors
// reader under it (src/io/safetensors.cpp): each shard's header length, JSON
// header, dtypes, shapes and data_offsets; the shard index
// model.safetensors.index.json (weight_map, file names, tensors in the wrong
// shard or missing); config.json (architectures, the llama, OPT and GPT-2
// keys); the tensor plan and the model file writer.
// Input: a mode byte, then
//   mode & 1 == 0: config.json, '\0', then the bytes of model.safetensors (the
//     rest of the input, any bytes): the shard's binary layout is fuzzed;
//   mode & 1 == 1: texts separated by '\0': config.json,
//     model.safetensors.index.json, then the JSON headers of up to 3 shards.
//     With an index, shard k is the file shard-k.safetensors; without one (an
//     empty part), the first header is model.safetensors. Each shard is written
//     as a valid frame around its header: the 8-byte length, the header, then
//     N bytes 0x3c (finite as F32, F16 and BF16), N the largest integer up to
//     1 MiB in the header (the end of the last data_offsets in a real one).
//   mode & 2: only open the folder (safetensors::Folder::open) and read every
//     tensor (as f32 when it is F32, F16 or BF16), without converting.
// An empty config.json part means the folder has none. The folder always has a
// fixed GPT-2 tokenizer of 16 tokens (vocab.json, merges.txt), so
// config.json's vocab_size must be at least 16.
// Checked: an error names the folder (or a file in it); a model that converts
// opens, and its header and tokenizer read back as the loader reads them.
#include <filesystem>

#include "convert_check.hpp"
#include "sptrain/convert/convert.hpp"
#include "sptrain/io/safetensors.hpp"

using namespace sptrain;

namespace {

// A tiny GPT-2 tokenizer of 16 tokens: the folder's vocab.json and merges.txt.
constexpr const char* kVocab =
    R"({"a": 0, "b": 1, "c": 2, "d": 3, "e": 4, "h": 5, "l": 6, "o": 7, "t": 8, "\u0120": 9,)"
    R"( "th": 10, "he": 11, "\u0120t": 12, "<|endoftext|>": 13, "x": 14, "y": 15})";
constexpr const char* kMerges = "#version: 0.2\nt h\nh e\n\xc4\xa0 t\n";

// The largest decimal integer in `text` that is at most 1 MiB (0 when none).
size_t largest_small_integer(std::string_view text) {
  size_t best = 0;
  for (size_t k = 0; k < text.size();) {
    if (text[k] < '0' || text[k] > '9') {
      ++k;
      continue;
    }
    size_t v = 0, digits = 0;
    for (; k < text.size() && text[k] >= '0' && text[k] <= '9'; ++k, ++digits)
      if (digits < 8) v = v * 10 + size_t(text[k] - '0');
    if (digits <= 7 && v <= (size_t(1) << 20) && v > best) best = v;
  }
  return best;
}

// A shard around `header`: its 8-byte length, the header, then the data.
std::string frame(std::string_view header) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int k = 0; k < 8; ++k) out[size_t(k)] = char((n >> (8 * k)) & 0xff);
  out += header;
  out.append(largest_small_integer(header), char(0x3c));
  return out;
}

void read_every_tensor(const std::string& dir) {
  const safetensors::Folder folder = safetensors::Folder::open(dir);
  for (const auto& [name, t] : folder.tensors()) {
    if (t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16") {
      std::vector<float> values(size_t(t.numel));
      folder.read_f32(t, values.data());
    } else {
      std::vector<unsigned char> raw(size_t(t.nbytes));
      folder.read_raw(t, raw.data());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0];
  const std::string_view input = fuzz::as_text(data + 1, size - 1);
  const std::string scratch = fuzz::fresh_dir();
  const std::string dir = scratch + "/hf";
  std::filesystem::create_directory(dir);
  fuzz::write_file(dir, "vocab.json", kVocab);
  fuzz::write_file(dir, "merges.txt", kMerges);

  if ((mode & 1) == 0) {
    const size_t nul = input.find('\0');
    const std::string_view config = input.substr(0, nul);
    if (!config.empty()) fuzz::write_file(dir, "config.json", config);
    if (nul != std::string_view::npos) fuzz::write_file(dir, "model.safetensors", input.substr(nul + 1));
  } else {
    const std::vector<std::string_view> parts = fuzz::split_parts(input);
    if (!parts[0].empty()) fuzz::write_file(dir, "config.json", parts[0]);
    const bool sharded = parts.size() > 1 && !parts[1].empty();
    if (sharded) fuzz::write_file(dir, "model.safetensors.index.json", parts[1]);
    for (size_t k = 2; k < parts.size() && k < 5; ++k) {
      const std::string name =
          sharded ? "shard-" + std::to_string(k - 1) + ".safetensors" : "model.safetensors";
      fuzz::write_file(dir, name, frame(parts[k]));
      if (!sharded) break;
    }
  }

  if (mode & 2) {
    fuzz::expect_clean(dir, [&] { read_every_tensor(dir); });
    return 0;
  }
  const std::string out = scratch + "/converted.h5";  // does not contain `dir`
  bool converted = false;
  fuzz::expect_clean(dir, [&] {
    convert::convert_safetensors(dir, out, DType::F32);
    converted = true;
  });
  if (converted) fuzz::check_converted_model(out);
  return 0;
}
