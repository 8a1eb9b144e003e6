// LayerNorm and RMSNorm over the last dimension, forward and backward side
// by side. One block per row; statistics in f32 (stat dtype), block reductions.
#include "internal.cuh"

namespace sptrain {

using cuda::block_sum;
using cuda::kThreads;
using cuda::load;
using cuda::store;

namespace {

template <typename T>
__global__ void layernorm_forward_kernel(T* out, float* mean, float* rstd, const T* x, const T* w,
                                         const T* b, int64_t C, float eps) {
  __shared__ float red[33];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * C;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) sum += load(xr, i);
  const float m = block_sum(sum, red) / float(C);
  float sq = 0.f;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    const float d = load(xr, i) - m;
    sq += d * d;
  }
  const float var = block_sum(sq, red) / float(C);
  const float s = 1.0f / sqrtf(var + eps);
  T* o = out + row * C;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    float y = (load(xr, i) - m) * s * load(w, i);
    if (b) y += load(b, i);
    store(o, i, y);
  }
  if (threadIdx.x == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

// dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w.
template <typename T>
__global__ void layernorm_backward_kernel(T* dx, const T* dout, const T* x, const float* mean,
                                          const float* rstd, const T* w, int64_t C) {
  __shared__ float red[33];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * C;
  const T* dr = dout + row * C;
  const float m = mean[row], s = rstd[row];
  float sum_d = 0.f, sum_dx = 0.f;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    const float dn = load(dr, i) * load(w, i);
    sum_d += dn;
    sum_dx += dn * (load(xr, i) - m) * s;
  }
  const float mean_d = block_sum(sum_d, red) / float(C);
  const float mean_dx = block_sum(sum_dx, red) / float(C);
  T* o = dx + row * C;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    const float dn = load(dr, i) * load(w, i);
    const float xhat = (load(xr, i) - m) * s;
    store(o, i, load(o, i) + (dn - mean_d - xhat * mean_dx) * s);
  }
}

template <typename T>
__global__ void rmsnorm_forward_kernel(T* out, float* rstd, const T* x, const T* w, int64_t C,
                                       float eps) {
  __shared__ float red[33];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * C;
  float sq = 0.f;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    const float v = load(xr, i);
    sq += v * v;
  }
  const float s = 1.0f / sqrtf(block_sum(sq, red) / float(C) + eps);
  T* o = out + row * C;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) store(o, i, load(xr, i) * s * load(w, i));
  if (threadIdx.x == 0) rstd[row] = s;
}

// dx += rstd * (dxhat - xhat * mean(dxhat * xhat)), dxhat = dout * w, xhat = x * rstd.
template <typename T>
__global__ void rmsnorm_backward_kernel(T* dx, const T* dout, const T* x, const float* rstd,
                                        const T* w, int64_t C) {
  __shared__ float red[33];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * C;
  const T* dr = dout + row * C;
  const float s = rstd[row];
  float dot = 0.f;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x)
    dot += load(dr, i) * load(w, i) * load(xr, i) * s;
  const float mean_dot = block_sum(dot, red) / float(C);
  T* o = dx + row * C;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    const float xhat = load(xr, i) * s;
    store(o, i, load(o, i) + (load(dr, i) * load(w, i) - xhat * mean_dot) * s);
  }
}

// Shapes and dtypes shared by the four ops: x, out/dout/dx [T, C] act; w
// (and b) [C] act; statistics [>= T] f32.
void check_norm(const char* op, const Tensor& x, const Tensor& y, const Tensor& w,
                std::initializer_list<const Tensor*> stats) {
  cuda::expect_device(x, op, "x");
  cuda::expect_device(y, op, "out");
  cuda::expect_device(w, op, "w");
  cuda::expect_same_dtype(x, y, op);
  cuda::expect_same_dtype(x, w, op);
  SPT_ASSERT(y.rows() == x.rows() && y.cols() == x.cols() && w.numel() == x.cols());
  for (const Tensor* s : stats) {
    cuda::expect_device(*s, op, "statistics");
    cuda::expect_dtype(*s, DType::F32, op, "statistics");
    SPT_ASSERT(s->numel() >= x.rows());
  }
}

}  // namespace

void CudaBackend::layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                                    const Tensor& x, const Tensor& w, const Tensor& b,
                                    float eps) {
  check_norm("layernorm_forward", x, out, w, {&mean, &rstd});
  if (!b.empty()) {
    cuda::expect_same_dtype(x, b, "layernorm_forward");
    SPT_ASSERT(b.numel() == x.cols());
  }
  const int64_t T = x.rows(), C = x.cols();
  if (T == 0) return;
  cuda::dispatch_act(x.dtype, "layernorm_forward", [&](auto tag) {
    using F = typename decltype(tag)::type;
    layernorm_forward_kernel<F><<<unsigned(T), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(out.data), static_cast<float*>(mean.data), static_cast<float*>(rstd.data),
        static_cast<const F*>(x.data), static_cast<const F*>(w.data),
        b.empty() ? nullptr : static_cast<const F*>(b.data), C, eps);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "layernorm_forward_kernel");
  });
}

void CudaBackend::layernorm_backward(const Tensor& dx, const Tensor& dout, const Tensor& x,
                                     const Tensor& mean, const Tensor& rstd, const Tensor& w) {
  check_norm("layernorm_backward", x, dx, w, {&mean, &rstd});
  cuda::expect_same_dtype(x, dout, "layernorm_backward");
  SPT_ASSERT(dout.numel() == x.numel());
  const int64_t T = x.rows(), C = x.cols();
  if (T == 0) return;
  cuda::dispatch_act(x.dtype, "layernorm_backward", [&](auto tag) {
    using F = typename decltype(tag)::type;
    layernorm_backward_kernel<F><<<unsigned(T), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(dx.data), static_cast<const F*>(dout.data), static_cast<const F*>(x.data),
        static_cast<const float*>(mean.data), static_cast<const float*>(rstd.data),
        static_cast<const F*>(w.data), C);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "layernorm_backward_kernel");
  });
}

void CudaBackend::rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x,
                                  const Tensor& w, float eps) {
  check_norm("rmsnorm_forward", x, out, w, {&rstd});
  const int64_t T = x.rows(), C = x.cols();
  if (T == 0) return;
  cuda::dispatch_act(x.dtype, "rmsnorm_forward", [&](auto tag) {
    using F = typename decltype(tag)::type;
    rmsnorm_forward_kernel<F><<<unsigned(T), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(out.data), static_cast<float*>(rstd.data), static_cast<const F*>(x.data),
        static_cast<const F*>(w.data), C, eps);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "rmsnorm_forward_kernel");
  });
}

void CudaBackend::rmsnorm_backward(const Tensor& dx, const Tensor& dout, const Tensor& x,
                                   const Tensor& rstd, const Tensor& w) {
  check_norm("rmsnorm_backward", x, dx, w, {&rstd});
  cuda::expect_same_dtype(x, dout, "rmsnorm_backward");
  SPT_ASSERT(dout.numel() == x.numel());
  const int64_t T = x.rows(), C = x.cols();
  if (T == 0) return;
  cuda::dispatch_act(x.dtype, "rmsnorm_backward", [&](auto tag) {
    using F = typename decltype(tag)::type;
    rmsnorm_backward_kernel<F><<<unsigned(T), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(dx.data), static_cast<const F*>(dout.data), static_cast<const F*>(x.data),
        static_cast<const float*>(rstd.data), static_cast<const F*>(w.data), C);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "rmsnorm_backward_kernel");
  });
}

}  // namespace sptrain
