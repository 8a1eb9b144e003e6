#include "sptrain/io/gguf.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>

#include "sptrain/core/dtype.hpp"
#include "sptrain/core/error.hpp"

namespace sptrain::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32

const TypeTraits kTraits[] = {
    // name, block elements, block bytes, dequantizable
    {"F32", 1, 4, true},        {"F16", 1, 2, true},        {"Q4_0", 32, 18, true},
    {"Q4_1", 32, 20, true},     {nullptr, 0, 0, false},     {nullptr, 0, 0, false},
    {"Q5_0", 32, 22, false},    {"Q5_1", 32, 24, false},    {"Q8_0", 32, 34, true},
    {"Q8_1", 32, 36, false},    {"Q2_K", 256, 84, false},   {"Q3_K", 256, 110, false},
    {"Q4_K", 256, 144, false},  {"Q5_K", 256, 176, false},  {"Q6_K", 256, 210, false},
    {"Q8_K", 256, 292, false},  {nullptr, 0, 0, false},     {nullptr, 0, 0, false},
    {nullptr, 0, 0, false},     {nullptr, 0, 0, false},     {nullptr, 0, 0, false},
    {nullptr, 0, 0, false},     {nullptr, 0, 0, false},     {nullptr, 0, 0, false},
    {"I8", 1, 1, false},        {"I16", 1, 2, false},       {"I32", 1, 4, false},
    {"I64", 1, 8, false},       {"F64", 1, 8, false},       {nullptr, 0, 0, false},
    {"BF16", 1, 2, true},
};

// Size in bytes of a scalar value type; 0 for STRING/ARRAY/unknown.
uint64_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
  }
}

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
    case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64:
      return true;
    default: return false;
  }
}

// Sequential reader over the header with a buffer; every read is checked
// against the file size, so no length in the file can make us read past it
// or allocate more than the file could hold.
class HeaderReader {
 public:
  HeaderReader(int fd, uint64_t size, const std::string& path) : fd_(fd), size_(size), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void read(void* out, uint64_t n, const std::string& what) {
    if (n > remaining())
      fail(path_, ": truncated or corrupt GGUF file: ", what, " needs ", n, " bytes at offset ",
           pos_, " but the file has ", size_, " bytes");
    auto* dst = static_cast<unsigned char*>(out);
    while (n > 0) {
      if (buf_pos_ == buf_len_) refill();
      uint64_t take = std::min<uint64_t>(n, buf_len_ - buf_pos_);
      std::memcpy(dst, buf_.data() + buf_pos_, size_t(take));
      buf_pos_ += size_t(take);
      dst += take;
      pos_ += take;
      n -= take;
    }
  }
  template <typename T>
  T get(const std::string& what) {
    T v;
    read(&v, sizeof v, what);
    return v;
  }
  std::string string(const std::string& what) {
    uint64_t n = get<uint64_t>(what + " (string length)");
    if (n > remaining())
      fail(path_, ": truncated or corrupt GGUF file: ", what, " has length ", n,
           " but only ", remaining(), " bytes are left");
    std::string s(size_t(n), '\0');
    read(s.data(), n, what);
    return s;
  }

 private:
  void refill() {
    size_t want = std::min<uint64_t>(buf_.size(), remaining());
    ssize_t got;
    do {
      got = ::pread(fd_, buf_.data(), want, off_t(pos_));
    } while (got < 0 && errno == EINTR);
    if (got <= 0) fail(path_, ": read error at offset ", pos_, ": ", std::strerror(errno));
    buf_len_ = size_t(got);
    buf_pos_ = 0;
  }

  int fd_;
  uint64_t size_;
  const std::string& path_;
  uint64_t pos_ = 0;
  std::array<unsigned char, 1 << 16> buf_{};
  size_t buf_len_ = 0, buf_pos_ = 0;
};

