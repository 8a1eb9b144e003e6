#pragma once
// Learning-rate schedule, by optimizer step counted from 1:
//   step <= warmup_steps: lr * step / warmup_steps   (linear warmup from 0)
//   after warmup, with progress = (step - warmup) / (total - warmup) in [0, 1]:
//     constant: lr
//     linear:   lr * (1 - (1 - min_lr_ratio) * progress)
//     cosine:   lr * (min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * progress)) / 2)
// so linear and cosine reach min_lr_ratio * lr at total_steps and stay there.
#include <string>

#include "sptrain/config/config.hpp"

namespace sptrain {

class LrSchedule {
 public:
  LrSchedule(const OptimSection& cfg, int total_steps);
  double lr(int step) const;

 private:
  double base_lr_, min_ratio_;
  int warmup_, total_;
  std::string kind_;
};

}  // namespace sptrain
