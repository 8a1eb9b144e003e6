#pragma once
// JSON from files sptrain did not write (tokenizer files, data lines): the
// nesting is bounded, so no file can exhaust the stack of code that copies,
// compares or prints the tree (nlohmann's copy and dump recurse), and errors
// name their source without nlohmann's "[json.exception...]" prefix.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace sptrain {

// Real files nest a few levels (tokenizer.json: 6).
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`. Errors: "WHERE: invalid JSON: line L, column C: REASON" (for
// text of one line: "column C: REASON"; a number too large for a double gives
// no position) and "WHERE: JSON nests deeper than 64 levels".
nlohmann::json parse_json(std::string_view text, const std::string& where);

// What nlohmann's exception says, without its "[json.exception.type_error.302] " prefix.
std::string json_error_reason(const nlohmann::json::exception& e);

}  // namespace sptrain
