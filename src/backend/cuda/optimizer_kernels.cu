// The prompt's update on the GPU: the gradient's norm, clipping, and AdamW
// and Adafactor with the host optimizers' formulas (src/optim/clip.cpp,
// adamw.cpp, adafactor.cpp): doubles for the arithmetic, f32 for the stored
// state. Every kernel reads the norm from device memory and an update whose
// norm is not finite does nothing, so the host never has to look at it.
#include <cmath>

#include "internal.cuh"

namespace sptrain {

using cuda::block_sum;
using cuda::grid_for;
using cuda::kThreads;

namespace {

// Finite: neither NaN (every comparison false) nor infinite.
__device__ __forceinline__ bool finite(double x) { return x <= 1.7976931348623157e308 && x >= -1.7976931348623157e308; }
// The update is skipped when the gradient's norm is not finite.
__device__ __forceinline__ bool skip_update(const double* norm_sq) { return !finite(sqrt(*norm_sq)); }

// ---- norm and clipping ----

// One block: out[0] = sum of x², in double (a fixed order: deterministic).
__global__ void sum_squares_kernel(double* out, const float* x, int64_t n) {
  __shared__ double red[33];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double v = x[i];
    s += v * v;
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) out[0] = s;
}

// grad *= max_norm / norm when the norm is finite and above max_norm.
__global__ void clip_kernel(float* grad, int64_t n, const double* norm_sq, double max_norm) {
  const double norm = sqrt(*norm_sq);
  if (!(max_norm > 0) || !finite(norm) || !(norm > max_norm)) return;
  const double scale = max_norm / norm;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    grad[i] = float(double(grad[i]) * scale);
}

// ---- AdamW ----

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n,
                             double beta1, double beta2, double eps, double step_size,
                             double bc2_sqrt, double decay, const double* norm_sq) {
  if (skip_update(norm_sq)) return;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double g = grad[i];
    // The stored f32 moments are what the update uses, as on the host.
    const float mi = float(beta1 * m[i] + (1.0 - beta1) * g);
    const float vi = float(beta2 * v[i] + (1.0 - beta2) * g * g);
    m[i] = mi;
    v[i] = vi;
    const double denom = sqrt(double(vi)) / bc2_sqrt + eps;
    param[i] = float(double(param[i]) * decay - step_size * double(mi) / denom);
  }
}

// ---- Adafactor, in six small kernels (rows of the prompt: tens; columns: d_model) ----
// scratch: [0, R) Σ_j p² per row, [R, 2R) Σ_j u² per row, then row_avg,
// Σ p², the step size alpha / clip and the decay factor.

// Block i: row mean of S = G² + eps1 into R[i]; Σ_j p[i,j]² into scratch[i].
__global__ void adafactor_rows_kernel(const float* param, const float* grad, float* row,
                                      double* scratch, int64_t C, double beta2t, double eps1,
                                      const double* norm_sq) {
  if (skip_update(norm_sq)) return;
  __shared__ double red[33];
  const int64_t i = blockIdx.x;
  double s = 0.0, psq = 0.0;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
    const double g = grad[i * C + j], p = param[i * C + j];
    s += g * g + eps1;
    psq += p * p;
  }
  s = block_sum(s, red);
  psq = block_sum(psq, red);
  if (threadIdx.x == 0) {
    row[i] = float(beta2t * row[i] + (1.0 - beta2t) * (s / double(C)));
    scratch[i] = psq;
  }
}

// Thread j: column mean of S into C[j] (rows summed in order, as the host does).
__global__ void adafactor_cols_kernel(const float* grad, float* col, int64_t R, int64_t C,
                                      double beta2t, double eps1, const double* norm_sq) {
  if (skip_update(norm_sq)) return;
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < C;
       j += int64_t(gridDim.x) * blockDim.x) {
    double s = 0.0;
    for (int64_t i = 0; i < R; ++i) {
      const double g = grad[i * C + j];
      s += g * g + eps1;
    }
    col[j] = float(beta2t * col[j] + (1.0 - beta2t) * (s / double(R)));
  }
}

// One block: mean of the (updated, f32) R and Σ p² over all rows.
__global__ void adafactor_row_avg_kernel(const float* row, double* scratch, int64_t R) {
  __shared__ double red[33];
  double ravg = 0.0, psq = 0.0;
  for (int64_t i = threadIdx.x; i < R; i += blockDim.x) {
    ravg += row[i];
    psq += scratch[i];
  }
  ravg = block_sum(ravg, red);
  psq = block_sum(psq, red);
  if (threadIdx.x == 0) {
    scratch[2 * R] = ravg / double(R);
    scratch[2 * R + 1] = psq;
  }
}

