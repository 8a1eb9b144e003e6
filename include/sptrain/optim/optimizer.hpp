#pragma once
// Optimizers for the soft prompt: a flat fp32 [rows x cols] matrix (rows = P
// prompt vectors, cols = d_model, row-major) and its fp32 gradient, on the host.
// Every replica runs the same update on the same all-reduced gradient, so the
// code is serial and deterministic: the same state and gradient give the
// same bits. On a GPU the same formulas run on the device (place_on, then
// step_on_device): the state lives there and state()/load_state() copy it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sptrain/backend/backend.hpp"
#include "sptrain/config/config.hpp"
#include "sptrain/io/named_state.hpp"  // NamedState: the state as a checkpoint stores it

namespace sptrain {

class Optimizer {
 public:
  Optimizer(int64_t rows, int64_t cols);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string name() const = 0;  // "adamw" | "adafactor"

  // One update of param[rows*cols] with grad[rows*cols] at learning rate lr
  // (from the schedule). Advances step_count() by one first: the first call
  // is step 1 (bias corrections and decays count from 1).
  virtual void step(float* param, const float* grad, double lr) = 0;

  // Moves the state to `backend`'s device (uploading what it holds); from then
  // on updates are step_on_device's and state()/load_state() copy it down/up.
  virtual void place_on(Backend& backend) = 0;
  bool on_device() const { return device_ != nullptr; }
  // One update of the f32 device parameter with its (already clipped)
  // gradient, enqueued; the device skips it when sqrt(norm_sq[0]) (f64, the
  // gradient's norm before clipping) is not finite. Advances step_count()
  // either way, as a skipped host step does.
  virtual void step_on_device(const Tensor& param, const Tensor& grad, const Tensor& norm_sq,
                              double lr) = 0;

  // The state tensors, by name; load_state restores them (names and shapes
  // must match this optimizer's, or it fails naming the mismatch). The step
  // counter is separate: the checkpoint's `step` restores it.
  virtual std::vector<NamedState> state() const = 0;
  virtual void load_state(const std::vector<NamedState>& states) = 0;

  int64_t step_count() const { return step_; }
  void set_step_count(int64_t steps);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  size_t size() const { return size_t(rows_ * cols_); }

 protected:
  // Finds `name` in `states` and copies it into `dst`, checking the shape.
  void load_one(const std::vector<NamedState>& states, const std::string& name,
                const std::vector<int64_t>& shape, std::vector<float>& dst) const;
  // Fails if `states` holds a name other than `known`.
  void check_known(const std::vector<NamedState>& states,
                   const std::vector<std::string>& known) const;

  int64_t rows_, cols_;
  int64_t step_ = 0;
  Backend* device_ = nullptr;  // set by place_on
};

// "adamw" or "adafactor" (OptimSection::name); fails naming optim.name otherwise.
std::unique_ptr<Optimizer> make_optimizer(const OptimSection& cfg, int64_t rows, int64_t cols);

}  // namespace sptrain
