// Byte-level BPE: construction, encode/decode, and storage in the model file.
// Where the vocabulary comes from (GGUF, tokenizer.json) is in sources.cpp.
#include "sptrain/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "regex_split.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/gguf.hpp"
#include "sptrain/io/h5.hpp"

namespace sptrain {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// ---- GPT-2's byte <-> printable character map ----
namespace {

// Code point standing for byte b: printable Latin-1 bytes stand for themselves,
// the other 68 (control characters, space, DEL, NBSP, soft hyphen...) are
// shifted to 256, 257, ... in byte order.
std::array<uint32_t, 256> make_byte_map() {
  std::array<uint32_t, 256> m{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    m[b] = printable ? b : next++;
  }
  return m;
}

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xc0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3f));
  } else {
    s += char(0xe0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3f));
    s += char(0x80 | (cp & 0x3f));
  }
  return s;
}

const std::array<std::string, 256>& byte_chars() {
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> c;
    auto m = make_byte_map();
    for (int b = 0; b < 256; ++b) c[size_t(b)] = utf8(m[size_t(b)]);
    return c;
  }();
  return chars;
}

const std::unordered_map<uint32_t, unsigned char>& char_bytes() {
  static const std::unordered_map<uint32_t, unsigned char> inv = [] {
    std::unordered_map<uint32_t, unsigned char> r;
    auto m = make_byte_map();
    for (int b = 0; b < 256; ++b) r[m[size_t(b)]] = static_cast<unsigned char>(b);
    return r;
  }();
  return inv;
}

}  // namespace

std::string byte_to_unicode(unsigned char b) { return byte_chars()[b]; }

bool unicode_to_bytes(std::string_view token, std::string& out) {
  const auto& inv = char_bytes();
  size_t i = 0;
  while (i < token.size()) {
    auto c = static_cast<unsigned char>(token[i]);
    uint32_t cp;
    size_t len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c >> 5) == 0x6 && i + 1 < token.size()) {
      cp = (uint32_t(c & 0x1f) << 6) | (uint32_t(token[i + 1]) & 0x3f);
      len = 2;
    } else {
      return false;  // the alphabet ends at U+0143: no 3- or 4-byte characters
    }
    auto it = inv.find(cp);
    if (it == inv.end()) return false;
    out += char(it->second);
    i += len;
  }
  return true;
}

// ---- the tokenizer ----

struct Tokenizer::Impl {
  TokenizerSpec spec;
  std::unordered_map<std::string, int32_t> ids;  // token string -> id
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  std::unordered_map<uint64_t, Merge> merges;  // (left id, right id) -> rank, merged id
  std::array<int32_t, 256> byte_id{};          // id of the one-byte token of each byte, or -1
  std::vector<detail::RegexSplit> regexes;
  // Added/special tokens matched in raw text: by first byte, longest first.
  std::array<std::vector<int32_t>, 256> specials_by_byte;
  bool has_specials = false;

  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;  // piece bytes -> ids

  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

  TokenType type(int32_t id) const {
    return spec.token_types.empty() ? TokenType::Normal : TokenType(spec.token_types[size_t(id)]);
  }
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;
};

