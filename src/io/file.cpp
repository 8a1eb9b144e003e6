#include "sptrain/io/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sptrain/core/error.hpp"

namespace sptrain {
namespace fs = std::filesystem;

namespace {

std::string parent_or_dot(const std::string& path) {
  const fs::path p = fs::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

bool disk_full(int err) { return err == ENOSPC || err == EDQUOT; }

// The system's reason for a failed write or sync of `path`; when the disk is
// full, also the space left where the file goes.
std::string write_error(int err, const std::string& path) {
  std::string why = std::strerror(err);
  struct statvfs s {};
  const std::string dir = parent_or_dot(path);
  if (disk_full(err) && ::statvfs(dir.c_str(), &s) == 0)
    why += str(" (", uint64_t(s.f_bavail) * uint64_t(s.f_frsize), " bytes free on the file system of ",
               dir, ")");
  return why;
}

// Flushes a file's (or a folder's) data to the disk, so that the rename that
// follows can never expose a file whose bytes are still only in the cache.
void fsync_path(const std::string& path, bool directory) {
  FileDescriptor fd(::open(path.c_str(), (directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY) | O_CLOEXEC));
  if (!fd.valid()) fail(path, ": cannot open to sync: ", std::strerror(errno));
  if (::fsync(fd.get()) != 0) {
    const int err = errno;
    // Some file systems cannot sync a folder (EINVAL); the file itself is synced.
    if (!(directory && err == EINVAL)) fail(path, ": fsync failed: ", write_error(err, path));
  }
}

}  // namespace

// ---- FileDescriptor ----

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

void FileDescriptor::close(const std::string& path) {
  const int fd = release();
  if (fd >= 0 && ::close(fd) != 0) fail(path, ": close failed: ", write_error(errno, path));
}

OpenFile open_regular_file(const std::string& path, const std::string& what) {
  OpenFile f;
  f.fd = FileDescriptor(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f.fd.valid()) fail(path, ": cannot open ", what, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    fail(path, S_ISDIR(st.st_mode) ? ": is a folder, not a " : ": not a regular file; expected a ", what);
  f.size = uint64_t(st.st_size);
  return f;
}

// ---- writing ----

void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string& tmp)>& writer) {
  const std::string tmp = path + ".tmp";
  try {
    errno = 0;
    try {
      writer(tmp);
    } catch (const Error& e) {
      // A library (HDF5) that reports a failed write without the reason
      // leaves it in errno: a full disk is worth saying.
      const int err = errno;
      const std::string what = e.what();
      if (disk_full(err) && what.find(std::strerror(err)) == std::string::npos)
        fail(what, ": ", write_error(err, tmp));
      throw;
    }
    fsync_path(tmp, false);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) fail(path, ": cannot rename ", tmp, " to it: ", ec.message());
    fsync_path(parent_or_dot(path), true);
  } catch (...) {
    std::error_code ignore;
    fs::remove(tmp, ignore);
    throw;
  }
}

void write_file(const std::string& path, const std::vector<ByteRange>& parts) {
  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) fail(path, ": cannot create: ", std::strerror(errno));
  for (const ByteRange& part : parts) {
    const char* p = static_cast<const char*>(part.data);
    size_t left = part.size;
    while (left > 0) {
      const ssize_t n = ::write(fd.get(), p, left);
      if (n < 0 && errno == EINTR) continue;
      // write() returning 0 for a non-empty buffer is a full disk in practice.
      if (n <= 0) fail(path, ": write failed: ", write_error(n < 0 ? errno : ENOSPC, path));
      p += n;
      left -= size_t(n);
    }
  }
  fd.close(path);
}

void write_file_atomically(const std::string& path, const std::vector<ByteRange>& parts) {
  write_file_atomically(path, [&](const std::string& tmp) { write_file(tmp, parts); });
}

// ---- reading ----

void pread_exact(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& path,
                 const std::string& what) {
  auto* out = static_cast<char*>(dst);
  while (n > 0) {
    const size_t chunk = size_t(std::min<uint64_t>(n, uint64_t(1) << 30));
    const ssize_t got = ::pread(fd, out, chunk, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      fail(path, ": cannot read ", what, " at offset ", offset,
           got == 0 ? ": unexpected end of file (was it truncated?)"
                    : str(": read error: ", std::strerror(errno)));
    out += got;
    offset += uint64_t(got);
    n -= uint64_t(got);
  }
}

std::string read_whole_file(const std::string& path, uint64_t max_bytes, const std::string& what) {
  OpenFile f = open_regular_file(path, what);
  if (f.size > max_bytes)
    fail(path, ": the ", what, " is ", f.size, " bytes, more than the ", max_bytes,
         " this reader accepts");
  std::string bytes(size_t(f.size), '\0');
  pread_exact(f.fd.get(), bytes.data(), f.size, 0, path, what);
  return bytes;
}

void check_free_space(const std::string& path, uint64_t bytes, const std::string& what) {
  struct statvfs s {};
  const std::string dir = parent_or_dot(path);
  if (::statvfs(dir.c_str(), &s) != 0) return;  // a missing folder is reported by the write
  const uint64_t free = uint64_t(s.f_bavail) * uint64_t(s.f_frsize);
  if (bytes > free)
    fail(path, ": ", what, " need ", bytes, " bytes but the file system of ", dir, " has ", free, " free");
}

int64_t file_size_of(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot stat: ", ec.message());
  return int64_t(n);
}

}  // namespace sptrain
