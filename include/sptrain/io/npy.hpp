#pragma once
// NumPy .npy files holding one 2-D float array (docs/export.md). Written as
// format 1.0; formats 2.0 and 3.0 are read too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sptrain::npy {

// A 2-D array [rows, cols] as fp32, row-major.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
};

// True when the n bytes at `head` start with the NumPy magic "\x93NUMPY".
bool has_magic(const unsigned char* head, size_t n);

// Reads a 2-D array of '<f4', '<f8', '<f2', or '<u2' (holding bf16 bits), in
// C or Fortran order. Errors name the file and what is wrong with it.
Matrix read_matrix(const std::string& path);

// Writes values [rows, cols] (row-major) to `path` atomically, as '<f4'
// (bit-exact) or, when bf16, as '<u2' holding the bf16 bits (rounded to
// nearest even). Returns the bytes of values written.
int64_t write_matrix(const std::string& path, const float* values, int64_t rows, int64_t cols, bool bf16);

// The bytes a file of [rows, cols] takes: the v1.0 header (128 bytes for any
// 2-D shape: the dimensions' digits would need to exceed 60 to grow it) plus
// the values.
int64_t file_bytes(int64_t rows, int64_t cols, int bytes_per_value);

}  // namespace sptrain::npy
