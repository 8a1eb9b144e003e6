#include "sptrain/comm/control.hpp"

#include <mpi.h>

namespace sptrain {

void control_sum(const ProcessGrid& grid, std::vector<double>& values) {
  if (grid.world_size() == 1 || values.empty()) return;
  MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_DOUBLE, MPI_SUM,
                MPI_COMM_WORLD);
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
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return lo >= hi;  // equal, or nobody participated
}

}  // namespace sptrain
