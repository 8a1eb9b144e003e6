// The limits a configuration from someone else meets (docs/config.md "Limits",
// docs/security.md): threads, file size, YAML depth, aliases. Each error names
// the file or the --set argument.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config_test_util.hpp"

namespace sptrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::error_of;
using testing::kMinimal;
using testing::minimal_plus;

TEST(ConfigLimits, ThreadsHasAnUpperBound) {
  EXPECT_EQ(parse_config(minimal_plus("threads: 1024\n"), "x.yaml").threads, 1024);
  EXPECT_THAT(error_of(minimal_plus("threads: 100000\n")),
              StartsWith("configs/x.yaml:6: threads: must be <= 1024 (threads per rank), got 100000"));
  EXPECT_THAT(error_of(kMinimal, {"threads=100000"}),
              StartsWith("--set threads=100000: threads: must be <= 1024"));
}

// "model: [[[[...]]]]" nested `depth` levels below the key.
std::string nested(int depth) {
  return "model: " + std::string(size_t(depth), '[') + std::string(size_t(depth), ']') + "\n";
}

TEST(ConfigLimits, DeepNestingIsNamedAsSuch) {
  // Below the parser's guard the structure is read and rejected as a wrong type...
  EXPECT_THAT(error_of(nested(400)), HasSubstr("model: expected a map of keys (a section), got a list"));
  // ...above it the message says what is wrong instead of yaml-cpp's "bad file".
  EXPECT_THAT(error_of(nested(600)),
              StartsWith("configs/x.yaml:1: the YAML nests deeper than the parser's limit of 500 levels"));
  const std::string set = "task.labels=" + std::string(600, '[') + std::string(600, ']');
  EXPECT_THAT(error_of(kMinimal, {set}),
              AllOf(StartsWith("--set task.labels=[[["),
                    HasSubstr(": the value nests deeper than the YAML parser's limit of 500 levels")));
}

TEST(ConfigLimits, FileSizeIsBounded) {
  std::string big = minimal_plus("# " + std::string(kMaxConfigBytes, 'x') + "\n");
  EXPECT_THAT(error_of(big), StartsWith("configs/x.yaml: " + std::to_string(big.size()) +
                                        " bytes; a configuration file is at most 1048576 bytes"));
  // A device that never ends is read only up to the limit.
  try {
    load_config("/dev/zero");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), StartsWith("/dev/zero: 1048577 bytes; a configuration file is at most"));
  }
}

// Nine levels of nine aliases: 9^9 (387 million) strings if aliases were copied.
TEST(ConfigLimits, AliasesAreNotExpanded) {
  std::string yaml = "task:\n  labels:\n    a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev = std::string("*") + char(c - 1);
    yaml += std::string("    ") + c + ": &" + c + " [" + prev;
    for (int k = 1; k < 9; ++k) yaml += ", " + prev;
    yaml += "]\n";
  }
  EXPECT_THAT(error_of(yaml), StartsWith("configs/x.yaml:3: task.labels.a: expected the verbalizer word as a string"));
}

}  // namespace
}  // namespace sptrain
