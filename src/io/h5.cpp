#include "sptrain/io/h5.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>

#include "sptrain/io/file.hpp"

namespace sptrain::h5 {
namespace {

// ---- the checksum block ----
// The first kUserblock bytes of a file sptrain writes (an HDF5 user block):
//   "sptrain-hdf5 1 bytes=<file size> head=<16 hex> all=<16 hex>\n", then zeros,
// where head and all are checksum64 of the bytes after the block, the first
// kHeadCheckBytes of them and all of them.
constexpr uint64_t kUserblock = 512;
constexpr char kSealMagic[] = "sptrain-hdf5 1 ";
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

// 64-bit words in, one odd multiply and a shift per word: each step is a
// bijection of the state, so any change confined to one word (any single
// flipped byte or bit) always changes the result. Not a defence against
// someone who rewrites the file on purpose: a check against damage.
class Checksum64 {
 public:
  void words(const unsigned char* p, size_t n) {  // n: a multiple of 8, or the last piece
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
      uint64_t w;
      std::memcpy(&w, p + k, 8);
      step(w);
    }
    if (k < n) {
      uint64_t w = 0;
      std::memcpy(&w, p + k, n - k);
      step(w);
    }
    bytes_ += n;
  }
  uint64_t value() const {
    uint64_t h = (h_ ^ bytes_) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
  }

 private:
  void step(uint64_t w) {
    h_ = (h_ ^ w) * 0xD6E8FEB86659FD93ull;
    h_ ^= h_ >> 32;
  }
  uint64_t h_ = 0x243F6A8885A308D3ull;
  uint64_t bytes_ = 0;
};

// checksum64 of bytes [begin, end) of fd.
uint64_t checksum_range(int fd, uint64_t begin, uint64_t end, const std::string& path) {
  Checksum64 sum;
  std::vector<unsigned char> buf(size_t(1) << 20);  // a multiple of 8
  for (uint64_t at = begin; at < end;) {
    const size_t n = size_t(std::min<uint64_t>(buf.size(), end - at));
    pread_exact(fd, buf.data(), n, at, path, "data for its checksum");
    sum.words(buf.data(), n);
    at += n;
  }
  return sum.value();
}

std::string seal_block(uint64_t bytes, uint64_t head, uint64_t all) {
  char text[128];
  const int n = std::snprintf(text, sizeof text, "%sbytes=%" PRIu64 " head=%016" PRIx64 " all=%016" PRIx64 "\n",
                              kSealMagic, bytes, head, all);
  std::string block(kUserblock, '\0');
  std::memcpy(block.data(), text, size_t(n));
  return block;
}

// Writes the checksum block of a file HDF5 has closed.
void seal(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) fail(path, ": cannot open to write its checksum: ", std::strerror(errno));
  const uint64_t size = uint64_t(file_size_of(path));
  SPT_CHECK(size > kUserblock, path, ": HDF5 wrote no data after the user block");
  const uint64_t head = checksum_range(fd.get(), kUserblock, std::min(size, kUserblock + kHeadCheckBytes), path);
  const uint64_t all = checksum_range(fd.get(), kUserblock, size, path);
  const std::string block = seal_block(size, head, all);
  if (::pwrite(fd.get(), block.data(), block.size(), 0) != ssize_t(block.size()))
    fail(path, ": cannot write its checksum: ", std::strerror(errno));
  fd.close(path);
}

