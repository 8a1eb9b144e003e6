#pragma once
// What the tokenizer harnesses do with a tokenizer that loaded: encode and
// decode a fixed text (special tokens, digits, spaces, non-ASCII), so the
// vocabulary, merges and patterns read from the file are used, not only parsed.
#include "fuzz_util.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::fuzz {

inline void use_tokenizer(const Tokenizer& tok, const std::string& source) {
  static const char* const kText =
      "<|im_start|>user\nHello, world! It's 2024: 12345 caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87  \t x<|endoftext|>";
  expect_clean(source, [&] {
    for (bool bos : {false, true}) {
      if (bos && tok.bos_id() < 0) continue;
      const std::vector<int32_t> ids = tok.encode(kText, bos);
      for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size()) bug("encode gave id " + std::to_string(id) + " outside the vocabulary");
      (void)tok.decode(ids);
    }
  });
}

}  // namespace sptrain::fuzz
