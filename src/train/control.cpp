#include "sptrain/train/control.hpp"

#include <mpi.h>

namespace sptrain {

void control_sum(const ProcessGrid& grid, std::vector<double>& values) {
  if (grid.world_size() == 1 || values.empty()) return;
  MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_DOUBLE, MPI_SUM,
                MPI_COMM_WORLD);
}

bool control_all_equal(const ProcessGrid& grid, uint64_t value, bool participates) {
  if (grid.world_size() == 1) return true;
  uint64_t lo = participates ? value : UINT64_MAX, hi = participates ? value : 0;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return lo >= hi;  // equal, or nobody participated
}

}  // namespace sptrain
