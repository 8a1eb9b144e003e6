#pragma once
// The soft prompt as training holds it: the fp32 master copy and its gradient
// on the host (what the optimizer updates and checkpoints save), and on the
// ranks of the first pipeline stage, which embed it, the copy the model reads
// and the gradient the model accumulates on the device (stat dtype).
#include <vector>

#include "sptrain/backend/backend.hpp"

namespace sptrain {

class PromptParameter {
 public:
  // rows x cols; on_device: this rank embeds the prompt (first pipeline stage).
  PromptParameter(Backend& backend, DType stat, int rows, int cols, bool on_device);

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  bool on_device() const { return on_device_; }
  size_t size() const { return values_.size(); }

  // Host master copy [rows, cols], fp32, row-major.
  std::vector<float>& values() { return values_; }
  const std::vector<float>& values() const { return values_; }
  // Host gradient (after download_grad()).
  std::vector<float>& grad() { return grad_; }
  const std::vector<float>& grad() const { return grad_; }

  // The device tensors (empty unless on_device()).
  Tensor device() const { return device_.view(); }
  Tensor device_grad() const { return device_grad_.view(); }

  void upload();         // host values -> device copy
  void zero_grad();      // device gradient = 0
  void download_grad();  // device gradient -> host grad

 private:
  Backend& backend_;
  int rows_, cols_;
  bool on_device_;
  std::vector<float> values_, grad_;
  std::vector<double> staging_;  // f64 stat dtype: the host side of a copy
  Buffer device_, device_grad_;
};

}  // namespace sptrain
