#pragma once
// Helpers for the communication tests: a group over the whole world and
// per-rank test values whose sums and maxima are exact in every dtype, so
// expected results can be computed here, independently of MPI or NCCL.
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "sptrain/comm/mpi_group.hpp"

namespace sptrain::test {

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
inline int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// One watchdog for the test binary's groups, as a process grid has (made by
// the first world_group call, which every rank makes at the same point).
inline MpiWatchdog* test_watchdog() {
  static MpiWatchdog watchdog;
  return &watchdog;
}

// An MpiGroup over a duplicate of the world (the group owns and frees it),
// its calls completed by the watchdog as in a process grid.
inline MpiGroup world_group(CommKind kind, ByteCounter* counter) {
  MpiWatchdog* watchdog = test_watchdog();
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  return MpiGroup(comm, kind, counter, watchdog);
}

// Element i of rank r: small integers and halves, positive and negative, not
// monotonic in r (so Max is not always the last rank's value). Sums over 8
// ranks stay exact in f32, f64, i32, i64 and bf16 (|sum| < 128).
inline double test_value(int r, int64_t i) { return double((r * 7 + i * 3) % 11) - 5.0 + 0.5 * double(r % 2); }
// For integer dtypes: no halves; for i64 a value above 2^32 as well.
inline int64_t test_int(int r, int64_t i, bool wide) {
  const int64_t v = (r * 7 + i * 3) % 11 - 5;
  return wide ? v + (int64_t(r + 1) << 33) : v;
}

template <typename T>
Tensor host_tensor(std::vector<T>& v, Shape shape) {
  return Tensor{v.data(), dtype_of<T>(), Device::CPU, shape};
}

}  // namespace sptrain::test
