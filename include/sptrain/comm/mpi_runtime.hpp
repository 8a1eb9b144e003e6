#pragma once
// MPI's lifetime and the one way a failing rank ends the job.
//
// `sptrain` initialises MPI when a launcher started it (mpirun, srun with
// PMI/PMIx: see launched_by_mpi_launcher). A plain `./sptrain ...` runs as a
// world of one rank without MPI: Open MPI's "singleton" start would fork an
// `orted` daemon and need Open MPI's plugins installed, which a machine that
// only has sptrain's libraries (a lent GPU machine, a container) may lack.
// One rank takes make_solo_grid() either way, which calls no MPI.
#include <string>

namespace sptrain {

enum class MpiStart {
  Always,        // MPI_Init even without a launcher (a singleton world): tests of MPI itself
  WhenLaunched,  // MPI_Init only under a launcher; SPTRAIN_MPI=always|never overrides
};

// True when the environment shows that a process manager started this process
// (of one or many): Open MPI's mpirun (OMPI_COMM_WORLD_SIZE), PMIx (PMIX_RANK: srun
// --mpi=pmix, prterun), PMI-1/2 (PMI_RANK, PMI_SIZE: MPICH's hydra, srun
// --mpi=pmi2), or a Slurm step of more than one task (SLURM_STEP_NUM_TASKS > 1).
bool launched_by_mpi_launcher();

// RAII: MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already initialised
// (or `start` says not to: then a world of one rank without MPI),
// MPI_Finalize at destruction if this object initialised it. FUNNELED because
// only the main thread calls MPI; OpenMP threads never do.
//
// On an exception the destructor does NOT finalize: MPI_Finalize synchronises
// with the other ranks, which may be waiting in a collective for this one and
// would never come. Catch the exception and call abort_job instead.
class MpiRuntime {
 public:
  explicit MpiRuntime(int* argc = nullptr, char*** argv = nullptr, MpiStart start = MpiStart::Always);
  explicit MpiRuntime(MpiStart start) : MpiRuntime(nullptr, nullptr, start) {}
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }

 private:
  bool initialised_here_ = false;
  int uncaught_at_start_ = 0;
  int world_rank_ = 0;
  int world_size_ = 1;
};

// This rank's place among the job's ranks on its node (for the GPU it takes
// and the CPU threads it may use); {0, 1} without MPI. Collective over the
// world when MPI runs.
struct NodeRanks {
  int rank = 0;
  int size = 1;
};
NodeRanks node_ranks();

// Prints "sptrain: rank R/N (host): error: <message>" to stderr and ends the
// whole job: MPI_Abort(MPI_COMM_WORLD, 1) when the world has more than one
// rank (mpirun then kills every rank, including those blocked in a collective
// waiting for this one), otherwise finalises MPI and exits with status 1.
// Works whether or not MPI is initialised.
[[noreturn]] void abort_job(const std::string& message);

// The line abort_job prints, without the newline (for tests and logs).
std::string job_error_line(const std::string& message);

}  // namespace sptrain
