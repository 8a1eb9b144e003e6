#pragma once
// What the convert harnesses do with a model that converted: open it and read
// its header and tokenizer as every command does (read_model_config,
// Tokenizer::load). `convert` checks the header as the loader would before
// writing, so a file it wrote that the loader rejects is a broken property.
#include "fuzz_util.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::fuzz {

inline void check_converted_model(const std::string& out) {
  try {
    h5::File f = h5::File::open_read(out);
    const ModelConfig c = read_model_config(f);
    const Tokenizer tok = Tokenizer::load(f, "tokenizer");
    if (tok.vocab_size() > c.vocab_size)
      bug("converted model has " + std::to_string(tok.vocab_size()) + " tokens for " +
          std::to_string(c.vocab_size) + " embedding rows");
  } catch (const Error& e) {
    bug(std::string("convert wrote a model the loader rejects: ") + e.what());
  }
}

}  // namespace sptrain::fuzz
