#pragma once
// Byte-level BPE, the tokenizer of GPT-2, OPT, Llama 3 and SmolLM2.
//
// encode(text):
//   1. added/special tokens (e.g. "<|im_start|>") are cut out of the text as
//      whole tokens, longest first, the way Hugging Face `tokenizers` does;
//   2. the rest is split by the pre-tokenizer regexes (PCRE2, Unicode mode),
//      applied in order, each keeping both matches and the text between them;
//   3. each piece's bytes are mapped to GPT-2's printable byte alphabet and
//      merged by BPE rank (lowest rank first, leftmost on ties).
// Token strings are stored in that byte-level alphabet ("Ġthe" for " the").
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sptrain {
namespace h5 { class File; }
namespace gguf { class File; }

// Token kinds, numbered as llama.cpp's GGUF `tokenizer.ggml.token_type`.
enum class TokenType : int32_t {
  Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

// Everything that defines a tokenizer; what save() writes and load() reads.
struct TokenizerSpec {
  std::vector<std::string> tokens;      // id -> token string (byte-level alphabet)
  std::vector<int32_t> token_types;     // id -> TokenType; empty = all Normal
  std::vector<std::string> merges;      // "left right", by rank (first = merged first)
  std::vector<std::string> patterns;    // pre-tokenizer regexes, applied in order
  bool add_prefix_space = false;        // prepend " " to text not starting with a space
  bool ignore_merges = false;           // a piece that is a whole token is not merged (Llama 3)
  bool add_bos = false;                 // encode() puts bos_id first by default
  int32_t bos_id = -1, eos_id = -1, pad_id = -1;  // -1 = none
  std::string source;                   // where it came from, for messages
};

class Tokenizer {
 public:
  // Validates the spec and builds the lookup tables; Error on a bad spec.
  explicit Tokenizer(TokenizerSpec spec);

  // 256 byte tokens and no merges: for random test models without a vocabulary.
  static Tokenizer bytes_only();
  // From GGUF metadata `tokenizer.ggml.*` (model "gpt2" only).
  static Tokenizer from_gguf(const gguf::File& file);
  // From a Hugging Face tokenizer.json (model BPE with a ByteLevel pre-tokenizer).
  // A tokenizer_config.json beside it names the bos/eos/pad tokens.
  static Tokenizer from_hf_json(const std::string& path);
  // From a Hugging Face model folder: tokenizer.json, or else the GPT-2-style
  // vocab.json + merges.txt (with tokenizer_config.json / special_tokens_map.json).
  static Tokenizer from_hf_folder(const std::string& dir);
  // From the group `group` of an sptrain model file.
  static Tokenizer load(const h5::File& file, const std::string& group = "tokenizer");
  // By file kind: *.json (tokenizer.json), *.gguf, a folder, else an sptrain model file.
  static Tokenizer from_file(const std::string& path);

  void save(h5::File& file, const std::string& group = "tokenizer") const;

  std::vector<int32_t> encode(std::string_view text) const;  // BOS as the tokenizer says
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  // Token string (byte-level alphabet) -> id, or -1 when not in the vocabulary.
  int32_t token_to_id(const std::string& token) const;
  const std::string& id_to_token(int32_t id) const;  // Error when out of range
  TokenType token_type(int32_t id) const;
  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;
  bool add_bos() const;
  const TokenizerSpec& spec() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // immutable after construction (the BPE cache locks)
};

// GPT-2's reversible map from bytes to printable Unicode characters.
std::string byte_to_unicode(unsigned char b);  // UTF-8 of the character for byte b
// Inverse: byte-level token string -> raw bytes; false if a character is not in the alphabet.
bool unicode_to_bytes(std::string_view token, std::string& out);

// Pre-tokenizer regexes of llama.cpp's `tokenizer.ggml.pre` names. Error for
// an unknown name (the message lists the known ones).
struct PreTokenizer {
  std::vector<std::string> patterns;
  bool ignore_merges = false;
};
PreTokenizer pretokenizer_for(const std::string& gguf_pre_name);

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex in `tokenizers`).
extern const char* const kGpt2Pattern;

}  // namespace sptrain
