// Harness: prompt import from a Hugging Face PEFT prompt-tuning adapter:
// read_stored_prompt (src/prompt/stored_prompt.cpp) on the folder, which reads
// adapter_model.safetensors (read_peft_weights: the safetensors header and
// offsets, prompt_embeddings, its dtype, the __metadata__ sptrain writes) and
// checks it against adapter_config.json (read_peft_folder, src/prompt/peft.cpp),
// or on the weights file alone.
// Input: adapter_config.json, '\0', then the bytes of adapter_model.safetensors
// (the rest of the input, any bytes). Without a '\0' the folder has only the
// config. With an empty config part the weights file is read by its own path
// (as `--prompt adapter_model.safetensors`); inputs whose weights start like an
// HDF5 file are skipped then (HDF5's own parser is not ours to fuzz).
// Checked: an error names the folder (or the file); a prompt that loads is
// 2-D, of finite values, and fits a model of its width.
#include <filesystem>

#include "prompt_check.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/io/npy.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = fuzz::as_text(data, size);
  const size_t nul = input.find('\0');
  const std::string_view config = input.substr(0, nul);
  const std::string dir = fuzz::fresh_dir() + "/adapter";
  std::filesystem::create_directory(dir);
  std::string source = dir;
  std::string format = "peft";
  if (nul != std::string_view::npos) {
    const std::string_view weights = input.substr(nul + 1);
    const auto* head = reinterpret_cast<const unsigned char*>(weights.data());
    source = fuzz::write_file(dir, "adapter_model.safetensors", weights);
    if (config.empty() && h5::looks_like_hdf5(head, weights.size())) return 0;
    // read by its path, a file with NumPy's magic is a .npy file, whatever its name
    if (config.empty() && npy::has_magic(head, weights.size())) format = "npy";
  }
  if (!config.empty() || nul == std::string_view::npos) {
    fuzz::write_file(dir, "adapter_config.json", config);
    source = dir;
  }
  fuzz::expect_clean(source, [&] { fuzz::check_prompt(read_stored_prompt(source), format); });
  return 0;
}
