// Where a tokenizer's vocabulary comes from: GGUF metadata, a Hugging Face
// tokenizer.json, or GPT-2-style vocab.json + merges.txt.
#include <charconv>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sptrain/core/error.hpp"
#include "sptrain/core/json.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/io/gguf.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A token id from JSON: an integer from 0 to 2^31 - 1 (a float, a string or a
// huge number would otherwise be converted with undefined behaviour).
int64_t token_id(const json& v, const std::string& path, const std::string& what) {
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT32_MAX)) ||
      v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
    fail(path, ": ", what, " has id ", v.dump(), " (expected an integer from 0 to ", INT32_MAX, ")");
  return v.get<int64_t>();
}

// llama.cpp's regexes for its `tokenizer.ggml.pre` names (llama-vocab.cpp).
// Where llama.cpp rewrote a Hugging Face regex for its own engine, the
// original from tokenizer.json is used: PCRE2 runs it as it is.
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The largest tokenizer.json files (256k-token vocabularies) are tens of MB;
// this only stops a wrong path from reading a huge file.
constexpr uint64_t kMaxTokenizerFile = 1ull << 30;

std::string read_text(const std::string& path) {
  return read_whole_file(path, kMaxTokenizerFile, "tokenizer file");
}

json read_json(const std::string& path) { return parse_json(read_text(path), path); }

// A special-token entry of tokenizer_config.json: "text" or {"content": "text"}.
std::string token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

// Escapes a literal string for use in a regex (Split with a String pattern).
std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

struct PreTokenizerJson {
  std::vector<std::string> patterns;
  bool byte_level = false;
  bool add_prefix_space = false;
};

void parse_pre_tokenizer(const json& p, PreTokenizerJson& out, const std::string& where) {
  if (p.is_null()) return;
  std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const json& q : p.at("pretokenizers")) parse_pre_tokenizer(q, out, where);
  } else if (type == "ByteLevel") {
    out.byte_level = true;
    out.add_prefix_space = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) out.patterns.push_back(kGpt2Pattern);
  } else if (type == "Split") {
    std::string behavior = p.value("behavior", "");
    if (behavior != "Isolated")
      fail(where, ": Split pre-tokenizer with behavior '", behavior,
           "' is not supported (only Isolated)");
    if (p.value("invert", false)) fail(where, ": Split pre-tokenizer with invert=true is not supported");
    const json& pat = p.at("pattern");
    if (pat.contains("Regex")) {
      out.patterns.push_back(pat["Regex"].get<std::string>());
    } else if (pat.contains("String")) {
      out.patterns.push_back(regex_escape(pat["String"].get<std::string>()));
    } else {
      fail(where, ": Split pre-tokenizer pattern must be Regex or String");
    }
  } else if (type == "Digits") {
    out.patterns.push_back(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else {
    fail(where, ": pre_tokenizer type '", type,
         "' is not supported (ByteLevel, Split, Digits, Sequence are)");
  }
}

// Reads the BOS that a post-processor puts before the text. Anything added
// after the text (an EOS) is not supported.
void parse_post_processor(const json& p, std::string& bos, const std::string& where) {
  if (p.is_null()) return;
  std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const json& q : p.at("processors")) parse_post_processor(q, bos, where);
  } else if (type == "ByteLevel") {
    // Only adjusts offsets; the ids are unchanged.
  } else if (type == "TemplateProcessing") {
    const json& single = p.at("single");
    bool seen_text = false;
    for (const json& item : single) {
      if (item.contains("Sequence")) {
        seen_text = true;
      } else if (item.contains("SpecialToken")) {
        if (seen_text)
          fail(where, ": post_processor adds tokens after the text (an EOS); not supported");
        if (!bos.empty()) fail(where, ": post_processor adds more than one token before the text");
        bos = item["SpecialToken"].at("id").get<std::string>();
      }
    }
  } else {
    fail(where, ": post_processor type '", type, "' is not supported");
  }
}

