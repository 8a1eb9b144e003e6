// Harness: the tokenizer on arbitrary bytes (src/tokenizer/tokenizer.cpp,
// regex_split.cpp): special-token cutting, the pre-tokenizer regexes, BPE.
// Input: one byte choosing the pre-tokenizer and flags, then the text.
// Checked: invalid UTF-8 is an Error; valid text encodes to ids in the
// vocabulary and decodes back to exactly the same bytes.
#include <algorithm>
#include <array>
#include <memory>

#include "fuzz_util.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

using namespace sptrain;

namespace {

// A small byte-level BPE vocabulary: the 256 byte tokens, merges of common
// English pieces, two control tokens and a user-defined one (a prefix of
// another special token, so longest-match matters).
TokenizerSpec base_spec() {
  TokenizerSpec s;
  for (int b = 0; b < 256; ++b) s.tokens.push_back(byte_to_unicode(static_cast<unsigned char>(b)));
  const std::string sp = byte_to_unicode(' ');
  const std::vector<std::pair<std::string, std::string>> merges = {
      {sp, "t"}, {"h", "e"}, {sp + "t", "he"}, {"i", "n"}, {"a", "n"}, {sp, "a"}, {"e", "r"},
      {"o", "n"}, {"r", "e"}, {sp + "a", "n"}, {"in", "g"}, {"1", "2"}, {"12", "3"}, {sp, sp},
      {sp + sp, sp + sp}, {"'", "s"}, {"\xC3\x83", "\xC2\xA9"}};  // bytes C3 A9: "é"
  for (const auto& [a, b] : merges) {
    s.merges.push_back(a + " " + b);
    if (std::find(s.tokens.begin(), s.tokens.end(), a + b) == s.tokens.end()) s.tokens.push_back(a + b);
  }
  s.token_types.assign(s.tokens.size(), int32_t(TokenType::Normal));
  for (const char* special : {"<|im_start|>", "<|im_end|>", "<|im"}) {
    s.tokens.push_back(special);
    s.token_types.push_back(int32_t(special[4] == 0 ? TokenType::UserDefined : TokenType::Control));
  }
  s.bos_id = int32_t(s.tokens.size()) - 3;
  s.source = "fuzz tokenizer";
  return s;
}

// Variant k: pre-tokenizer (none or one of llama.cpp's names) and add_prefix_space.
const Tokenizer& tokenizer(unsigned k) {
  static const char* const kPre[] = {nullptr, "default", "gpt2", "smollm", "llama3", "qwen2", "dbrx"};
  constexpr unsigned kVariants = 2 * std::size(kPre);
  static std::array<std::unique_ptr<Tokenizer>, kVariants> cache;
  k %= kVariants;
  if (!cache[k]) {
    TokenizerSpec s = base_spec();
    if (const char* pre = kPre[k / 2]) {
      PreTokenizer p = pretokenizer_for(pre);
      s.patterns = p.patterns;
      s.ignore_merges = p.ignore_merges;
    }
    s.add_prefix_space = k % 2 == 1;
    cache[k] = std::make_unique<Tokenizer>(std::move(s));
  }
  return *cache[k];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Tokenizer& tok = tokenizer(data[0]);
  const std::string_view text = fuzz::as_text(data + 1, size - 1);
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, data[0] & 0x80);
  } catch (const Error& e) {
    if (std::string_view(e.what()).find("not valid UTF-8") == std::string_view::npos)
      fuzz::bug(std::string("unexpected error: ") + e.what());
    return 0;
  }
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) fuzz::bug("encode gave id " + std::to_string(id) + " outside the vocabulary");
  // Without the BOS and the prefix space, decoding gives back the text exactly.
  if (!(data[0] & 0x80) && !tok.spec().add_prefix_space && tok.decode(ids) != text)
    fuzz::bug("decode(encode(text)) != text");
  return 0;
}
