// parse_json: the bounded JSON reader for files from others (docs/security.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "sptrain/core/error.hpp"
#include "sptrain/core/json.hpp"

namespace sptrain {
namespace {

using ::testing::StartsWith;

std::string error_of(const std::string& text) {
  try {
    parse_json(text, "f.json");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

std::string nested(int levels) { return std::string(size_t(levels), '[') + std::string(size_t(levels), ']'); }

TEST(ParseJson, ReadsValues) {
  EXPECT_EQ(parse_json(R"({"a": [1, "x"]})", "f.json")["a"][1], "x");
  EXPECT_EQ(parse_json(nested(kMaxJsonDepth), "f.json").size(), 1u);
}

TEST(ParseJson, ErrorsNameTheSourceWithoutNlohmannsPrefix) {
  EXPECT_THAT(error_of("{\"a\": tru}"),
              StartsWith("f.json: invalid JSON: column 10: syntax error while parsing value"));
  EXPECT_THAT(error_of("{\n\"a\": tru}"), StartsWith("f.json: invalid JSON: line 2, column 9: syntax error"));
  // Found by fuzzing: nlohmann reports this one as out_of_range, not parse_error.
  EXPECT_EQ(error_of("{\"label\": 1e400}"), "f.json: invalid JSON: number overflow parsing '1e400'");
  EXPECT_EQ(error_of(nested(kMaxJsonDepth + 1)), "f.json: JSON nests deeper than 64 levels");
  EXPECT_EQ(error_of("{\"a\": " + nested(1000000) + "}"), "f.json: JSON nests deeper than 64 levels");
}

TEST(ParseJson, ReasonOfOtherExceptions) {
  try {
    (void)parse_json("1", "f.json").at("a");
    FAIL() << "no exception";
  } catch (const nlohmann::json::exception& e) {
    EXPECT_EQ(json_error_reason(e), "cannot use at() with number");
  }
}

}  // namespace
}  // namespace sptrain
