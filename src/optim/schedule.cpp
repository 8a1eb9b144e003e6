#include "sptrain/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "sptrain/core/error.hpp"

namespace sptrain {

LrSchedule::LrSchedule(const OptimSection& cfg, int total_steps)
    : base_lr_(cfg.lr),
      min_ratio_(cfg.min_lr_ratio),
      warmup_(cfg.warmup_steps),
      total_(total_steps),
      kind_(cfg.schedule) {
  SPT_CHECK(kind_ == "constant" || kind_ == "linear" || kind_ == "cosine", "optim.schedule: '",
            kind_, "' is not one of constant, linear, cosine");
  SPT_CHECK(std::isfinite(base_lr_) && base_lr_ > 0, "optim.lr = ", base_lr_, " must be > 0");
  SPT_CHECK(warmup_ >= 0, "optim.warmup_steps = ", warmup_, " must be >= 0");
  SPT_CHECK(min_ratio_ >= 0 && min_ratio_ <= 1, "optim.min_lr_ratio = ", min_ratio_,
            " must be in [0, 1]");
  SPT_CHECK(total_ >= 1, "train.steps = ", total_, " must be >= 1");
}

double LrSchedule::lr(int step) const {
  SPT_CHECK(step >= 1, "learning-rate schedule: step ", step, " (steps count from 1)");
  if (step <= warmup_) return base_lr_ * double(step) / double(warmup_);
  if (kind_ == "constant") return base_lr_;
  // Decay spans (warmup, total]; with no room for it (total <= warmup) the
  // floor applies right after warmup.
  const int span = total_ - warmup_;
  const double progress = span <= 0 ? 1.0 : std::min(1.0, double(step - warmup_) / double(span));
  const double shape = kind_ == "linear" ? 1.0 - progress
                                         : 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return base_lr_ * (min_ratio_ + (1.0 - min_ratio_) * shape);
}

}  // namespace sptrain
