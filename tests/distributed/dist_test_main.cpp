// main() of the distributed tests, run under mpirun with one layout per job:
//
//   mpirun -np 8 test_distributed --layout=2,2      (tensor 2, pipeline 2, so data 2)
//
// Every rank runs every test (they make collective calls, so a test must make
// the same calls on every rank and EXPECT rather than return early). Only
// rank 0 prints the usual report; the others print their failures prefixed
// with their rank. The job exits non-zero on every rank if any rank failed.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "../support/mpi_gtest.hpp"
#include "../support/test_util.hpp"
#include "dist_env.hpp"
#include "sptrain/comm/mpi_runtime.hpp"

namespace {

std::unique_ptr<sptrain::ProcessGrid> g_grid;
int g_tensor = 1, g_pipeline = 1;

}  // namespace

const sptrain::ProcessGrid& sptrain::dist::grid() { return *g_grid; }
sptrain::ProcessGrid sptrain::dist::new_grid() { return sptrain::make_process_grid(g_tensor, g_pipeline); }

int main(int argc, char** argv) {
  sptrain::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // An exception on one rank must not leave the others waiting for it in a
  // collective: let it end the process, and mpirun then ends the job.
  GTEST_FLAG_SET(catch_exceptions, false);
  int tensor = 0, pipeline = 0;
  for (int i = 1; i < argc; ++i)
    if (std::sscanf(argv[i], "--layout=%d,%d", &tensor, &pipeline) == 2) break;
  if (tensor < 1 || pipeline < 1) {
    std::fprintf(stderr, "usage: mpirun -np N %s --layout=TENSOR,PIPELINE [gtest flags]\n", argv[0]);
    return 2;
  }
  sptrain::test::report_from_rank_zero(mpi.world_rank());
  int failed = 1;
  try {
    g_tensor = tensor;
    g_pipeline = pipeline;
    g_grid = std::make_unique<sptrain::ProcessGrid>(sptrain::make_process_grid(tensor, pipeline));
    failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  } catch (const std::exception& e) {
    // Outside any test (the layout does not fit the world): end every rank.
    sptrain::abort_job(e.what());
  }
  failed = sptrain::test::failed_on_any_rank(failed != 0, mpi.world_rank(), mpi.world_size());
  g_grid.reset();  // its communicators must be freed before MPI_Finalize
  std::error_code ignored;
  std::filesystem::remove_all(std::filesystem::path(sptrain::test::temp_path("x")).parent_path(), ignored);
  return failed;
}
