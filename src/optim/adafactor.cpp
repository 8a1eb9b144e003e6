#include "sptrain/optim/adafactor.hpp"

#include <algorithm>
#include <cmath>

#include "sptrain/core/error.hpp"

namespace sptrain {

Adafactor::Adafactor(const OptimSection& cfg, int64_t rows, int64_t cols)
    : Optimizer(rows, cols),
      cfg_(cfg.adafactor),
      weight_decay_(cfg.weight_decay),
      row_(size_t(rows), 0.0f),
      col_(size_t(cols), 0.0f),
      update_(size(), 0.0),
      row_mean_(size_t(rows), 0.0),
      col_mean_(size_t(cols), 0.0) {
  SPT_CHECK(cfg_.decay_rate > 0, "optim.adafactor.decay_rate = ", cfg_.decay_rate, " must be > 0");
  SPT_CHECK(cfg_.clip_threshold > 0, "optim.adafactor.clip_threshold = ", cfg_.clip_threshold,
            " must be > 0");
  // eps1 keeps R and C positive so 1/sqrt(Vhat) is finite for zero gradients.
  SPT_CHECK(cfg_.eps1 > 0, "optim.adafactor.eps1 = ", cfg_.eps1, " must be > 0");
  SPT_CHECK(cfg_.eps2 >= 0, "optim.adafactor.eps2 = ", cfg_.eps2, " must be >= 0");
  SPT_CHECK(weight_decay_ >= 0, "optim.weight_decay = ", weight_decay_, " must be >= 0");
}

void Adafactor::step(float* param, const float* grad, double lr) {
  SPT_CHECK(!on_device(), "internal error: adafactor: a host step of state placed on a device");
  SPT_CHECK(std::isfinite(lr) && lr >= 0, "adafactor: learning rate ", lr,
            " must be finite and >= 0");
  ++step_;
  const size_t R = size_t(rows_), C = size_t(cols_), n = size();
  const double beta2t = 1.0 - std::pow(double(step_), -cfg_.decay_rate);

  // Row and column means of S = G^2 + eps1, folded into the running averages.
  std::vector<double>& row_mean = row_mean_;
  std::vector<double>& col_mean = col_mean_;
  std::fill(row_mean.begin(), row_mean.end(), 0.0);
  std::fill(col_mean.begin(), col_mean.end(), 0.0);
  double param_sq = 0.0;
  for (size_t i = 0; i < R; ++i) {
    for (size_t j = 0; j < C; ++j) {
      const double g = grad[i * C + j];
      const double s = g * g + cfg_.eps1;
      row_mean[i] += s;
      col_mean[j] += s;
      const double p = param[i * C + j];
      param_sq += p * p;
    }
  }
  for (size_t i = 0; i < R; ++i)
    row_[i] = float(beta2t * row_[i] + (1.0 - beta2t) * (row_mean[i] / double(C)));
  for (size_t j = 0; j < C; ++j)
    col_[j] = float(beta2t * col_[j] + (1.0 - beta2t) * (col_mean[j] / double(R)));

  // U = G * rsqrt(R / mean(R)) * rsqrt(C), from the stored fp32 R and C.
  double row_avg = 0.0;
  for (size_t i = 0; i < R; ++i) row_avg += row_[i];
  row_avg /= double(R);
  double update_sq = 0.0;
  for (size_t i = 0; i < R; ++i) {
    const double r_factor = 1.0 / std::sqrt(double(row_[i]) / row_avg);
    for (size_t j = 0; j < C; ++j) {
      const double u = double(grad[i * C + j]) * r_factor / std::sqrt(double(col_[j]));
      update_[i * C + j] = u;
      update_sq += u * u;
    }
  }

  const double update_rms = std::sqrt(update_sq / double(n));
  const double clip = std::max(1.0, update_rms / cfg_.clip_threshold);
  const double param_rms = std::sqrt(param_sq / double(n));
  const double alpha = cfg_.scale_parameter ? lr * std::max(cfg_.eps2, param_rms) : lr;
  const double decay = 1.0 - alpha * weight_decay_;
  const double step_size = alpha / clip;
  for (size_t k = 0; k < n; ++k)
    param[k] = float(double(param[k]) * decay - step_size * update_[k]);
}

void Adafactor::place_on(Backend& backend) {
  device_ = &backend;
  row_device_ = backend.allocate(DType::F32, Shape{rows_});
  col_device_ = backend.allocate(DType::F32, Shape{cols_});
  scratch_device_ = backend.allocate(DType::F64, Shape{Backend::adafactor_scratch_size(rows_)});
  backend.copy_from_host(row_device_, row_.data());
  backend.copy_from_host(col_device_, col_.data());
}

void Adafactor::step_on_device(const Tensor& param, const Tensor& grad, const Tensor& norm_sq,
                               double lr) {
  SPT_CHECK(on_device(), "internal error: adafactor: step_on_device before place_on");
  ++step_;
  Backend::AdafactorStep h;
  h.step = step_;
  h.lr = lr;
  h.decay_rate = cfg_.decay_rate;
  h.clip_threshold = cfg_.clip_threshold;
  h.eps1 = cfg_.eps1;
  h.eps2 = cfg_.eps2;
  h.scale_parameter = cfg_.scale_parameter;
  h.weight_decay = weight_decay_;
  device_->adafactor_update(param, grad, row_device_, col_device_, scratch_device_, norm_sq, h);
}

std::vector<NamedState> Adafactor::state() const {
  if (on_device()) {
    device_->copy_to_host(row_.data(), row_device_);
    device_->copy_to_host(col_.data(), col_device_);
  }
  return {NamedState{"exp_avg_sq_row", {rows_}, row_}, NamedState{"exp_avg_sq_col", {cols_}, col_}};
}

void Adafactor::load_state(const std::vector<NamedState>& states) {
  check_known(states, {"exp_avg_sq_row", "exp_avg_sq_col"});
  load_one(states, "exp_avg_sq_row", {rows_}, row_);
  load_one(states, "exp_avg_sq_col", {cols_}, col_);
  if (on_device()) {
    device_->copy_from_host(row_device_, row_.data());
    device_->copy_from_host(col_device_, col_.data());
  }
}

}  // namespace sptrain
