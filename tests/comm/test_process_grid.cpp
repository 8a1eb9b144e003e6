// The process grid: the rank <-> coordinates formula, the three groups'
// memberships (found by gathering world ranks through each group and compared
// with a layout enumerated here), byte counts by kind, and bad layouts.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "comm_test_util.hpp"
#include "sptrain/comm/control.hpp"
#include "sptrain/comm/process_grid.hpp"

namespace sptrain {
namespace {

// The layout by enumeration, pipeline outermost and tensor innermost, written
// independently of GridLayout's div/mod formula.
std::vector<GridCoords> enumerate_layout(int tp, int pp, int dp) {
  std::vector<GridCoords> by_rank;
  for (int p = 0; p < pp; ++p)
    for (int d = 0; d < dp; ++d)
      for (int t = 0; t < tp; ++t) by_rank.push_back({t, d, p});
  return by_rank;
}

// World ranks of the group of `kind` that rank `me` belongs to, in group
// rank order: the ranks that share the other two coordinates.
std::vector<int32_t> expected_members(const std::vector<GridCoords>& layout, int me, CommKind kind) {
  const GridCoords c = layout[size_t(me)];
  std::map<int, int32_t> by_group_rank;
  for (size_t r = 0; r < layout.size(); ++r) {
    const GridCoords o = layout[r];
    if (kind == CommKind::Tensor && o.dp == c.dp && o.pp == c.pp) by_group_rank[o.tp] = int32_t(r);
    if (kind == CommKind::Data && o.tp == c.tp && o.pp == c.pp) by_group_rank[o.dp] = int32_t(r);
    if (kind == CommKind::Pipeline && o.tp == c.tp && o.dp == c.dp) by_group_rank[o.pp] = int32_t(r);
  }
  std::vector<int32_t> members;
  for (const auto& [group_rank, world] : by_group_rank) members.push_back(world);
  return members;
}

TEST(GridLayout, FormulaMatchesEnumerationForEveryLayoutUpTo16) {
  for (int world = 1; world <= 16; ++world)
    for (int tp = 1; tp <= world; ++tp)
      for (int pp = 1; pp <= world; ++pp) {
        if (world % (tp * pp) != 0) continue;
        const GridLayout layout = make_grid_layout(world, tp, pp);
        ASSERT_EQ(layout.data, world / (tp * pp));
        ASSERT_EQ(layout.world_size(), world);
        const std::vector<GridCoords> expected = enumerate_layout(tp, pp, layout.data);
        for (int r = 0; r < world; ++r) {
          EXPECT_EQ(layout.coords(r), expected[size_t(r)]) << "world " << world << " tp " << tp << " pp " << pp;
          EXPECT_EQ(layout.world_rank(expected[size_t(r)]), r);
        }
      }
}

TEST(GridLayout, BadSizesAreErrorsNamingTheNumbers) {
  auto message = [](int world, int tp, int pp) -> std::string {
    try {
      make_grid_layout(world, tp, pp);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message(8, 3, 1),
            "parallel layout: world size 8 is not divisible by parallel.tensor (3) x parallel.pipeline (1) = 3; "
            "start a multiple of 3 ranks");
  EXPECT_NE(message(6, 2, 2).find("world size 6 is not divisible by parallel.tensor (2) x parallel.pipeline (2) = 4"),
            std::string::npos);
  EXPECT_EQ(message(8, 0, 1), "parallel layout: parallel.tensor must be at least 1 (got 0)");
  EXPECT_EQ(message(8, 2, -1), "parallel layout: parallel.pipeline must be at least 1 (got -1)");
  // tensor x pipeline overflowing an int is still just indivisible.
  EXPECT_NE(message(8, 1 << 20, 1 << 20).find("= 1099511627776"), std::string::npos);
}

TEST(ProcessGrid, SoloGridHasOneRankEverywhere) {
  ProcessGrid g = make_solo_grid();
  EXPECT_EQ(g.world_size(), 1);
  EXPECT_EQ(g.world_rank, 0);
  for (CommKind k : {CommKind::Tensor, CommKind::Pipeline, CommKind::Data}) {
    EXPECT_NE(dynamic_cast<SoloGroup*>(&g.group(k)), nullptr);
    EXPECT_EQ(g.group(k).kind(), k);
    EXPECT_EQ(g.mpi_comm(k), MPI_COMM_SELF);
  }
  EXPECT_EQ(g.pipeline_peer(0), 0);
  EXPECT_THROW(g.pipeline_peer(1), Error);
  // A first-and-last stage skips both sides; anything else has no peer.
  std::vector<float> v(3, 1.0f);
  const Tensor t = test::host_tensor(v, {3});
  EXPECT_NO_THROW(g.pp->send_recv(t, Group::kNoPeer, t, Group::kNoPeer));
  EXPECT_THROW(g.pp->send_recv(t, 0, t, Group::kNoPeer), Error);
  EXPECT_THROW(g.pp->send(t, 0), Error);
}

// Builds the grid on the world mpirun started and checks every rank's view.
void check_grid(int tp, int pp) {
  const int world = test::world_size(), me = test::world_rank();
  ProcessGrid g = make_process_grid(tp, pp);
  const int dp = world / (tp * pp);
  const std::vector<GridCoords> layout = enumerate_layout(tp, pp, dp);
  EXPECT_EQ(g.layout.tensor, tp);
  EXPECT_EQ(g.layout.pipeline, pp);
  EXPECT_EQ(g.layout.data, dp);
  EXPECT_EQ(g.world_rank, me);
  EXPECT_EQ(g.coords, layout[size_t(me)]);
  EXPECT_EQ(g.tp->rank(), layout[size_t(me)].tp);
  EXPECT_EQ(g.dp->rank(), layout[size_t(me)].dp);
  EXPECT_EQ(g.pp->rank(), layout[size_t(me)].pp);

  // Who is in each group: gather world ranks through the group itself.
  for (CommKind kind : {CommKind::Tensor, CommKind::Pipeline, CommKind::Data}) {
    Group& group = g.group(kind);
    const std::vector<int32_t> expected = expected_members(layout, me, kind);
    ASSERT_EQ(group.size(), int(expected.size())) << comm_kind_name(kind);
    std::vector<int32_t> mine(1, me), members(size_t(group.size()), -1);
    group.all_gather(test::host_tensor(members, {group.size()}), test::host_tensor(mine, {1}));
    EXPECT_EQ(members, expected) << comm_kind_name(kind) << " group of rank " << me << ", tp " << tp << " pp " << pp;
    // Groups of one rank are SoloGroups, on MPI_COMM_SELF.
    EXPECT_EQ(dynamic_cast<SoloGroup*>(&group) != nullptr, group.size() == 1);
    EXPECT_EQ(g.mpi_comm(kind) == MPI_COMM_SELF, group.size() == 1);
  }
  for (int stage = 0; stage < pp; ++stage) {
    const std::vector<int32_t> pipe = expected_members(layout, me, CommKind::Pipeline);
    EXPECT_EQ(g.pipeline_peer(stage), pipe[size_t(stage)]);
  }
  EXPECT_THROW(g.pipeline_peer(pp), Error);

  // Each group counts into the grid's counter under its own kind. (The
  // all_gathers above counted 4 bytes in every group of more than one rank.)
  g.bytes->reset();
  std::vector<float> x(10, 1.0f);
  g.tp->all_reduce(test::host_tensor(x, {10}), ReduceOp::Sum);
  g.dp->all_reduce(test::host_tensor(x, {10}), ReduceOp::Sum);
  g.dp->all_reduce(test::host_tensor(x, {10}), ReduceOp::Sum);
  EXPECT_EQ(x[0], float(tp * dp * dp));
  EXPECT_EQ(g.bytes->get(CommKind::Tensor), tp > 1 ? 40u : 0u);
  EXPECT_EQ(g.bytes->get(CommKind::Data), dp > 1 ? 80u : 0u);
  EXPECT_EQ(g.bytes->get(CommKind::Pipeline), 0u);
}

TEST(ProcessGrid, Layouts) {
  // The layouts asked for on 8 ranks; on smaller worlds those that divide.
  const std::vector<std::pair<int, int>> layouts = {{1, 1}, {2, 1}, {1, 2}, {2, 2}, {1, 4}, {2, 4}, {8, 1}};
  int checked = 0;
  for (auto [tp, pp] : layouts) {
    if (test::world_size() % (tp * pp) != 0) continue;
    SCOPED_TRACE("tp " + std::to_string(tp) + " pp " + std::to_string(pp));
    check_grid(tp, pp);
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

TEST(ProcessGrid, AMovedGridStillCounts) {
  ProcessGrid moved = make_process_grid(1, 1);
  ProcessGrid g = std::move(moved);
  std::vector<float> x(4, 1.0f);
  g.dp->all_reduce(test::host_tensor(x, {4}), ReduceOp::Sum);
  EXPECT_EQ(g.bytes->get(CommKind::Data), test::world_size() > 1 ? 16u : 0u);
}

TEST(ProcessGrid, IndivisibleWorldIsAnErrorBeforeAnyMpiCall) {
  const int world = test::world_size();
  // world + 1 never divides world; every rank throws the same error, so no
  // rank is left waiting in MPI_Comm_split.
  try {
    make_process_grid(world + 1, 1);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("world size " + std::to_string(world) + " is not divisible by parallel.tensor (" +
                                         std::to_string(world + 1) + ")"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_process_grid(1, 0), Error);
  EXPECT_THROW(make_process_grid(-1, 1), Error);
}

// A grid's control messages and groups go through its watchdog, with the
// same results (the sums are exact here).
TEST(ProcessGrid, ControlMessagesAndGroupsThroughTheWatchdog) {
  const int world = test::world_size();
  ProcessGrid g = make_process_grid(1, 1);
  ASSERT_EQ(g.watchdog != nullptr, world > 1);
  if (g.watchdog) g.watchdog->set_timeout(60);
  double a = test::world_rank(), b = 1;
  control_sum(g, {&a, &b});
  EXPECT_EQ(a, world * (world - 1) / 2.0);
  EXPECT_EQ(b, world);
  EXPECT_TRUE(control_all_equal(g, 42, true));
  EXPECT_EQ(control_all_equal(g, uint64_t(test::world_rank()), true), world == 1);
  EXPECT_TRUE(control_all_equal(g, uint64_t(test::world_rank()), test::world_rank() == 0));
  g.dp->barrier();
}

TEST(ProcessGrid, TensorGroupAcrossNodesWarningNamesRanksAndHosts) {
  const std::string w = tensor_group_span_warning(4, {"node1", "node1", "node2", "node2"});
  EXPECT_NE(w.find("sptrain: warning: the tensor-parallel group of world ranks 4-7 spans nodes (rank 4 on node1, "
                   "rank 5 on node1, rank 6 on node2, rank 7 on node2)"),
            std::string::npos)
      << w;
  EXPECT_NE(w.find("a multiple of parallel.tensor (4) ranks per node"), std::string::npos) << w;
}

}  // namespace
}  // namespace sptrain
