#pragma once
// Task data: one labelled example per line, TSV (`text<TAB>label`) or JSONL
// (`{"text": ..., "label": ...}`). Every problem is an Error naming the file
// and the 1-based line.
#include <cstddef>
#include <istream>
#include <map>
#include <string>
#include <vector>

namespace sptrain {

struct Example {
  std::string text;   // the input
  std::string label;  // the answer as written in the data: a class label (JSON integers
                      // become decimal strings) or, for a generate task, the target text
  int line = 0;       // 1-based line in the file, for error messages
};

// What a task's lines hold: the JSONL keys of the input and the answer (the
// names errors use for TSV too), and whether the answer may be a JSON integer.
struct ExampleFields {
  const char* text;
  const char* answer;
  bool integer_answer;
};
inline constexpr ExampleFields kClassifyFields{"text", "label", true};    // text<TAB>label
inline constexpr ExampleFields kGenerateFields{"input", "target", false};  // input<TAB>target

// The longest line a data file may have (bytes before its "\n"): a bound on what
// one example can make sptrain read (an example is truncated to task.max_length
// tokens anyway).
inline constexpr size_t kMaxLineBytes = size_t(1) << 20;

// The lines of a text stream without their line endings ("\n" or "\r\n"), a
// leading UTF-8 byte-order mark removed. Read in blocks, so that a line longer
// than kMaxLineBytes (a binary file, /dev/zero) is an error naming `path` and
// the line instead of filling memory.
std::vector<std::string> read_text_lines(std::istream& in, const std::string& path);

// Reads a whole dataset. format: "auto" (by extension: .tsv/.txt -> tsv,
// .jsonl/.json -> jsonl), "tsv" or "jsonl". The names below are those of
// kClassifyFields; a generate task's (kGenerateFields) are input and target.
//
// TSV: the LAST tab on a line separates the label, so the text may not
// contain tabs but everything before the last tab is the text. A first line
// whose label field is exactly `label` is a header (GLUE) and skipped.
// Windows line endings and a UTF-8 byte-order mark are tolerated; blank lines
// at the end are ignored, a blank line elsewhere is an error.
// JSONL: one JSON object per line with a string `text` and a string or
// integer `label` (a target: a string); other keys are ignored.
// Errors: missing file, unknown format, no examples, and per line (as
// `path:LINE: ...`): longer than kMaxLineBytes, no tab, empty text, empty label, invalid UTF-8,
// malformed JSON, missing or mistyped field.
std::vector<Example> read_dataset(const std::string& path, const std::string& format = "auto",
                                  const ExampleFields& fields = kClassifyFields);

// Fails naming file, line and label when an example's label is not one of
// `allowed`, listing the allowed labels.
void check_labels(const std::vector<Example>& examples, const std::vector<std::string>& allowed,
                  const std::string& path);
// Same, with the allowed labels taken from the keys of a verbalizer map
// (TaskSection::labels: label value -> verbalizer word, in class order).
void check_labels(const std::vector<Example>& examples,
                  const std::vector<std::pair<std::string, std::string>>& verbalizer, const std::string& path);

}  // namespace sptrain
