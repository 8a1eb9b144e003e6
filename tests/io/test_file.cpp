// io/file: atomic replacement keeps the old file on any error and leaves no
// temporary behind; exact reads and whole-file reads fail clearly, naming
// the path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "../support/test_util.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"

namespace sptrain {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

class FileTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return scratch_.path(name); }

  static void put(const std::string& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  }
  static std::string get(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // The files in the test's folder, by name.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(scratch_.dir())) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  test::ScratchDir scratch_;
};

// Matches a callable that throws sptrain::Error with all the given substrings.
template <typename... Parts>
auto ThrowsErrorWith(Parts... parts) {
  return ::testing::ThrowsMessage<Error>(AllOf(HasSubstr(parts)...));
}

TEST_F(FileTest, SuccessfulWriteReplacesTheFile) {
  put(path("a.bin"), "old contents");
  std::string seen_tmp;
  write_file_atomically(path("a.bin"), [&](const std::string& tmp) {
    seen_tmp = tmp;
    write_file(tmp, {{"new", 3}, {"er", 2}});
  });
  EXPECT_EQ(seen_tmp, path("a.bin") + ".tmp");
  EXPECT_EQ(get(path("a.bin")), "newer");
  EXPECT_EQ(names(), std::vector<std::string>{"a.bin"});

  write_file_atomically(path("b.bin"), {{"fresh", 5}});  // a new file, from byte ranges
  EXPECT_EQ(get(path("b.bin")), "fresh");
}

TEST_F(FileTest, WriterThatThrowsLeavesTheOldFileAndNoTemporary) {
  put(path("a.bin"), "old contents");
  EXPECT_THAT([&] {
                write_file_atomically(path("a.bin"), [&](const std::string& tmp) {
                  write_file(tmp, {{"half", 4}});
                  fail(tmp, ": the writer gave up");
                });
              },
              ThrowsErrorWith("the writer gave up"));
  EXPECT_EQ(get(path("a.bin")), "old contents");
  EXPECT_EQ(names(), std::vector<std::string>{"a.bin"});

  // Not only sptrain::Error: anything the writer throws.
  EXPECT_THROW(write_file_atomically(path("a.bin"),
                                     [&](const std::string& tmp) {
                                       write_file(tmp, {{"x", 1}});
                                       throw std::bad_alloc();
                                     }),
               std::bad_alloc);
  EXPECT_EQ(get(path("a.bin")), "old contents");
  EXPECT_EQ(names(), std::vector<std::string>{"a.bin"});
}

TEST_F(FileTest, RenameOntoAFolderFailsNamingThePathAndRemovesTheTemporary) {
  fs::create_directories(path("d") + "/inside");
  EXPECT_THAT([&] { write_file_atomically(path("d"), {{"x", 1}}); },
              ThrowsErrorWith(path("d"), "cannot rename"));
  EXPECT_TRUE(fs::is_directory(path("d") + "/inside"));
  EXPECT_EQ(names(), std::vector<std::string>{"d"});
}

TEST_F(FileTest, MissingFolderIsAnErrorNamingThePath) {
  const std::string p = path("no/such/folder/f.bin");
  EXPECT_THAT([&] { write_file_atomically(p, {{"x", 1}}); }, ThrowsErrorWith(p, "cannot create"));
}

TEST_F(FileTest, FullDiskSaysSo) {
  // /dev/full fails every write with ENOSPC.
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  EXPECT_THAT([&] { write_file("/dev/full", {{"x", 1}}); },
              ThrowsErrorWith("/dev/full", "write failed", "No space left on device", "bytes free"));
}

TEST_F(FileTest, PreadExactReadsAtTheOffsetAndFailsOnAShortFile) {
  put(path("short.bin"), "0123456789");
  OpenFile f = open_regular_file(path("short.bin"), "test file");
  EXPECT_EQ(f.size, 10u);
  char buf[4] = {};
  pread_exact(f.fd.get(), buf, 4, 3, path("short.bin"), "digits");
  EXPECT_EQ(std::string(buf, 4), "3456");
  // The offset named is where the file ended.
  EXPECT_THAT([&] { pread_exact(f.fd.get(), buf, 4, 8, path("short.bin"), "the tail"); },
              ThrowsErrorWith(path("short.bin"), "cannot read the tail at offset 10",
                              "unexpected end of file"));
}

TEST_F(FileTest, ReadWholeFileHonoursItsLimits) {
  put(path("ten.txt"), "0123456789");
  EXPECT_EQ(read_whole_file(path("ten.txt"), 10, "test file"), "0123456789");
  put(path("empty.txt"), "");
  EXPECT_EQ(read_whole_file(path("empty.txt"), 10, "test file"), "");
  EXPECT_THAT([&] { read_whole_file(path("ten.txt"), 9, "test file"); },
              ThrowsErrorWith(path("ten.txt"), "test file is 10 bytes, more than the 9"));
  EXPECT_THAT([&] { read_whole_file(path("missing.txt"), 10, "test file"); },
              ThrowsErrorWith(path("missing.txt"), "cannot open test file", "No such file"));
  fs::create_directories(path("folder"));
  EXPECT_THAT([&] { read_whole_file(path("folder"), 10, "test file"); },
              ThrowsErrorWith(path("folder"), "is a folder"));
}

TEST_F(FileTest, FileDescriptorClosesAndMoves) {
  put(path("f.txt"), "x");
  FileDescriptor a(::open(path("f.txt").c_str(), O_RDONLY));
  ASSERT_TRUE(a.valid());
  const int fd = a.get();
  FileDescriptor b = std::move(a);
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(b.get(), fd);
  b.close(path("f.txt"));
  EXPECT_FALSE(b.valid());
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // really closed
}

}  // namespace
}  // namespace sptrain
