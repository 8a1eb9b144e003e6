#include "sptrain/comm/process_grid.hpp"

#include "sptrain/comm/mpi_group.hpp"

namespace sptrain {

namespace {

void check_sizes(int tensor, int pipeline) {
  SPT_CHECK(tensor >= 1, "parallel layout: parallel.tensor must be at least 1 (got ", tensor, ")");
  SPT_CHECK(pipeline >= 1, "parallel layout: parallel.pipeline must be at least 1 (got ", pipeline, ")");
}

}  // namespace

GridLayout make_grid_layout(int world_size, int tensor, int pipeline) {
  check_sizes(tensor, pipeline);
  SPT_CHECK(world_size >= 1, "parallel layout: world size must be at least 1 (got ", world_size, ")");
  // In 64 bits: tensor * pipeline may overflow an int for absurd inputs.
  const int64_t per_replica = int64_t(tensor) * pipeline;
  SPT_CHECK(world_size % per_replica == 0, "parallel layout: world size ", world_size,
            " is not divisible by parallel.tensor (", tensor, ") x parallel.pipeline (", pipeline, ") = ",
            per_replica, "; start a multiple of ", per_replica, " ranks");
  return {tensor, pipeline, int(world_size / per_replica)};
}

Group& ProcessGrid::group(CommKind kind) const {
  switch (kind) {
    case CommKind::Tensor: return *tp;
    case CommKind::Pipeline: return *pp;
    case CommKind::Data: return *dp;
  }
  fail("unknown communication kind");
}

MPI_Comm ProcessGrid::mpi_comm(CommKind kind) const {
  switch (kind) {
    case CommKind::Tensor: return tp_comm;
    case CommKind::Pipeline: return pp_comm;
    case CommKind::Data: return dp_comm;
  }
  fail("unknown communication kind");
}

int ProcessGrid::pipeline_peer(int stage) const {
  SPT_CHECK(stage >= 0 && stage < layout.pipeline, "pipeline stage ", stage, " does not exist (",
            layout.pipeline, " stages)");
  GridCoords peer = coords;
  peer.pp = stage;
  return layout.world_rank(peer);
}

ProcessGrid make_solo_grid() {
  ProcessGrid g;
  g.tp = std::make_unique<SoloGroup>(CommKind::Tensor, g.bytes.get());
  g.pp = std::make_unique<SoloGroup>(CommKind::Pipeline, g.bytes.get());
  g.dp = std::make_unique<SoloGroup>(CommKind::Data, g.bytes.get());
  return g;
}

namespace {

// One group of `kind`: the ranks with equal `color` form a group, ordered by
// `key`. MPI_Comm_split is collective over the world, so every rank makes it
// for every kind, even where its own group has one rank (sizes are the same
// on all ranks, so all ranks take the same branch).
std::unique_ptr<Group> split_group(ProcessGrid& g, CommKind kind, int group_size, int color, int key,
                                   MPI_Comm& comm_out) {
  if (group_size == 1) {
    comm_out = MPI_COMM_SELF;
    return std::make_unique<SoloGroup>(kind, g.bytes.get());
  }
  MPI_Comm comm = MPI_COMM_NULL;
  if (MPI_Comm_split(MPI_COMM_WORLD, color, key, &comm) != MPI_SUCCESS)
    fail("MPI_Comm_split for the ", comm_kind_name(kind), " group failed on world rank ", g.world_rank);
  comm_out = comm;
  auto group = std::make_unique<MpiGroup>(comm, kind, g.bytes.get());
  SPT_ASSERT(group->size() == group_size && group->rank() == key);
  return group;
}

}  // namespace

ProcessGrid make_process_grid(int tensor, int pipeline) {
  // Sizes first: a bad configuration is reported before any MPI call.
  check_sizes(tensor, pipeline);
  // Without MPI (a plain run: MpiRuntime(MpiStart::WhenLaunched)) the world
  // is this one process.
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  SPT_CHECK(!finalised, "make_process_grid: MPI is already finalised");
  int world_size = 1, world_rank = 0;
  if (initialised) {
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  }
  const GridLayout layout = make_grid_layout(world_size, tensor, pipeline);
  if (world_size == 1) return make_solo_grid();

  ProcessGrid g;
  g.layout = layout;
  g.world_rank = world_rank;
  g.coords = layout.coords(world_rank);
  const GridCoords c = g.coords;
  // Colors number the groups of a kind; keys order ranks inside a group.
  g.tp = split_group(g, CommKind::Tensor, layout.tensor, c.pp * layout.data + c.dp, c.tp, g.tp_comm);
  g.pp = split_group(g, CommKind::Pipeline, layout.pipeline, c.dp * layout.tensor + c.tp, c.pp, g.pp_comm);
  g.dp = split_group(g, CommKind::Data, layout.data, c.pp * layout.tensor + c.tp, c.dp, g.dp_comm);
  return g;
}

}  // namespace sptrain
