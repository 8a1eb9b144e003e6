#include "sptrain/comm/control.hpp"

#include <mpi.h>

#include "sptrain/core/error.hpp"

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

bool control_all_equal(const ProcessGrid& grid, uint64_t value, int slot, int slots) {
  if (grid.world_size() == 1) return true;
  std::vector<uint64_t> lo(size_t(slots), UINT64_MAX), hi(size_t(slots), 0);
  if (slot >= 0) lo[size_t(slot)] = hi[size_t(slot)] = value;
  MPI_Allreduce(MPI_IN_PLACE, lo.data(), slots, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, hi.data(), slots, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  for (int i = 0; i < slots; ++i)
    if (lo[size_t(i)] < hi[size_t(i)]) return false;
  return true;
}

std::vector<std::string> control_gather(const ProcessGrid& grid, const std::string& mine) {
  if (grid.world_size() == 1) return {mine};
  const int n = grid.world_size();
  const bool lead = grid.world_rank == 0;
  int size = int(mine.size());
  std::vector<int> sizes(lead ? size_t(n) : 0), displs(lead ? size_t(n) : 0);
  MPI_Gather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string all;
  if (lead) {
    int64_t total = 0;
    for (int r = 0; r < n; ++r) {
      displs[size_t(r)] = int(total);
      total += sizes[size_t(r)];
    }
    SPT_CHECK(total < (int64_t(1) << 31), "control_gather: ", total, " bytes exceed MPI's int counts");
    all.resize(size_t(total));
  }
  MPI_Gatherv(mine.data(), size, MPI_CHAR, all.data(), sizes.data(), displs.data(), MPI_CHAR, 0,
              MPI_COMM_WORLD);
  std::vector<std::string> out;
  for (int r = 0; lead && r < n; ++r) out.push_back(all.substr(size_t(displs[size_t(r)]), size_t(sizes[size_t(r)])));
  return out;
}

}  // namespace sptrain
