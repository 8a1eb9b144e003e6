#include "sptrain/core/json.hpp"

#include "sptrain/core/error.hpp"

namespace sptrain {

using nlohmann::json;

nlohmann::json parse_json(std::string_view text, const std::string& where) {
  auto bounded = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      fail(where, ": JSON nests deeper than ", kMaxJsonDepth, " levels");
    return true;
  };
  try {
    return json::parse(text, bounded);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    std::string reason = json_error_reason(e);
    const std::string at = "parse error at ";
    if (reason.rfind(at, 0) == 0) reason.erase(0, at.size());  // "line 1, column 5: ..."
    if (text.find('\n') == std::string_view::npos && reason.rfind("line 1, ", 0) == 0) reason.erase(0, 8);
    fail(where, ": invalid JSON: ", reason);
  }
}

std::string json_error_reason(const nlohmann::json::exception& e) {
  std::string what = e.what();
  if (what.rfind("[json.exception.", 0) == 0) {
    size_t close = what.find("] ");
    if (close != std::string::npos) what.erase(0, close + 2);
  }
  return what;
}

}  // namespace sptrain
