// Temporary entry point until the command-line parser lands.
#include <cstdio>

#include "sptrain/core/version.hpp"

int main() {
  std::printf("sptrain %s\n", sptrain::kVersion);
  return 0;
}
