#include "sptrain/comm/process_grid.hpp"

#include <cstdio>

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
  auto group = std::make_unique<MpiGroup>(comm, kind, g.bytes.get(), g.watchdog.get());
  SPT_ASSERT(group->size() == group_size && group->rank() == key);
  return group;
}

// Collective over the tensor group: warns when its ranks span nodes.
void warn_if_tensor_group_spans_nodes(const ProcessGrid& g) {
  if (g.layout.tensor == 1) return;
  MPI_Comm node = MPI_COMM_NULL;
  int on_node = g.layout.tensor;
  if (MPI_Comm_split_type(g.tp_comm, MPI_COMM_TYPE_SHARED, g.coords.tp, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_size(node, &on_node);
    MPI_Comm_free(&node);
  }
  std::vector<char> names(size_t(MPI_MAX_PROCESSOR_NAME) * size_t(g.layout.tensor), '\0');
  std::vector<char> mine(MPI_MAX_PROCESSOR_NAME, '\0');
  int len = 0;
  MPI_Get_processor_name(mine.data(), &len);
  mine.back() = '\0';
  MPI_Allgather(mine.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                g.tp_comm);
  if (g.coords.tp != 0 || on_node >= g.layout.tensor) return;
  std::vector<std::string> hosts;
  for (int r = 0; r < g.layout.tensor; ++r) hosts.emplace_back(names.data() + size_t(r) * MPI_MAX_PROCESSOR_NAME);
  std::fprintf(stderr, "%s\n", tensor_group_span_warning(g.world_rank, hosts).c_str());
}

}  // namespace

std::string tensor_group_span_warning(int first_world_rank, const std::vector<std::string>& hosts) {
  std::string where;
  for (size_t r = 0; r < hosts.size(); ++r)
    where += str(r ? ", " : "", "rank ", first_world_rank + int(r), " on ", hosts[r]);
  return str("sptrain: warning: the tensor-parallel group of world ranks ", first_world_rank, "-",
             first_world_rank + int(hosts.size()) - 1, " spans nodes (", where,
             "): its all-reduces, several per layer, cross the network. Start the ranks node by node "
             "(mpirun's default placement, srun's block distribution) with a multiple of parallel.tensor (",
             hosts.size(), ") ranks per node, or lower parallel.tensor (docs/parallelism.md).");
}

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
  g.watchdog = std::make_unique<MpiWatchdog>();
  // Colors number the groups of a kind; keys order ranks inside a group.
  g.tp = split_group(g, CommKind::Tensor, layout.tensor, c.pp * layout.data + c.dp, c.tp, g.tp_comm);
  g.pp = split_group(g, CommKind::Pipeline, layout.pipeline, c.dp * layout.tensor + c.tp, c.pp, g.pp_comm);
  g.dp = split_group(g, CommKind::Data, layout.data, c.pp * layout.tensor + c.tp, c.dp, g.dp_comm);
  warn_if_tensor_group_spans_nodes(g);
  return g;
}

}  // namespace sptrain