void read_scalar(HeaderReader& r, ValueType t, Value& v, const std::string& what) {
  switch (t) {
    case ValueType::U8: v.u = r.get<uint8_t>(what); v.i = int64_t(v.u); break;
    case ValueType::I8: v.i = r.get<int8_t>(what); v.u = uint64_t(v.i); break;
    case ValueType::U16: v.u = r.get<uint16_t>(what); v.i = int64_t(v.u); break;
    case ValueType::I16: v.i = r.get<int16_t>(what); v.u = uint64_t(v.i); break;
    case ValueType::U32: v.u = r.get<uint32_t>(what); v.i = int64_t(v.u); break;
    case ValueType::I32: v.i = r.get<int32_t>(what); v.u = uint64_t(v.i); break;
    case ValueType::U64: v.u = r.get<uint64_t>(what); v.i = int64_t(v.u); break;
    case ValueType::I64: v.i = r.get<int64_t>(what); v.u = uint64_t(v.i); break;
    case ValueType::F32: v.f = r.get<float>(what); break;
    case ValueType::F64: v.f = r.get<double>(what); break;
    case ValueType::BOOL: {
      uint8_t b = r.get<uint8_t>(what);
      v.i = b ? 1 : 0;
      v.u = uint64_t(v.i);
      break;
    }
    case ValueType::STRING: v.s = r.string(what); break;
    default: SPT_ASSERT(false);
  }
}

ValueType value_type(uint32_t raw, const std::string& path, const std::string& what) {
  if (raw > uint32_t(ValueType::F64))
    fail(path, ": corrupt GGUF file: ", what, " has unknown value type ", raw);
  return ValueType(raw);
}

void read_value(HeaderReader& r, ValueType t, Value& v, const std::string& path,
                const std::string& what, int depth) {
  v.type = t;
  if (t != ValueType::ARRAY) {
    read_scalar(r, t, v, what);
    return;
  }
  if (depth > 4) fail(path, ": corrupt GGUF file: ", what, " nests arrays too deeply");
  v.elem_type = value_type(r.get<uint32_t>(what), path, what + " (array element type)");
  v.count = r.get<uint64_t>(what + " (array length)");
  // Each element takes at least one byte (a string at least its 8-byte length),
  // so a count beyond the bytes left is corrupt: checked before allocating.
  uint64_t min_elem = v.elem_type == ValueType::STRING ? 8
                      : v.elem_type == ValueType::ARRAY ? 12
                                                         : scalar_size(v.elem_type);
  if (v.count > r.remaining() / min_elem)
    fail(path, ": truncated or corrupt GGUF file: ", what, " claims ", v.count,
         " elements but only ", r.remaining(), " bytes are left");
  Value e;
  if (v.elem_type == ValueType::STRING) {
    v.strings.reserve(size_t(v.count));
    for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(r.string(what));
  } else if (v.elem_type == ValueType::ARRAY) {
    for (uint64_t k = 0; k < v.count; ++k) {
      Value inner;
      read_value(r, ValueType::ARRAY, inner, path, what, depth + 1);  // parsed, not kept
    }
  } else if (v.elem_type == ValueType::F32 || v.elem_type == ValueType::F64) {
    v.floats.reserve(size_t(v.count));
    for (uint64_t k = 0; k < v.count; ++k) {
      read_scalar(r, v.elem_type, e, what);
      v.floats.push_back(e.f);
    }
  } else {
    v.ints.reserve(size_t(v.count));
    for (uint64_t k = 0; k < v.count; ++k) {
      read_scalar(r, v.elem_type, e, what);
      v.ints.push_back(e.i);
    }
  }
}

// a * b, or an Error when it overflows uint64.
uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& path, const std::string& what) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a)
    fail(path, ": corrupt GGUF file: size of ", what, " overflows");
  return a * b;
}

}  // namespace

const char* value_type_name(ValueType t) {
  static const char* names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  auto k = uint32_t(t);
  return k < 13 ? names[k] : "?";
}

