// Learning-rate schedules at chosen steps and global-norm clipping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "sptrain/core/error.hpp"
#include "sptrain/optim/clip.hpp"
#include "sptrain/optim/schedule.hpp"

using namespace sptrain;

namespace {

OptimSection sched(const std::string& kind, int warmup, double min_ratio) {
  OptimSection cfg;
  cfg.lr = 0.1;
  cfg.schedule = kind;
  cfg.warmup_steps = warmup;
  cfg.min_lr_ratio = min_ratio;
  return cfg;
}

TEST(LrSchedule, WarmupThenConstant) {
  LrSchedule s(sched("constant", 10, 0.0), 110);
  EXPECT_DOUBLE_EQ(s.lr(1), 0.01);
  EXPECT_DOUBLE_EQ(s.lr(5), 0.05);
  EXPECT_DOUBLE_EQ(s.lr(10), 0.1);  // warmup boundary: full lr
  EXPECT_DOUBLE_EQ(s.lr(11), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(110), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(500), 0.1);
}

TEST(LrSchedule, NoWarmup) {
  LrSchedule c(sched("constant", 0, 0.0), 100);
  EXPECT_DOUBLE_EQ(c.lr(1), 0.1);
  LrSchedule l(sched("linear", 0, 0.0), 100);
  EXPECT_DOUBLE_EQ(l.lr(1), 0.1 * 0.99);
  EXPECT_DOUBLE_EQ(l.lr(100), 0.0);
}

TEST(LrSchedule, LinearDecayToFloor) {
  LrSchedule s(sched("linear", 10, 0.1), 110);
  EXPECT_DOUBLE_EQ(s.lr(10), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(60), 0.1 * (1 - 0.9 * 0.5));  // halfway: 0.055
  EXPECT_NEAR(s.lr(35), 0.1 * (1 - 0.9 * 0.25), 1e-15);
  EXPECT_NEAR(s.lr(110), 0.01, 1e-15);  // end: min_lr_ratio * lr
  EXPECT_NEAR(s.lr(200), 0.01, 1e-15);  // past the end: stays at the floor
}

TEST(LrSchedule, CosineDecay) {
  LrSchedule s(sched("cosine", 10, 0.0), 110);
  EXPECT_DOUBLE_EQ(s.lr(10), 0.1);
  EXPECT_NEAR(s.lr(60), 0.05, 1e-15);  // midpoint: half
  EXPECT_NEAR(s.lr(35), 0.1 * 0.5 * (1 + std::cos(std::numbers::pi / 4)), 1e-15);
  EXPECT_NEAR(s.lr(110), 0.0, 1e-15);
  LrSchedule f(sched("cosine", 0, 0.2), 100);
  EXPECT_NEAR(f.lr(50), 0.1 * (0.2 + 0.8 * 0.5), 1e-15);
  EXPECT_NEAR(f.lr(100), 0.02, 1e-15);
}

TEST(LrSchedule, TotalWithinWarmup) {
  LrSchedule s(sched("linear", 10, 0.5), 5);
  EXPECT_DOUBLE_EQ(s.lr(5), 0.05);   // still warming up
  EXPECT_DOUBLE_EQ(s.lr(11), 0.05);  // past warmup there is no room to decay: floor
}

TEST(LrSchedule, Errors) {
  EXPECT_THROW(LrSchedule(sched("step", 0, 0.0), 10), Error);
  EXPECT_THROW(LrSchedule(sched("linear", -1, 0.0), 10), Error);
  EXPECT_THROW(LrSchedule(sched("linear", 0, 1.5), 10), Error);
  EXPECT_THROW(LrSchedule(sched("linear", 0, 0.0), 0), Error);
  LrSchedule s(sched("constant", 0, 0.0), 10);
  EXPECT_THROW(s.lr(0), Error);
}

TEST(ClipGradNorm, ScalesAboveMax) {
  std::vector<float> g = {3.0f, 0.0f, -4.0f, 0.0f};
  double norm = clip_grad_norm(g.data(), g.size(), 1.0);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_FLOAT_EQ(g[0], 0.6f);
  EXPECT_FLOAT_EQ(g[2], -0.8f);
  EXPECT_EQ(g[1], 0.0f);
  // The clipped gradient has the max norm.
  EXPECT_NEAR(std::sqrt(double(g[0]) * g[0] + double(g[2]) * g[2]), 1.0, 1e-7);
}

TEST(ClipGradNorm, LeavesSmallOrOff) {
  std::vector<float> g = {3.0f, -4.0f};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), g.size(), 10.0), 5.0);
  EXPECT_EQ(g[0], 3.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), g.size(), 5.0), 5.0);  // equal: untouched
  EXPECT_EQ(g[0], 3.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), g.size(), 0.0), 5.0);  // off
  EXPECT_EQ(g[1], -4.0f);
}

TEST(ClipGradNorm, NormSummedInDouble) {
  // 1e6 elements of 1e-3: a float accumulator drifts, double does not.
  std::vector<float> g(1000000, 1e-3f);
  double expected = std::sqrt(1e6 * double(1e-3f) * double(1e-3f));
  EXPECT_NEAR(clip_grad_norm(g.data(), g.size(), 0.0), expected, 1e-9);
}

TEST(ClipGradNorm, NonFiniteLeavesGrad) {
  std::vector<float> g = {1.0f, std::nanf("")};
  EXPECT_TRUE(std::isnan(clip_grad_norm(g.data(), g.size(), 0.5)));
  EXPECT_EQ(g[0], 1.0f);
  EXPECT_THROW(clip_grad_norm(g.data(), g.size(), -1.0), Error);
}

}  // namespace
