// CudaBackend: device selection, stream and cuBLASLt setup, memory, copies,
// conversions and the element-wise dense ops. The other ops live in one file
// per concern beside this one (matmul, norm, activation, attention,
// embedding, loss), as in the CPU back end.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "internal.cuh"

namespace sptrain {

namespace cuda {

void fail_call(const Where& where, const char* call, const std::string& what, const char* file,
               int line) {
  fail("CUDA back end, rank ", where.rank, ", device ", where.device, ": ", call, " failed: ",
       what, " (", file, ":", line, ")");
}

bool sync_after_launch() {
  static const bool sync = [] {
    const char* v = std::getenv("SPTRAIN_CUDA_SYNC");
    return v != nullptr && std::string(v) == "1";
  }();
  return sync;
}

}  // namespace cuda

using cuda::bf16;
using cuda::grid_for;
using cuda::kThreads;
using cuda::load;
using cuda::store;

// ---- devices ----

bool cuda_device_available(std::string* reason) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (reason)
      *reason = str("cudaGetDeviceCount failed: ", cudaGetErrorName(e), " (",
                    cudaGetErrorString(e), ")");
    cudaGetLastError();  // clear it, so later calls do not report it again
    return false;
  }
  if (n == 0) {
    if (reason) *reason = "cudaGetDeviceCount reports no CUDA device";
    return false;
  }
  return true;
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

CudaBackend::Impl::~Impl() {
  if (stream) cudaStreamSynchronize(stream);
  plans.clear();
  if (staging) cudaFreeHost(staging);
  if (readback) cudaFreeHost(readback);
  if (workspace) cudaFree(workspace);
  if (lt) cublasLtDestroy(lt);
  if (stream) cudaStreamDestroy(stream);
}

CudaBackend::CudaBackend(int device, int rank) : impl_(std::make_unique<Impl>()) {
  impl_->where = cuda::Where{rank, device};
  std::string why;
  if (!cuda_device_available(&why))
    fail("rank ", rank, ": cannot create the CUDA back end on device ", device,
         ": no usable GPU (", why, ")");
  const int count = cuda_device_count();
  if (device < 0 || device >= count)
    fail("rank ", rank, ": cannot create the CUDA back end on device ", device, ": ", count,
         " device(s) visible");
  Impl& s = *impl_;
  SPT_CUDA(s.where, cudaSetDevice(device));
  cudaDeviceProp prop{};
  SPT_CUDA(s.where, cudaGetDeviceProperties(&prop, device));
  s.device_name = prop.name;
  s.cc_major = prop.major;
  s.cc_minor = prop.minor;
  s.shared_optin = prop.sharedMemPerBlockOptin;
  SPT_CUDA(s.where, cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  SPT_CUBLASLT(s.where, cublasLtCreate(&s.lt));
  SPT_CUDA(s.where, cudaMalloc(&s.workspace, s.workspace_bytes));
  SPT_CUDA(s.where, cudaHostAlloc(&s.readback, Impl::kReadbackBytes, cudaHostAllocDefault));
}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::name() const {
  return str("cuda (device ", impl_->where.device, ": ", impl_->device_name, ", sm_",
             impl_->cc_major, impl_->cc_minor, ", cuBLASLt ", cublasLtGetVersion(), ")");
}
DeviceStats CudaBackend::device_stats() const {
  DeviceStats d;
  d.name = impl_->device_name;
  d.cc_major = impl_->cc_major;
  d.cc_minor = impl_->cc_minor;
  size_t free_b = 0, total_b = 0;
  SPT_CUDA(impl_->where, cudaMemGetInfo(&free_b, &total_b));
  d.memory_used_mb = double(total_b - free_b) / (1 << 20);
  d.memory_total_mb = double(total_b) / (1 << 20);
  return d;
}
int CudaBackend::device_index() const { return impl_->where.device; }
int CudaBackend::rank() const { return impl_->where.rank; }
CUstream_st* CudaBackend::stream() const { return impl_->stream; }

std::unique_ptr<Backend> make_cuda_backend(int device, int rank) {
  std::string why;
  if (!cuda_device_available(&why))
    fail("rank ", rank, ": backend: cuda, but no usable GPU is visible (", why, ")");
  return std::make_unique<CudaBackend>(device % cuda_device_count(), rank);
}

// ---- memory ----

namespace {
void free_device(void* p) { cudaFree(p); }  // a deleter cannot throw; errors are moot at exit
}  // namespace

Buffer CudaBackend::allocate(DType dtype, Shape shape) {
  const size_t bytes = size_t(shape.numel()) * dtype_size(dtype);
  void* p = nullptr;
  if (bytes > 0) {
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      fail("rank ", impl_->where.rank, ", device ", impl_->where.device,
           ": out of GPU memory allocating ", bytes, " bytes for a ", dtype_name(dtype), " ",
           shape.to_string(), " tensor (", free_b >> 20, " MiB free of ", total_b >> 20,
           " MiB): ", cudaGetErrorString(e));
    }
    SPT_CUDA(impl_->where, cudaMemsetAsync(p, 0, bytes, impl_->stream));
  }
  return Buffer(Tensor{p, dtype, Device::CUDA, shape}, free_device);
}

