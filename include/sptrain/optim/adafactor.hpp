#pragma once
// Adafactor (Shazeer & Stern 2018) as used for prompt tuning by Lester et al.
// 2021, with the semantics of Hugging Face `transformers.Adafactor`
// (relative_step=False, warmup_init=False, beta1=None): no first moment and
// factored second moments for the 2-D prompt. With t the step (from 1),
// G[i,j] the gradient, R (rows) and C (cols) the running averages:
//
//   beta2_t  = 1 - t^(-decay_rate)                   (0 at t = 1)
//   S        = G^2 + eps1                            (element-wise)
//   R[i]     = beta2_t * R[i] + (1 - beta2_t) * mean_j S[i,j]
//   C[j]     = beta2_t * C[j] + (1 - beta2_t) * mean_i S[i,j]
//   Vhat[i,j]= R[i] * C[j] / mean_i R[i]             (HF `_approx_sq_grad`:
//                                                      rsqrt(R/mean(R)) * rsqrt(C))
//   U        = G / sqrt(Vhat)
//   U        = U / max(1, RMS(U) / clip_threshold)   (update clipping)
//   alpha    = lr * max(eps2, RMS(p))   if scale_parameter, else lr
//   p        = p - alpha * weight_decay * p - alpha * U
//
// RMS(x) = sqrt(mean(x^2)) over the whole matrix; RMS(p) is taken before the
// update. lr comes from the schedule (no relative step). Arithmetic is done
// in double; R and C are stored in fp32.
#include "sptrain/optim/optimizer.hpp"

namespace sptrain {

class Adafactor : public Optimizer {
 public:
  Adafactor(const OptimSection& cfg, int64_t rows, int64_t cols);
  std::string name() const override { return "adafactor"; }
  void step(float* param, const float* grad, double lr) override;
  void place_on(Backend& backend) override;
  void step_on_device(const Tensor& param, const Tensor& grad, const Tensor& norm_sq,
                      double lr) override;
  // "exp_avg_sq_row" [rows] and "exp_avg_sq_col" [cols] (HF's names).
  std::vector<NamedState> state() const override;
  void load_state(const std::vector<NamedState>& states) override;

 private:
  AdafactorSection cfg_;
  double weight_decay_;
  mutable std::vector<float> row_, col_;  // on a device: copies made by state()
  Buffer row_device_, col_device_, scratch_device_;
  std::vector<double> update_, row_mean_, col_mean_;  // scratch, not state: no allocation per step
};

}  // namespace sptrain