// Fills bos/eos/pad ids from tokenizer_config.json (and special_tokens_map.json)
// in `dir`, where they are not known yet.
void special_ids_from_config(const fs::path& dir, const std::map<std::string, int32_t>& ids,
                             TokenizerSpec& s) {
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    fs::path p = dir / name;
    if (!fs::exists(p)) continue;
    json c = read_json(p.string());
    if (!c.is_object()) continue;
    auto id_of = [&](const char* key) -> int32_t {
      if (!c.contains(key)) return -1;
      auto it = ids.find(token_text(c[key]));
      return it == ids.end() ? -1 : it->second;
    };
    if (int32_t id = id_of("bos_token"); id >= 0) s.bos_id = id;
    if (int32_t id = id_of("eos_token"); id >= 0) s.eos_id = id;
    if (int32_t id = id_of("pad_token"); id >= 0) s.pad_id = id;
  }
}

Tokenizer build(TokenizerSpec spec) {
  std::string where = spec.source;
  try {
    return Tokenizer(std::move(spec));
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.rfind(where, 0) == 0) throw;
    fail(where, ": ", msg);
  }
}

}  // namespace

PreTokenizer pretokenizer_for(const std::string& name) {
  PreTokenizer p;
  if (name == "default") {
    // llama.cpp's fallback when a GGUF names no pre-tokenizer.
    p.patterns = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2Pattern, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else if (name == "gpt2" || name == "mpt" || name == "olmo" || name == "jais") {
    p.patterns = {kGpt2Pattern};
  } else if (name == "smollm" || name == "starcoder" || name == "refact" || name == "command-r" ||
             name == "codeshell" || name == "exaone" || name == "minerva") {
    p.patterns = {R"(\p{N})", kGpt2Pattern};
  } else if (name == "llama3" || name == "llama-bpe" || name == "llama-v3") {
    p.patterns = {kLlama3Pattern};
    p.ignore_merges = true;
  } else if (name == "dbrx" || name == "smaug-bpe") {
    p.patterns = {kLlama3Pattern};
  } else if (name == "qwen2" || name == "stablelm2") {
    p.patterns = {kQwen2Pattern};
  } else {
    fail("pre-tokenizer '", name,
         "' is not supported (known: default, gpt2, mpt, olmo, jais, smollm, starcoder, refact, "
         "command-r, codeshell, exaone, minerva, llama3, llama-bpe, llama-v3, dbrx, smaug-bpe, "
         "qwen2, stablelm2)");
  }
  return p;
}

Tokenizer Tokenizer::from_gguf(const gguf::File& f) {
  const std::string where = f.path() + " (tokenizer.ggml.*)";
  if (!f.has("tokenizer.ggml.model")) fail(f.path(), ": no tokenizer (missing tokenizer.ggml.model)");
  std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    fail(f.path(), ": tokenizer.ggml.model = '", model,
         "' is not supported (only 'gpt2', byte-level BPE)");
  TokenizerSpec s;
  s.source = where;
  s.tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (f.has("tokenizer.ggml.token_type")) {
    std::vector<int64_t> types = f.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != s.tokens.size())
      fail(f.path(), ": tokenizer.ggml.token_type has ", types.size(), " entries for ",
           s.tokens.size(), " tokens");
    for (int64_t t : types) {
      if (t < 0 || t > 6) fail(f.path(), ": tokenizer.ggml.token_type holds ", t, " (expected 0..6)");
      s.token_types.push_back(t == 0 ? int32_t(TokenType::Normal) : int32_t(t));  // 0 = undefined
    }
  }
  if (!f.has("tokenizer.ggml.merges")) fail(f.path(), ": missing tokenizer.ggml.merges");
  s.merges = f.get_string_array("tokenizer.ggml.merges");
  std::string pre = f.get_string("tokenizer.ggml.pre", "default");
  PreTokenizer p;
  try {
    p = pretokenizer_for(pre);
  } catch (const Error& e) {
    fail(f.path(), ": tokenizer.ggml.pre: ", e.what());
  }
  s.patterns = p.patterns;
  s.ignore_merges = p.ignore_merges;
  auto id = [&](const char* key) -> int32_t {
    if (!f.has(key)) return -1;
    int64_t v = f.get_int(key);
    if (v < 0 || v >= int64_t(s.tokens.size()))
      fail(f.path(), ": ", key, " = ", v, " is outside the vocabulary of ", s.tokens.size());
    return int32_t(v);
  };
  s.bos_id = id("tokenizer.ggml.bos_token_id");
  s.eos_id = id("tokenizer.ggml.eos_token_id");
  s.pad_id = id("tokenizer.ggml.padding_token_id");
  // llama.cpp adds a BOS by default for Llama 3 vocabularies, not for GPT-2 ones.
  s.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", pre == "llama3" || pre == "llama-bpe" ||
                                                               pre == "llama-v3");
  if (f.get_bool("tokenizer.ggml.add_eos_token", false))
    fail(f.path(), ": tokenizer.ggml.add_eos_token = true is not supported");
  return build(std::move(s));
}

