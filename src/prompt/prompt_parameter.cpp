#include "sptrain/prompt/prompt_parameter.hpp"

namespace sptrain {

PromptParameter::PromptParameter(Backend& backend, DType stat, int rows, int cols, bool on_device)
    : backend_(backend), rows_(rows), cols_(cols), on_device_(on_device) {
  SPT_ASSERT(stat == DType::F32 || stat == DType::F64);
  values_.assign(size_t(rows) * size_t(cols), 0.f);
  grad_.assign(values_.size(), 0.f);
  if (!on_device) return;
  device_ = backend.allocate(stat, Shape{rows, cols});
  device_grad_ = backend.allocate(stat, Shape{rows, cols});
  if (stat == DType::F64) staging_.assign(values_.size(), 0.0);
}

std::vector<float>& PromptParameter::values() {
  download();
  newer_ = Newer::Host;
  return values_;
}

const std::vector<float>& PromptParameter::values() const {
  download();
  return values_;
}

Tensor PromptParameter::device() {
  upload();
  return device_.view();
}

void PromptParameter::upload() {
  if (!on_device_ || newer_ != Newer::Host) return;
  SPT_CHECK(values_.size() == size_t(rows_) * size_t(cols_), "the prompt has ", values_.size(),
            " values, expected ", rows_, " x ", cols_);
  if (staging_.empty()) {
    backend_.copy_from_host(device_, values_.data());
  } else {
    for (size_t i = 0; i < values_.size(); ++i) staging_[i] = values_[i];
    backend_.copy_from_host(device_, staging_.data());
  }
  newer_ = Newer::Same;
}

void PromptParameter::download() const {
  if (newer_ != Newer::Device) return;
  if (staging_.empty()) {
    backend_.copy_to_host(values_.data(), device_);
  } else {
    backend_.copy_to_host(staging_.data(), device_);
    for (size_t i = 0; i < values_.size(); ++i) values_[i] = float(staging_[i]);
  }
  newer_ = Newer::Same;
}

void PromptParameter::zero_grad() {
  if (on_device_) backend_.fill(device_grad_, 0.0);
}

void PromptParameter::download_grad() {
  if (!on_device_) return;
  if (staging_.empty()) {
    backend_.copy_to_host(grad_.data(), device_grad_);
    return;
  }
  backend_.copy_to_host(staging_.data(), device_grad_);
  for (size_t i = 0; i < grad_.size(); ++i) grad_[i] = float(staging_[i]);
}

}  // namespace sptrain
