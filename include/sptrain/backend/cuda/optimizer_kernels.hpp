#pragma once
// Optimizer updates of the soft prompt on the GPU: the formulas of the host
// optimizers (include/sptrain/optim/adamw.hpp and adafactor.hpp), element
// arithmetic in double, state stored in f32, so device and host agree to f32
// rounding. Every tensor is f32 on the back end's device except the
// Adafactor scratch (f64). Work is queued on the back end's stream.
#ifdef SPTRAIN_WITH_CUDA

#include <cstdint>

#include "sptrain/backend/cuda/cuda_backend.hpp"

namespace sptrain {

struct AdamWHyper {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// One AdamW step: step is t (1 for the first update), lr from the schedule.
//   p = p (1 - lr wd) - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// after m, v take g. param, grad, m, v: f32, same number of elements.
void adamw_update(CudaBackend& be, const Tensor& param, const Tensor& grad, const Tensor& m,
                  const Tensor& v, int64_t step, double lr, const AdamWHyper& h);

struct AdafactorHyper {
  double decay_rate = 0.8, clip_threshold = 1.0, eps1 = 1e-30, eps2 = 1e-3;
  bool scale_parameter = true;
  double weight_decay = 0.0;
};

// f64 elements of the scratch tensor adafactor_update needs for `rows` rows
// (allocate it once, next to the state).
inline int64_t adafactor_scratch_size(int64_t rows) { return 2 * rows + 4; }

// One Adafactor step on a 2-D parameter [rows, cols] (factored second
// moments): row [rows] and col [cols] are the running averages R and C,
// scratch f64 [adafactor_scratch_size(rows)]. See adafactor.hpp for the formulas.
void adafactor_update(CudaBackend& be, const Tensor& param, const Tensor& grad, const Tensor& row,
                      const Tensor& col, const Tensor& scratch, int64_t step, double lr,
                      const AdafactorHyper& h);

}  // namespace sptrain

#endif  // SPTRAIN_WITH_CUDA
