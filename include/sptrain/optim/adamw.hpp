#pragma once
// AdamW (Loshchilov & Hutter), the semantics of torch.optim.AdamW:
//   t += 1
//   p  = p * (1 - lr * weight_decay)                 (decoupled weight decay)
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g^2
//   p  = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Element-wise arithmetic is done in double; m, v and p are stored in fp32.
#include "sptrain/optim/optimizer.hpp"

namespace sptrain {

class AdamW : public Optimizer {
 public:
  AdamW(const OptimSection& cfg, int64_t rows, int64_t cols);
  std::string name() const override { return "adamw"; }
  void step(float* param, const float* grad, double lr) override;
  void place_on(Backend& backend) override;
  void step_on_device(const Tensor& param, const Tensor& grad, const Tensor& norm_sq,
                      double lr) override;
  // "exp_avg" (m) and "exp_avg_sq" (v), both [rows, cols] (torch's names).
  std::vector<NamedState> state() const override;
  void load_state(const std::vector<NamedState>& states) override;

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  mutable std::vector<float> m_, v_;  // on a device: copies made by state()
  Buffer m_device_, v_device_;
};

}  // namespace sptrain
