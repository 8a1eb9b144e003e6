#pragma once
// A model's fingerprint: 64-bit FNV-1a over every weight's name and bytes in
// the order written. Stored as the model file's `fingerprint` attribute and in
// every prompt checkpoint, so a prompt is never used with another model.
#include <cstdint>
#include <cstdio>
#include <string>

namespace sptrain {

class Fingerprint {
 public:
  void update(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) {
      h_ ^= p[i];
      h_ *= 0x100000001b3ull;
    }
  }
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

}  // namespace sptrain
