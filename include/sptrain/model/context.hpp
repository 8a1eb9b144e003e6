#pragma once
// What every layer needs to run: the back end, its tensor-parallel group and
// the element types it computes in.
#include "sptrain/backend/backend.hpp"
#include "sptrain/comm/communicator.hpp"

namespace sptrain {

struct ModelContext {
  Backend& backend;
  Group& tp;     // tensor-parallel group (a SoloGroup when tp = 1)
  DType act;     // weights and activations: f32/f64 on the CPU, bf16 on CUDA
  DType stat;    // norm statistics, prompt, loss terms: f32 (f64 with f64 activations)

  Buffer alloc(Shape s) const { return backend.allocate(act, s); }
  Buffer alloc_stat(Shape s) const { return backend.allocate(stat, s); }
};

// A contiguous part [begin, begin + count) of n things split into `parts`
// nearly equal pieces (sizes differ by at most one).
struct Range {
  int64_t begin = 0;
  int64_t count = 0;
  int64_t end() const { return begin + count; }
};
inline Range split_range(int64_t n, int parts, int index) {
  const int64_t base = n / parts, extra = n % parts;
  const int64_t begin = index * base + std::min<int64_t>(index, extra);
  return {begin, base + (index < extra ? 1 : 0)};
}

}  // namespace sptrain