// Checks the checksum block of a file about to be opened (see File::open_read).
// Returns whether it has one; a file that has neither the block nor HDF5's
// signature at its start is an Error.
bool check_seal(const std::string& path) {
  OpenFile f = open_regular_file(path, "HDF5 file");
  unsigned char block[kUserblock] = {};
  const size_t got = size_t(std::min<uint64_t>(f.size, kUserblock));
  pread_exact(f.fd.get(), block, got, 0, path, "the file's first bytes");
  if (got >= 8 && std::memcmp(block, kHdf5Signature, 8) == 0) return false;  // no block
  const size_t magic = sizeof kSealMagic - 1;
  if (got < magic || std::memcmp(block, kSealMagic, magic) != 0)
    fail(path, ": not an HDF5 file (or truncated or corrupt)");
  uint64_t bytes = 0, head = 0, all = 0;
  const std::string text(reinterpret_cast<const char*>(block), got);
  const bool parsed = std::sscanf(text.c_str() + magic, "bytes=%" SCNu64 " head=%" SCNx64 " all=%" SCNx64,
                                  &bytes, &head, &all) == 3;
  if (!parsed || seal_block(bytes, head, all) != text)
    fail(path, ": corrupt file: its sptrain checksum block is damaged");
  if (bytes != f.size)
    fail(path, ": corrupt file: ", f.size, " bytes, but sptrain wrote ", bytes, " (truncated or extended?)");
  const uint64_t head_now = checksum_range(f.fd.get(), kUserblock, std::min(bytes, kUserblock + kHeadCheckBytes), path);
  const bool all_ok = bytes > kFullCheckBytes || checksum_range(f.fd.get(), kUserblock, bytes, path) == all;
  if (head_now != head || !all_ok)
    fail(path, ": corrupt file: its contents do not match the checksum sptrain wrote (a damaged copy?)");
  return true;
}

// Newest file format HDF5 1.10 writes (checksummed metadata); every object
// closed with the file, so the bytes are final before the file is sealed.
Id file_access() {
  Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110);
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  return fapl;
}

// Chunked storage with the Fletcher32 checksum; chunks of at most about
// kChunkBytes (the longest side halved until they fit), so that a slice of a
// weight reads little more than the slice. Empty datasets store nothing.
constexpr uint64_t kChunkBytes = uint64_t(1) << 20;
Id dataset_creation(const std::vector<hsize_t>& dims, size_t elem_bytes) {
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (dims.empty() || std::find(dims.begin(), dims.end(), hsize_t(0)) != dims.end()) return dcpl;
  std::vector<hsize_t> chunk = dims;
  auto bytes = [&] {
    uint64_t n = elem_bytes;
    for (hsize_t c : chunk) n *= c;
    return n;
  };
  while (bytes() > kChunkBytes) {
    auto longest = std::max_element(chunk.begin(), chunk.end());
    if (*longest == 1) break;
    *longest = (*longest + 1) / 2;
  }
  H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data());
  H5Pset_fletcher32(dcpl.get());
  return dcpl;
}

// A fixed-length UTF-8 string type of n bytes, padded with NULs.
Id string_type(size_t n) {
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<size_t>(n, 1));
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

// A fixed-length string read back: the padding NULs removed.
std::string unpad(const char* p, size_t n) {
  while (n > 0 && p[n - 1] == '\0') --n;
  return std::string(p, n);
}

// HDF5 prints its error stack to stderr by default; we report errors ourselves.
// Nor may it close files at exit: a file whose write failed (a full disk)
// stays open inside HDF5, and HDF5 1.10's exit handler crashes closing it
// (SIGSEGV in H5F__close_cb). Every file we write is closed, checked, before
// we use it (File::close), and a failed one is deleted anyway.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

// The system's reason for a failed HDF5 call, if it left one in errno.
std::string errno_reason() {
  return errno ? str(": ", std::strerror(errno)) : std::string();
}

hid_t bf16_type() {
  static hid_t t = [] {
    hid_t id = H5Tcopy(H5T_IEEE_F32LE);
    // sign at bit 15, exponent bits 7..14 (8 bits), mantissa bits 0..6.
    H5Tset_fields(id, 15, 7, 8, 0, 7);
    H5Tset_offset(id, 0);
    H5Tset_precision(id, 16);
    H5Tset_size(id, 2);
    H5Tset_ebias(id, 127);
    return id;
  }();
  return t;
}

hid_t f16_type() {
  static hid_t t = [] {
    hid_t id = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(id, 15, 10, 5, 0, 10);
    H5Tset_offset(id, 0);
    H5Tset_precision(id, 16);
    H5Tset_size(id, 2);
    H5Tset_ebias(id, 15);
    return id;
  }();
  return t;
}

herr_t no_close(hid_t) { return 0; }

DType dtype_of_h5(hid_t type, const std::string& where) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) {
    if (size == 4) return DType::F32;
    if (size == 8) return DType::F64;
    if (size == 2) {
      size_t spos, epos, esize, mpos, msize;
      H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
      return esize == 8 ? DType::BF16 : DType::F16;
    }
  } else if (cls == H5T_INTEGER) {
    if (size == 4) return DType::I32;
    if (size == 8) return DType::I64;
  }
  fail(where, ": unsupported HDF5 element type (class ", int(cls), ", ", size, " bytes)");
}

}  // namespace

