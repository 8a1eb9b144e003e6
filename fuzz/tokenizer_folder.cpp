// Harness: a Hugging Face model folder's tokenizer files (src/tokenizer/sources.cpp):
// GPT-2's vocab.json + merges.txt, with tokenizer_config.json and
// special_tokens_map.json beside them, or a tokenizer.json.
// Input: the files in that order, separated by '\0'; an empty part is a missing
// file, so "\0\0\0\0X" is a folder with a tokenizer.json only.
// Checked: an error names the folder or one of its files; a tokenizer that
// loads encodes and decodes.
#include "tokenizer_check.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kNames[] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                                       "special_tokens_map.json", "tokenizer.json"};
  const std::vector<std::string_view> parts = fuzz::split_parts(fuzz::as_text(data, size));
  const std::string dir = fuzz::fresh_dir();
  for (size_t i = 0; i < parts.size() && i < std::size(kNames); ++i)
    if (!parts[i].empty()) fuzz::write_file(dir, kNames[i], parts[i]);
  fuzz::expect_clean(dir, [&] { fuzz::use_tokenizer(Tokenizer::from_hf_folder(dir), dir); });
  return 0;
}
