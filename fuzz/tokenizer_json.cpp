// Harness: a Hugging Face tokenizer.json (src/tokenizer/sources.cpp).
// Input: the file's bytes.
// Checked: an error names the file; a tokenizer that loads encodes and decodes.
#include "tokenizer_check.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file(fuzz::fresh_dir(), "tokenizer.json", fuzz::as_text(data, size));
  fuzz::expect_clean(path, [&] { fuzz::use_tokenizer(Tokenizer::from_hf_json(path), path); });
  return 0;
}
