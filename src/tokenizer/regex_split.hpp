#pragma once
// A compiled PCRE2 pattern (UTF + Unicode properties) that splits text the way
// the `tokenizers` Split pre-tokenizer does with behavior "Isolated": every
// match is a piece and so is every stretch of text between matches.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sptrain::detail {

class RegexSplit {
 public:
  explicit RegexSplit(const std::string& pattern);
  // Appends the pieces of `text` (valid UTF-8) to `out`; they cover it exactly.
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct CodeFree {
    void operator()(pcre2_code* c) const { pcre2_code_free(c); }
  };
  std::string pattern_;
  std::unique_ptr<pcre2_code, CodeFree> code_;
};

// Byte offset of the first invalid UTF-8 sequence in `text`, or npos.
size_t find_invalid_utf8(std::string_view text);

}  // namespace sptrain::detail
