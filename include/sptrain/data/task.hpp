#pragma once
// The classification task: a template with {text}, a verbalizer mapping each
// label to a word, and the encoding of examples into tokens. The model scores
// the label words at the last position of [prompt, template(text)].
#include <string>
#include <vector>

#include "sptrain/config/config.hpp"
#include "sptrain/data/dataset.hpp"
#include "sptrain/data/encoded_example.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain {

class Task {
 public:
  // Checks the template and that every label word is one token; errors name the key.
  Task(const TaskSection& section, const Tokenizer& tokenizer);

  int num_labels() const { return int(label_values_.size()); }
  const std::vector<std::string>& label_values() const { return label_values_; }
  const std::vector<std::string>& label_words() const { return label_words_; }
  const std::vector<int32_t>& label_tokens() const { return label_tokens_; }
  // The loss is over the whole vocabulary (task.loss: vocab), not only the label words.
  bool vocab_loss() const { return vocab_loss_; }
  int max_length() const { return max_length_; }

  // Template applied, tokenized, truncated to max_length tokens by cutting
  // the end of the text (the template's prefix and suffix stay whole).
  EncodedExample encode(const Example& example) const;
  // Every example; an unknown label is an error naming the file and line.
  std::vector<EncodedExample> encode_all(const std::vector<Example>& examples,
                                         const std::string& path) const;
  // The tokens of the template around {text}: for reports.
  std::string apply_template(const std::string& text) const { return prefix_ + text + suffix_; }

 private:
  const Tokenizer& tokenizer_;
  std::string prefix_, suffix_;
  std::vector<int32_t> prefix_tokens_, suffix_tokens_;
  std::vector<std::string> label_values_, label_words_;
  std::vector<int32_t> label_tokens_;
  int max_length_ = 0;
  bool vocab_loss_ = false;
};

}  // namespace sptrain
