// main() for GoogleTest binaries run under mpirun (tests/support/mpi_gtest.hpp).
//
// A test must make the same collective calls on every rank: a rank that
// returns early (ASSERT_*) while others wait in a collective hangs the job
// until ctest's timeout. Collect results first, then EXPECT on them.
#include <gtest/gtest.h>

#include "../support/mpi_gtest.hpp"
#include "sptrain/comm/mpi_runtime.hpp"

int main(int argc, char** argv) {
  sptrain::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  sptrain::test::report_from_rank_zero(mpi.world_rank());
  const bool failed = RUN_ALL_TESTS() != 0;
  return sptrain::test::failed_on_any_rank(failed, mpi.world_rank(), mpi.world_size());
}
