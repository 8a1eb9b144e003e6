#include "sptrain/train/control.hpp"

#include <mpi.h>

namespace sptrain {

namespace {
bool multi_rank() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (!init || fin) return false;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size > 1;
}
}  // namespace

void control_sum(std::vector<double>& values) {
  if (!multi_rank() || values.empty()) return;
  MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_DOUBLE, MPI_SUM,
                MPI_COMM_WORLD);
}

bool control_all_equal(uint64_t value, bool participates) {
  if (!multi_rank()) return true;
  uint64_t lo = participates ? value : UINT64_MAX, hi = participates ? value : 0;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return lo >= hi;  // equal, or nobody participated
}

}  // namespace sptrain
