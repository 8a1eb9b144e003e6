#include "fuzz_util.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace sptrain::fuzz {
namespace fs = std::filesystem;

std::vector<std::string_view> split_parts(std::string_view input) {
  std::vector<std::string_view> parts;
  for (size_t begin = 0;;) {
    size_t end = input.find('\0', begin);
    parts.push_back(input.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return parts;
    begin = end + 1;
  }
}

namespace {
const fs::path& scratch() {
  static const fs::path dir = fs::temp_directory_path() / ("sptrain_fuzz_" + std::to_string(::getpid()));
  return dir;
}
}  // namespace

std::string fresh_dir() {
  static const bool cleanup = [] {
    return std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch(), ec);
    }) == 0;
  }();
  (void)cleanup;
  fs::remove_all(scratch());
  fs::create_directories(scratch());
  return scratch().string();
}

std::string write_file(const std::string& dir, const std::string& name, std::string_view bytes) {
  std::string path = (fs::path(dir) / name).string();
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) bug("cannot write " + path);
  return path;
}

bool verbose() {
  static const bool on = std::getenv("SPTRAIN_FUZZ_VERBOSE") != nullptr;
  return on;
}

void bug(const std::string& message) {
  std::fprintf(stderr, "sptrain fuzz: property broken: %s\n", message.c_str());
  std::abort();
}

}  // namespace sptrain::fuzz