const TypeTraits* type_traits(uint32_t type_id) {
  if (type_id >= sizeof kTraits / sizeof kTraits[0]) return nullptr;
  const TypeTraits* t = &kTraits[type_id];
  return t->name ? t : nullptr;
}

const TypeTraits& type_traits(TensorType type) {
  const TypeTraits* t = type_traits(uint32_t(type));
  SPT_ASSERT(t != nullptr);
  return *t;
}

// ---- File ----

File File::open(const std::string& path) {
  File f;
  f.path_ = path;
  OpenFile file = open_regular_file(path, "GGUF file");
  f.fd_ = std::move(file.fd);
  f.file_size_ = file.size;
  f.parse();
  return f;
}

void File::parse() {
  HeaderReader r(fd_.get(), file_size_, path_);
  if (file_size_ < 4) fail(path_, ": not a GGUF file (", file_size_, " bytes)");
  uint32_t magic = r.get<uint32_t>("magic");
  if (magic != kMagic) fail(path_, ": not a GGUF file (bad magic)");
  version_ = r.get<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    if (version_ == 1) fail(path_, ": GGUF version 1 is not supported (only 2 and 3)");
    fail(path_, ": unsupported GGUF version ", version_,
         " (only 2 and 3; a big-endian file is not supported either)");
  }
  uint64_t n_tensors = r.get<uint64_t>("tensor count");
  uint64_t n_kv = r.get<uint64_t>("metadata count");
  // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor
  // info at least 8 + 4 + 8 + 4 + 8.
  if (n_kv > r.remaining() / 13)
    fail(path_, ": corrupt GGUF file: metadata count ", n_kv, " is larger than the file allows");
  if (n_tensors > r.remaining() / 32)
    fail(path_, ": corrupt GGUF file: tensor count ", n_tensors, " is larger than the file allows");

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.string(str("metadata key #", k));
    std::string what = "metadata '" + key + "'";
    Value v;
    read_value(r, value_type(r.get<uint32_t>(what + " (type)"), path_, what), v, path_, what, 0);
    if (kv_.count(key)) fail(path_, ": corrupt GGUF file: duplicate metadata key '", key, "'");
    kv_.emplace(std::move(key), std::move(v));
  }

  if (has("general.alignment")) {
    int64_t a = get_int("general.alignment");
    if (a <= 0 || (a & (a - 1)) != 0 || a > (1 << 20))
      fail(path_, ": corrupt GGUF file: general.alignment = ", a, " is not a power of two");
    alignment_ = uint64_t(a);
  }

  tensors_.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    t.name = r.string(str("tensor info #", k, " name"));
    std::string what = "tensor '" + t.name + "'";
    uint32_t n_dims = r.get<uint32_t>(what + " (rank)");
    if (n_dims == 0 || n_dims > 4)
      fail(path_, ": corrupt GGUF file: ", what, " has rank ", n_dims, " (expected 1 to 4)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = r.get<uint64_t>(what + " (dims)");
      if (ne == 0 || ne > (uint64_t(1) << 40))
        fail(path_, ": corrupt GGUF file: ", what, " has dimension ", d, " = ", ne);
      numel = checked_mul(numel, ne, path_, what);
      t.dims.push_back(int64_t(ne));
    }
    uint32_t type_id = r.get<uint32_t>(what + " (type)");
    const TypeTraits* traits = type_traits(type_id);
    if (!traits)
      fail(path_, ": ", what, " has unknown or unsupported tensor type id ", type_id);
    t.type = TensorType(type_id);
    uint64_t rel_offset = r.get<uint64_t>(what + " (offset)");
    if (uint64_t(t.dims[0]) % uint64_t(traits->block_elems) != 0)
      fail(path_, ": corrupt GGUF file: ", what, " has ", t.dims[0], " columns, not a multiple of ",
           traits->name, "'s block size ", traits->block_elems);
    if (rel_offset % alignment_ != 0)
      fail(path_, ": corrupt GGUF file: ", what, " data offset ", rel_offset,
           " is not aligned to ", alignment_);
    t.numel = int64_t(numel);
    t.nbytes = checked_mul(numel / uint64_t(traits->block_elems), uint64_t(traits->block_bytes),
                           path_, what);
    t.file_offset = rel_offset;  // made absolute below, once the header's end is known
    if (tensor_index_.count(t.name)) fail(path_, ": corrupt GGUF file: duplicate ", what);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  data_offset_ = (r.pos() + alignment_ - 1) / alignment_ * alignment_;
  for (auto& t : tensors_) {
    uint64_t begin = data_offset_ + t.file_offset;
    if (t.file_offset > file_size_ || begin > file_size_ || t.nbytes > file_size_ - begin)
      fail(path_, ": truncated or corrupt GGUF file: tensor '", t.name, "' (", t.nbytes,
           " bytes at offset ", begin, ") extends past the end of the file (", file_size_,
           " bytes)");
    t.file_offset = begin;
  }
  // Two tensors sharing bytes would silently alias each other's weights.
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->file_offset < b->file_offset; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k]->file_offset < by_offset[k - 1]->file_offset + by_offset[k - 1]->nbytes)
      fail(path_, ": corrupt GGUF file: tensors '", by_offset[k - 1]->name, "' and '", by_offset[k]->name,
           "' overlap in the file");
}

