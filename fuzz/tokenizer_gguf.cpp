// Harness: a GGUF file's tokenizer (tokenizer.ggml.*: vocabulary, token types,
// merges, pre-tokenizer, special ids), through the GGUF reader (src/io/gguf.cpp)
// and Tokenizer::from_gguf (src/tokenizer/sources.cpp).
// Input: the file's bytes.
// Checked: an error names the file; a tokenizer that loads encodes and decodes.
#include "sptrain/io/gguf.hpp"
#include "tokenizer_check.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file(fuzz::fresh_dir(), "model.gguf", fuzz::as_text(data, size));
  fuzz::expect_clean(path, [&] { fuzz::use_tokenizer(Tokenizer::from_gguf(gguf::File::open(path)), path); });
  return 0;
}
