#pragma once
// A small RAII layer over the HDF5 C API. Every failure throws sptrain::Error
// naming the file and the object; HDF5's own stack printing is switched off.
//
// Files are written so that a damaged copy is caught before anything trusts it
// (docs/security.md): HDF5's newer file format (1.10), whose metadata carries
// checksums; every dataset chunked with the Fletcher32 checksum; strings of
// fixed length (never HDF5's variable-length strings, whose global heap has no
// checksum); and a 512-byte user block in front that HDF5 ignores, holding
// sptrain's own checksum of the whole file, checked on open before HDF5 reads
// a byte. Files without that block (written by earlier sptrain versions, or by
// other programs) are read as before.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sptrain/core/tensor.hpp"

namespace sptrain::h5 {

// An hid_t that closes itself.
class Id {
 public:
  Id() = default;
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Id(Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Id& operator=(Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() { reset(); }
  hid_t get() const { return id_; }
  // Gives up ownership: the caller closes it.
  hid_t release() {
    const hid_t id = id_;
    id_ = -1;
    return id;
  }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

struct DatasetInfo {
  DType dtype;  // element type in the file (f32, f64, bf16, f16, i32, i64)
  Shape shape;
};

class File {
 public:
  // Creates (truncating) a file for writing; close() seals it: writes the
  // checksum block (so does the destructor, ignoring errors).
  static File create(const std::string& path);
  // Opens a file; when it has sptrain's checksum block, the checksum is
  // checked first (the whole file up to kFullCheckBytes, beyond that the
  // first kHeadCheckBytes after the block: HDF5's own checksums cover the rest).
  static File open_read(const std::string& path);
  // As open_read, for changing a file: close() seals it again.
  static File open_rw(const std::string& path);
  File(File&& other) noexcept = default;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& path() const { return path_; }
  // Bytes of the file when it was opened: no size it declares can be larger.
  uint64_t file_bytes() const { return file_bytes_; }
  void flush();
  // Closes now and fails when HDF5 cannot write what it still holds (a full
  // disk); a writer calls it before the file is used (the destructor closes
  // without a check).
  void close();

  bool exists(const std::string& obj) const;  // group or dataset, "a/b/c"
  std::vector<std::string> list(const std::string& group) const;

  // ---- attributes on an object ("/" is the root) ----
  void set_attr(const std::string& obj, const std::string& name, const std::string& value);
  void set_attr(const std::string& obj, const std::string& name, const char* value) {
    set_attr(obj, name, std::string(value));
  }
  void set_attr(const std::string& obj, const std::string& name, int64_t value);
  void set_attr(const std::string& obj, const std::string& name, int value) {
    set_attr(obj, name, int64_t(value));
  }
  void set_attr(const std::string& obj, const std::string& name, uint64_t value);
  void set_attr(const std::string& obj, const std::string& name, double value);
  void set_attr(const std::string& obj, const std::string& name, bool value) {
    set_attr(obj, name, int64_t(value ? 1 : 0));
  }
  bool has_attr(const std::string& obj, const std::string& name) const;
  std::string attr_string(const std::string& obj, const std::string& name) const;
  int64_t attr_int(const std::string& obj, const std::string& name) const;
  uint64_t attr_uint(const std::string& obj, const std::string& name) const;
  double attr_double(const std::string& obj, const std::string& name) const;
  bool attr_bool(const std::string& obj, const std::string& name) const {
    return attr_int(obj, name) != 0;
  }

  // ---- datasets (intermediate groups are created) ----
  // Creates a dataset of file dtype `dtype` and writes `data`, laid out in
  // memory as `mem_dtype` (converted by HDF5 when they differ).
  void write(const std::string& name, DType dtype, Shape shape, const void* data,
             DType mem_dtype);
  void write(const std::string& name, DType dtype, Shape shape, const void* data) {
    write(name, dtype, shape, data, dtype);
  }
  // Creates an empty dataset to be filled with write_rows (streaming writers).
  void create_dataset(const std::string& name, DType dtype, Shape shape);
  void write_rows(const std::string& name, int64_t row_begin, int64_t row_count,
                  const void* data, DType mem_dtype);
  void write_strings(const std::string& name, const std::vector<std::string>& values);

  // The dataset's element type and shape; an Error when its data could not
  // fit in the file (so a reader may allocate what it declares).
  DatasetInfo info(const std::string& name) const;
  // Reads the whole dataset converted to mem_dtype.
  void read(const std::string& name, DType mem_dtype, void* out) const;
  // Reads rows [r0, r0+nr) x cols [c0, c0+nc) of a 1-D or 2-D dataset
  // (a 1-D dataset has one row) with a hyperslab: only those bytes are read.
  void read_block(const std::string& name, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                  DType mem_dtype, void* out) const;
  std::vector<std::string> read_strings(const std::string& name) const;

 private:
  File(Id id, std::string path) : id_(std::move(id)), path_(std::move(path)) {}
  static File open(const std::string& path, bool writable);
  Id open_object(const std::string& obj) const;
  Id open_dataset(const std::string& name) const;
  void make_parents(const std::string& name);
  void check_fits(const std::string& what, uint64_t count, uint64_t bytes_each) const;
  [[noreturn]] void error(const std::string& what) const;

  Id id_;
  std::string path_;
  uint64_t file_bytes_ = 0;
  bool seal_ = false;  // close() writes the checksum block
};

// Whether a file's first n bytes start an HDF5 file: HDF5's signature, or
// sptrain's checksum block (n >= 16 for the latter).
bool looks_like_hdf5(const unsigned char* head, size_t n);

// Writes the checksum block of a file that h5::File::create made and that was
// changed since by other means: for tools that damage files on purpose to see
// what else catches the damage (tests/byte_flip/test_byte_flip.cpp).
void write_checksum(const std::string& path);

// Sizes of the checksum block's checks (see File::open_read).
inline constexpr uint64_t kFullCheckBytes = uint64_t(1) << 30;
inline constexpr uint64_t kHeadCheckBytes = uint64_t(1) << 20;

// HDF5 memory/file type for a dtype (bf16 is a custom 16-bit float that HDF5
// converts to and from f32 itself).
Id h5_type(DType dtype);

}  // namespace sptrain::h5
