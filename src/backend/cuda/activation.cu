// Element-wise activations, forward and backward side by side, in f32
// whatever the storage dtype (the formulas are the CPU back end's).
#include "internal.cuh"

namespace sptrain {

using cuda::grid_for;
using cuda::kThreads;
using cuda::load;
using cuda::store;

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;   // 1/sqrt(2 pi)

__device__ __forceinline__ float act_forward(Activation kind, float x) {
  switch (kind) {
    case Activation::Gelu: return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
    case Activation::GeluTanh: {
      const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
      return 0.5f * x * (1.0f + tanhf(u));
    }
    case Activation::Relu: return x > 0.0f ? x : 0.0f;
    default: return 0.0f;  // SwiGlu never reaches here (checked on the host)
  }
}

__device__ __forceinline__ float act_derivative(Activation kind, float x) {
  switch (kind) {
    case Activation::Gelu:
      return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
    case Activation::GeluTanh: {
      const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
      const float th = tanhf(u);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
      return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
    }
    case Activation::Relu: return x > 0.0f ? 1.0f : 0.0f;
    default: return 0.0f;
  }
}

template <typename T>
__global__ void activation_forward_kernel(Activation kind, T* out, const T* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    store(out, i, act_forward(kind, load(in, i)));
}

template <typename T>
__global__ void activation_backward_kernel(Activation kind, T* din, const T* dout, const T* in,
                                           int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    store(din, i, act_derivative(kind, load(in, i)) * load(dout, i));
}

// out[t, i] = silu(g) * u with g = gate_up[t, i], u = gate_up[t, F + i]; n = T*F.
template <typename T>
__global__ void swiglu_forward_kernel(T* out, const T* gate_up, int64_t n, int64_t F) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = k / F, i = k % F;
    const float g = load(gate_up, t * 2 * F + i), u = load(gate_up, t * 2 * F + F + i);
    const float sig = 1.0f / (1.0f + expf(-g));
    store(out, k, g * sig * u);
  }
}

// d gate = dout * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))); d up = dout * silu(g).
template <typename T>
__global__ void swiglu_backward_kernel(T* dgate_up, const T* dout, const T* gate_up, int64_t n,
                                       int64_t F) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = k / F, i = k % F;
    const float g = load(gate_up, t * 2 * F + i), u = load(gate_up, t * 2 * F + F + i);
    const float d = load(dout, k);
    const float sig = 1.0f / (1.0f + expf(-g));
    store(dgate_up, t * 2 * F + F + i, d * g * sig);
    store(dgate_up, t * 2 * F + i, d * u * sig * (1.0f + g * (1.0f - sig)));
  }
}

void check_elementwise(Activation kind, const char* op, const Tensor& a, const Tensor& b,
                       const Tensor& c) {
  if (kind == Activation::SwiGlu)
    fail("internal error: ", op, ": swiglu is not an element-wise activation");
  for (const Tensor* t : {&a, &b, &c}) {
    cuda::expect_device(*t, op, "operand");
    cuda::expect_same_dtype(*t, a, op);
    if (!(t->shape == a.shape))
      fail("internal error: ", op, ": shapes ", t->shape.to_string(), " and ",
           a.shape.to_string(), " differ");
  }
}

}  // namespace

void CudaBackend::activation_forward(Activation kind, const Tensor& out, const Tensor& in) {
  check_elementwise(kind, "activation_forward", in, out, out);
  const int64_t n = in.numel();
  if (n == 0) return;
  cuda::dispatch_act(in.dtype, "activation_forward", [&](auto tag) {
    using F = typename decltype(tag)::type;
    activation_forward_kernel<F><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        kind, static_cast<F*>(out.data), static_cast<const F*>(in.data), n);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "activation_forward_kernel");
  });
}

void CudaBackend::activation_backward(Activation kind, const Tensor& din, const Tensor& dout,
                                      const Tensor& in) {
  check_elementwise(kind, "activation_backward", in, din, dout);
  const int64_t n = in.numel();
  if (n == 0) return;
  cuda::dispatch_act(in.dtype, "activation_backward", [&](auto tag) {
    using F = typename decltype(tag)::type;
    activation_backward_kernel<F><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        kind, static_cast<F*>(din.data), static_cast<const F*>(dout.data),
        static_cast<const F*>(in.data), n);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "activation_backward_kernel");
  });
}

void CudaBackend::swiglu_forward(const Tensor& out, const Tensor& gate_up) {
  cuda::expect_device(out, "swiglu_forward", "out");
  cuda::expect_device(gate_up, "swiglu_forward", "gate_up");
  cuda::expect_same_dtype(out, gate_up, "swiglu_forward");
  const int64_t T = out.rows(), F = out.cols(), n = out.numel();
  SPT_ASSERT(gate_up.rows() == T && gate_up.cols() == 2 * F);
  if (n == 0) return;
  cuda::dispatch_act(out.dtype, "swiglu_forward", [&](auto tag) {
    using E = typename decltype(tag)::type;
    swiglu_forward_kernel<E><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        static_cast<E*>(out.data), static_cast<const E*>(gate_up.data), n, F);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "swiglu_forward_kernel");
  });
}

void CudaBackend::swiglu_backward(const Tensor& dgate_up, const Tensor& dout,
                                  const Tensor& gate_up) {
  cuda::expect_device(dgate_up, "swiglu_backward", "dgate_up");
  cuda::expect_device(dout, "swiglu_backward", "dout");
  cuda::expect_device(gate_up, "swiglu_backward", "gate_up");
  cuda::expect_same_dtype(dout, gate_up, "swiglu_backward");
  cuda::expect_same_dtype(dout, dgate_up, "swiglu_backward");
  const int64_t T = dout.rows(), F = dout.cols(), n = dout.numel();
  SPT_ASSERT(gate_up.rows() == T && gate_up.cols() == 2 * F && dgate_up.shape == gate_up.shape);
  if (n == 0) return;
  cuda::dispatch_act(dout.dtype, "swiglu_backward", [&](auto tag) {
    using E = typename decltype(tag)::type;
    swiglu_backward_kernel<E><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        static_cast<E*>(dgate_up.data), static_cast<const E*>(dout.data),
        static_cast<const E*>(gate_up.data), n, F);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "swiglu_backward_kernel");
  });
}

}  // namespace sptrain
