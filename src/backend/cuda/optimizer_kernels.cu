// AdamW and Adafactor updates of the prompt on the GPU, with the host
// optimizers' formulas (src/optim/adamw.cpp, adafactor.cpp): doubles for the
// arithmetic, f32 for the stored state.
#include "internal.cuh"
#include "sptrain/backend/cuda/optimizer_kernels.hpp"

namespace sptrain {

using cuda::block_sum;
using cuda::grid_for;
using cuda::kThreads;

namespace {

// ---- AdamW ----

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n,
                             double beta1, double beta2, double eps, double step_size,
                             double bc2_sqrt, double decay) {
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
                                      double* scratch, int64_t C, double beta2t, double eps1) {
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
                                      double beta2t, double eps1) {
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
                                       int64_t C) {
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

void check_f32(const Tensor& t, int64_t n, const char* op, const char* what) {
  cuda::expect_device(t, op, what);
  cuda::expect_dtype(t, DType::F32, op, what);
  SPT_CHECK(t.numel() == n, "internal error: ", op, ": '", what, "' has ", t.numel(),
            " elements, expected ", n);
}

cuda::Where where_of(const CudaBackend& be) { return cuda::Where{be.rank(), be.device_index()}; }

}  // namespace

void adamw_update(CudaBackend& be, const Tensor& param, const Tensor& grad, const Tensor& m,
                  const Tensor& v, int64_t step, double lr, const AdamWHyper& h) {
  const char* op = "adamw_update";
  const int64_t n = param.numel();
  check_f32(param, n, op, "param");
  check_f32(grad, n, op, "grad");
  check_f32(m, n, op, "m");
  check_f32(v, n, op, "v");
  SPT_CHECK(step >= 1, "internal error: adamw_update: step ", step, " (the first update is 1)");
  SPT_CHECK(std::isfinite(lr) && lr >= 0, "adamw: learning rate ", lr, " must be finite and >= 0");
  if (n == 0) return;
  const double t = double(step);
  const double bc1 = 1.0 - std::pow(h.beta1, t);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(h.beta2, t));
  adamw_kernel<<<grid_for(n), kThreads, 0, be.stream()>>>(
      static_cast<float*>(param.data), static_cast<const float*>(grad.data),
      static_cast<float*>(m.data), static_cast<float*>(v.data), n, h.beta1, h.beta2, h.eps,
      lr / bc1, bc2_sqrt, 1.0 - lr * h.weight_decay);
  SPT_CUDA_LAUNCHED(where_of(be), be.stream(), "adamw_kernel");
}

void adafactor_update(CudaBackend& be, const Tensor& param, const Tensor& grad, const Tensor& row,
                      const Tensor& col, const Tensor& scratch, int64_t step, double lr,
                      const AdafactorHyper& h) {
  const char* op = "adafactor_update";
  SPT_CHECK(param.shape.rank == 2, "internal error: adafactor_update: the parameter must be 2-D, is ",
            param.shape.to_string());
  const int64_t R = param.rows(), C = param.cols(), n = R * C;
  check_f32(param, n, op, "param");
  check_f32(grad, n, op, "grad");
  check_f32(row, R, op, "row");
  check_f32(col, C, op, "col");
  cuda::expect_device(scratch, op, "scratch");
  cuda::expect_dtype(scratch, DType::F64, op, "scratch");
  SPT_CHECK(scratch.numel() >= adafactor_scratch_size(R), "internal error: adafactor_update: ",
            "scratch has ", scratch.numel(), " elements, needs ", adafactor_scratch_size(R));
  SPT_CHECK(step >= 1, "internal error: adafactor_update: step ", step, " (the first update is 1)");
  SPT_CHECK(std::isfinite(lr) && lr >= 0, "adafactor: learning rate ", lr,
            " must be finite and >= 0");
  if (n == 0) return;
  const double beta2t = 1.0 - std::pow(double(step), -h.decay_rate);
  const cuda::Where w = where_of(be);
  cudaStream_t s = be.stream();
  auto* p = static_cast<float*>(param.data);
  auto* g = static_cast<const float*>(grad.data);
  auto* r = static_cast<float*>(row.data);
  auto* c = static_cast<float*>(col.data);
  auto* sc = static_cast<double*>(scratch.data);
  adafactor_rows_kernel<<<unsigned(R), kThreads, 0, s>>>(p, g, r, sc, C, beta2t, h.eps1);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_rows_kernel");
  adafactor_cols_kernel<<<grid_for(C), kThreads, 0, s>>>(g, c, R, C, beta2t, h.eps1);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_cols_kernel");
  adafactor_row_avg_kernel<<<1, kThreads, 0, s>>>(r, sc, R);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_row_avg_kernel");
  adafactor_update_sq_kernel<<<unsigned(R), kThreads, 0, s>>>(g, r, c, sc, R, C);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_update_sq_kernel");
  adafactor_finish_kernel<<<1, kThreads, 0, s>>>(sc, R, n, lr, h.clip_threshold, h.eps2,
                                                 h.scale_parameter, h.weight_decay);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_finish_kernel");
  adafactor_apply_kernel<<<grid_for(n), kThreads, 0, s>>>(p, g, r, c, sc, R, C);
  SPT_CUDA_LAUNCHED(w, s, "adafactor_apply_kernel");
}

}  // namespace sptrain
