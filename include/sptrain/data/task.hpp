#pragma once
// A task: a template with {text} and what the model answers. A classify task
// has a verbalizer mapping each label to a word, and the model scores the
// label words at the last position of [prompt, template(text)]. A generate
// task answers with a target text: the model predicts each of its tokens and
// then end-of-sequence, after [prompt, template(input)] (teacher forcing).
#include <string>
#include <vector>

#include "sptrain/config/config.hpp"
#include "sptrain/data/dataset.hpp"
#include "sptrain/data/encoded_example.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain {

class Task {
 public:
  // Checks the template, that every label word is one token (classify) and
  // that the tokenizer has an end-of-sequence token (generate); errors name the key.
  Task(const TaskSection& section, const Tokenizer& tokenizer);

  bool generative() const { return generative_; }
  const ExampleFields& fields() const { return generative_ ? kGenerateFields : kClassifyFields; }
  int num_labels() const { return int(label_values_.size()); }  // 0 for generate
  const std::vector<std::string>& label_values() const { return label_values_; }
  const std::vector<std::string>& label_words() const { return label_words_; }
  const std::vector<int32_t>& label_tokens() const { return label_tokens_; }
  // The loss is over the whole vocabulary (task.loss: vocab, and every generate task).
  bool vocab_loss() const { return vocab_loss_; }
  int max_length() const { return max_length_; }
  int max_target_length() const { return max_target_length_; }
  int32_t eos_token() const { return tokenizer_.eos_id(); }
  const Tokenizer& tokenizer() const { return tokenizer_; }

  // Template applied, tokenized, truncated to max_length tokens by cutting
  // the end of the text (the template's prefix and suffix stay whole). For a
  // generate task the target follows: its tokens (tokenized apart from the
  // template, without BOS) and end-of-sequence.
  EncodedExample encode(const Example& example) const;
  // The model's input for a text alone (what generation continues).
  std::vector<int32_t> encode_input(const std::string& text) const;
  // Every example; an unknown label, or a target longer than
  // task.max_target_length, is an error naming the file and line.
  std::vector<EncodedExample> encode_all(const std::vector<Example>& examples,
                                         const std::string& path) const;
  // The tokens of the template around {text}: for reports.
  std::string apply_template(const std::string& text) const { return prefix_ + text + suffix_; }

 private:
  const Tokenizer& tokenizer_;
  bool generative_ = false;
  std::string prefix_, suffix_;
  std::vector<int32_t> prefix_tokens_, suffix_tokens_;
  std::vector<std::string> label_values_, label_words_;
  std::vector<int32_t> label_tokens_;
  int max_length_ = 0;
  int max_target_length_ = 0;
  bool vocab_loss_ = false;
};

}  // namespace sptrain
