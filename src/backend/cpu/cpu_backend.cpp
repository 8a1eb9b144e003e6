// CpuBackend: memory, copies and dense products. The other ops live in one
// file per concern beside this one (norm, activation, attention, embedding, loss).
#include "sptrain/backend/cpu/cpu_backend.hpp"

#include <omp.h>

#include <cstdlib>
#include <cstring>

#include "dispatch.hpp"
#include "sptrain/backend/cpu/blas_kernel.hpp"

namespace sptrain {

using cpu::dispatch_float;

CpuBackend::CpuBackend(int threads) : threads_(threads) {
  if (threads_ > 0) {
    omp_set_num_threads(threads_);
    openblas_set_num_threads(threads_);
  } else {
    threads_ = omp_get_max_threads();
  }
  scratch_.resize(size_t(threads_ > 0 ? threads_ : 1));
  prefix_grad_.resize(scratch_.size());
}

std::string CpuBackend::name() const {
  return str("cpu (", threads_, " threads, ", blas_description(), ")");
}

namespace {
void free_aligned(void* p) { std::free(p); }
}  // namespace

Buffer CpuBackend::allocate(DType dtype, Shape shape) {
  size_t bytes = size_t(shape.numel()) * dtype_size(dtype);
  bytes_allocated_ += int64_t(bytes);
  size_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
  void* p = nullptr;
  if (rounded > 0) {
    p = std::aligned_alloc(64, rounded);
    if (!p) fail("out of host memory allocating ", bytes, " bytes for a ", shape.to_string(), " tensor");
    std::memset(p, 0, rounded);
  }
  return Buffer(Tensor{p, dtype, Device::CPU, shape}, free_aligned);
}

void CpuBackend::copy_from_host(const Tensor& dst, const void* src) {
  if (dst.bytes()) std::memcpy(dst.data, src, dst.bytes());
}

void CpuBackend::copy_to_host(void* dst, const Tensor& src) {
  if (src.bytes()) std::memcpy(dst, src.data, src.bytes());
}

namespace {
double load(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::F32: return static_cast<const float*>(t.data)[i];
    case DType::F64: return static_cast<const double*>(t.data)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(t.data)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(t.data)[i]);
    default: fail("convert: unsupported dtype ", dtype_name(t.dtype));
  }
}
void store(const Tensor& t, int64_t i, double v) {
  switch (t.dtype) {
    case DType::F32: static_cast<float*>(t.data)[i] = float(v); break;
    case DType::F64: static_cast<double*>(t.data)[i] = v; break;
    case DType::BF16: static_cast<uint16_t*>(t.data)[i] = f32_to_bf16(float(v)); break;
    case DType::F16: static_cast<uint16_t*>(t.data)[i] = f32_to_f16(float(v)); break;
    default: fail("convert: unsupported dtype ", dtype_name(t.dtype));
  }
}
}  // namespace

void CpuBackend::convert(const Tensor& dst, const Tensor& src) {
  SPT_ASSERT(dst.numel() == src.numel());
  if (dst.dtype == src.dtype) {
    if (dst.data != src.data) std::memcpy(dst.data, src.data, src.bytes());
    return;
  }
  const int64_t n = src.numel();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(n))
  for (int64_t i = 0; i < n; ++i) store(dst, i, load(src, i));
}

void CpuBackend::fill(const Tensor& t, double value) {
  const int64_t n = t.numel();
  if (value == 0.0) {
    std::memset(t.data, 0, t.bytes());
    return;
  }
  if (t.dtype == DType::I32) {
    auto* p = t.ptr<int32_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = int32_t(value);
    return;
  }
  for (int64_t i = 0; i < n; ++i) store(t, i, value);
}

// ---- dense ----

void CpuBackend::matmul(const Tensor& c, const Tensor& a, const Tensor& b, bool trans_b,
                        bool accumulate) {
  const int64_t M = a.rows(), K = a.cols();
  const int64_t N = trans_b ? b.rows() : b.cols();
  if ((trans_b ? b.cols() : b.rows()) != K || c.rows() != M || c.cols() != N)
    fail("internal error: matmul shapes a", a.shape.to_string(), " b", b.shape.to_string(),
         trans_b ? "ᵀ" : "", " c", c.shape.to_string());
  if (M == 0 || N == 0) return;
  dispatch_float(c.dtype, [&](auto tag) {
    using T = decltype(tag);
    cpu::gemm(false, trans_b, int(M), int(N), int(K), T(1), a.ptr<T>(), int(K), b.ptr<T>(),
              int(b.cols()), accumulate ? T(1) : T(0), c.ptr<T>(), int(N));
  });
}

void CpuBackend::add_bias(const Tensor& x, const Tensor& bias) {
  const int64_t R = x.rows(), N = x.cols();
  SPT_ASSERT(bias.numel() == N);
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    T* px = x.ptr<T>();
    const T* pb = bias.ptr<T>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(R * N))
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < N; ++j) px[r * N + j] += pb[j];
  });
}

void CpuBackend::add(const Tensor& y, const Tensor& x) {
  SPT_ASSERT(y.numel() == x.numel());
  const int64_t n = y.numel();
  dispatch_float(y.dtype, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.ptr<T>();
    const T* px = x.ptr<T>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(n))
    for (int64_t i = 0; i < n; ++i) py[i] += px[i];
  });
}

}  // namespace sptrain
