// Harness: `sptrain convert --from gguf` (convert::convert_gguf,
// src/convert/from_gguf.cpp, which the CLI calls): the GGUF reader's header,
// metadata, tensor infos and offsets (src/io/gguf.cpp), the llama
// hyper-parameters, the tensor plan (names, shapes, types, block count),
// dequantization (F32, F16, BF16, Q8_0, Q4_0, Q4_1), the RoPE row
// un-permutation, the tokenizer and the model file writer.
// Input: the GGUF file's bytes.
// Checked: an error names the GGUF file; a model that converts opens, and its
// header and tokenizer read back as the loader reads them.
#include "convert_check.hpp"
#include "sptrain/convert/convert.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = fuzz::fresh_dir();
  const std::string path = fuzz::write_file(dir, "model.gguf", fuzz::as_text(data, size));
  const std::string out = dir + "/converted.h5";  // does not contain `path`: its errors are not accepted
  bool converted = false;
  fuzz::expect_clean(path, [&] {
    convert::convert_gguf(path, out, DType::F32);
    converted = true;
  });
  if (converted) fuzz::check_converted_model(out);
  return 0;
}
