#pragma once
// One exception type for every user-facing failure. Messages name the file,
// line, key or rank involved; the CLI prints them and exits non-zero.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace sptrain {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// str(a, b, c) streams its arguments into one string.
template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(str(std::forward<Args>(args)...));
}

}  // namespace sptrain

// Checks a condition that depends on input (files, config, layout), not a bug.
#define SPT_CHECK(cond, ...)                 \
  do {                                       \
    if (!(cond)) ::sptrain::fail(__VA_ARGS__); \
  } while (0)

// Checks an internal invariant; names the source location.
#define SPT_ASSERT(cond)                                                          \
  do {                                                                            \
    if (!(cond))                                                                  \
      ::sptrain::fail("internal error: ", #cond, " failed at ", __FILE__, ":", __LINE__); \
  } while (0)
