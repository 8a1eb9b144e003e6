#include "sptrain/data/task.hpp"

#include <unordered_map>

#include "sptrain/core/error.hpp"

namespace sptrain {

Task::Task(const TaskSection& s, const Tokenizer& tokenizer) : tokenizer_(tokenizer) {
  const size_t at = s.template_text.find("{text}");
  SPT_CHECK(at != std::string::npos, "task.template must contain {text}: '", s.template_text, "'");
  prefix_ = s.template_text.substr(0, at);
  suffix_ = s.template_text.substr(at + 6);
  // BOS (when the tokenizer adds one) belongs to the prefix.
  prefix_tokens_ = tokenizer.encode(prefix_);
  suffix_tokens_ = tokenizer.encode(suffix_, false);
  max_length_ = s.max_length;
  SPT_CHECK(int(prefix_tokens_.size() + suffix_tokens_.size()) < max_length_,
            "task.max_length (", max_length_, ") leaves no room for text: the template alone is ",
            prefix_tokens_.size() + suffix_tokens_.size(), " tokens");
  vocab_loss_ = s.loss == "vocab";
  SPT_CHECK(s.labels.size() >= 2, "task.labels needs at least two labels");
  for (const auto& [value, word] : s.labels) {
    const std::vector<int32_t> ids = tokenizer.encode(word, false);
    SPT_CHECK(ids.size() == 1, "task.labels.", value, ": the label word '", word, "' is ",
              ids.size(), " tokens for this model's tokenizer; it must be exactly one (try a "
              "leading space, e.g. ' positive')");
    for (size_t i = 0; i < label_tokens_.size(); ++i)
      SPT_CHECK(label_tokens_[i] != ids[0], "task.labels: '", word, "' and '", label_words_[i],
                "' are the same token");
    label_values_.push_back(value);
    label_words_.push_back(word);
    label_tokens_.push_back(ids[0]);
  }
}

EncodedExample Task::encode(const Example& ex) const {
  EncodedExample out;
  std::vector<int32_t> whole = tokenizer_.encode(prefix_ + ex.text + suffix_);
  if (int(whole.size()) <= max_length_) {
    out.tokens = std::move(whole);
  } else {
    // Too long: keep the template whole and cut the text's tokens.
    std::vector<int32_t> text = tokenizer_.encode(ex.text, false);
    const size_t keep = size_t(max_length_) - prefix_tokens_.size() - suffix_tokens_.size();
    out.tokens = prefix_tokens_;
    out.tokens.insert(out.tokens.end(), text.begin(), text.begin() + long(std::min(keep, text.size())));
    out.tokens.insert(out.tokens.end(), suffix_tokens_.begin(), suffix_tokens_.end());
  }
  for (size_t i = 0; i < label_values_.size(); ++i)
    if (label_values_[i] == ex.label) {
      out.label = int32_t(i);
      out.label_token = label_tokens_[i];
      return out;
    }
  fail("internal error: label '", ex.label, "' not checked");
}

std::vector<EncodedExample> Task::encode_all(const std::vector<Example>& examples,
                                             const std::string& path) const {
  check_labels(examples, label_values_, path);
  std::vector<EncodedExample> out;
  out.reserve(examples.size());
  for (const Example& ex : examples) {
    out.push_back(encode(ex));
    SPT_CHECK(!out.back().tokens.empty(), path, ":", ex.line, ": the example has no tokens");
  }
  return out;
}

}  // namespace sptrain
