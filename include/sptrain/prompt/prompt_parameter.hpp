#pragma once
// The soft prompt as training holds it: an fp32 copy on the host (what
// checkpoints save and optim/ updates on the CPU back end) and, on the ranks
// of the first pipeline stage, which embed it, the copy the model reads and
// the gradient the model accumulates on the device (stat dtype). On a GPU the
// device copy is the master (the optimizer updates it there, in f32).
//
// The two copies are kept coherent lazily: whichever was written last is
// copied to the other when the other is read, so a step on the GPU never
// waits for the prompt and a checkpoint always sees the newest values.
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

  // The host copy [rows, cols], fp32, row-major, brought up to date first.
  // The writable form takes the host copy as the newest (the caller may write).
  std::vector<float>& values();
  const std::vector<float>& values() const;
  // Host gradient (after download_grad()).
  std::vector<float>& grad() { return grad_; }
  const std::vector<float>& grad() const { return grad_; }

  // The device copy, brought up to date first (empty unless on_device()).
  Tensor device();
  Tensor device_grad() const { return device_grad_.view(); }
  // The device copy was written in place (an update on the device).
  void device_written() { newer_ = Newer::Device; }

  void zero_grad();      // device gradient = 0
  void download_grad();  // device gradient -> host grad

 private:
  enum class Newer { Same, Host, Device };
  void upload();
  void download() const;

  Backend& backend_;
  int rows_, cols_;
  bool on_device_;
  mutable std::vector<float> values_;
  std::vector<float> grad_;
  mutable std::vector<double> staging_;  // f64 stat dtype: the host side of a copy
  mutable Newer newer_ = Newer::Host;
  Buffer device_, device_grad_;
};

}  // namespace sptrain
