#include "sptrain/io/file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
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

// " (N bytes free on the file system of DIR)" for the folder `path` goes in.
std::string free_space(const std::string& path) {
  struct statvfs s {};
  const std::string dir = parent_or_dot(path);
  if (::statvfs(dir.c_str(), &s) != 0) return "";
  return str(" (", uint64_t(s.f_bavail) * uint64_t(s.f_frsize), " bytes free on the file system of ", dir, ")");
}

// The system's reason for a failed write or sync of `path`; when the disk is
// full, also the space left where the file goes.
std::string write_error(int err, const std::string& path) {
  return std::strerror(err) + (disk_full(err) ? free_space(path) : std::string());
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

// Writes n bytes at fd's position; fails naming `path` at the first byte
// that is not written.
void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t done = ::write(fd, p, n);
    if (done < 0 && errno == EINTR) continue;
    // write() returning 0 for a non-empty buffer is a full disk in practice.
    if (done <= 0) fail(path, ": write failed: ", write_error(done < 0 ? errno : ENOSPC, path));
    p += done;
    n -= size_t(done);
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
      // A library (HDF5) that reports a failed write without the space left
      // leaves the reason in errno: a full disk is worth saying.
      const int err = errno;
      const std::string what = e.what();
      if (disk_full(err) && what.find(" bytes free ") == std::string::npos)
        fail(what, what.find(std::strerror(err)) == std::string::npos ? str(": ", std::strerror(err)) : "",
             free_space(tmp));
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
  if (!fd.valid()) fail(path, ": cannot create: ", write_error(errno, path));
  for (const ByteRange& part : parts) write_all(fd.get(), part.data, part.size, path);
  fd.close(path);
}

void write_file_atomically(const std::string& path, const std::vector<ByteRange>& parts) {
  write_file_atomically(path, [&](const std::string& tmp) { write_file(tmp, parts); });
}

OutputFile::OutputFile(const std::string& path, Mode mode) : path_(path) {
  const int how = mode == Mode::Append ? O_APPEND : O_TRUNC;
  fd_ = FileDescriptor(::open(path.c_str(), O_WRONLY | O_CREAT | how | O_CLOEXEC, 0644));
  if (!fd_.valid()) fail(path, ": cannot open for writing: ", write_error(errno, path));
}

void OutputFile::write(const std::string& bytes) { write_all(fd_.get(), bytes.data(), bytes.size(), path_); }

void OutputFile::close() { fd_.close(path_); }

void flush_checked(std::FILE* stream, const std::string& name) {
  errno = 0;
  if (std::fflush(stream) != 0 || std::ferror(stream)) {
    const int err = errno ? errno : EIO;
    std::clearerr(stream);
    fail(name, ": write failed: ", std::strerror(err), "; output was lost");
  }
}

void refuse_overwrite(const std::string& out, const std::string& in, const std::string& what) {
  std::error_code ec;
  if (fs::equivalent(out, in, ec))
    fail(what, ": --out ", out, " is the input ", in, "; writing it would destroy the input: give another path");
}

// ---- FolderLock ----

namespace {

std::string this_host() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "?";
  return host;
}

}  // namespace

FolderLock::FolderLock(const std::string& folder, const std::string& what)
    : path_((fs::path(folder) / kLockFile).string()) {
  std::error_code ec;
  if (fs::exists(folder, ec) && !fs::is_directory(folder, ec))
    fail(what, " ", folder, ": is a file, not a folder");
  fs::create_directories(folder, ec);
  if (ec) fail(what, " ", folder, ": cannot create the folder: ", ec.message());
  fd_ = FileDescriptor(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd_.valid())
    fail(what, " ", folder, ": cannot create ", path_, ": ", std::strerror(errno), " (it must be a writable folder)");
  const int locked = ::flock(fd_.get(), LOCK_EX | LOCK_NB);
  const int lock_error = errno;
  char text[512] = {};
  const ssize_t n = ::pread(fd_.get(), text, sizeof text - 1, 0);
  std::string holder = n > 0 ? std::string(text, size_t(n)) : "";
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
  const std::string in_use = str(what, " ", folder, " is in use by another run (", holder.empty() ? "unknown process" : holder,
                                 "; lock file ", path_, "): give each run its own ", what, ", or let that one end first");
  if (locked != 0 && lock_error == EWOULDBLOCK) fail(in_use);
  if (locked != 0) {
    // No locks on this file system: trust the recorded holder where we can check it.
    long pid = 0;
    char host[256] = {};
    const bool known = std::sscanf(holder.c_str(), "pid %ld on host %255s", &pid, host) == 2;
    if (known && this_host() == host && pid != long(::getpid()) && (::kill(pid_t(pid), 0) == 0 || errno == EPERM))
      fail(in_use);
    note_ = str(path_, ": this file system does not lock files (", std::strerror(lock_error),
                "); nothing stops a second run from using ", folder, " at the same time");
  } else if (!holder.empty()) {
    note_ = str("the lock ", path_, " of ", holder, " is free again (that process ended without releasing it)");
  }
  const std::string mine = str("pid ", ::getpid(), " on host ", this_host(), "\n");
  if (::ftruncate(fd_.get(), 0) != 0) fail(path_, ": cannot write: ", write_error(errno, path_));
  write_all(fd_.get(), mine.data(), mine.size(), path_);
}

FolderLock::~FolderLock() {
  if (!fd_.valid()) return;
  // Empty: the next run finds no holder to report. Then the kernel releases
  // the lock when the descriptor closes.
  const int emptied = ::ftruncate(fd_.get(), 0);
  (void)emptied;  // a lock file left with our pid only makes the next run's note say so
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
    fail(path, ": ", what, " need ", bytes, " bytes but the file system of ", dir, " has ", free,
         " free: ", std::strerror(ENOSPC));
}

int64_t file_size_of(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot stat: ", ec.message());
  return int64_t(n);
}

}  // namespace sptrain