Tokenizer Tokenizer::from_hf_json(const std::string& path) {
  json j = read_json(path);
  if (!j.is_object() || !j.contains("model")) fail(path, ": not a tokenizer.json (no 'model')");
  TokenizerSpec s;
  s.source = path;
  try {
    const json& model = j["model"];
    std::string type = model.value("type", "BPE");
    if (type != "BPE") fail(path, ": model.type '", type, "' is not supported (only BPE)");
    if (model.value("byte_fallback", false))
      fail(path, ": model.byte_fallback = true is not supported (byte-level BPE only)");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(k) && !model[k].is_null() && model[k] != "")
        fail(path, ": model.", k, " is not supported");
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() > 0)
      fail(path, ": model.dropout is not supported");
    s.ignore_merges = model.value("ignore_merges", false);

    if (j.contains("normalizer") && !j["normalizer"].is_null())
      fail(path, ": normalizer '", j["normalizer"].value("type", "?"), "' is not supported");

    // Vocabulary: model.vocab plus added_tokens (which may extend it).
    std::map<int64_t, std::string> by_id;
    for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) {
      const int64_t id = token_id(it.value(), path, "token '" + it.key() + "'");
      if (!by_id.emplace(id, it.key()).second)
        fail(path, ": id ", id, " is used by both '", by_id[id], "' and '", it.key(), "'");
    }
    std::map<int64_t, TokenType> added_type;
    if (j.contains("added_tokens")) {
      for (const json& a : j["added_tokens"]) {
        std::string content = a.at("content").get<std::string>();
        const int64_t id = token_id(a.at("id"), path, "added token '" + content + "'");
        for (const char* k : {"lstrip", "rstrip", "single_word"})
          if (a.value(k, false))
            fail(path, ": added token '", content, "' has ", k, " = true; not supported");
        auto [it, fresh] = by_id.emplace(id, content);
        if (!fresh && it->second != content)
          fail(path, ": added token '", content, "' has id ", id, " which the vocabulary gives to '",
               it->second, "'");
        added_type[id] = a.value("special", false) ? TokenType::Control : TokenType::UserDefined;
      }
    }
    if (by_id.empty()) fail(path, ": the vocabulary is empty");
    int64_t n = by_id.rbegin()->first + 1;
    if (n != int64_t(by_id.size()))
      fail(path, ": token ids are not contiguous (", by_id.size(), " tokens, largest id ", n - 1, ")");
    for (auto& [id, tok] : by_id) s.tokens.push_back(tok);
    if (!added_type.empty()) {
      s.token_types.assign(size_t(n), int32_t(TokenType::Normal));
      for (auto [id, t] : added_type) s.token_types[size_t(id)] = int32_t(t);
    }

    for (const json& m : model.at("merges")) {
      if (m.is_string()) {
        s.merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2) {
        std::string a = m[0].get<std::string>(), b = m[1].get<std::string>();
        if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos)
          fail(path, ": merge [", a, ", ", b, "] contains a space (not byte-level BPE)");
        s.merges.push_back(a + " " + b);
      } else {
        fail(path, ": a merge is neither \"a b\" nor [a, b]: ", m.dump());
      }
    }

    PreTokenizerJson pre;
    parse_pre_tokenizer(j.value("pre_tokenizer", json()), pre, path);
    if (!pre.byte_level)
      fail(path, ": no ByteLevel pre-tokenizer: only byte-level BPE tokenizers are supported");
    s.patterns = pre.patterns;
    s.add_prefix_space = pre.add_prefix_space;

    std::string bos;
    parse_post_processor(j.value("post_processor", json()), bos, path);
    std::map<std::string, int32_t> ids;
    for (size_t k = 0; k < s.tokens.size(); ++k) ids.emplace(s.tokens[k], int32_t(k));
    special_ids_from_config(fs::path(path).parent_path(), ids, s);
    if (!bos.empty()) {
      auto it = ids.find(bos);
      if (it == ids.end()) fail(path, ": post_processor adds '", bos, "', which is not a token");
      s.bos_id = it->second;
      s.add_bos = true;
    }
  } catch (const json::exception& e) {
    fail(path, ": unexpected tokenizer.json layout: ", json_error_reason(e));
  }
  return build(std::move(s));
}

