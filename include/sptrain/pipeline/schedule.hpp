#pragma once
// Pipeline schedules: the order in which one stage runs the forward and
// backward passes of a step's micro-batches. Kept apart from the layers and
// from communication (see pipeline/runner.hpp), in the manner of Megatron-core.
//
//   gpipe: every forward, then every backward (m activation sets alive).
//   1f1b:  stage s runs min(S-s-1, m) warm-up forwards, then alternates one
//          forward and one backward, then drains the backwards; at most
//          S-s micro-batches are in flight, so activation memory does not
//          grow with m.
#include <string>
#include <vector>

namespace sptrain {

enum class ScheduleKind { GPipe, OneFOneB };
ScheduleKind schedule_kind(const std::string& name);  // "gpipe" | "1f1b"

struct PipelineOp {
  enum Kind { Forward, Backward } kind;
  int micro_batch;
  bool operator==(const PipelineOp&) const = default;
};

std::vector<PipelineOp> make_schedule(ScheduleKind kind, int stages, int stage, int micro_batches);
// The same into `ops` (cleared first), reusing its memory.
void make_schedule(ScheduleKind kind, int stages, int stage, int micro_batches,
                   std::vector<PipelineOp>& ops);
// Activation sets a stage needs: the most micro-batches between their
// forward and their backward at once.
int activation_slots(ScheduleKind kind, int stages, int stage, int micro_batches);
// 1f1b's warm-up forwards on a stage.
int warmup_forwards(int stages, int stage, int micro_batches);

}  // namespace sptrain
