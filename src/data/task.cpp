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
  generative_ = s.kind == "generate";
  max_target_length_ = s.max_target_length;
  if (generative_) {
    SPT_CHECK(s.labels.empty(), "task.labels: a generate task has no labels");
    SPT_CHECK(tokenizer.eos_id() >= 0, "task.kind generate: the model's tokenizer (",
              tokenizer.spec().source, ") has no end-of-sequence token to end a target with");
    SPT_CHECK(max_target_length_ >= 1, "task.max_target_length must be >= 1");
    vocab_loss_ = true;
    return;
  }
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

std::vector<int32_t> Task::encode_input(const std::string& text) const {
  std::vector<int32_t> whole = tokenizer_.encode(prefix_ + text + suffix_);
  if (int(whole.size()) <= max_length_) return whole;
  // Too long: keep the template whole and cut the text's tokens.
  std::vector<int32_t> cut = tokenizer_.encode(text, false);
  const size_t keep = size_t(max_length_) - prefix_tokens_.size() - suffix_tokens_.size();
  std::vector<int32_t> out = prefix_tokens_;
  out.insert(out.end(), cut.begin(), cut.begin() + long(std::min(keep, cut.size())));
  out.insert(out.end(), suffix_tokens_.begin(), suffix_tokens_.end());
  return out;
}

EncodedExample Task::encode(const Example& ex) const {
  EncodedExample out;
  out.tokens = encode_input(ex.text);
  if (generative_) {
    out.target = tokenizer_.encode(ex.label, false);
    out.target.push_back(tokenizer_.eos_id());
    return out;
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
  if (!generative_) check_labels(examples, label_values_, path);
  std::vector<EncodedExample> out;
  out.reserve(examples.size());
  for (const Example& ex : examples) {
    out.push_back(encode(ex));
    SPT_CHECK(!out.back().tokens.empty(), path, ":", ex.line, ": the example has no tokens");
    SPT_CHECK(int64_t(out.back().target.size()) <= max_target_length_, path, ":", ex.line,
              ": the target is ", out.back().target.size(), " tokens with end-of-sequence; "
              "task.max_target_length is ", max_target_length_,
              " (raise it, or shorten the target)");
  }
  return out;
}

}  // namespace sptrain
