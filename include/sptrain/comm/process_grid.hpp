#pragma once
// The process grid: world = data x pipeline x tensor ranks. Tensor parallel
// is innermost (consecutive world ranks, so one TP group sits on one node and
// talks over NVLink), pipeline outermost:
//
//   world_rank = pp_rank * (dp * tp) + dp_rank * tp + tp_rank
//
// Every rank knows its coordinates and has one Group per kind. See
// docs/parallelism.md ("Process grid").
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "sptrain/comm/communicator.hpp"
#include "sptrain/comm/mpi_watchdog.hpp"

namespace sptrain {

struct GridCoords {
  int tp = 0;
  int dp = 0;
  int pp = 0;
  bool operator==(const GridCoords&) const = default;
};

// The sizes of the grid and the rank <-> coordinates formula; no MPI.
struct GridLayout {
  int tensor = 1;
  int pipeline = 1;
  int data = 1;

  int world_size() const { return tensor * pipeline * data; }
  GridCoords coords(int world_rank) const {
    return {world_rank % tensor, (world_rank / tensor) % data, world_rank / (tensor * data)};
  }
  int world_rank(GridCoords c) const { return c.pp * (data * tensor) + c.dp * tensor + c.tp; }
};

// Checks the sizes (each at least 1, world divisible by tensor x pipeline)
// and derives data = world / (tensor * pipeline). Throws an Error naming the
// numbers otherwise.
GridLayout make_grid_layout(int world_size, int tensor, int pipeline);

struct ProcessGrid {
  GridLayout layout;
  int world_rank = 0;
  GridCoords coords;
  // Every group counts its bytes here. On the heap so that the groups'
  // pointers to it stay valid when the grid is moved.
  std::unique_ptr<ByteCounter> bytes = std::make_unique<ByteCounter>();
  // Completes every MPI wait of the groups below and of control messages
  // with a deadline (null in a world of one rank). Declared before the
  // groups, which point to it, so that it outlives them.
  std::unique_ptr<MpiWatchdog> watchdog;
  // Host groups: MpiGroup, or SoloGroup where the group has one rank. A
  // group's rank is the coordinate of its kind: tp->rank() == coords.tp,
  // pp->rank() == coords.pp (the stage), dp->rank() == coords.dp.
  std::unique_ptr<Group> tp, pp, dp;
  // The MPI communicators behind the groups (MPI_COMM_SELF for a group of
  // one rank), for building NCCL groups over the same ranks. Owned by the
  // groups; valid while the grid lives.
  MPI_Comm tp_comm = MPI_COMM_SELF, pp_comm = MPI_COMM_SELF, dp_comm = MPI_COMM_SELF;

  int world_size() const { return layout.world_size(); }
  Group& group(CommKind kind) const;
  MPI_Comm mpi_comm(CommKind kind) const;
  // World rank of this rank's counterpart (same tp and dp) in pipeline stage
  // `stage`. Within the pipeline group the same peer is simply rank `stage`.
  int pipeline_peer(int stage) const;
};

// Collective over MPI_COMM_WORLD (every rank calls it with the same sizes):
// checks the layout, then splits the world into the three groups. With a
// world of one rank it returns make_solo_grid() (sizes must then be 1).
// MPI must be initialised (MpiRuntime).
ProcessGrid make_process_grid(int tensor, int pipeline);

// A world of one rank: SoloGroups everywhere, no MPI calls.
ProcessGrid make_solo_grid();

// The warning make_process_grid prints (tensor rank 0 of each group) when a
// tensor-parallel group's ranks do not share one node (MPI_COMM_TYPE_SHARED):
// its all-reduces, several per layer, then cross the network. hosts[i] is
// the node of the group's rank i, first_world_rank the world rank of rank 0.
std::string tensor_group_span_warning(int first_world_rank, const std::vector<std::string>& hosts);

}  // namespace sptrain