void CudaBackend::Impl::wait() {
  SPT_CUDA(where, cudaStreamSynchronize(stream));
  ++host_waits;
  staged = 0;
}

void CudaBackend::copy_from_host(const Tensor& dst, const void* src) {
  cuda::expect_device(dst, "copy_from_host", "dst");
  if (dst.bytes() == 0) return;
  SPT_CUDA(impl_->where, cudaMemcpyAsync(dst.data, src, dst.bytes(), cudaMemcpyHostToDevice,
                                         impl_->stream));
  impl_->wait();
}

void CudaBackend::copy_to_host(void* dst, const Tensor& src) {
  cuda::expect_device(src, "copy_to_host", "src");
  const size_t n = src.bytes();
  if (n == 0) return;
  Impl& s = *impl_;
  // Small copies through pinned memory: one wait (the stream's), not two.
  const bool small = n <= Impl::kReadbackBytes;
  SPT_CUDA(s.where, cudaMemcpyAsync(small ? s.readback : dst, src.data, n, cudaMemcpyDeviceToHost,
                                    s.stream));
  s.wait();
  if (small) std::memcpy(dst, s.readback, n);
}

namespace {
constexpr size_t kStagingAlign = 256;
size_t staging_round(size_t n) { return (n + kStagingAlign - 1) / kStagingAlign * kStagingAlign; }
}  // namespace

void CudaBackend::reserve_staging(int64_t bytes, int64_t copies) {
  Impl& s = *impl_;
  // Each copy starts on an aligned address: up to one alignment more per copy.
  const size_t want = s.staging_bytes + staging_round(size_t(std::max<int64_t>(bytes, 0))) +
                      size_t(std::max<int64_t>(copies, 0)) * kStagingAlign;
  if (s.staged > 0) s.wait();  // the old space may still be read by pending copies
  void* p = nullptr;
  SPT_CUDA(s.where, cudaHostAlloc(&p, want, cudaHostAllocDefault));
  if (s.staging) cudaFreeHost(s.staging);
  s.staging = p;
  s.staging_bytes = want;
}

void CudaBackend::copy_from_host_async(const Tensor& dst, const void* src) {
  cuda::expect_device(dst, "copy_from_host_async", "dst");
  Impl& s = *impl_;
  const size_t n = dst.bytes();
  if (n == 0) return;
  if (s.staged + staging_round(n) > s.staging_bytes) {
    // Out of reserved staging space: wait for the pending copies, reuse it.
    s.wait();
    if (staging_round(n) > s.staging_bytes) {
      copy_from_host(dst, src);  // larger than everything reserved: a plain copy
      return;
    }
  }
  char* stage = static_cast<char*>(s.staging) + s.staged;
  std::memcpy(stage, src, n);
  SPT_CUDA(s.where, cudaMemcpyAsync(dst.data, stage, n, cudaMemcpyHostToDevice, s.stream));
  s.staged += staging_round(n);
}

int64_t CudaBackend::host_waits() const { return impl_->host_waits; }

void CudaBackend::synchronize() { impl_->wait(); }

// ---- conversions and fills ----

