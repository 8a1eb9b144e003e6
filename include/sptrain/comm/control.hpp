#pragma once
// Small control messages over the whole job: the step's metrics and the
// replica checksums. A few dozen bytes per step, outside the three counted
// kinds of traffic (docs/parallelism.md); no-ops in a one-rank job.
#include <cstdint>
#include <initializer_list>
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

}  // namespace sptrain
