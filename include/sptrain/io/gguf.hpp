#pragma once
// Reader for GGUF (v2 and v3), the file format of llama.cpp: a header of typed
// key/value metadata, a table of tensor infos, then the aligned tensor data.
// Everything in the header is checked against the file size on open, so a
// truncated or corrupt file is an Error naming the file and the key or tensor.
// Tensor bytes are read on demand (pread), one tensor at a time.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sptrain/io/file.hpp"

namespace sptrain::gguf {

// Metadata value types, numbered as in the file.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);

// ggml tensor types, numbered as in the file. Only the ones listed here are
// accepted; F32, F16, BF16, Q8_0, Q4_0 and Q4_1 can be dequantized.
enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

struct TypeTraits {
  const char* name;
  int64_t block_elems;  // elements per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
  bool dequantizable;   // dequantize() supports it
};
// Traits of a type id from a file; nullptr when the id is unknown.
const TypeTraits* type_traits(uint32_t type_id);
const TypeTraits& type_traits(TensorType type);

// One metadata value. Scalars use the field of their kind; arrays fill one of
// the vectors (arrays of arrays are parsed but their contents are not kept).
struct Value {
  ValueType type = ValueType::U8;
  ValueType elem_type = ValueType::U8;  // for ARRAY
  uint64_t count = 0;                   // for ARRAY: number of elements
  int64_t i = 0;                        // signed/unsigned integers and bool
  uint64_t u = 0;                       // unsigned integers (full 64-bit range)
  double f = 0;                         // F32, F64
  std::string s;                        // STRING
  std::vector<std::string> strings;     // ARRAY of STRING
  std::vector<int64_t> ints;            // ARRAY of integers or BOOL
  std::vector<double> floats;           // ARRAY of F32/F64
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml order, fastest first: dims[0] = ne0 (columns)
  TensorType type = TensorType::F32;
  uint64_t file_offset = 0;   // absolute byte offset of the data in the file
  uint64_t nbytes = 0;        // bytes of data
  int64_t numel = 0;

  // The PyTorch-order shape (slowest first): GGUF [ne0=in, ne1=out] is [out, in].
  std::vector<int64_t> torch_shape() const { return {dims.rbegin(), dims.rend()}; }
};

class File {
 public:
  static File open(const std::string& path);
  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // = size of the header
  uint64_t file_size() const { return file_size_; }

  // ---- metadata ----
  bool has(const std::string& key) const { return kv_.count(key) > 0; }
  const Value& value(const std::string& key) const;  // Error when missing
  const std::map<std::string, Value>& metadata() const { return kv_; }
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;  // any integer type; Error on overflow
  double get_float(const std::string& key) const;  // F32/F64 (integers accepted too)
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;
  // Typed getters with a default when the key is absent (wrong type is still an Error).
  std::string get_string(const std::string& key, const std::string& def) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key, double def) const;
  bool get_bool(const std::string& key, bool def) const;

  // ---- tensors ----
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;  // nullptr when absent
  const TensorInfo& tensor(const std::string& name) const;       // Error when absent
  // Reads the tensor's nbytes raw bytes into `out`.
  void read_raw(const TensorInfo& info, void* out) const;
  // Reads the first `n` bytes of the file (the header, for hashing).
  std::vector<unsigned char> read_bytes(uint64_t offset, uint64_t n) const;

 private:
  File() = default;
  void parse();

  std::string path_;
  FileDescriptor fd_;
  uint64_t file_size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, Value> kv_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// ---- dequantization: pure functions on block bytes ----
// Converts n elements (a multiple of the type's block size) of `src` to f32.
void dequantize(TensorType type, const void* src, float* dst, int64_t n);
void dequantize_q8_0(const void* src, float* dst, int64_t n);  // f16 d, 32 x int8: q*d
void dequantize_q4_0(const void* src, float* dst, int64_t n);  // f16 d, 16 B nibbles: (q-8)*d
void dequantize_q4_1(const void* src, float* dst, int64_t n);  // f16 d, f16 m, 16 B: q*d + m

// llama.cpp's converter interleaves the two halves of every RoPE head of the
// Q and K projections (HF rotate-half -> GGUF adjacent pairs):
//   gguf = hf.reshape(n_heads, 2, head_dim/2, cols).swapaxes(1, 2)
// This undoes it: `rows` = n_heads * head_dim rows of `cols` each, src != dst.
void unpermute_rope_rows(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_heads);

}  // namespace sptrain::gguf