namespace {

// Through f32 for the 16-bit types, as the CPU back end's convert does
// (double -> float -> bf16), so both round identically.
__device__ __forceinline__ double to_double(float v) { return double(v); }
__device__ __forceinline__ double to_double(double v) { return v; }
__device__ __forceinline__ double to_double(bf16 v) { return double(__bfloat162float(v)); }
__device__ __forceinline__ double to_double(__half v) { return double(__half2float(v)); }

template <typename T>
__device__ __forceinline__ T from_double(double v);
template <>
__device__ __forceinline__ float from_double<float>(double v) { return float(v); }
template <>
__device__ __forceinline__ double from_double<double>(double v) { return v; }
template <>
__device__ __forceinline__ bf16 from_double<bf16>(double v) { return __float2bfloat16(float(v)); }
template <>
__device__ __forceinline__ __half from_double<__half>(double v) { return __float2half(float(v)); }

template <typename D, typename S>
__global__ void convert_kernel(D* dst, const S* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_double<D>(to_double(src[i]));
}

template <typename T>
__global__ void fill_kernel(T* p, int64_t n, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    p[i] = value;
}

template <typename T>
__global__ void add_kernel(T* y, const T* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    store(y, i, load(y, i) + load(x, i));
}

// x[r, j] += bias[j] over R*N elements.
template <typename T>
__global__ void add_bias_kernel(T* x, const T* bias, int64_t n, int64_t cols) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    store(x, i, load(x, i) + load(bias, i % cols));
}

}  // namespace

void CudaBackend::convert(const Tensor& dst, const Tensor& src) {
  cuda::expect_device(dst, "convert", "dst");
  cuda::expect_device(src, "convert", "src");
  if (dst.numel() != src.numel())
    fail("internal error: convert: ", dst.shape.to_string(), " and ", src.shape.to_string(),
         " differ in size");
  const int64_t n = src.numel();
  if (n == 0) return;
  if (dst.dtype == src.dtype) {
    if (dst.data != src.data)
      SPT_CUDA(impl_->where, cudaMemcpyAsync(dst.data, src.data, src.bytes(),
                                             cudaMemcpyDeviceToDevice, impl_->stream));
    return;
  }
  cuda::dispatch_float(dst.dtype, "convert", [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    cuda::dispatch_float(src.dtype, "convert", [&](auto stag) {
      using S = typename decltype(stag)::type;
      convert_kernel<D, S><<<grid_for(n), kThreads, 0, impl_->stream>>>(
          static_cast<D*>(dst.data), static_cast<const S*>(src.data), n);
      SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "convert_kernel");
    });
  });
}

void CudaBackend::fill(const Tensor& t, double value) {
  cuda::expect_device(t, "fill", "t");
  const int64_t n = t.numel();
  if (n == 0) return;
  if (value == 0.0) {  // all-zero bits in every dtype
    SPT_CUDA(impl_->where, cudaMemsetAsync(t.data, 0, t.bytes(), impl_->stream));
    return;
  }
  auto launch = [&](auto* p, auto v) {
    using V = decltype(v);
    fill_kernel<V><<<grid_for(n), kThreads, 0, impl_->stream>>>(p, n, v);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "fill_kernel");
  };
  switch (t.dtype) {
    case DType::F32: launch(static_cast<float*>(t.data), float(value)); break;
    case DType::F64: launch(static_cast<double*>(t.data), value); break;
    case DType::BF16: launch(static_cast<bf16*>(t.data), __float2bfloat16(float(value))); break;
    case DType::F16: launch(static_cast<__half*>(t.data), __float2half(float(value))); break;
    case DType::I32: launch(static_cast<int32_t*>(t.data), int32_t(value)); break;
    case DType::I64: launch(static_cast<int64_t*>(t.data), int64_t(value)); break;
  }
}

// ---- element-wise dense ops ----

void CudaBackend::add(const Tensor& y, const Tensor& x) {
  cuda::expect_device(y, "add", "y");
  cuda::expect_device(x, "add", "x");
  cuda::expect_same_dtype(y, x, "add");
  SPT_ASSERT(y.numel() == x.numel());
  const int64_t n = y.numel();
  if (n == 0) return;
  cuda::dispatch_act(y.dtype, "add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    add_kernel<T><<<grid_for(n), kThreads, 0, impl_->stream>>>(static_cast<T*>(y.data),
                                                                static_cast<const T*>(x.data), n);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "add_kernel");
  });
}

void CudaBackend::add_bias(const Tensor& x, const Tensor& bias) {
  cuda::expect_device(x, "add_bias", "x");
  cuda::expect_device(bias, "add_bias", "bias");
  cuda::expect_same_dtype(x, bias, "add_bias");
  const int64_t N = x.cols(), n = x.numel();
  SPT_ASSERT(bias.numel() == N);
  if (n == 0) return;
  cuda::dispatch_act(x.dtype, "add_bias", [&](auto tag) {
    using T = typename decltype(tag)::type;
    add_bias_kernel<T><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        static_cast<T*>(x.data), static_cast<const T*>(bias.data), n, N);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "add_bias_kernel");
  });
}

}  // namespace sptrain