const Value& File::value(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) fail(path_, ": missing GGUF metadata key '", key, "'");
  return it->second;
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const Value& v,
                             const char* want) {
  std::string got = value_type_name(v.type);
  if (v.type == ValueType::ARRAY) got += std::string(" of ") + value_type_name(v.elem_type);
  fail(path, ": GGUF metadata '", key, "' is ", got, ", expected ", want);
}
}  // namespace

std::string File::get_string(const std::string& key) const {
  const Value& v = value(key);
  if (v.type != ValueType::STRING) wrong_type(path_, key, v, "a string");
  return v.s;
}

int64_t File::get_int(const std::string& key) const {
  const Value& v = value(key);
  if (!is_integer(v.type)) wrong_type(path_, key, v, "an integer");
  if (v.type == ValueType::U64 && v.u > uint64_t(std::numeric_limits<int64_t>::max()))
    fail(path_, ": GGUF metadata '", key, "' = ", v.u, " is too large");
  return v.i;
}

double File::get_float(const std::string& key) const {
  const Value& v = value(key);
  if (v.type == ValueType::F32 || v.type == ValueType::F64) return v.f;
  if (is_integer(v.type)) return double(v.i);
  wrong_type(path_, key, v, "a number");
}

bool File::get_bool(const std::string& key) const {
  const Value& v = value(key);
  if (v.type != ValueType::BOOL) wrong_type(path_, key, v, "a bool");
  return v.i != 0;
}

std::vector<std::string> File::get_string_array(const std::string& key) const {
  const Value& v = value(key);
  if (v.type != ValueType::ARRAY || v.elem_type != ValueType::STRING)
    wrong_type(path_, key, v, "an array of strings");
  return v.strings;
}

std::vector<int64_t> File::get_int_array(const std::string& key) const {
  const Value& v = value(key);
  if (v.type != ValueType::ARRAY || !(is_integer(v.elem_type) || v.elem_type == ValueType::BOOL))
    wrong_type(path_, key, v, "an array of integers");
  return v.ints;
}

std::vector<double> File::get_float_array(const std::string& key) const {
  const Value& v = value(key);
  if (v.type != ValueType::ARRAY || !(v.elem_type == ValueType::F32 || v.elem_type == ValueType::F64))
    wrong_type(path_, key, v, "an array of floats");
  return v.floats;
}

