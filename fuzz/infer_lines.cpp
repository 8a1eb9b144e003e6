// Harness: the JSONL requests of `sptrain infer` and `sptrain generate`
// (read_json_requests, src/cli/json_requests.cpp): line splitting, CRLF,
// blank lines, each line's JSON, the "task" and text fields, the echoed "id".
// Input: the file's bytes; it is read once with the field "text" (infer) and
// once with "input" (generate).
// Checked: an error names the file; every request read has the line number
// after the previous one's, within the file, and its id prints (as infer and
// generate echo it).
#include <algorithm>

#include "fuzz_util.hpp"
#include "json_requests.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  const std::string path = fuzz::write_file(fuzz::fresh_dir(), "requests.jsonl", text);
  const size_t lines = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const char* field : {"text", "input"}) {
    fuzz::expect_clean(path, [&] {
      std::string where;
      size_t line = 0;
      for (const JsonRequest& r : read_json_requests(path, field, where)) {
        if (r.line <= line || r.line > lines)
          fuzz::bug("request at line " + std::to_string(r.line) + " after line " + std::to_string(line));
        line = r.line;
        (void)r.id.dump();
      }
      if (where != path) fuzz::bug("read_json_requests names the input '" + where + "'");
    });
  }
  return 0;
}