void write_checksum(const std::string& path) { seal(path); }

bool looks_like_hdf5(const unsigned char* head, size_t n) {
  const size_t magic = sizeof kSealMagic - 1;
  return (n >= 8 && std::memcmp(head, kHdf5Signature, 8) == 0) ||
         (n >= magic && std::memcmp(head, kSealMagic, magic) == 0);
}

Id h5_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return Id(H5T_NATIVE_FLOAT, no_close);
    case DType::F64: return Id(H5T_NATIVE_DOUBLE, no_close);
    case DType::BF16: return Id(bf16_type(), no_close);
    case DType::F16: return Id(f16_type(), no_close);
    case DType::I32: return Id(H5T_NATIVE_INT32, no_close);
    case DType::I64: return Id(H5T_NATIVE_INT64, no_close);
  }
  fail("no HDF5 type for dtype ", dtype_name(dtype));
}

File File::create(const std::string& path) {
  silence_hdf5();
  Id fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  H5Pset_userblock(fcpl.get(), kUserblock);
  errno = 0;
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), file_access().get());
  if (id < 0) fail(path, ": cannot create HDF5 file", errno ? errno_reason() : " (check the folder exists and is writable)");
  File f(Id(id, H5Fclose), path);
  f.seal_ = true;
  return f;
}

File File::open(const std::string& path, bool writable) {
  silence_hdf5();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, ": no such file");
  const bool sealed = check_seal(path);
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, ": not an HDF5 file (or truncated or corrupt)");
  hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, file_access().get());
  if (id < 0)
    fail(path, writable ? ": cannot open HDF5 file for writing" : ": cannot open HDF5 file (truncated or corrupt?)");
  File f(Id(id, H5Fclose), path);
  f.file_bytes_ = uint64_t(file_size_of(path));
  f.seal_ = writable && sealed;
  return f;
}

File File::open_read(const std::string& path) { return open(path, false); }

File File::open_rw(const std::string& path) { return open(path, true); }

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (const Error&) {
    }
    id_ = std::move(other.id_);
    path_ = std::move(other.path_);
    file_bytes_ = other.file_bytes_;
    seal_ = other.seal_;
    other.seal_ = false;
  }
  return *this;
}

File::~File() {
  try {
    close();
  } catch (const Error&) {
    // An unsealed file fails its check when read: nothing is trusted unseen.
  }
}

void File::flush() {
  errno = 0;
  if (H5Fflush(id_.get(), H5F_SCOPE_LOCAL) < 0) error("flush failed" + errno_reason());
}

void File::close() {
  if (id_.get() < 0) return;
  errno = 0;
  if (H5Fclose(id_.release()) < 0) error("close failed (the file is incomplete)" + errno_reason());
  if (seal_) {
    seal_ = false;
    seal(path_);
  }
}

void File::check_fits(const std::string& what, uint64_t count, uint64_t bytes_each) const {
  if (file_bytes_ == 0) return;  // a file being written
  if (bytes_each != 0 && count > file_bytes_ / bytes_each)
    error(str(what, " declares more data than the whole file holds (", file_bytes_,
              " bytes; corrupt?)"));
}

void File::error(const std::string& what) const { fail(path_, ": ", what); }

bool File::exists(const std::string& obj) const {
  if (obj == "/" || obj.empty()) return true;
  // Check every prefix: H5Lexists fails on a missing intermediate group.
  std::string prefix;
  size_t pos = 0;
  while (pos != std::string::npos) {
    size_t next = obj.find('/', pos + 1);
    prefix = obj.substr(0, next);
    if (!prefix.empty() && prefix != "/") {
      if (H5Lexists(id_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    pos = next;
  }
  return true;
}

std::vector<std::string> File::list(const std::string& group) const {
  std::vector<std::string> names;
  Id g = open_object(group);
  H5G_info_t info;
  if (H5Gget_info(g.get(), &info) < 0) error("'" + group + "' is not a group");
  check_fits("group '" + group + "'", info.nlinks, 8);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                   H5P_DEFAULT);
    if (n < 0) error(str("cannot read the name of link ", i, " of '", group, "' (corrupt file?)"));
    check_fits("a link name in '" + group + "'", uint64_t(n), 1);
    std::string name(size_t(n), '\0');
    if (H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), size_t(n) + 1,
                           H5P_DEFAULT) < 0)
      error(str("cannot read the name of link ", i, " of '", group, "' (corrupt file?)"));
    names.push_back(name);
  }
  return names;
}

