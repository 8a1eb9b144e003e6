// Element-wise activations, forward and backward side by side.
#include <cmath>

#include "dispatch.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"

namespace sptrain {

using cpu::dispatch_float;

namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2/pi)
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;   // 1/sqrt(2 pi)

template <typename F>
F act_forward(Activation kind, F x) {
  switch (kind) {
    case Activation::Gelu: return F(0.5) * x * (F(1) + std::erf(x * F(kInvSqrt2)));
    case Activation::GeluTanh: {
      const F u = F(kSqrt2OverPi) * (x + F(0.044715) * x * x * x);
      return F(0.5) * x * (F(1) + std::tanh(u));
    }
    case Activation::Relu: return x > F(0) ? x : F(0);
    case Activation::SwiGlu: break;
  }
  fail("internal error: swiglu is not an element-wise activation");
}

template <typename F>
F act_derivative(Activation kind, F x) {
  switch (kind) {
    case Activation::Gelu:
      return F(0.5) * (F(1) + std::erf(x * F(kInvSqrt2))) + x * F(kInvSqrt2Pi) * std::exp(F(-0.5) * x * x);
    case Activation::GeluTanh: {
      const F u = F(kSqrt2OverPi) * (x + F(0.044715) * x * x * x);
      const F th = std::tanh(u);
      const F du = F(kSqrt2OverPi) * (F(1) + F(3 * 0.044715) * x * x);
      return F(0.5) * (F(1) + th) + F(0.5) * x * (F(1) - th * th) * du;
    }
    case Activation::Relu: return x > F(0) ? F(1) : F(0);
    case Activation::SwiGlu: break;
  }
  fail("internal error: swiglu is not an element-wise activation");
}

}  // namespace

void CpuBackend::activation_forward(Activation kind, const Tensor& out, const Tensor& in) {
  cpu::check_same_shape(out, in, "activation_forward");
  const int64_t n = in.numel();
  dispatch_float(in.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* x = in.ptr<F>();
    F* y = out.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(n))
    for (int64_t i = 0; i < n; ++i) y[i] = act_forward(kind, x[i]);
  });
}

void CpuBackend::activation_backward(Activation kind, const Tensor& din, const Tensor& dout,
                                     const Tensor& in) {
  cpu::check_same_shape(din, in, "activation_backward");
  const int64_t n = in.numel();
  dispatch_float(in.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* x = in.ptr<F>();
    const F* dy = dout.ptr<F>();
    F* dx = din.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(n))
    for (int64_t i = 0; i < n; ++i) dx[i] = act_derivative(kind, x[i]) * dy[i];
  });
}

// out = silu(gate) * up, silu(g) = g * sigmoid(g).
void CpuBackend::swiglu_forward(const Tensor& out, const Tensor& gate_up) {
  const int64_t T = out.rows(), Fn = out.cols();
  SPT_ASSERT(gate_up.rows() == T && gate_up.cols() == 2 * Fn);
  dispatch_float(out.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* gu = gate_up.ptr<F>();
    F* y = out.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * Fn))
    for (int64_t t = 0; t < T; ++t) {
      const F* g = gu + t * 2 * Fn;
      const F* u = g + Fn;
      F* o = y + t * Fn;
#pragma omp simd
      for (int64_t i = 0; i < Fn; ++i) {
        const F sig = F(1) / (F(1) + std::exp(-g[i]));
        o[i] = g[i] * sig * u[i];
      }
    }
  });
}

// d gate = dout * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))); d up = dout * silu(g).
void CpuBackend::swiglu_backward(const Tensor& dgate_up, const Tensor& dout,
                                 const Tensor& gate_up) {
  const int64_t T = dout.rows(), Fn = dout.cols();
  dispatch_float(dout.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* gu = gate_up.ptr<F>();
    const F* dy = dout.ptr<F>();
    F* dgu = dgate_up.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * Fn))
    for (int64_t t = 0; t < T; ++t) {
      const F* g = gu + t * 2 * Fn;
      const F* u = g + Fn;
      const F* d = dy + t * Fn;
      F* dg = dgu + t * 2 * Fn;
      F* du = dg + Fn;
#pragma omp simd
      for (int64_t i = 0; i < Fn; ++i) {
        const F sig = F(1) / (F(1) + std::exp(-g[i]));
        const F silu = g[i] * sig;
        du[i] = d[i] * silu;
        dg[i] = d[i] * u[i] * sig * (F(1) + g[i] * (F(1) - sig));
      }
    }
  });
}

}  // namespace sptrain
