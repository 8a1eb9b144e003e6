#include "sptrain/io/h5.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace sptrain::h5 {
namespace {

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
  errno = 0;
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) fail(path, ": cannot create HDF5 file", errno ? errno_reason() : " (check the folder exists and is writable)");
  return File(Id(id, H5Fclose), path);
}

File File::open_read(const std::string& path) {
  silence_hdf5();
  if (!std::filesystem::exists(path)) fail(path, ": no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, ": not an HDF5 file (or truncated or corrupt)");
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) fail(path, ": cannot open HDF5 file (truncated or corrupt?)");
  return File(Id(id, H5Fclose), path);
}

File File::open_rw(const std::string& path) {
  silence_hdf5();
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (id < 0) fail(path, ": cannot open HDF5 file for writing");
  return File(Id(id, H5Fclose), path);
}

void File::flush() {
  errno = 0;
  if (H5Fflush(id_.get(), H5F_SCOPE_LOCAL) < 0) error("flush failed" + errno_reason());
}

void File::close() {
  const hid_t id = id_.release();
  errno = 0;
  if (id >= 0 && H5Fclose(id) < 0) error("close failed (the file is incomplete)" + errno_reason());
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
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                   H5P_DEFAULT);
    std::string name(size_t(n), '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), size_t(n) + 1,
                       H5P_DEFAULT);
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
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* p = value.c_str();
  write_attr(o.get(), name, type.get(), &p, path_);
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
  return Id(a, H5Aclose);
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
  size_t n = H5Tget_size(ftype.get());
  std::string s(n, '\0');
  Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mtype.get(), n);
  H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
  if (H5Aread(a.get(), mtype.get(), s.data()) < 0) error("cannot read attribute '" + name + "'");
  s.resize(strnlen(s.c_str(), n));
  return s;
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
  Id ds(H5Dcreate2(id_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
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
  hsize_t n = values.size();
  Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Id ds(H5Dcreate2(id_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT),
        H5Dclose);
  if (ds.get() < 0) error("cannot create dataset '" + name + "'");
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& s : values) ptrs.push_back(s.c_str());
  if (n > 0 && H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
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
  for (int i = 0; i < rank; ++i) out.shape.dims[size_t(i)] = int64_t(dims[i]);
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
  if (H5Tis_variable_str(ftype.get()) > 0) {
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
    size_t sz = H5Tget_size(ftype.get());
    std::vector<char> buf(sz * size_t(n));
    Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mtype.get(), sz);
    if (H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
      error("cannot read dataset '" + name + "'");
    for (hssize_t i = 0; i < n; ++i) {
      const char* p = buf.data() + size_t(i) * sz;
      out.emplace_back(p, strnlen(p, sz));
    }
  }
  return out;
}

}  // namespace sptrain::h5
