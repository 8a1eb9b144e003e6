// A small MPI job for the failure tests (run_failure_test.sh). The last rank
// (the "victim") fails while every other rank is blocked waiting for it; the
// job must still end, on every rank, within seconds.
//
//   comm_fail_rank MODE DIR
//
// MODE: ok               nobody fails: all ranks all-reduce and finish
//       throw-allreduce  the victim throws; the others wait in a world all_reduce
//       throw-recv       the victim throws; the others wait in recv from it
//       throw-grid       tp=2 pp=2 grid: the victim throws; the others wait in
//                        their tp/pp/dp groups or, if not tied to the victim,
//                        in a world barrier after them
//       escape           the victim's exception leaves the MpiRuntime's scope
//                        (no abort_job): its destructor must not hang
//       kill             the victim SIGKILLs itself; the others wait in all_reduce
//       stop             tp=2 pp=2 grid, watchdog timeout 2 s: the victim
//                        SIGSTOPs itself; the others wait in their groups or
//                        in a control message, and the watchdog ends the job
// Each rank writes DIR/pid.<rank> at start and DIR/done.<rank> only when it
// finishes normally, so the driver can tell who finished and who is left.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "sptrain/comm/control.hpp"
#include "sptrain/comm/mpi_group.hpp"
#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/comm/process_grid.hpp"

namespace sptrain {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text << "\n";
}

// Gives the others time to block in their collective before the victim fails.
void victim_fails(const std::string& mode) {
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  if (mode == "kill") std::raise(SIGKILL);
  if (mode == "stop") {
    std::raise(SIGSTOP);
    std::this_thread::sleep_for(std::chrono::seconds(60));  // if continued: still silent
  }
  fail("injected failure");
}

void run_job(const std::string& mode, const std::string& dir, const MpiRuntime& mpi) {
  const int rank = mpi.world_rank(), size = mpi.world_size();
  const bool victim = rank == size - 1 && mode != "ok";
  std::vector<float> values(1000, 1.0f);
  Tensor t{values.data(), DType::F32, Device::CPU, {int64_t(values.size())}};

  if (mode == "throw-grid" || mode == "stop") {
    ProcessGrid grid = make_process_grid(2, 2);
    grid.watchdog->set_timeout(2);
    if (victim) victim_fails(mode);
    grid.tp->all_reduce(t, ReduceOp::Sum);
    const int stage = grid.coords.pp, stages = grid.layout.pipeline;
    grid.pp->send_recv(t, stage + 1 < stages ? stage + 1 : Group::kNoPeer, t,
                       stage > 0 ? stage - 1 : Group::kNoPeer);
    grid.dp->all_reduce(t, ReduceOp::Sum);
    double ranks = 1;
    control_sum(grid, {&ranks});
    return;
  }
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  MpiGroup world(comm, CommKind::Data, nullptr);
  if (victim) victim_fails(mode);
  if (mode == "throw-recv")
    world.recv(t, size - 1);
  else
    world.all_reduce(t, ReduceOp::Sum);
  // In a failure mode nobody gets here; if one did, it finishes "normally"
  // and the driver reports it.
  if (mode == "ok") SPT_CHECK(values[0] == float(size), "all_reduce gave ", values[0], ", expected ", size);
}

}  // namespace
}  // namespace sptrain

int main(int argc, char** argv) {
  using namespace sptrain;
  if (argc != 3) {
    std::fprintf(stderr, "usage: comm_fail_rank MODE DIR\n");
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  int rank = -1;
  try {
    MpiRuntime mpi(&argc, &argv);
    rank = mpi.world_rank();
    write_file(dir + "/pid." + std::to_string(rank), std::to_string(getpid()));
    if (mode == "escape") {
      run_job(mode, dir, mpi);  // the victim's Error leaves this scope
    } else {
      try {
        run_job(mode, dir, mpi);
      } catch (const std::exception& e) {
        abort_job(e.what());  // what sptrain's main does
      }
    }
  } catch (const std::exception& e) {
    // Only the "escape" mode gets here, after ~MpiRuntime: it must not have
    // blocked in MPI_Finalize while the other ranks wait in the all_reduce.
    std::fprintf(stderr, "rank %d escaped: %s\n", rank, e.what());
    return 1;
  }
  write_file(dir + "/done." + std::to_string(rank), "done");
  return 0;
}
