// LayerNorm and RMSNorm over the last dimension, forward and backward side by side.
// Statistics are accumulated in double whatever T is.
#include <cmath>

#include "dispatch.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"

namespace sptrain {

using cpu::dispatch_float;

void CpuBackend::layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  const int64_t T = x.rows(), C = x.cols();
  dispatch_float(x.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* px = x.ptr<F>();
    const F* pw = w.ptr<F>();
    const F* pb = b.empty() ? nullptr : b.ptr<F>();
    F* po = out.ptr<F>();
    F* pm = mean.ptr<F>();
    F* pr = rstd.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * C))
    for (int64_t t = 0; t < T; ++t) {
      const F* xr = px + t * C;
      double m = 0;
      for (int64_t i = 0; i < C; ++i) m += xr[i];
      m /= double(C);
      double v = 0;
      for (int64_t i = 0; i < C; ++i) v += (xr[i] - m) * (xr[i] - m);
      v /= double(C);
      const double s = 1.0 / std::sqrt(v + double(eps));
      F* o = po + t * C;
      for (int64_t i = 0; i < C; ++i)
        o[i] = F((xr[i] - m) * s) * pw[i] + (pb ? pb[i] : F(0));
      pm[t] = F(m);
      pr[t] = F(s);
    }
  });
}

// dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w.
void CpuBackend::layernorm_backward(const Tensor& dx, const Tensor& dout, const Tensor& x,
                                    const Tensor& mean, const Tensor& rstd, const Tensor& w) {
  const int64_t T = x.rows(), C = x.cols();
  dispatch_float(x.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* px = x.ptr<F>();
    const F* pd = dout.ptr<F>();
    const F* pw = w.ptr<F>();
    const F* pm = mean.ptr<F>();
    const F* pr = rstd.ptr<F>();
    F* pdx = dx.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * C))
    for (int64_t t = 0; t < T; ++t) {
      const F* xr = px + t * C;
      const F* dr = pd + t * C;
      const double m = pm[t], s = pr[t];
      double sum_d = 0, sum_dx = 0;
      for (int64_t i = 0; i < C; ++i) {
        const double dn = double(dr[i]) * pw[i];
        sum_d += dn;
        sum_dx += dn * (xr[i] - m) * s;
      }
      sum_d /= double(C);
      sum_dx /= double(C);
      F* o = pdx + t * C;
      for (int64_t i = 0; i < C; ++i) {
        const double dn = double(dr[i]) * pw[i];
        const double xhat = (xr[i] - m) * s;
        o[i] += F((dn - sum_d - xhat * sum_dx) * s);
      }
    }
  });
}

void CpuBackend::rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x,
                                 const Tensor& w, float eps) {
  const int64_t T = x.rows(), C = x.cols();
  dispatch_float(x.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* px = x.ptr<F>();
    const F* pw = w.ptr<F>();
    F* po = out.ptr<F>();
    F* pr = rstd.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * C))
    for (int64_t t = 0; t < T; ++t) {
      const F* xr = px + t * C;
      double ss = 0;
      for (int64_t i = 0; i < C; ++i) ss += double(xr[i]) * xr[i];
      const F s = F(1.0 / std::sqrt(ss / double(C) + double(eps)));
      F* o = po + t * C;
      for (int64_t i = 0; i < C; ++i) o[i] = xr[i] * s * pw[i];
      pr[t] = s;
    }
  });
}

// dx += rstd * (dxhat - xhat * mean(dxhat * xhat)), dxhat = dout * w, xhat = x * rstd.
void CpuBackend::rmsnorm_backward(const Tensor& dx, const Tensor& dout, const Tensor& x,
                                  const Tensor& rstd, const Tensor& w) {
  const int64_t T = x.rows(), C = x.cols();
  dispatch_float(x.dtype, [&](auto tag) {
    using F = decltype(tag);
    const F* px = x.ptr<F>();
    const F* pd = dout.ptr<F>();
    const F* pw = w.ptr<F>();
    const F* pr = rstd.ptr<F>();
    F* pdx = dx.ptr<F>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(T * C))
    for (int64_t t = 0; t < T; ++t) {
      const F* xr = px + t * C;
      const F* dr = pd + t * C;
      const double s = pr[t];
      double dot = 0;
      for (int64_t i = 0; i < C; ++i) dot += double(dr[i]) * pw[i] * xr[i] * s;
      dot /= double(C);
      F* o = pdx + t * C;
      for (int64_t i = 0; i < C; ++i) {
        const double xhat = xr[i] * s;
        o[i] += F((double(dr[i]) * pw[i] - xhat * dot) * s);
      }
    }
  });
}

}  // namespace sptrain
