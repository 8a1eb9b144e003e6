#pragma once
// Plain-file helpers every reader and writer shares: atomic replacement,
// exact positioned reads, bounded whole-file reads. Errors are sptrain::Error
// naming the path (and the system's reason).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace sptrain {

// An open file descriptor, closed when it goes out of scope.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor();
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes now, failing (naming `path`) when close reports an error, which
  // for a written file can be the first sign of a failed write.
  void close(const std::string& path);

 private:
  int fd_ = -1;
};

// A regular file open for reading, and its size.
struct OpenFile {
  FileDescriptor fd;
  uint64_t size = 0;
};
// Opens `path` read-only; fails naming it, `what` (e.g. "GGUF file") and the
// reason, or when it is not a regular file.
OpenFile open_regular_file(const std::string& path, const std::string& what);

// Writes a new version of `path` so that `path` is always either the old
// file or the complete new one: writer(tmp) writes path + ".tmp" (by name,
// so HDF5 can create it) and closes it before it returns; then the temporary
// file is fsynced, renamed over `path`, and the folder fsynced. On any error
// the temporary file is removed, `path` is left as it was, and the error is
// rethrown; when the disk is full it says so and how much space is left.
void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string& tmp)>& writer);

// A piece of a file's contents.
struct ByteRange {
  const void* data;
  size_t size;
};
// Writes the pieces one after another to `path` (created or truncated).
void write_file(const std::string& path, const std::vector<ByteRange>& parts);
// write_file through write_file_atomically.
void write_file_atomically(const std::string& path, const std::vector<ByteRange>& parts);

// A file written piece by piece (metrics.jsonl, bench --batches-out): every
// write goes straight to the file and is checked, so the first byte that
// does not reach it fails, naming the path and the reason (on a full disk,
// the space left).
class OutputFile {
 public:
  enum class Mode { Truncate, Append };
  OutputFile(const std::string& path, Mode mode);
  void write(const std::string& bytes);
  void close();  // checked; the destructor closes without a check
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  FileDescriptor fd_;
};

// Flushes a stdio stream (stdout) and fails, naming it, when any write to it
// failed (a full disk, /dev/full, a closed pipe): output is never lost silently.
void flush_checked(std::FILE* stream, const std::string& name);

// Fails when writing `out` would replace the input `in` (the same file, by
// any path): "<what>: --out OUT is the input IN; write to another path".
void refuse_overwrite(const std::string& out, const std::string& in, const std::string& what);

// A folder that one process at a time may write into (a run's run_dir): the
// constructor creates it if needed and locks it (`kLockFile` inside, with
// flock, holding this process's host and pid), and fails, naming it and
// `what` (e.g. "train.run_dir"), when it is a file or cannot be created or
// written, or another process holds the lock (the message names it). A lock
// whose holder died is free again (the kernel released it): `note` then says
// whose it was. Where the file system has no locks, a holder on this host
// that still runs is refused, and anything else is taken with a note.
class FolderLock {
 public:
  static constexpr const char* kLockFile = "sptrain.lock";
  FolderLock(const std::string& folder, const std::string& what);
  ~FolderLock();  // empties the lock file and releases the lock
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  const std::string& note() const { return note_; }

 private:
  std::string path_, note_;
  FileDescriptor fd_;
};

// Reads exactly n bytes at `offset` of `fd` into dst; fails naming `path`,
// `what` and the offset on a read error or an early end of file.
void pread_exact(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& path,
                 const std::string& what);

// The whole contents of the file `path`. Fails, naming the path and `what`
// (e.g. "tokenizer file"), when it does not exist or cannot be read, is a
// folder, or is larger than max_bytes.
std::string read_whole_file(const std::string& path, uint64_t max_bytes, const std::string& what);

// Fails, naming `path` and `what`, when the file system `path` would be
// written on has fewer than `bytes` bytes free: checked before a large write,
// so a size that cannot fit stops at once instead of filling the disk.
void check_free_space(const std::string& path, uint64_t bytes, const std::string& what);

// The size in bytes of the file `path`; fails naming it.
int64_t file_size_of(const std::string& path);

}  // namespace sptrain
