// Pipeline schedules: the order of forwards and backwards on each stage.
#include <gtest/gtest.h>

#include "sptrain/core/error.hpp"
#include "sptrain/pipeline/schedule.hpp"

namespace sptrain {
namespace {

std::string render(const std::vector<PipelineOp>& ops) {
  std::string s;
  for (const auto& op : ops) s += (op.kind == PipelineOp::Forward ? "F" : "B") + std::to_string(op.micro_batch) + " ";
  return s;
}

TEST(Schedule, GPipeRunsAllForwardsThenAllBackwards) {
  EXPECT_EQ(render(make_schedule(ScheduleKind::GPipe, 2, 0, 3)), "F0 F1 F2 B0 B1 B2 ");
  EXPECT_EQ(activation_slots(ScheduleKind::GPipe, 4, 1, 5), 5);
}

TEST(Schedule, OneFOneBWarmsUpThenAlternates) {
  // 4 stages, 6 micro-batches: stage s warms up with 3 - s forwards.
  EXPECT_EQ(render(make_schedule(ScheduleKind::OneFOneB, 4, 0, 6)),
            "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5 ");
  EXPECT_EQ(render(make_schedule(ScheduleKind::OneFOneB, 4, 2, 6)),
            "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5 ");
  EXPECT_EQ(render(make_schedule(ScheduleKind::OneFOneB, 4, 3, 6)),
            "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 ");
  // Fewer micro-batches than stages: warm-up is capped.
  EXPECT_EQ(render(make_schedule(ScheduleKind::OneFOneB, 4, 0, 2)), "F0 F1 B0 B1 ");
  EXPECT_EQ(activation_slots(ScheduleKind::OneFOneB, 4, 0, 6), 4);
  EXPECT_EQ(activation_slots(ScheduleKind::OneFOneB, 4, 3, 6), 1);
  EXPECT_EQ(activation_slots(ScheduleKind::OneFOneB, 4, 0, 2), 2);
}

TEST(Schedule, EveryMicroBatchRunsOnceEachWayWithinItsSlots) {
  for (ScheduleKind k : {ScheduleKind::GPipe, ScheduleKind::OneFOneB})
    for (int stages = 1; stages <= 5; ++stages)
      for (int stage = 0; stage < stages; ++stage)
        for (int m = 1; m <= 7; ++m) {
          const auto ops = make_schedule(k, stages, stage, m);
          ASSERT_EQ(int(ops.size()), 2 * m);
          std::vector<int> fwd(size_t(m), -1), bwd(size_t(m), -1);
          int in_flight = 0, most = 0, next_backward = 0;
          for (size_t i = 0; i < ops.size(); ++i) {
            const auto& op = ops[i];
            if (op.kind == PipelineOp::Forward) {
              fwd[size_t(op.micro_batch)] = int(i);
              most = std::max(most, ++in_flight);
            } else {
              ASSERT_GE(fwd[size_t(op.micro_batch)], 0) << "backward before forward";
              ASSERT_EQ(op.micro_batch, next_backward++) << "backwards run in forward order";
              bwd[size_t(op.micro_batch)] = int(i);
              --in_flight;
            }
          }
          for (int i = 0; i < m; ++i) ASSERT_GE(bwd[size_t(i)], 0);
          EXPECT_EQ(most, activation_slots(k, stages, stage, m));
        }
}

TEST(Schedule, UnknownNameIsAnError) {
  EXPECT_THROW(schedule_kind("zigzag"), Error);
  EXPECT_EQ(schedule_kind("1f1b"), ScheduleKind::OneFOneB);
}

}  // namespace
}  // namespace sptrain
