#pragma once
// MPI's lifetime and the one way a failing rank ends the job.
//
// sptrain always initialises MPI, also for a plain `./sptrain ...` without
// mpirun: Open MPI then starts as a "singleton", a world of one rank (about
// 0.35 s here, also as root). So the same code paths run with one rank or many.
#include <string>

namespace sptrain {

// RAII: MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already initialised,
// MPI_Finalize at destruction if this object initialised it. FUNNELED because
// only the main thread calls MPI; OpenMP threads never do.
//
// On an exception the destructor does NOT finalize: MPI_Finalize synchronises
// with the other ranks, which may be waiting in a collective for this one and
// would never come. Catch the exception and call abort_job instead.
class MpiRuntime {
 public:
  explicit MpiRuntime(int* argc = nullptr, char*** argv = nullptr);
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

// Prints "sptrain: rank R/N (host): error: <message>" to stderr and ends the
// whole job: MPI_Abort(MPI_COMM_WORLD, 1) when the world has more than one
// rank (mpirun then kills every rank, including those blocked in a collective
// waiting for this one), otherwise finalises MPI and exits with status 1.
// Works whether or not MPI is initialised.
[[noreturn]] void abort_job(const std::string& message);

// The line abort_job prints, without the newline (for tests and logs).
std::string job_error_line(const std::string& message);

}  // namespace sptrain
