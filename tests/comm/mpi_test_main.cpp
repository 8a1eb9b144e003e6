// main() for GoogleTest binaries run under mpirun. Every rank runs every test
// (collectives need all ranks); only rank 0 prints the usual report, other
// ranks print just their failures, prefixed with the rank. The process exits
// non-zero on every rank if any rank failed, so mpirun's status says it.
//
// A test must make the same collective calls on every rank: a rank that
// returns early (ASSERT_*) while others wait in a collective hangs the job
// until ctest's timeout. Collect results first, then EXPECT on them.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

#include "sptrain/comm/mpi_runtime.hpp"

namespace {

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

}  // namespace

int main(int argc, char** argv) {
  sptrain::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.world_rank() != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(mpi.world_rank()));  // GoogleTest owns listeners
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (failed && mpi.world_rank() == 0)
    std::fprintf(stderr, "FAILED on at least one of %d ranks (see [rank N] lines)\n", mpi.world_size());
  return failed;
}
