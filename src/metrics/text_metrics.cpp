#include "sptrain/metrics/text_metrics.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include "sptrain/core/error.hpp"

namespace sptrain {

namespace {

// Length of the UTF-8 character starting at s[i] (1 for a stray byte).
size_t char_length(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  return std::min(n, s.size() - i);
}

uint32_t code_point(const std::string& s, size_t i, size_t n) {
  const auto b = [&](size_t k) { return uint32_t(static_cast<unsigned char>(s[i + k])); };
  switch (n) {
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    case 4: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    default: return b(0);
  }
}

// Python's str.isspace().
bool python_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Python's str.split(): runs of whitespace separate the words.
std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::string word;
  for (size_t i = 0; i < s.size();) {
    const size_t n = char_length(s, i);
    if (python_space(code_point(s, i, n))) {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word.append(s, i, n);
    }
    i += n;
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

// Python's str.strip() (ends = both) or rstrip().
std::string strip(const std::string& s, bool left) {
  size_t begin = 0, end = s.size();
  std::vector<size_t> starts;  // character starts, to step back over the last one
  for (size_t i = 0; i < s.size(); i += char_length(s, i)) starts.push_back(i);
  size_t k = 0;
  if (left)
    while (k < starts.size() && python_space(code_point(s, starts[k], char_length(s, starts[k])))) ++k;
  begin = k < starts.size() ? starts[k] : s.size();
  size_t last = starts.size();
  while (last > k && python_space(code_point(s, starts[last - 1], char_length(s, starts[last - 1])))) --last;
  end = last < starts.size() ? starts[last] : s.size();
  return begin < end ? s.substr(begin, end - begin) : std::string();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

bool digit(char c) { return c >= '0' && c <= '9'; }

// One pass of re.sub(r'(A)(B)', replacement, s) for single-character classes
// A and B: scanning left to right, every non-overlapping match of a
// character in A followed by one in B is rewritten by `write`. The matched
// characters are all ASCII but for [^0-9], whose match of a byte of a
// multi-byte character is written back unchanged, as Python's of the whole
// character would be.
template <typename InA, typename InB, typename Write>
std::string pair_pass(const std::string& s, InA in_a, InB in_b, Write write) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && in_a(s[i]) && in_b(s[i + 1])) {
      write(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> bleu_tokens(const std::string& text) {
  // sacreBLEU applies the tokenizer to the rstripped line.
  std::string line = strip(text, false);
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  line = " " + line + " ";
  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
  std::string spaced;
  spaced.reserve(line.size() * 2);
  for (char c : line) {
    const bool punct = (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
                       (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
    if (punct) {
      spaced += ' ';
      spaced += c;
      spaced += ' ';
    } else {
      spaced += c;
    }
  }
  const auto period_comma = [](char c) { return c == '.' || c == ','; };
  const auto not_digit = [](char c) { return !digit(c); };
  // ([^0-9])([\.,]) -> "\1 \2 "
  spaced = pair_pass(spaced, not_digit, period_comma, [](std::string& o, char a, char b) {
    o += a, o += ' ', o += b, o += ' ';
  });
  // ([\.,])([^0-9]) -> " \1 \2"
  spaced = pair_pass(spaced, period_comma, not_digit, [](std::string& o, char a, char b) {
    o += ' ', o += a, o += ' ', o += b;
  });
  // ([0-9])(-) -> "\1 \2 "
  spaced = pair_pass(spaced, digit, [](char c) { return c == '-'; }, [](std::string& o, char a, char b) {
    o += a, o += ' ', o += b, o += ' ';
  });
  return split_words(spaced);
}

std::vector<std::string> rouge_tokens(const std::string& text) {
  // lowercase, then every run of characters other than [a-z0-9] separates tokens.
  std::vector<std::string> out;
  std::string token;
  auto flush = [&] {
    if (!token.empty()) out.push_back(std::move(token));
    token.clear();
  };
  for (size_t i = 0; i < text.size();) {
    const size_t n = char_length(text, i);
    const uint32_t c = code_point(text, i, n);
    i += n;
    // The only characters outside ASCII whose lowercase holds [a-z]:
    // U+0130 (-> "i" + U+0307) and the Kelvin sign U+212A (-> "k").
    char keep = 0;
    if (c < 0x80 && std::isalnum(int(c))) keep = char(std::tolower(int(c)));
    if (c == 0x130) keep = 'i';
    if (c == 0x212A) keep = 'k';
    if (keep) {
      token += keep;
      if (c == 0x130) flush();  // the combining dot after the i separates
    } else {
      flush();
    }
  }
  flush();
  return out;
}

BleuStats bleu_stats(const std::string& hypothesis, const std::vector<std::string>& references) {
  SPT_CHECK(!references.empty(), "BLEU: a hypothesis without references");
  using Ngram = std::vector<std::string>;
  auto ngrams = [](const std::vector<std::string>& t) {
    std::map<Ngram, int> counts;
    for (size_t n = 1; n <= 4; ++n)
      for (size_t i = 0; i + n <= t.size(); ++i) ++counts[Ngram(t.begin() + long(i), t.begin() + long(i + n))];
    return counts;
  };
  // Each n-gram's count in the reference where it is most frequent.
  std::map<Ngram, int> ref_max;
  std::vector<size_t> ref_lens;
  for (const std::string& r : references) {
    const std::vector<std::string> t = bleu_tokens(r);
    ref_lens.push_back(t.size());
    for (const auto& [g, c] : ngrams(t)) ref_max[g] = std::max(ref_max[g], c);
  }
  const std::vector<std::string> hyp = bleu_tokens(hypothesis);
  BleuStats s;
  s.hyp_len = double(hyp.size());
  // The reference length closest to the hypothesis's, the shorter on ties.
  long best = -1;
  for (size_t len : ref_lens) {
    const long diff = std::labs(long(hyp.size()) - long(len));
    if (best < 0 || diff < std::labs(long(hyp.size()) - best) ||
        (diff == std::labs(long(hyp.size()) - best) && long(len) < best))
      best = long(len);
  }
  s.ref_len = double(best);
  for (const auto& [g, c] : ngrams(hyp)) {
    s.total[g.size() - 1] += c;
    auto it = ref_max.find(g);
    if (it != ref_max.end()) s.correct[g.size() - 1] += std::min(c, it->second);
  }
  return s;
}

double bleu_score(const BleuStats& s) {
  // sacreBLEU's compute_bleu with smooth_method 'exp', effective_order off.
  double bp = 1.0;
  if (s.hyp_len < s.ref_len) bp = s.hyp_len > 0 ? std::exp(1.0 - s.ref_len / s.hyp_len) : 0.0;
  if (std::all_of(s.correct.begin(), s.correct.end(), [](double c) { return c == 0; })) return 0.0;
  std::array<double, 4> precisions{};
  double smooth = 1.0;
  for (size_t n = 0; n < 4; ++n) {
    if (s.total[n] == 0) break;
    if (s.correct[n] == 0) {
      smooth *= 2;
      precisions[n] = 100.0 / (smooth * s.total[n]);
    } else {
      precisions[n] = 100.0 * s.correct[n] / s.total[n];
    }
  }
  double log_sum = 0;
  for (double p : precisions) log_sum += p == 0.0 ? -9999999999.0 : std::log(p);
  return bp * std::exp(log_sum / 4);
}

double rouge_l(const std::string& hypothesis, const std::vector<std::string>& references) {
  const std::vector<std::string> hyp = rouge_tokens(hypothesis);
  double best = 0;
  std::vector<int> prev, cur;
  for (const std::string& r : references) {
    const std::vector<std::string> ref = rouge_tokens(r);
    if (ref.empty() || hyp.empty()) continue;  // F = 0
    // Longest common subsequence, one row of the table at a time.
    prev.assign(hyp.size() + 1, 0);
    for (size_t i = 1; i <= ref.size(); ++i) {
      cur.assign(hyp.size() + 1, 0);
      for (size_t j = 1; j <= hyp.size(); ++j)
        cur[j] = ref[i - 1] == hyp[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
      std::swap(prev, cur);
    }
    const double lcs = prev[hyp.size()];
    const double p = lcs / double(hyp.size()), rec = lcs / double(ref.size());
    const double f = p + rec > 0 ? 2 * p * rec / (p + rec) : 0.0;
    best = std::max(best, f);
  }
  return best;
}

bool exact_match(const std::string& hypothesis, const std::vector<std::string>& references) {
  const std::string h = strip(hypothesis, true);
  return std::any_of(references.begin(), references.end(),
                     [&](const std::string& r) { return strip(r, true) == h; });
}

void TextScoreSums::add(const std::string& hypothesis, const std::vector<std::string>& references) {
  const BleuStats b = bleu_stats(hypothesis, references);
  bleu_.hyp_len += b.hyp_len;
  bleu_.ref_len += b.ref_len;
  for (size_t n = 0; n < 4; ++n) {
    bleu_.correct[n] += b.correct[n];
    bleu_.total[n] += b.total[n];
  }
  rouge_l_ += rouge_l(hypothesis, references);
  exact_ += exact_match(hypothesis, references) ? 1 : 0;
  count_ += 1;
}

TextScores TextScoreSums::scores() const {
  TextScores t;
  t.count = int64_t(count_);
  if (count_ == 0) return t;
  t.bleu = bleu_score(bleu_);
  t.rouge_l = 100.0 * rouge_l_ / count_;
  t.exact_match = 100.0 * exact_ / count_;
  return t;
}

std::vector<double> TextScoreSums::values() const {
  std::vector<double> v{bleu_.hyp_len, bleu_.ref_len};
  v.insert(v.end(), bleu_.correct.begin(), bleu_.correct.end());
  v.insert(v.end(), bleu_.total.begin(), bleu_.total.end());
  v.insert(v.end(), {rouge_l_, exact_, count_});
  return v;
}

void TextScoreSums::set_values(const std::vector<double>& v) {
  SPT_CHECK(v.size() == 13, "internal error: ", v.size(), " text score sums");
  bleu_.hyp_len = v[0];
  bleu_.ref_len = v[1];
  std::copy(v.begin() + 2, v.begin() + 6, bleu_.correct.begin());
  std::copy(v.begin() + 6, v.begin() + 10, bleu_.total.begin());
  rouge_l_ = v[10];
  exact_ = v[11];
  count_ = v[12];
}

}  // namespace sptrain