Tokenizer Tokenizer::from_hf_folder(const std::string& dir) {
  fs::path d(dir);
  if (fs::exists(d / "tokenizer.json")) return from_hf_json((d / "tokenizer.json").string());
  fs::path vocab = d / "vocab.json", merges = d / "merges.txt";
  if (!fs::exists(vocab) || !fs::exists(merges))
    fail(dir, ": no tokenizer: expected tokenizer.json, or vocab.json and merges.txt");
  TokenizerSpec s;
  s.source = vocab.string();
  try {
    json v = read_json(vocab.string());
    std::map<int64_t, std::string> by_id;
    for (auto it = v.begin(); it != v.end(); ++it)
      by_id[token_id(it.value(), vocab.string(), "token '" + it.key() + "'")] = it.key();
    json config = fs::exists(d / "tokenizer_config.json") ? read_json((d / "tokenizer_config.json").string())
                                                          : json::object();
    if (config.contains("added_tokens_decoder"))
      for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
        int64_t id = -1;
        const std::string& key = it.key();
        auto r = std::from_chars(key.data(), key.data() + key.size(), id);
        if (r.ec != std::errc() || r.ptr != key.data() + key.size() || id < 0)
          fail((d / "tokenizer_config.json").string(), ": added_tokens_decoder: key '", key,
               "' is not a token id");
        by_id[id] = token_text(it.value());
      }
    int64_t n = by_id.empty() ? 0 : by_id.rbegin()->first + 1;
    if (n != int64_t(by_id.size()))
      fail(vocab.string(), ": token ids are not contiguous (", by_id.size(), " tokens, largest id ",
           n - 1, ")");
    std::map<std::string, int32_t> ids;
    for (auto& [id, tok] : by_id) {
      ids.emplace(tok, int32_t(s.tokens.size()));
      s.tokens.push_back(tok);
    }
    // Tokens that tokenizer_config.json names (bos, eos, pad, unk, added ones)
    // are matched whole in text, as the slow GPT-2 tokenizer does.
    s.token_types.assign(s.tokens.size(), int32_t(TokenType::Normal));
    auto mark = [&](const std::string& t) {
      auto it = ids.find(t);
      if (!t.empty() && it != ids.end()) s.token_types[size_t(it->second)] = int32_t(TokenType::Control);
    };
    for (const char* k : {"bos_token", "eos_token", "pad_token", "unk_token"})
      if (config.contains(k)) mark(token_text(config[k]));
    if (config.contains("added_tokens_decoder"))
      for (const auto& [k, e] : config["added_tokens_decoder"].items()) mark(token_text(e));
    std::istringstream lines(read_text(merges.string()));
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.rfind("#version", 0) == 0) continue;
      s.merges.push_back(line);
    }
    s.patterns = {kGpt2Pattern};
    s.add_prefix_space = config.value("add_prefix_space", false);
    special_ids_from_config(d, ids, s);
    s.add_bos = config.value("add_bos_token", false);
  } catch (const json::exception& e) {
    fail(dir, ": unexpected vocab.json / tokenizer_config.json layout: ", json_error_reason(e));
  }
  return build(std::move(s));
}

}  // namespace sptrain
