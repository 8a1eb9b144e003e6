// Harness: task data files (src/data), TSV or JSONL (SPTRAIN_FUZZ_FORMAT).
// Input: the file's bytes.
// Checked: an error names the file; every example read has a text and a label
// and a line number after the previous one's.
#include "fuzz_util.hpp"
#include "sptrain/data/dataset.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string format = SPTRAIN_FUZZ_FORMAT;
  const std::string path = fuzz::write_file(fuzz::fresh_dir(), "data." + format, fuzz::as_text(data, size));
  fuzz::expect_clean(path, [&] {
    const std::vector<Example> examples = read_dataset(path, format);
    int line = 0;
    for (const Example& ex : examples) {
      if (ex.text.empty() || ex.label.empty() || ex.line <= line)
        fuzz::bug("example at line " + std::to_string(ex.line) + " has an empty field or is out of order");
      line = ex.line;
    }
  });
  return 0;
}
