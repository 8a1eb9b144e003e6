#pragma once
// The JSONL input of `sptrain infer` and `sptrain generate`: one object per
// line, {"task": NAME, FIELD: "non-empty text"} and optionally "id" (echoed);
// other keys ignored, blank lines allowed only at the end. Every line is
// read and checked before anything runs, so bad input stops the command
// before it prints anything, with an error naming the line.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sptrain {

struct JsonRequest {
  std::string task;
  std::string text;    // the value of FIELD
  nlohmann::json id;   // null when the line has none
  size_t line = 0;     // 1-based
};

// input: a file, or "-" for standard input. `where` receives the name
// errors use for it ("stdin" or the file).
std::vector<JsonRequest> read_json_requests(const std::string& input, const std::string& field,
                                            std::string& where);

}  // namespace sptrain