// U = G * rsqrt(R / mean(R)) * rsqrt(C); written the same way in both
// kernels that need it, so both see the same value.
__device__ __forceinline__ double adafactor_u(float g, float r, float c, double row_avg) {
  const double r_factor = 1.0 / sqrt(double(r) / row_avg);
  return double(g) * r_factor / sqrt(double(c));
}

// Block i: Σ_j U[i,j]² into scratch[R + i].
__global__ void adafactor_update_sq_kernel(const float* grad, const float* row, const float* col,
                                           double* scratch, int64_t R, int64_t C) {
  __shared__ double red[33];
  const int64_t i = blockIdx.x;
  const double row_avg = scratch[2 * R];
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
    const double u = adafactor_u(grad[i * C + j], row[i], col[j], row_avg);
    s += u * u;
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) scratch[R + i] = s;
}

// One block: RMS(U) -> clipping, RMS(p) -> alpha; the step size and decay.
__global__ void adafactor_finish_kernel(double* scratch, int64_t R, int64_t n, double lr,
                                        double clip_threshold, double eps2, bool scale_parameter,
                                        double weight_decay) {
  __shared__ double red[33];
  double usq = 0.0;
  for (int64_t i = threadIdx.x; i < R; i += blockDim.x) usq += scratch[R + i];
  usq = block_sum(usq, red);
  if (threadIdx.x == 0) {
    const double update_rms = sqrt(usq / double(n));
    const double clip = fmax(1.0, update_rms / clip_threshold);
    const double param_rms = sqrt(scratch[2 * R + 1] / double(n));
    const double alpha = scale_parameter ? lr * fmax(eps2, param_rms) : lr;
    scratch[2 * R + 2] = alpha / clip;
    scratch[2 * R + 3] = 1.0 - alpha * weight_decay;
  }
}

// p = p * decay - (alpha / clip) * U.
__global__ void adafactor_apply_kernel(float* param, const float* grad, const float* row,
                                       const float* col, const double* scratch, int64_t R,
                                       int64_t C, const double* norm_sq) {
  if (skip_update(norm_sq)) return;
  const int64_t n = R * C;
  const double row_avg = scratch[2 * R], step_size = scratch[2 * R + 2],
               decay = scratch[2 * R + 3];
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / C, j = k % C;
    const double u = adafactor_u(grad[k], row[i], col[j], row_avg);
    param[k] = float(double(param[k]) * decay - step_size * u);
  }
}

void check_norm(const Tensor& t, const char* op) {
  cuda::expect_device(t, op, "norm_sq");
  cuda::expect_dtype(t, DType::F64, op, "norm_sq");
  SPT_CHECK(t.numel() >= 1, "internal error: ", op, ": norm_sq is empty");
}

void check_f32(const Tensor& t, int64_t n, const char* op, const char* what) {
  cuda::expect_device(t, op, what);
  cuda::expect_dtype(t, DType::F32, op, what);
  SPT_CHECK(t.numel() == n, "internal error: ", op, ": '", what, "' has ", t.numel(),
            " elements, expected ", n);
}


}  // namespace

void CudaBackend::sum_squares(const Tensor& out, const Tensor& x) {
  const char* op = "sum_squares";
  check_norm(out, op);
  check_f32(x, x.numel(), op, "x");
  Impl& s = *impl_;
  sum_squares_kernel<<<1, kThreads, 0, s.stream>>>(static_cast<double*>(out.data),
                                                   static_cast<const float*>(x.data), x.numel());
  SPT_CUDA_LAUNCHED(s.where, s.stream, "sum_squares_kernel");
}

void CudaBackend::clip_by_norm(const Tensor& grad, const Tensor& norm_sq, double max_norm) {
  const char* op = "clip_by_norm";
  check_f32(grad, grad.numel(), op, "grad");
  check_norm(norm_sq, op);
  SPT_CHECK(max_norm >= 0, "optim.clip_grad_norm = ", max_norm, " must be >= 0 (0 = off)");
  const int64_t n = grad.numel();
  if (n == 0 || max_norm == 0) return;
  Impl& s = *impl_;
  clip_kernel<<<grid_for(n), kThreads, 0, s.stream>>>(static_cast<float*>(grad.data), n,
                                                       static_cast<const double*>(norm_sq.data), max_norm);
  SPT_CUDA_LAUNCHED(s.where, s.stream, "clip_kernel");
}