Tokenizer::Tokenizer(TokenizerSpec spec) : impl_(std::make_shared<Impl>()) {
  Impl& m = *impl_;
  const std::string src = spec.source.empty() ? std::string("tokenizer") : spec.source;
  const auto n = int64_t(spec.tokens.size());
  SPT_CHECK(n > 0, src, ": the vocabulary is empty");
  SPT_CHECK(n < (int64_t(1) << 31), src, ": vocabulary of ", n, " tokens is too large");
  SPT_CHECK(spec.token_types.empty() || int64_t(spec.token_types.size()) == n, src, ": ",
            spec.token_types.size(), " token types for ", n, " tokens");
  for (int32_t t : spec.token_types)
    SPT_CHECK(t >= 1 && t <= 6, src, ": token type ", t, " is not one of 1..6");
  for (int32_t* id : {&spec.bos_id, &spec.eos_id, &spec.pad_id})
    SPT_CHECK(*id >= -1 && *id < n, src, ": special token id ", *id, " is outside the vocabulary of ",
              n);
  SPT_CHECK(!spec.add_bos || spec.bos_id >= 0, src, ": add_bos is set but there is no BOS token");

  m.ids.reserve(size_t(n));
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = spec.tokens[size_t(id)];
    SPT_CHECK(t.find('\0') == std::string::npos, src, ": token ", id, " contains a NUL byte");
    auto [it, fresh] = m.ids.emplace(t, id);
    SPT_CHECK(fresh, src, ": token '", t, "' appears twice (ids ", it->second, " and ", id, ")");
  }

  m.byte_id.fill(-1);
  for (int b = 0; b < 256; ++b) {
    auto it = m.ids.find(byte_chars()[size_t(b)]);
    if (it != m.ids.end()) m.byte_id[size_t(b)] = it->second;
  }

  m.merges.reserve(spec.merges.size());
  for (size_t r = 0; r < spec.merges.size(); ++r) {
    const std::string& line = spec.merges[r];
    size_t sp = line.find(' ', 1);
    SPT_CHECK(sp != std::string::npos && line.find(' ', sp + 1) == std::string::npos, src,
              ": merge #", r, " '", line, "' is not 'left right'");
    std::string a = line.substr(0, sp), b = line.substr(sp + 1);
    auto ia = m.ids.find(a), ib = m.ids.find(b), iab = m.ids.find(a + b);
    SPT_CHECK(ia != m.ids.end() && ib != m.ids.end() && iab != m.ids.end(), src, ": merge #", r,
              " '", line, "' uses or makes a token that is not in the vocabulary");
    // A pair listed twice keeps its first (lowest) rank, as in `tokenizers`.
    m.merges.emplace(Impl::key(ia->second, ib->second), Impl::Merge{int32_t(r), iab->second});
  }

  for (const auto& p : spec.patterns) m.regexes.emplace_back(p);

  std::vector<int32_t> specials;
  for (int32_t id = 0; id < n; ++id) {
    TokenType t = spec.token_types.empty() ? TokenType::Normal : TokenType(spec.token_types[size_t(id)]);
    if ((t == TokenType::Control || t == TokenType::UserDefined) && !spec.tokens[size_t(id)].empty())
      specials.push_back(id);
  }
  std::stable_sort(specials.begin(), specials.end(), [&](int32_t a, int32_t b) {
    return spec.tokens[size_t(a)].size() > spec.tokens[size_t(b)].size();
  });
  for (int32_t id : specials)
    m.specials_by_byte[static_cast<unsigned char>(spec.tokens[size_t(id)][0])].push_back(id);
  m.has_specials = !specials.empty();
  m.spec = std::move(spec);
}

