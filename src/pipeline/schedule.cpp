#include "sptrain/pipeline/schedule.hpp"

#include <algorithm>

#include "sptrain/core/error.hpp"

namespace sptrain {

ScheduleKind schedule_kind(const std::string& name) {
  if (name == "gpipe") return ScheduleKind::GPipe;
  if (name == "1f1b") return ScheduleKind::OneFOneB;
  fail("parallel.schedule: '", name, "' is not a schedule (gpipe or 1f1b)");
}

int warmup_forwards(int stages, int stage, int micro_batches) {
  return std::min(stages - stage - 1, micro_batches);
}

std::vector<PipelineOp> make_schedule(ScheduleKind kind, int stages, int stage, int m) {
  std::vector<PipelineOp> ops;
  make_schedule(kind, stages, stage, m, ops);
  return ops;
}

void make_schedule(ScheduleKind kind, int stages, int stage, int m, std::vector<PipelineOp>& ops) {
  ops.clear();
  if (kind == ScheduleKind::GPipe) {
    for (int i = 0; i < m; ++i) ops.push_back({PipelineOp::Forward, i});
    for (int i = 0; i < m; ++i) ops.push_back({PipelineOp::Backward, i});
    return;
  }
  const int warmup = warmup_forwards(stages, stage, m);
  for (int i = 0; i < warmup; ++i) ops.push_back({PipelineOp::Forward, i});
  for (int k = 0; k < m - warmup; ++k) {
    ops.push_back({PipelineOp::Forward, warmup + k});
    ops.push_back({PipelineOp::Backward, k});
  }
  for (int k = m - warmup; k < m; ++k) ops.push_back({PipelineOp::Backward, k});
}

int activation_slots(ScheduleKind kind, int stages, int stage, int m) {
  if (kind == ScheduleKind::GPipe) return m;
  return std::min(m, warmup_forwards(stages, stage, m) + 1);
}

}  // namespace sptrain