void CudaBackend::adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m,
                               const Tensor& v, const Tensor& norm_sq, const AdamWStep& h) {
  const char* op = "adamw_update";
  const int64_t n = param.numel();
  check_f32(param, n, op, "param");
  check_f32(grad, n, op, "grad");
  check_f32(m, n, op, "m");
  check_f32(v, n, op, "v");
  check_norm(norm_sq, op);
  SPT_CHECK(h.step >= 1, "internal error: adamw_update: step ", h.step, " (the first update is 1)");
  SPT_CHECK(std::isfinite(h.lr) && h.lr >= 0, "adamw: learning rate ", h.lr, " must be finite and >= 0");
  if (n == 0) return;
  const double t = double(h.step);
  const double bc1 = 1.0 - std::pow(h.beta1, t);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(h.beta2, t));
  Impl& s = *impl_;
  adamw_kernel<<<grid_for(n), kThreads, 0, s.stream>>>(
      static_cast<float*>(param.data), static_cast<const float*>(grad.data),
      static_cast<float*>(m.data), static_cast<float*>(v.data), n, h.beta1, h.beta2, h.eps,
      h.lr / bc1, bc2_sqrt, 1.0 - h.lr * h.weight_decay, static_cast<const double*>(norm_sq.data));
  SPT_CUDA_LAUNCHED(s.where, s.stream, "adamw_kernel");
}

void CudaBackend::adafactor_update(const Tensor& param, const Tensor& grad, const Tensor& row,
                                   const Tensor& col, const Tensor& scratch, const Tensor& norm_sq,
                                   const AdafactorStep& h) {
  const char* op = "adafactor_update";
  SPT_CHECK(param.shape.rank == 2, "internal error: adafactor_update: the parameter must be 2-D, is ",
            param.shape.to_string());
  const int64_t R = param.rows(), C = param.cols(), n = R * C;
  check_f32(param, n, op, "param");
  check_f32(grad, n, op, "grad");
  check_f32(row, R, op, "row");
  check_f32(col, C, op, "col");
  check_norm(norm_sq, op);
  cuda::expect_device(scratch, op, "scratch");
  cuda::expect_dtype(scratch, DType::F64, op, "scratch");
  SPT_CHECK(scratch.numel() >= adafactor_scratch_size(R), "internal error: adafactor_update: ",
            "scratch has ", scratch.numel(), " elements, needs ", adafactor_scratch_size(R));
  SPT_CHECK(h.step >= 1, "internal error: adafactor_update: step ", h.step, " (the first update is 1)");
  SPT_CHECK(std::isfinite(h.lr) && h.lr >= 0, "adafactor: learning rate ", h.lr,
            " must be finite and >= 0");
  if (n == 0) return;
  const double beta2t = 1.0 - std::pow(double(h.step), -h.decay_rate);
  const cuda::Where w = impl_->where;
  cudaStream_t s = impl_->stream;
  auto* p = static_cast<float*>(param.data);
  auto* g = static_cast<const float*>(grad.data);
  auto* r = static_cast<float*>(row.data);
  auto* c = static_cast<float*>(col.data);
  auto* sc = static_cast<double*>(scratch.data);
  auto* nsq = static_cast<const double*>(norm_sq.data);
  // The kernels between the first and the last only use what the first ones
  // wrote (scratch), so skipping the first and the last skips the update.
  adafactor_rows_kernel<<<unsigned(R), kThreads, 0, s>>>(p, g, r, sc, C, beta2t, h.eps1, nsq);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_rows_kernel");
  adafactor_cols_kernel<<<grid_for(C), kThreads, 0, s>>>(g, c, R, C, beta2t, h.eps1, nsq);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_cols_kernel");
  adafactor_row_avg_kernel<<<1, kThreads, 0, s>>>(r, sc, R);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_row_avg_kernel");
  adafactor_update_sq_kernel<<<unsigned(R), kThreads, 0, s>>>(g, r, c, sc, R, C);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_update_sq_kernel");
  adafactor_finish_kernel<<<1, kThreads, 0, s>>>(sc, R, n, h.lr, h.clip_threshold, h.eps2,
                                                 h.scale_parameter, h.weight_decay);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_finish_kernel");
  adafactor_apply_kernel<<<grid_for(n), kThreads, 0, s>>>(p, g, r, c, sc, R, C, nsq);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_apply_kernel");
}

}  // namespace sptrain
