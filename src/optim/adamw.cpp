#include "sptrain/optim/adamw.hpp"

#include <cmath>

#include "sptrain/core/error.hpp"

namespace sptrain {

AdamW::AdamW(const OptimSection& cfg, int64_t rows, int64_t cols)
    : Optimizer(rows, cols),
      beta1_(cfg.beta1),
      beta2_(cfg.beta2),
      eps_(cfg.eps),
      weight_decay_(cfg.weight_decay),
      m_(size(), 0.0f),
      v_(size(), 0.0f) {
  SPT_CHECK(beta1_ >= 0 && beta1_ < 1, "optim.beta1 = ", beta1_, " must be in [0, 1)");
  SPT_CHECK(beta2_ >= 0 && beta2_ < 1, "optim.beta2 = ", beta2_, " must be in [0, 1)");
  SPT_CHECK(eps_ >= 0, "optim.eps = ", eps_, " must be >= 0");
  SPT_CHECK(weight_decay_ >= 0, "optim.weight_decay = ", weight_decay_, " must be >= 0");
}

void AdamW::step(float* param, const float* grad, double lr) {
  SPT_CHECK(!on_device(), "internal error: adamw: a host step of state placed on a device");
  SPT_CHECK(std::isfinite(lr) && lr >= 0, "adamw: learning rate ", lr, " must be finite and >= 0");
  ++step_;
  const double t = double(step_);
  const double bc1 = 1.0 - std::pow(beta1_, t);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2_, t));
  const double step_size = lr / bc1;
  const double decay = 1.0 - lr * weight_decay_;
  const size_t n = size();
  for (size_t i = 0; i < n; ++i) {
    const double g = grad[i];
    // The stored fp32 moments are what the update uses, so a reload from a
    // checkpoint continues with exactly the same numbers.
    m_[i] = float(beta1_ * m_[i] + (1.0 - beta1_) * g);
    v_[i] = float(beta2_ * v_[i] + (1.0 - beta2_) * g * g);
    const double denom = std::sqrt(double(v_[i])) / bc2_sqrt + eps_;
    param[i] = float(double(param[i]) * decay - step_size * double(m_[i]) / denom);
  }
}

void AdamW::place_on(Backend& backend) {
  device_ = &backend;
  m_device_ = backend.allocate(DType::F32, Shape{rows_, cols_});
  v_device_ = backend.allocate(DType::F32, Shape{rows_, cols_});
  backend.copy_from_host(m_device_, m_.data());
  backend.copy_from_host(v_device_, v_.data());
}

void AdamW::step_on_device(const Tensor& param, const Tensor& grad, const Tensor& norm_sq, double lr) {
  SPT_CHECK(on_device(), "internal error: adamw: step_on_device before place_on");
  ++step_;
  device_->adamw_update(param, grad, m_device_, v_device_, norm_sq,
                        Backend::AdamWStep{step_, lr, beta1_, beta2_, eps_, weight_decay_});
}

std::vector<NamedState> AdamW::state() const {
  if (on_device()) {
    device_->copy_to_host(m_.data(), m_device_);
    device_->copy_to_host(v_.data(), v_device_);
  }
  return {NamedState{"exp_avg", {rows_, cols_}, m_}, NamedState{"exp_avg_sq", {rows_, cols_}, v_}};
}

void AdamW::load_state(const std::vector<NamedState>& states) {
  check_known(states, {"exp_avg", "exp_avg_sq"});
  load_one(states, "exp_avg", {rows_, cols_}, m_);
  load_one(states, "exp_avg_sq", {rows_, cols_}, v_);
  if (on_device()) {
    device_->copy_from_host(m_device_, m_.data());
    device_->copy_from_host(v_device_, v_.data());
  }
}

}  // namespace sptrain