Id File::open_object(const std::string& obj) const {
  if (!exists(obj)) error("no object '" + obj + "'");
  hid_t id = H5Oopen(id_.get(), obj.empty() ? "/" : obj.c_str(), H5P_DEFAULT);
  if (id < 0) error("cannot open '" + obj + "'");
  return Id(id, H5Oclose);
}

Id File::open_dataset(const std::string& name) const {
  if (!exists(name)) error("missing dataset '" + name + "'");
  hid_t id = H5Dopen2(id_.get(), name.c_str(), H5P_DEFAULT);
  if (id < 0) error("'" + name + "' is not a dataset");
  return Id(id, H5Dclose);
}

void File::make_parents(const std::string& name) {
  size_t pos = 0;
  while ((pos = name.find('/', pos + 1)) != std::string::npos) {
    std::string group = name.substr(0, pos);
    if (group.empty() || group == "/") continue;
    if (H5Lexists(id_.get(), group.c_str(), H5P_DEFAULT) <= 0) {
      hid_t g = H5Gcreate2(id_.get(), group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (g < 0) error("cannot create group '" + group + "'");
      H5Gclose(g);
    }
  }
}

// ---- attributes ----
namespace {
void write_attr(hid_t obj, const std::string& name, hid_t type, const void* value,
                const std::string& where) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(obj, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (attr.get() < 0 || H5Awrite(attr.get(), type, value) < 0)
    fail(where, ": cannot write attribute '", name, "'");
}
}  // namespace

void File::set_attr(const std::string& obj, const std::string& name, const std::string& value) {
  Id o = open_object(obj);
  Id type = string_type(value.size());
  std::string padded = value;
  padded.resize(std::max<size_t>(value.size(), 1), '\0');
  write_attr(o.get(), name, type.get(), padded.data(), path_);
}
void File::set_attr(const std::string& obj, const std::string& name, int64_t value) {
  Id o = open_object(obj);
  write_attr(o.get(), name, H5T_NATIVE_INT64, &value, path_);
}
void File::set_attr(const std::string& obj, const std::string& name, uint64_t value) {
  Id o = open_object(obj);
  write_attr(o.get(), name, H5T_NATIVE_UINT64, &value, path_);
}
void File::set_attr(const std::string& obj, const std::string& name, double value) {
  Id o = open_object(obj);
  write_attr(o.get(), name, H5T_NATIVE_DOUBLE, &value, path_);
}

bool File::has_attr(const std::string& obj, const std::string& name) const {
  if (!exists(obj)) return false;
  Id o = open_object(obj);
  return H5Aexists(o.get(), name.c_str()) > 0;
}

namespace {
Id open_attr(hid_t obj, const std::string& name, const std::string& where) {
  if (H5Aexists(obj, name.c_str()) <= 0) fail(where, ": missing attribute '", name, "'");
  hid_t a = H5Aopen(obj, name.c_str(), H5P_DEFAULT);
  if (a < 0) fail(where, ": cannot open attribute '", name, "'");
  Id attr(a, H5Aclose);
  // Every reader below reads one value: an array would overrun it.
  Id space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    fail(where, ": attribute '", name, "' is not a single value");
  return attr;
}
}  // namespace

std::string File::attr_string(const std::string& obj, const std::string& name) const {
  Id o = open_object(obj);
  Id a = open_attr(o.get(), name, path_ + ":" + obj);
  Id ftype(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_STRING)
    error("attribute '" + name + "' of '" + obj + "' is not a string");
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    // HDF5 does not convert between ASCII and UTF-8: read in the file's cset.
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    char* p = nullptr;
    if (H5Aread(a.get(), mtype.get(), &p) < 0) error("cannot read attribute '" + name + "'");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const size_t n = H5Tget_size(ftype.get());
  if (n == 0) error("attribute '" + name + "' of '" + obj + "' is an empty string type");
  check_fits("attribute '" + name + "'", n, 1);
  std::string s(n, '\0');
  Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mtype.get(), n);
  H5Tset_strpad(mtype.get(), H5T_STR_NULLPAD);
  H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
  if (H5Aread(a.get(), mtype.get(), s.data()) < 0) error("cannot read attribute '" + name + "'");
  return unpad(s.data(), n);
}

