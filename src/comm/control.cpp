#include "sptrain/comm/control.hpp"

#include <mpi.h>

namespace sptrain {

namespace {

// An all-reduce over the world, completed by the grid's watchdog.
void world_all_reduce(const ProcessGrid& grid, void* values, int n, MPI_Datatype type, MPI_Op op) {
  SPT_ASSERT(grid.watchdog);
  MPI_Request r = MPI_REQUEST_NULL;
  MPI_Iallreduce(MPI_IN_PLACE, values, n, type, op, MPI_COMM_WORLD, &r);
  int size = 0;
  MPI_Type_size(type, &size);
  grid.watchdog->wait(&r, 1, WaitFor{"control MPI_Allreduce", "world", uint64_t(n) * uint64_t(size), -1});
}

}  // namespace

void control_sum(const ProcessGrid& grid, std::vector<double>& values) {
  if (grid.world_size() == 1 || values.empty()) return;
  world_all_reduce(grid, values.data(), int(values.size()), MPI_DOUBLE, MPI_SUM);
}

void control_sum(const ProcessGrid& grid, std::initializer_list<double*> values) {
  if (grid.world_size() == 1) return;
  // Reserved once per thread: a training step's sum allocates nothing after the first.
  static thread_local std::vector<double> packed;
  packed.clear();
  for (double* v : values) packed.push_back(*v);
  control_sum(grid, packed);
  size_t i = 0;
  for (double* v : values) *v = packed[i++];
}

bool control_all_equal(const ProcessGrid& grid, uint64_t value, bool participates) {
  if (grid.world_size() == 1) return true;
  uint64_t lo = participates ? value : UINT64_MAX, hi = participates ? value : 0;
  world_all_reduce(grid, &lo, 1, MPI_UINT64_T, MPI_MIN);
  world_all_reduce(grid, &hi, 1, MPI_UINT64_T, MPI_MAX);
  return lo >= hi;  // equal, or nobody participated
}

}  // namespace sptrain
