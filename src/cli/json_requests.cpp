#include "json_requests.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

#include "sptrain/core/error.hpp"
#include "sptrain/core/json.hpp"
#include "sptrain/data/dataset.hpp"

namespace sptrain {

namespace {

using nlohmann::json;

// The input's lines; a line longer than kMaxLineBytes (/dev/zero) is an error.
std::vector<std::string> read_input_lines(const std::string& input) {
  if (input == "-") return read_text_lines(std::cin, "stdin");
  // A folder opens (and reads as nothing): say so instead of answering no lines.
  std::error_code ec;
  if (std::filesystem::is_directory(input, ec)) fail(input, ": is a folder, not a JSONL file");
  std::ifstream in(input, std::ios::binary);
  if (!in) fail(input, ": cannot open for reading");
  return read_text_lines(in, input);
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

}  // namespace

std::vector<JsonRequest> read_json_requests(const std::string& input, const std::string& field,
                                            std::string& where) {
  where = input == "-" ? "stdin" : input;
  std::vector<std::string> lines = read_input_lines(input);
  while (!lines.empty() && is_blank(lines.back())) lines.pop_back();

  std::vector<JsonRequest> out;
  out.reserve(lines.size());
  const std::string quoted = "\"" + field + "\"";
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t lineno = i + 1;
    if (is_blank(lines[i])) fail(where, ":", lineno, ": blank line (only allowed at the end)");
    // parse_json: a number beyond a double is an Error too, and the nesting is
    // bounded (the id is copied and printed, both recursive in nlohmann).
    const json j = parse_json(lines[i], where + ":" + std::to_string(lineno));
    if (!j.is_object())
      fail(where, ":", lineno, ": expected a JSON object {\"task\": ..., ", quoted, ": ...}");
    if (!j.contains("task")) fail(where, ":", lineno, ": missing field \"task\"");
    if (!j["task"].is_string()) fail(where, ":", lineno, ": \"task\" must be a string");
    if (!j.contains(field)) fail(where, ":", lineno, ": missing field ", quoted);
    if (!j[field].is_string()) fail(where, ":", lineno, ": ", quoted, " must be a string");
    JsonRequest r;
    r.task = j["task"].get<std::string>();
    r.text = j[field].get<std::string>();
    r.line = lineno;
    if (j.contains("id")) r.id = j["id"];
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace sptrain
