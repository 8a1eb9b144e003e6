#include "sptrain/comm/mpi_runtime.hpp"

#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "sptrain/core/error.hpp"

namespace sptrain {
namespace {

bool mpi_usable() {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  return initialised && !finalised;
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

// SPTRAIN_MPI: "always", "never", or unset/"auto" (the launcher decides).
bool should_start_mpi(MpiStart start) {
  if (start == MpiStart::Always) return true;
  const char* v = std::getenv("SPTRAIN_MPI");
  const std::string mode = v ? v : "";
  if (mode == "always") return true;
  if (mode == "never") return false;
  SPT_CHECK(mode.empty() || mode == "auto", "SPTRAIN_MPI=", mode, ": must be always, never or auto");
  return launched_by_mpi_launcher();
}

}  // namespace

bool launched_by_mpi_launcher() {
  if (env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK") ||
      env_set("PMI_SIZE"))
    return true;
  const char* tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  return tasks && std::atoi(tasks) > 1;
}

MpiRuntime::MpiRuntime(int* argc, char*** argv, MpiStart start)
    : uncaught_at_start_(std::uncaught_exceptions()) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised && !should_start_mpi(start)) return;  // a world of one rank, no MPI
  if (!initialised) {
    // Every all-reduce is MPI_Iallreduce in place (MpiWatchdog). For that,
    // Open MPI's libnbc picks a binomial tree (reduce to one rank, then
    // broadcast), 5 times slower than MPI_Allreduce for 4 MB on 2 ranks here;
    // its reduce-scatter + all-gather (Rabenseifner) is as fast. A user's own
    // setting wins; other MPIs ignore the variable.
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0);
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail("MPI_Init_thread failed");
    initialised_here_ = true;
    if (provided < MPI_THREAD_FUNNELED)
      fail("MPI provides thread level ", provided, ", sptrain needs MPI_THREAD_FUNNELED (", int(MPI_THREAD_FUNNELED), ")");
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
}

MpiRuntime::~MpiRuntime() {
  if (!initialised_here_ || !mpi_usable()) return;
  // Unwinding with more than one rank: finalising could wait forever for ranks
  // blocked in a collective (see the header). Leave MPI alone; the non-zero
  // exit makes mpirun end the job.
  if (std::uncaught_exceptions() > uncaught_at_start_ && world_size_ > 1) return;
  MPI_Finalize();
}

std::string job_error_line(const std::string& message) {
  int rank = 0, size = 1;
  char host[MPI_MAX_PROCESSOR_NAME + 1] = {};
  if (mpi_usable()) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int len = 0;
    MPI_Get_processor_name(host, &len);
  } else {
    gethostname(host, sizeof host - 1);
  }
  return str("sptrain: rank ", rank, "/", size, " (", host, "): error: ", message);
}

void abort_job(const std::string& message) {
  const std::string line = job_error_line(message) + "\n";
  std::fflush(stdout);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  if (mpi_usable()) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) {
      MPI_Abort(MPI_COMM_WORLD, 1);
      std::_Exit(1);  // MPI_Abort does not return; never fall through to MPI_Finalize
    }
    // One rank: nobody can be waiting for us, so finalise cleanly (Open MPI
    // would otherwise warn about a process that exited without finalising).
    MPI_Finalize();
  }
  std::exit(1);
}

NodeRanks node_ranks() {
  int init = 0;
  MPI_Initialized(&init);
  if (!init) return {};
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  NodeRanks r;
  MPI_Comm_rank(node, &r.rank);
  MPI_Comm_size(node, &r.size);
  MPI_Comm_free(&node);
  return r;
}

}  // namespace sptrain
