#pragma once
// Small control messages over the whole job: the step's metrics and the
// replica checksums. A few dozen bytes per step, outside the three counted
// kinds of traffic (docs/parallelism.md); no-ops in a one-rank job.
#include <cstdint>
#include <vector>

namespace sptrain {

// Element-wise sum of `values` over every rank of the job.
void control_sum(std::vector<double>& values);
// True when every rank that participates passed the same value (the others'
// value is ignored).
bool control_all_equal(uint64_t value, bool participates);

}  // namespace sptrain
