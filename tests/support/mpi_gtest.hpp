// GoogleTest under mpirun, shared by the main()s of tests/comm and
// tests/distributed. Every rank runs every test (collectives need all ranks);
// only rank 0 prints the usual report, other ranks print just their failures,
// prefixed with the rank; the job fails on every rank if any rank failed.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

namespace sptrain::test {

// The test's name is kept from OnTestStart: calling current_test_info() from
// OnTestPartResult deadlocks (GoogleTest holds its mutex while it calls the
// listeners), which hung any job where a rank other than 0 failed.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestStart(const ::testing::TestInfo& test) override {
    name_ = std::string(test.test_suite_name()) + "." + test.name();
  }
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s: %s:%d: %s\n", rank_, name_.c_str(),
                 r.file_name() ? r.file_name() : "?", r.line_number(), r.summary());
  }

 private:
  int rank_;
  std::string name_ = "?";
};

// Rank 0 keeps GoogleTest's printer; the others print only their failures.
inline void report_from_rank_zero(int rank) {
  if (rank == 0) return;
  ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
  delete listeners.Release(listeners.default_result_printer());
  listeners.Append(new RankFailurePrinter(rank));  // GoogleTest owns listeners
}

// 1 on every rank when any rank failed (the exit status mpirun reports).
inline int failed_on_any_rank(bool failed_here, int rank, int world_size) {
  int failed = failed_here ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (failed && rank == 0)
    std::fprintf(stderr, "FAILED on at least one of %d ranks (see [rank N] lines)\n", world_size);
  return failed;
}

}  // namespace sptrain::test
