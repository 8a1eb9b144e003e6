#pragma once
// Shared by the libFuzzer harnesses (one per reader, see docs/security.md).
//
// The rule every harness checks: on any input a reader either succeeds or
// throws an sptrain::Error whose message names where the input came from (the
// file, or "--set ..."). Any other exception escapes LLVMFuzzerTestOneInput and
// libFuzzer reports it as a crash, as it does for a sanitizer error, a leak, an
// allocation above -malloc_limit_mb or an input slower than -timeout.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "sptrain/core/error.hpp"

namespace sptrain::fuzz {

// The input as text (any bytes).
inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits at every '\0': harnesses that take several strings (a file and its
// --set arguments, the files of a folder) read them this way.
std::vector<std::string_view> split_parts(std::string_view input);

// A folder of this process for the files that readers open by path, emptied
// on every call (a file from the previous input is never seen).
std::string fresh_dir();
// Writes `bytes` to the file `name` in `dir` and returns its path.
std::string write_file(const std::string& dir, const std::string& name, std::string_view bytes);

// Aborts with `message` and the input's description: a broken property.
[[noreturn]] void bug(const std::string& message);

// True when SPTRAIN_FUZZ_VERBOSE is set: expect_clean then prints each
// error (or "read"), to see what a seed reaches: SPTRAIN_FUZZ_VERBOSE=1
// build-fuzz/fuzz/HARNESS fuzz/corpus/HARNESS/*.
bool verbose();

// Runs `read`; an Error is fine when its message contains `source`, else a bug.
template <typename F>
void expect_clean(const std::string& source, F&& read) {
  try {
    read();
    if (verbose()) std::fprintf(stderr, "sptrain fuzz: read without error\n");
  } catch (const Error& e) {
    if (verbose()) std::fprintf(stderr, "sptrain fuzz: error: %s\n", e.what());
    if (std::string_view(e.what()).find(source) == std::string_view::npos)
      bug("error message does not name '" + source + "': " + e.what());
  }
}

}  // namespace sptrain::fuzz
