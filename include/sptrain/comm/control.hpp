#pragma once
// Small control messages over the whole job: the step's metrics and the
// replica checksums. A few dozen bytes per step, outside the three counted
// kinds of traffic (docs/parallelism.md); no-ops in a one-rank job.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "sptrain/comm/process_grid.hpp"

namespace sptrain {

// Element-wise sum of `values` over every rank of the grid's job (a grid of
// one rank sends nothing, even inside a larger MPI world, as tests do).
void control_sum(const ProcessGrid& grid, std::vector<double>& values);
// The same for named values, in place, in one message:
//   control_sum(grid, {&loss_sum, &correct, &examples});
void control_sum(const ProcessGrid& grid, std::initializer_list<double*> values);
// True when every rank that participates passed the same value (the others'
// value is ignored).
bool control_all_equal(const ProcessGrid& grid, uint64_t value, bool participates);
// The same per slot: true when, in every slot, the ranks that put a value
// there (slot >= 0) passed the same one. A rank puts `value` in `slot` of
// `slots`; -1: none.
bool control_all_equal(const ProcessGrid& grid, uint64_t value, int slot, int slots);
// Every rank's bytes, in world-rank order, on world rank 0 (the others get
// nothing): for assembling a checkpoint of parameters spread over the ranks.
std::vector<std::string> control_gather(const ProcessGrid& grid, const std::string& mine);

}  // namespace sptrain