int64_t File::attr_int(const std::string& obj, const std::string& name) const {
  Id o = open_object(obj);
  Id a = open_attr(o.get(), name, path_ + ":" + obj);
  Id ftype(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_INTEGER)
    error("attribute '" + name + "' of '" + obj + "' is not an integer");
  int64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0) error("cannot read attribute '" + name + "'");
  return v;
}

uint64_t File::attr_uint(const std::string& obj, const std::string& name) const {
  Id o = open_object(obj);
  Id a = open_attr(o.get(), name, path_ + ":" + obj);
  Id ftype(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_INTEGER)
    error("attribute '" + name + "' of '" + obj + "' is not an integer");
  uint64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_UINT64, &v) < 0) error("cannot read attribute '" + name + "'");
  return v;
}

double File::attr_double(const std::string& obj, const std::string& name) const {
  Id o = open_object(obj);
  Id a = open_attr(o.get(), name, path_ + ":" + obj);
  Id ftype(H5Aget_type(a.get()), H5Tclose);
  H5T_class_t cls = H5Tget_class(ftype.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    error("attribute '" + name + "' of '" + obj + "' is not a number");
  double v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v) < 0) error("cannot read attribute '" + name + "'");
  return v;
}

// ---- datasets ----
void File::create_dataset(const std::string& name, DType dtype, Shape shape) {
  make_parents(name);
  std::vector<hsize_t> dims(size_t(shape.rank));
  for (int i = 0; i < shape.rank; ++i) dims[size_t(i)] = hsize_t(shape[i]);
  Id space(H5Screate_simple(shape.rank, dims.data(), nullptr), H5Sclose);
  Id type = h5_type(dtype);
  Id dcpl = dataset_creation(dims, dtype_size(dtype));
  Id ds(H5Dcreate2(id_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(),
                   H5P_DEFAULT),
        H5Dclose);
  if (ds.get() < 0) error("cannot create dataset '" + name + "'");
}

