#include "sptrain/io/npy.hpp"

#include <cstring>
#include <sstream>

#include "sptrain/core/dtype.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"

namespace sptrain::npy {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
// A prompt is a few MB at most; this only stops a wrong path from reading a huge file.
constexpr uint64_t kMaxFileBytes = 1ull << 30;

std::string header(const std::string& descr, int64_t rows, int64_t cols) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n', a multiple
  // of 64 bytes as numpy writes it (so the data is aligned).
  const size_t unpadded = 10 + dict.size() + 1;
  const size_t total = (unpadded + 63) / 64 * 64;
  SPT_CHECK(total - 10 <= 65535, "npy header too long");
  dict.append(total - unpadded, ' ');
  dict += '\n';
  std::string h(kMagic, 6);
  h += char(1);
  h += char(0);
  const uint16_t len = uint16_t(dict.size());
  h += char(len & 0xff);
  h += char(len >> 8);
  return h + dict;
}

// The value of `key` in a NumPy header dict (a Python literal): the text
// after "'key':" up to the next top-level ',' or '}'.
std::string field(const std::string& dict, const std::string& key, const std::string& path) {
  const std::string k = "'" + key + "'";
  size_t at = dict.find(k);
  if (at == std::string::npos) fail(path, ": npy header has no ", k, " (header: ", dict, ")");
  at = dict.find(':', at + k.size());
  if (at == std::string::npos) fail(path, ": npy header is malformed: ", dict);
  size_t end = at + 1;
  int depth = 0;
  while (end < dict.size()) {
    const char ch = dict[end];
    if (ch == '(') ++depth;
    if (ch == ')') --depth;
    if (depth == 0 && (ch == ',' || ch == '}')) break;
    ++end;
  }
  std::string v = dict.substr(at + 1, end - at - 1);
  const size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t");
  return b == std::string::npos ? "" : v.substr(b, e - b + 1);
}

}  // namespace

bool has_magic(const unsigned char* head, size_t n) { return n >= 6 && std::memcmp(head, kMagic, 6) == 0; }

Matrix read_matrix(const std::string& path) {
  const std::string bytes = read_whole_file(path, kMaxFileBytes, "npy file");
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0)
    fail(path, ": not a NumPy .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = size_t(static_cast<unsigned char>(bytes[8])) |
                 size_t(static_cast<unsigned char>(bytes[9])) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    SPT_CHECK(bytes.size() >= 12, path, ": truncated npy header");
    for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<unsigned char>(bytes[size_t(8 + i)])) << (8 * i);
    header_start = 12;
  } else {
    fail(path, ": npy format version ", major, " is not supported (1, 2 or 3)");
  }
  SPT_CHECK(header_start + header_len <= bytes.size(), path, ": truncated npy header");
  const std::string dict = bytes.substr(header_start, header_len);
  std::string descr = field(dict, "descr", path);
  const std::string order = field(dict, "fortran_order", path);
  const std::string shape = field(dict, "shape", path);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"'))
    descr = descr.substr(1, descr.size() - 2);
  SPT_CHECK(order == "False" || order == "True", path, ": npy fortran_order is '", order, "'");

  // shape "(P, d)": exactly two dimensions.
  std::vector<int64_t> dims;
  {
    std::string s = shape;
    SPT_CHECK(s.size() >= 2 && s.front() == '(' && s.back() == ')', path, ": npy shape '", shape,
              "' is not a tuple");
    std::stringstream ss(s.substr(1, s.size() - 2));
    std::string item;
    while (std::getline(ss, item, ',')) {
      const size_t b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
      if (b == std::string::npos) continue;  // "(5,)" has an empty last item
      const std::string digits = item.substr(b, e - b + 1);
      size_t used = 0;
      try {
        dims.push_back(std::stoll(digits, &used));
      } catch (const std::exception&) {
        used = 0;
      }
      SPT_CHECK(used == digits.size() && used > 0, path, ": npy shape '", shape,
                "' is not a tuple of integers");
    }
  }
  SPT_CHECK(dims.size() == 2 && dims[0] >= 1 && dims[1] >= 1, path, ": the array has shape ",
            shape, "; a prompt is 2-D [P, d_model]");

  // '<f4' is the prompt exactly; '<u2' holds bf16 bits (what export --dtype bf16 writes).
  int width = 0;
  if (descr == "<f4") width = 4;
  else if (descr == "<u2" || descr == "<f2") width = 2;
  else if (descr == "<f8") width = 8;
  else
    fail(path, ": npy dtype '", descr, "' is not supported (float32 '<f4', float64 '<f8', float16 "
         "'<f2', or bf16 bits as uint16 '<u2')");
  // The shape against the data's size, compared before multiplying: a shape
  // from the file may have a product beyond 64 bits (4 x (2^62 + 1) wraps to 4).
  const size_t data_start = header_start + header_len;
  const uint64_t have = bytes.size() - data_start, rows = uint64_t(dims[0]), cols = uint64_t(dims[1]);
  const bool fits = cols <= have / uint64_t(width) / rows;
  if (!fits || have != rows * cols * uint64_t(width))
    fail(path, ": npy data is ", have, " bytes but shape ", shape, " of ", descr, " needs ",
         fits ? std::to_string(rows * cols * uint64_t(width)) : std::string("more"), " (truncated?)");
  const int64_t n = dims[0] * dims[1];

  Matrix p;
  p.rows = dims[0];
  p.cols = dims[1];
  p.values.resize(size_t(n));
  const char* src = bytes.data() + data_start;
  for (int64_t i = 0; i < n; ++i) {
    // Fortran order: element (r, c) is stored at c * rows + r.
    const int64_t r = i / p.cols, c = i % p.cols;
    const int64_t at = order == "True" ? c * p.rows + r : i;
    float v = 0;
    if (width == 4) {
      std::memcpy(&v, src + at * 4, 4);
    } else if (width == 8) {
      double d;
      std::memcpy(&d, src + at * 8, 8);
      v = float(d);
    } else {
      uint16_t h;
      std::memcpy(&h, src + at * 2, 2);
      v = descr == "<u2" ? bf16_to_f32(h) : f16_to_f32(h);
    }
    p.values[size_t(i)] = v;
  }
  return p;
}

int64_t write_matrix(const std::string& path, const float* values, int64_t rows, int64_t cols, bool bf16) {
  const std::string h = header(bf16 ? "<u2" : "<f4", rows, cols);
  const size_t n = size_t(rows * cols);
  std::vector<uint16_t> half;
  if (bf16) {
    half.resize(n);
    for (size_t i = 0; i < n; ++i) half[i] = f32_to_bf16(values[i]);
  }
  const size_t value_bytes = n * (bf16 ? 2 : 4);
  write_file_atomically(path, {{h.data(), h.size()},
                               {bf16 ? static_cast<const void*>(half.data()) : values, value_bytes}});
  return int64_t(value_bytes);
}

int64_t file_bytes(int64_t rows, int64_t cols, int bytes_per_value) {
  return int64_t(header("<f4", rows, cols).size()) + rows * cols * bytes_per_value;
}

}  // namespace sptrain::npy
