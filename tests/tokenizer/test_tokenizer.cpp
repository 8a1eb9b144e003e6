// Tokenizer unit tests that need no model: the byte alphabet, a hand-made
// vocabulary with merges whose result is worked out by hand, loading from a
// tokenizer.json, and storage in an HDF5 file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sptrain/core/error.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("sptrain_tok_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(ByteAlphabet, KnownCharacters) {
  // GPT-2's alphabet: printable bytes are themselves, the others move to U+0100...
  EXPECT_EQ(byte_to_unicode('a'), "a");
  EXPECT_EQ(byte_to_unicode('!'), "!");
  EXPECT_EQ(byte_to_unicode(0), "\xC4\x80");      // U+0100 Ā
  EXPECT_EQ(byte_to_unicode('\n'), "\xC4\x8A");   // U+010A Ċ
  EXPECT_EQ(byte_to_unicode(' '), "\xC4\xA0");    // U+0120 Ġ
  EXPECT_EQ(byte_to_unicode(127), "\xC4\xA1");    // U+0121 ġ (after the 33 bytes 0..32)
  EXPECT_EQ(byte_to_unicode(173), "\xC5\x83");    // U+0143 Ń, the last one
  EXPECT_EQ(byte_to_unicode(0xe9), "\xC3\xA9");   // é is printable Latin-1
  std::string all;
  for (int b = 0; b < 256; ++b) all += byte_to_unicode(static_cast<unsigned char>(b));
  std::string back;
  ASSERT_TRUE(unicode_to_bytes(all, back));
  ASSERT_EQ(back.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(static_cast<unsigned char>(back[size_t(b)]), b);
  EXPECT_FALSE(unicode_to_bytes("\xE4\xBD\xA0", back));  // 你 is not in the alphabet
}

TEST(BytesOnly, EveryByteIsItsOwnToken) {
  Tokenizer t = Tokenizer::bytes_only();
  EXPECT_EQ(t.vocab_size(), 256);
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_FALSE(t.add_bos());
  std::string text = "h\xC3\xA9llo\n\t 9";  // "héllo\n\t 9"
  std::vector<int32_t> ids = t.encode(text);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t k = 0; k < text.size(); ++k) EXPECT_EQ(ids[k], static_cast<unsigned char>(text[k]));
  EXPECT_EQ(t.decode(ids), text);
  EXPECT_THAT(t.encode(""), ElementsAre());
}

// 256 byte tokens (id = byte) and a few merged tokens, with ranks chosen so
// that the merge order is not left to right.
TokenizerSpec tiny_spec() {
  TokenizerSpec s;
  for (int b = 0; b < 256; ++b) s.tokens.push_back(byte_to_unicode(static_cast<unsigned char>(b)));
  for (const char* t : {"he", "ll", "hell", "hello", "\xC4\xA0w", "or", "\xC4\xA0wor", "<|end|>"})
    s.tokens.push_back(t);  // ids 256..263
  s.token_types.assign(s.tokens.size(), int32_t(TokenType::Normal));
  s.token_types[263] = int32_t(TokenType::Control);
  s.merges = {"l l", "h e", "he ll", "hell o", "o r", "\xC4\xA0 w", "\xC4\xA0w or"};
  s.patterns = {kGpt2Pattern};
  s.bos_id = 263;
  s.eos_id = 263;
  s.source = "tiny";
  return s;
}

TEST(Bpe, HandWorkedExample) {
  Tokenizer t(tiny_spec());
  // "hello": l+l (rank 0), h+e (1), he+ll (2), hell+o (3) -> "hello".
  // " world": o+r (4) before Ġ+w (5), then Ġw+or (6) -> "Ġwor", "l", "d".
  EXPECT_THAT(t.encode("hello world"), ElementsAre(259, 262, 'l', 'd'));
  // Equal ranks: the leftmost pair merges first.
  EXPECT_THAT(t.encode("lll"), ElementsAre(257, 'l'));
  EXPECT_THAT(t.encode("llll"), ElementsAre(257, 257));
  // The regex splits " hello" into one piece "Ġhello": no merge joins Ġ and h.
  EXPECT_THAT(t.encode(" hello"), ElementsAre(' ', 259));
  // Special tokens are cut out of the text whole.
  EXPECT_THAT(t.encode("hello<|end|>he"), ElementsAre(259, 263, 256));
  EXPECT_THAT(t.encode("<|end|><|end"), ElementsAre(263, '<', '|', 'e', 'n', 'd'));
  EXPECT_THAT(t.encode("hello", /*add_bos=*/true), ElementsAre(263, 259));
  EXPECT_EQ(t.decode(t.encode("hello world<|end|> x\n")), "hello world<|end|> x\n");
  EXPECT_EQ(t.token_to_id("hell"), 258);
  EXPECT_EQ(t.token_to_id("nope"), -1);
  EXPECT_EQ(t.id_to_token(260), "\xC4\xA0w");
}

