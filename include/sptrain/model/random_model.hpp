#pragma once
// Writes a model file with seeded random weights (attribute random = 1):
// small real-shaped models for tests and demos, never for results.
#include <cstdint>
#include <functional>
#include <string>

#include "sptrain/io/h5.hpp"
#include "sptrain/model/model_config.hpp"

namespace sptrain {

// Writes `config`'s weights, drawn from N(0, std^2) (norm weights 1 + N(0, 0.1^2)),
// to `path` via a temporary file. `write_tokenizer` (may be empty) adds the
// tokenizer group before the file is closed.
void write_random_model(const std::string& path, ModelConfig config, uint64_t seed, double std,
                        const std::function<void(h5::File&)>& write_tokenizer);

// A deterministic generator (SplitMix64) with its own normal draws, so random
// models are the same on every platform and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal();
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

}  // namespace sptrain