// BPE on one piece: its bytes start as one-byte tokens; the adjacent pair with
// the lowest merge rank (leftmost on ties) is merged until no pair has a rank.
void Tokenizer::Impl::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(std::string(piece));
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> result;
  if (spec.ignore_merges) {
    std::string mapped;
    for (char c : piece) mapped += byte_chars()[static_cast<unsigned char>(c)];
    auto it = ids.find(mapped);
    if (it != ids.end()) result.push_back(it->second);
  }
  if (result.empty()) {
    struct Sym {
      int32_t id;
      int prev, next;
    };
    std::vector<Sym> syms;
    syms.reserve(piece.size());
    for (char c : piece) {
      int32_t id = byte_id[static_cast<unsigned char>(c)];
      if (id < 0) continue;  // byte not in the vocabulary: dropped, as `tokenizers` does without unk
      int k = int(syms.size());
      syms.push_back({id, k - 1, k + 1});
    }
    if (!syms.empty()) syms.back().next = -1;

    struct Cand {
      int32_t rank;
      int left, right;
      int32_t left_id, right_id;
      bool operator>(const Cand& o) const {
        return rank != o.rank ? rank > o.rank : left > o.left;
      }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
    auto push = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      auto it = merges.find(key(syms[size_t(l)].id, syms[size_t(r)].id));
      if (it != merges.end())
        queue.push({it->second.rank, l, r, syms[size_t(l)].id, syms[size_t(r)].id});
    };
    for (size_t k = 0; k + 1 < syms.size(); ++k) push(int(k), int(k + 1));
    std::vector<char> dead(syms.size(), 0);
    while (!queue.empty()) {
      Cand c = queue.top();
      queue.pop();
      Sym& l = syms[size_t(c.left)];
      // Stale candidates: a side was merged away or changed since it was pushed.
      if (dead[size_t(c.left)] || dead[size_t(c.right)] || l.next != c.right ||
          l.id != c.left_id || syms[size_t(c.right)].id != c.right_id)
        continue;
      l.id = merges.at(key(c.left_id, c.right_id)).merged;
      dead[size_t(c.right)] = 1;
      l.next = syms[size_t(c.right)].next;
      if (l.next >= 0) syms[size_t(l.next)].prev = c.left;
      push(l.prev, c.left);
      push(c.left, l.next);
    }
    for (size_t k = 0; k < syms.size(); ++k)
      if (!dead[k]) result.push_back(syms[k].id);
  }
  out.insert(out.end(), result.begin(), result.end());
  std::lock_guard<std::mutex> lock(cache_mu);
  if (cache.size() > (1u << 16)) cache.clear();
  cache.emplace(std::string(piece), std::move(result));
}

// Pre-tokenizes plain text (no special tokens in it) and runs BPE on each piece.
void Tokenizer::Impl::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string prefixed;
  if (spec.add_prefix_space && text.front() != ' ') {
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  std::vector<std::string_view> pieces{text}, next;
  for (const auto& re : regexes) {
    next.clear();
    for (auto p : pieces) re.split(p, next);
    pieces.swap(next);
  }
  for (auto p : pieces) bpe(p, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  return encode(text, impl_->spec.add_bos);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  const Impl& m = *impl_;
  size_t bad = detail::find_invalid_utf8(text);
  if (bad != std::string_view::npos) fail("cannot tokenize: the text is not valid UTF-8 at byte ", bad);
  std::vector<int32_t> out;
  if (add_bos) {
    SPT_CHECK(m.spec.bos_id >= 0, m.spec.source, ": BOS requested but the tokenizer has no BOS token");
    out.push_back(m.spec.bos_id);
  }
  if (!m.has_specials) {
    m.encode_text(text, out);
    return out;
  }
  // Cut out added/special tokens: at each position the longest one that matches.
  size_t plain = 0, i = 0;
  while (i < text.size()) {
    int32_t found = -1;
    for (int32_t id : m.specials_by_byte[static_cast<unsigned char>(text[i])]) {
      const std::string& s = m.spec.tokens[size_t(id)];
      if (text.compare(i, s.size(), s) == 0) {
        found = id;
        break;
      }
    }
    if (found < 0) {
      ++i;
      continue;
    }
    m.encode_text(text.substr(plain, i - plain), out);
    out.push_back(found);
    i += m.spec.tokens[size_t(found)].size();
    plain = i;
  }
  m.encode_text(text.substr(plain), out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const Impl& m = *impl_;
  std::string out;
  for (int32_t id : ids) {
    SPT_CHECK(id >= 0 && id < vocab_size(), "cannot decode token id ", id, ": the vocabulary has ",
              vocab_size(), " tokens");
    const std::string& t = m.spec.tokens[size_t(id)];
    TokenType type = m.type(id);
    if (type == TokenType::Normal || type == TokenType::Byte) {
      if (!unicode_to_bytes(t, out)) out += t;  // not byte-level text: keep it as it is
    } else {
      out += t;  // control and added tokens are literal text
    }
  }
  return out;
}

int32_t Tokenizer::token_to_id(const std::string& token) const {
  auto it = impl_->ids.find(token);
  return it == impl_->ids.end() ? -1 : it->second;
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  SPT_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary of ",
            vocab_size());
  return impl_->spec.tokens[size_t(id)];
}

TokenType Tokenizer::token_type(int32_t id) const {
  SPT_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary of ",
            vocab_size());
  return impl_->type(id);
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->spec.tokens.size()); }
int32_t Tokenizer::bos_id() const { return impl_->spec.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->spec.eos_id; }
int32_t Tokenizer::pad_id() const { return impl_->spec.pad_id; }
bool Tokenizer::add_bos() const { return impl_->spec.add_bos; }
const TokenizerSpec& Tokenizer::spec() const { return impl_->spec; }

