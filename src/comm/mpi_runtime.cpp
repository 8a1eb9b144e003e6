#include "sptrain/comm/mpi_runtime.hpp"

#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "sptrain/core/error.hpp"

namespace sptrain {
namespace {

bool mpi_usable() {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  return initialised && !finalised;
}

}  // namespace

MpiRuntime::MpiRuntime(int* argc, char*** argv) : uncaught_at_start_(std::uncaught_exceptions()) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
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

}  // namespace sptrain