TEST(Bpe, PatternsApplyInOrder) {
  TokenizerSpec s = tiny_spec();
  s.tokens.push_back("12");  // id 264, merged from "1 2"
  s.token_types.push_back(int32_t(TokenType::Normal));
  s.merges.push_back("1 2");
  Tokenizer gpt2(s);
  EXPECT_THAT(gpt2.encode("x12"), ElementsAre('x', 264));
  s.patterns = {R"(\p{N})", kGpt2Pattern};  // SmolLM2: every digit alone first
  Tokenizer digits(s);
  EXPECT_THAT(digits.encode("x12"), ElementsAre('x', '1', '2'));
}

TEST(Bpe, IgnoreMergesTakesWholeTokens) {
  TokenizerSpec s = tiny_spec();
  s.tokens.push_back("hlo");  // no merge makes it
  s.token_types.push_back(int32_t(TokenType::Normal));
  Tokenizer plain(s);
  EXPECT_THAT(plain.encode("hlo"), ElementsAre('h', 'l', 'o'));
  s.ignore_merges = true;
  Tokenizer ignore(s);
  EXPECT_THAT(ignore.encode("hlo"), ElementsAre(264));
}

TEST(Bpe, BadInputAndBadSpecsAreErrors) {
  Tokenizer t(tiny_spec());
  try {
    t.encode("ok \xFF bad");
    FAIL() << "invalid UTF-8 accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not valid UTF-8 at byte 3"));
  }
  EXPECT_THROW(t.decode({300}), Error);
  TokenizerSpec dup = tiny_spec();
  dup.tokens[257] = "he";
  EXPECT_THROW(Tokenizer{dup}, Error);
  TokenizerSpec bad_merge = tiny_spec();
  bad_merge.merges.push_back("x y");  // "xy" is not a token
  try {
    Tokenizer{bad_merge};
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tiny: merge #7 'x y'"));
  }
  TokenizerSpec bad_re = tiny_spec();
  bad_re.patterns = {"(unclosed"};
  EXPECT_THROW(Tokenizer{bad_re}, Error);
  TokenizerSpec bad_bos = tiny_spec();
  bad_bos.bos_id = 999;
  EXPECT_THROW(Tokenizer{bad_bos}, Error);
  EXPECT_THROW(pretokenizer_for("no-such-pre"), Error);
}

TEST(TokenizerFile, SaveLoadRoundTrip) {
  fs::path dir = temp_dir("h5");
  std::string path = (dir / "tok.h5").string();
  TokenizerSpec s = tiny_spec();
  s.add_bos = true;
  s.pad_id = 0;
  Tokenizer t(s);
  {
    h5::File f = h5::File::create(path);
    t.save(f);
    Tokenizer::bytes_only().save(f, "other/tok");
  }
  h5::File f = h5::File::open_read(path);
  Tokenizer u = Tokenizer::load(f);
  EXPECT_EQ(u.spec().tokens, s.tokens);
  EXPECT_EQ(u.spec().token_types, s.token_types);
  EXPECT_EQ(u.spec().merges, s.merges);
  EXPECT_EQ(u.spec().patterns, s.patterns);
  EXPECT_EQ(u.bos_id(), 263);
  EXPECT_EQ(u.eos_id(), 263);
  EXPECT_EQ(u.pad_id(), 0);
  EXPECT_TRUE(u.add_bos());
  EXPECT_EQ(u.encode("hello world<|end|>"), t.encode("hello world<|end|>"));
  Tokenizer b = Tokenizer::load(f, "other/tok");
  EXPECT_EQ(b.vocab_size(), 256);
  EXPECT_TRUE(b.spec().merges.empty());
  EXPECT_EQ(b.encode("ab"), (std::vector<int32_t>{'a', 'b'}));
  try {
    Tokenizer::load(f, "missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing/tokens"));
  }
  fs::remove_all(dir);
}

// The tiny vocabulary as a Hugging Face tokenizer.json.
nlohmann::json tiny_tokenizer_json(bool list_merges) {
  using nlohmann::json;
  TokenizerSpec s = tiny_spec();
  json vocab = json::object();
  for (size_t k = 0; k < 263; ++k) vocab[s.tokens[k]] = k;
  json merges = json::array();
  for (const auto& m : s.merges) {
    size_t sp = m.find(' ');
    if (list_merges)
      merges.push_back(json::array({m.substr(0, sp), m.substr(sp + 1)}));
    else
      merges.push_back(m);
  }
  json j;
  j["version"] = "1.0";
  j["added_tokens"] = json::array({{{"id", 263}, {"content", "<|end|>"}, {"single_word", false},
                                    {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                                    {"special", true}}});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Digits"}, {"individual_digits", true}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                     {"use_regex", true}}})}};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|end|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"special_tokens", {{"<|end|>", {{"id", "<|end|>"}, {"ids", {263}}, {"tokens", {"<|end|>"}}}}}}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"},     {"dropout", nullptr}, {"unk_token", nullptr},
                {"byte_fallback", false}, {"vocab", vocab}, {"merges", merges}};
  return j;
}