Tokenizer Tokenizer::bytes_only() {
  TokenizerSpec s;
  for (int b = 0; b < 256; ++b) s.tokens.push_back(byte_chars()[size_t(b)]);
  s.source = "bytes-only tokenizer";
  return Tokenizer(std::move(s));
}

// ---- storage in the model file ----

void Tokenizer::save(h5::File& file, const std::string& group) const {
  const TokenizerSpec& s = impl_->spec;
  file.write_strings(group + "/tokens", s.tokens);
  if (!s.token_types.empty())
    file.write(group + "/token_types", DType::I32, Shape{int64_t(s.token_types.size())},
               s.token_types.data());
  if (!s.merges.empty()) file.write_strings(group + "/merges", s.merges);
  if (!s.patterns.empty()) file.write_strings(group + "/patterns", s.patterns);
  file.set_attr(group, "type", "bpe-bytelevel");
  file.set_attr(group, "bos_id", int64_t(s.bos_id));
  file.set_attr(group, "eos_id", int64_t(s.eos_id));
  file.set_attr(group, "pad_id", int64_t(s.pad_id));
  file.set_attr(group, "add_bos", s.add_bos);
  file.set_attr(group, "add_prefix_space", s.add_prefix_space);
  file.set_attr(group, "ignore_merges", s.ignore_merges);
  file.set_attr(group, "source", s.source);
}

Tokenizer Tokenizer::load(const h5::File& file, const std::string& group) {
  const std::string where = file.path() + ":" + group;
  if (!file.exists(group + "/tokens"))
    fail(file.path(), ": no tokenizer (missing dataset '", group, "/tokens')");
  std::string type = file.attr_string(group, "type");
  SPT_CHECK(type == "bpe-bytelevel", where, ": tokenizer type '", type,
            "' is not supported (expected bpe-bytelevel)");
  TokenizerSpec s;
  s.tokens = file.read_strings(group + "/tokens");
  if (file.exists(group + "/token_types")) {
    h5::DatasetInfo info = file.info(group + "/token_types");
    SPT_CHECK(info.shape.rank == 1 && info.shape[0] == int64_t(s.tokens.size()), where,
              ": token_types has shape ", info.shape.to_string(), " for ", s.tokens.size(),
              " tokens");
    s.token_types.resize(s.tokens.size());
    file.read(group + "/token_types", DType::I32, s.token_types.data());
  }
  if (file.exists(group + "/merges")) s.merges = file.read_strings(group + "/merges");
  if (file.exists(group + "/patterns")) s.patterns = file.read_strings(group + "/patterns");
  s.bos_id = int32_t(file.attr_int(group, "bos_id"));
  s.eos_id = int32_t(file.attr_int(group, "eos_id"));
  s.pad_id = int32_t(file.attr_int(group, "pad_id"));
  s.add_bos = file.attr_bool(group, "add_bos");
  s.add_prefix_space = file.attr_bool(group, "add_prefix_space");
  s.ignore_merges = file.attr_bool(group, "ignore_merges");
  s.source = where;
  try {
    return Tokenizer(std::move(s));
  } catch (const Error& e) {
    fail(where, ": invalid tokenizer: ", e.what());
  }
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) return from_hf_folder(path);
  std::string ext = fs::path(path).extension().string();
  if (ext == ".json") return from_hf_json(path);
  if (ext == ".gguf") return from_gguf(gguf::File::open(path));
  return load(h5::File::open_read(path));
}

}  // namespace sptrain