std::string File::get_string(const std::string& key, const std::string& def) const {
  return has(key) ? get_string(key) : def;
}
int64_t File::get_int(const std::string& key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}
double File::get_float(const std::string& key, double def) const {
  return has(key) ? get_float(key) : def;
}
bool File::get_bool(const std::string& key, bool def) const {
  return has(key) ? get_bool(key) : def;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) fail(path_, ": missing tensor '", name, "'");
  return *t;
}

void File::read_raw(const TensorInfo& info, void* out) const {
  pread_exact(fd_.get(), out, info.nbytes, info.file_offset, path_, "tensor '" + info.name + "'");
}

std::vector<unsigned char> File::read_bytes(uint64_t offset, uint64_t n) const {
  if (offset > file_size_ || n > file_size_ - offset)
    fail(path_, ": read of ", n, " bytes at offset ", offset, " is past the end of the file");
  std::vector<unsigned char> out(static_cast<size_t>(n));
  pread_exact(fd_.get(), out.data(), n, offset, path_, "bytes");
  return out;
}

// ---- dequantization ----
namespace {
float load_f16(const unsigned char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
}  // namespace

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  for (int64_t b = 0; b < n / 32; ++b, p += 34) {
    float d = load_f16(p);
    for (int j = 0; j < 32; ++j) dst[b * 32 + j] = float(int8_t(p[2 + j])) * d;
  }
}

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  for (int64_t b = 0; b < n / 32; ++b, p += 18) {
    float d = load_f16(p);
    for (int j = 0; j < 16; ++j) {
      dst[b * 32 + j] = float(int(p[2 + j] & 0x0f) - 8) * d;       // low nibbles: 0..15
      dst[b * 32 + 16 + j] = float(int(p[2 + j] >> 4) - 8) * d;    // high nibbles: 16..31
    }
  }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  for (int64_t b = 0; b < n / 32; ++b, p += 20) {
    float d = load_f16(p);
    float m = load_f16(p + 2);
    for (int j = 0; j < 16; ++j) {
      dst[b * 32 + j] = float(p[4 + j] & 0x0f) * d + m;
      dst[b * 32 + 16 + j] = float(p[4 + j] >> 4) * d + m;
    }
  }
}

void dequantize(TensorType type, const void* src, float* dst, int64_t n) {
  const TypeTraits& traits = type_traits(type);
  SPT_CHECK(n % traits.block_elems == 0, "dequantize: ", n, " elements is not a multiple of ",
            traits.name, "'s block size ", traits.block_elems);
  const auto* p = static_cast<const unsigned char*>(src);
  switch (type) {
    case TensorType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case TensorType::F16:
      for (int64_t k = 0; k < n; ++k) dst[k] = load_f16(p + 2 * k);
      return;
    case TensorType::BF16:
      for (int64_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        dst[k] = bf16_to_f32(h);
      }
      return;
    case TensorType::Q8_0: dequantize_q8_0(src, dst, n); return;
    case TensorType::Q4_0: dequantize_q4_0(src, dst, n); return;
    case TensorType::Q4_1: dequantize_q4_1(src, dst, n); return;
    default:
      fail("cannot dequantize GGUF tensor type ", traits.name,
           " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
  }
}

void unpermute_rope_rows(const float* src, float* dst, int64_t rows, int64_t cols,
                         int64_t n_heads) {
  SPT_CHECK(n_heads > 0 && rows % n_heads == 0 && (rows / n_heads) % 2 == 0,
            "RoPE un-permutation: ", rows, " rows do not split into ", n_heads,
            " heads of even size");
  const int64_t head_dim = rows / n_heads, half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        // GGUF row h*hd + 2i + j holds HF row h*hd + j*half + i.
        const float* s = src + (h * head_dim + 2 * i + j) * cols;
        float* d = dst + (h * head_dim + j * half + i) * cols;
        std::memcpy(d, s, size_t(cols) * sizeof(float));
      }
}

}  // namespace sptrain::gguf