TEST(TokenizerJson, LoadsBothMergeFormsAndTheBos) {
  for (bool list_merges : {false, true}) {
    fs::path dir = temp_dir(list_merges ? "json_list" : "json_str");
    std::ofstream(dir / "tokenizer.json") << tiny_tokenizer_json(list_merges).dump();
    std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<|end|>", "pad_token": {"content": "l"}})";
    Tokenizer t = Tokenizer::from_hf_folder(dir.string());
    EXPECT_EQ(t.vocab_size(), 264);
    EXPECT_TRUE(t.add_bos());
    EXPECT_EQ(t.bos_id(), 263);
    EXPECT_EQ(t.eos_id(), 263);
    EXPECT_EQ(t.pad_id(), 'l');
    EXPECT_EQ(t.token_type(263), TokenType::Control);
    EXPECT_THAT(t.encode("hello world"), ElementsAre(263, 259, 262, 'l', 'd'));
    EXPECT_THAT(t.encode("x12<|end|>", false), ElementsAre('x', '1', '2', 263));
    fs::remove_all(dir);
  }
}

TEST(TokenizerJson, UnsupportedPartsAreNamed) {
  fs::path dir = temp_dir("json_bad");
  auto expect_error = [&](nlohmann::json j, const std::string& what) {
    std::ofstream(dir / "tokenizer.json") << j.dump();
    try {
      Tokenizer::from_hf_json((dir / "tokenizer.json").string());
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("tokenizer.json"));
      EXPECT_THAT(e.what(), HasSubstr(what));
    }
  };
  auto j = tiny_tokenizer_json(false);
  j["model"]["type"] = "WordPiece";
  expect_error(j, "WordPiece");
  j = tiny_tokenizer_json(false);
  j["normalizer"] = {{"type", "NFKC"}};
  expect_error(j, "NFKC");
  j = tiny_tokenizer_json(false);
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error(j, "Whitespace");
  j = tiny_tokenizer_json(false);
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "x"}}}, {"behavior", "Removed"}, {"invert", false}};
  expect_error(j, "Removed");
  j = tiny_tokenizer_json(false);
  j["post_processor"]["single"].push_back({{"SpecialToken", {{"id", "<|end|>"}, {"type_id", 0}}}});
  expect_error(j, "after the text");
  fs::remove_all(dir);
}

// Files from strangers (docs/security.md): each is an Error naming the file.
TEST(TokenizerJson, HostileFilesAreErrorsNamingTheFile) {
  fs::path dir = temp_dir("json_hostile");
  auto error_of = [](auto&& load) -> std::string {
    try {
      load();
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no sptrain::Error";
    return "";
  };
  // Nesting that would exhaust the stack of nlohmann's (recursive) copy.
  auto j = tiny_tokenizer_json(false);
  j["pre_tokenizer"] = nullptr;
  std::string text = j.dump();
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  text.replace(text.find("\"pre_tokenizer\":null"), 20, "\"pre_tokenizer\":" + deep);
  std::ofstream(dir / "tokenizer.json") << text;
  const std::string path = (dir / "tokenizer.json").string();
  EXPECT_THAT(error_of([&] { Tokenizer::from_hf_json(path); }),
              HasSubstr(path + ": JSON nests deeper than 64 levels"));
  // A folder where tokenizer.json should be.
  fs::remove(dir / "tokenizer.json");
  fs::create_directory(dir / "tokenizer.json");
  EXPECT_THAT(error_of([&] { Tokenizer::from_hf_folder(dir.string()); }), HasSubstr(path + ": is a folder, not a tokenizer file"));
  fs::remove(dir / "tokenizer.json");
  // Token ids that are not integers of int32 range (a fuzz find: 1.6e98 was
  // converted to int64 with undefined behaviour), in the vocabulary and in
  // added_tokens.
  using nlohmann::json;
  for (const auto& bad : {json(1.6e98), json(2.5), json(-3), json(uint64_t(1) << 40), json("7")}) {
    j = tiny_tokenizer_json(false);
    j["model"]["vocab"]["zz"] = bad;
    std::ofstream(dir / "tokenizer.json") << j.dump();
    EXPECT_THAT(error_of([&] { Tokenizer::from_hf_json(path); }),
                HasSubstr(path + ": token 'zz' has id " + bad.dump())) << bad.dump();
    j = tiny_tokenizer_json(false);
    j["added_tokens"] = json::array({{{"id", bad}, {"content", "<x>"}}});
    std::ofstream(dir / "tokenizer.json") << j.dump();
    EXPECT_THAT(error_of([&] { Tokenizer::from_hf_json(path); }),
                HasSubstr(path + ": added token '<x>' has id " + bad.dump())) << bad.dump();
  }
  fs::remove(dir / "tokenizer.json");
  // GPT-2 slow files whose tokenizer_config.json names an id that is not a number.
  std::ofstream(dir / "vocab.json") << R"({"a": 0, "b": 1})";
  std::ofstream(dir / "merges.txt") << "#version: 0.2\n";
  std::ofstream(dir / "tokenizer_config.json") << R"({"added_tokens_decoder": {"x2": {"content": "<s>"}}})";
  EXPECT_THAT(error_of([&] { Tokenizer::from_hf_folder(dir.string()); }),
              HasSubstr((dir / "tokenizer_config.json").string() + ": added_tokens_decoder: key 'x2' is not a token id"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sptrain