void File::write(const std::string& name, DType dtype, Shape shape, const void* data,
                 DType mem_dtype) {
  create_dataset(name, dtype, shape);
  Id ds = open_dataset(name);
  Id mtype = h5_type(mem_dtype);
  if (H5Dwrite(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    error("cannot write dataset '" + name + "'");
}

void File::write_rows(const std::string& name, int64_t row_begin, int64_t row_count,
                      const void* data, DType mem_dtype) {
  Id ds = open_dataset(name);
  Id space(H5Dget_space(ds.get()), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (rank == 0 || row_begin < 0 || hsize_t(row_begin + row_count) > dims[0])
    error("write_rows out of range for '" + name + "'");
  std::vector<hsize_t> start(size_t(rank), 0), count = dims;
  start[0] = hsize_t(row_begin);
  count[0] = hsize_t(row_count);
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Id mspace(H5Screate_simple(rank, count.data(), nullptr), H5Sclose);
  Id mtype = h5_type(mem_dtype);
  if (H5Dwrite(ds.get(), mtype.get(), mspace.get(), space.get(), H5P_DEFAULT, data) < 0)
    error("cannot write rows of '" + name + "'");
}

void File::write_strings(const std::string& name, const std::vector<std::string>& values) {
  make_parents(name);
  size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  std::string packed(values.size() * width, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(&packed[i * width], values[i].data(), values[i].size());
  std::vector<hsize_t> dims{hsize_t(values.size())};
  Id space(H5Screate_simple(1, dims.data(), nullptr), H5Sclose);
  Id type = string_type(width);
  Id dcpl = dataset_creation(dims, width);
  Id ds(H5Dcreate2(id_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(),
                   H5P_DEFAULT),
        H5Dclose);
  if (ds.get() < 0) error("cannot create dataset '" + name + "'");
  if (!values.empty() && H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()) < 0)
    error("cannot write dataset '" + name + "'");
}

DatasetInfo File::info(const std::string& name) const {
  Id ds = open_dataset(name);
  Id type(H5Dget_type(ds.get()), H5Tclose);
  Id space(H5Dget_space(ds.get()), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 4) error("dataset '" + name + "' has unsupported rank");
  hsize_t dims[4] = {0, 0, 0, 0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  DatasetInfo out{dtype_of_h5(type.get(), path_ + ":" + name), Shape{}};
  out.shape.rank = rank;
  // Dimension by dimension: the product of those so far never overflows.
  const bool empty = std::find(dims, dims + rank, hsize_t(0)) != dims + rank;
  uint64_t bytes = dtype_size(out.dtype);
  for (int i = 0; i < rank; ++i) {
    if (dims[i] > (uint64_t(1) << 62)) error(str("dataset '", name, "' has dimension ", dims[i]));
    if (!empty) {
      check_fits("dataset '" + name + "'", dims[i], bytes);
      bytes *= dims[i];
    }
    out.shape.dims[size_t(i)] = int64_t(dims[i]);
  }
  return out;
}

void File::read(const std::string& name, DType mem_dtype, void* out) const {
  Id ds = open_dataset(name);
  Id mtype = h5_type(mem_dtype);
  if (H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    error("cannot read dataset '" + name + "' (truncated or corrupt file?)");
}

void File::read_block(const std::string& name, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                      DType mem_dtype, void* out) const {
  Id ds = open_dataset(name);
  Id space(H5Dget_space(ds.get()), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  hsize_t dims[2] = {1, 1};
  if (rank == 1) {
    H5Sget_simple_extent_dims(space.get(), &dims[1], nullptr);
  } else if (rank == 2) {
    H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  } else {
    error("dataset '" + name + "' is not 1-D or 2-D");
  }
  if (r0 < 0 || nr < 0 || c0 < 0 || nc < 0 || hsize_t(r0 + nr) > dims[0] ||
      hsize_t(c0 + nc) > dims[1])
    error(str("block rows [", r0, ", ", r0 + nr, ") cols [", c0, ", ", c0 + nc,
              ") is outside dataset '", name, "' of shape [", dims[0], ", ", dims[1], "]"));
  hsize_t start2[2] = {hsize_t(r0), hsize_t(c0)}, count2[2] = {hsize_t(nr), hsize_t(nc)};
  const hsize_t* start = rank == 1 ? &start2[1] : start2;
  const hsize_t* count = rank == 1 ? &count2[1] : count2;
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
  Id mspace(H5Screate_simple(rank, count, nullptr), H5Sclose);
  Id mtype = h5_type(mem_dtype);
  if (H5Dread(ds.get(), mtype.get(), mspace.get(), space.get(), H5P_DEFAULT, out) < 0)
    error("cannot read dataset '" + name + "' (truncated or corrupt file?)");
}

std::vector<std::string> File::read_strings(const std::string& name) const {
  Id ds = open_dataset(name);
  Id space(H5Dget_space(ds.get()), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  Id ftype(H5Dget_type(ds.get()), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_STRING) error("dataset '" + name + "' is not strings");
  std::vector<std::string> out;
  if (n <= 0) return out;
  const bool variable = H5Tis_variable_str(ftype.get()) > 0;
  // A variable-length string takes at least 16 bytes in the file (its heap id).
  check_fits("dataset '" + name + "'", uint64_t(n), variable ? 16 : std::max<size_t>(H5Tget_size(ftype.get()), 1));
  if (variable) {
    Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), H5T_CSET_UTF8);
    std::vector<char*> ptrs(size_t(n), nullptr);
    if (H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      error("cannot read dataset '" + name + "'");
    out.reserve(size_t(n));
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    const size_t sz = H5Tget_size(ftype.get());
    if (sz == 0) error("dataset '" + name + "' has strings of no size");
    std::vector<char> buf(sz * size_t(n));
    Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mtype.get(), sz);
    H5Tset_strpad(mtype.get(), H5T_STR_NULLPAD);
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    if (H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
      error("cannot read dataset '" + name + "' (truncated or corrupt file?)");
    out.reserve(size_t(n));
    for (hssize_t i = 0; i < n; ++i) out.push_back(unpad(buf.data() + size_t(i) * sz, sz));
  }
  return out;
}

}  // namespace sptrain::h5
