#include "json_requests.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "sptrain/core/error.hpp"
#include "sptrain/core/json.hpp"

namespace sptrain {

namespace {

using nlohmann::json;

std::string read_all(const std::string& input) {
  std::ostringstream buf;
  if (input == "-") {
    buf << std::cin.rdbuf();
  } else {
    // A folder opens (and reads as nothing): say so instead of answering no lines.
    std::error_code ec;
    if (std::filesystem::is_directory(input, ec)) fail(input, ": is a folder, not a JSONL file");
    std::ifstream in(input, std::ios::binary);
    if (!in) fail(input, ": cannot open for reading");
    buf << in.rdbuf();
  }
  return buf.str();
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

}  // namespace

std::vector<JsonRequest> read_json_requests(const std::string& input, const std::string& field,
                                            std::string& where) {
  where = input == "-" ? "stdin" : input;
  const std::string all = read_all(input);
  std::vector<std::string> lines;
  for (size_t begin = 0; begin < all.size();) {
    size_t end = all.find('\n', begin);
    if (end == std::string::npos) end = all.size();
    lines.push_back(all.substr(begin, end - begin));
    if (!lines.back().empty() && lines.back().back() == '\r') lines.back().pop_back();
    begin = end + 1;
  }
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
