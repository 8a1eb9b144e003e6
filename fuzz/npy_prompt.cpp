// Harness: prompt import from a NumPy .npy file: read_stored_prompt
// (src/prompt/stored_prompt.cpp: `train --prompt`, `prompt.init: file:...`,
// `export`, `infer --prompt` and `eval --prompt` call it) and npy::read_matrix
// (src/io/npy.cpp): the magic, format versions 1 to 3, the header length, the
// header dict (descr, fortran_order, shape), the data size, the dtypes (<f4,
// <f8, <f2, <u2 as bf16) and Fortran order.
// Input: the file's bytes. When they do not start with NumPy's magic
// "\x93NUMPY" it is put in front, so every input reaches the .npy reader
// (read_stored_prompt tells the format by the content; HDF5's own parser is
// not ours to fuzz), and real .npy files replay as they are.
// Checked: an error names the file; a prompt that loads is 2-D, of finite
// values, and fits a model of its width.
#include "prompt_check.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kMagic = "\x93NUMPY";
  std::string bytes(fuzz::as_text(data, size));
  if (bytes.compare(0, kMagic.size(), kMagic) != 0) bytes.insert(0, kMagic);
  const std::string path = fuzz::write_file(fuzz::fresh_dir(), "prompt.npy", bytes);
  fuzz::expect_clean(path, [&] { fuzz::check_prompt(read_stored_prompt(path), "npy"); });
  return 0;
}
