#pragma once
// Internal to the CUDA back end: the state behind CudaBackend, error checks
// that name the call, rank and device, dtype dispatch, element loads and
// stores in f32, and the warp/block reductions the kernels share.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "sptrain/backend/cuda/cuda_backend.hpp"

namespace sptrain::cuda {

using bf16 = __nv_bfloat16;

// Who is reporting: every CUDA error message names the rank and the device.
struct Where {
  int rank = 0;
  int device = 0;
};

[[noreturn]] void fail_call(const Where& where, const char* call, const std::string& what,
                            const char* file, int line);

inline void check_cuda(cudaError_t e, const char* call, const Where& where, const char* file,
                       int line) {
  if (e != cudaSuccess)
    fail_call(where, call, std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e), file,
              line);
}

inline void check_cublaslt(cublasStatus_t s, const char* call, const Where& where,
                           const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail_call(where, call, std::string("cuBLASLt status ") + std::to_string(int(s)) + " (" +
                               cublasLtGetStatusString(s) + ")",
              file, line);
}

// Whether SPTRAIN_CUDA_SYNC=1 asks for a synchronisation after every launch.
bool sync_after_launch();

inline void check_launch(const Where& where, cudaStream_t stream, const char* kernel,
                         const char* file, int line) {
  check_cuda(cudaGetLastError(), kernel, where, file, line);
  if (sync_after_launch()) check_cuda(cudaStreamSynchronize(stream), kernel, where, file, line);
}

}  // namespace sptrain::cuda

// A CUDA runtime call that must succeed; `where` is a cuda::Where.
#define SPT_CUDA(where, call) ::sptrain::cuda::check_cuda((call), #call, (where), __FILE__, __LINE__)
// A cuBLASLt call that must succeed.
#define SPT_CUBLASLT(where, call) \
  ::sptrain::cuda::check_cublaslt((call), #call, (where), __FILE__, __LINE__)
// After a kernel launch on `stream`: a bad launch configuration is reported
// here, naming the kernel. Faults inside a kernel surface at the next
// synchronising call, which names itself; with SPTRAIN_CUDA_SYNC=1 in the
// environment every launch is followed by a stream synchronisation, so the
// failing kernel is named (slow; for debugging).
#define SPT_CUDA_LAUNCHED(where, stream, kernel_name) \
  ::sptrain::cuda::check_launch((where), (stream), "kernel " kernel_name, __FILE__, __LINE__)

namespace sptrain::cuda {

// ---- host-side dispatch over the compute dtypes ----

template <typename T>
struct TypeTag {
  using type = T;
};

// Runs f(TypeTag<float>) or f(TypeTag<bf16>) for the activation dtype.
template <typename F>
void dispatch_act(DType t, const char* op, F&& f) {
  if (t == DType::F32) {
    f(TypeTag<float>{});
  } else if (t == DType::BF16) {
    f(TypeTag<bf16>{});
  } else {
    fail("CUDA back end: ", op, ": dtype ", dtype_name(t),
         " is not supported for compute (use bf16 or f32)");
  }
}

// Runs f for any floating dtype (conversions and fills).
template <typename F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f(TypeTag<float>{}); return;
    case DType::F64: f(TypeTag<double>{}); return;
    case DType::BF16: f(TypeTag<bf16>{}); return;
    case DType::F16: f(TypeTag<__half>{}); return;
    default: fail("CUDA back end: ", op, ": dtype ", dtype_name(t), " is not a floating type");
  }
}

inline void expect_device(const Tensor& t, const char* op, const char* what) {
  if (!t.empty() && t.device != Device::CUDA)
    fail("internal error: CUDA back end: ", op, ": tensor '", what, "' is not on the GPU");
}
inline void expect_dtype(const Tensor& t, DType dt, const char* op, const char* what) {
  if (t.dtype != dt)
    fail("internal error: CUDA back end: ", op, ": tensor '", what, "' is ", dtype_name(t.dtype),
         ", expected ", dtype_name(dt));
}
inline void expect_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype != b.dtype)
    fail("internal error: CUDA back end: ", op, ": dtypes ", dtype_name(a.dtype), " and ",
         dtype_name(b.dtype), " differ");
}

// ---- launch geometry ----

constexpr int kThreads = 256;  // element-wise kernels and row reductions

// Blocks for a grid-stride loop over n elements (n > 0).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(std::min<int64_t>(blocks, int64_t(1) << 20));
}

// ---- element access in f32 ----

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
// Round to nearest even, as the host's f32_to_bf16.
__device__ __forceinline__ void store(bf16* p, int64_t i, float v) { p[i] = __float2bfloat16(v); }

// ---- reductions (every thread of the block must call; blockDim.x a multiple of 32) ----

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum (or max) over the block; every thread gets the result. `scratch` holds
// 33 values in shared memory; slot 32 carries the result, so slots 0..31 can
// be refilled by the next call once everyone has passed its first barrier.
template <typename V>
__device__ __forceinline__ V block_sum(V v, V* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // everyone has read the previous call's result
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    V t = lane < warps ? scratch[lane] : V(0);
    t = warp_sum(t);
    if (lane == 0) scratch[32] = t;
  }
  __syncthreads();
  return scratch[32];
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float t = lane < warps ? scratch[lane] : -INFINITY;
    t = warp_max(t);
    if (lane == 0) scratch[32] = t;
  }
  __syncthreads();
  return scratch[32];
}

// Sequence b holding packed row t: the last b with offsets[b] <= t
// (offsets[0] = 0 <= t < offsets[B] = T).
__device__ __forceinline__ int find_sequence(const int32_t* offsets, int num_seqs, int64_t t) {
  int lo = 0, hi = num_seqs;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (offsets[mid] <= t) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// ---- cuBLASLt plans, cached per shape ----

struct MatmulKey {
  int64_t m = 0, n = 0, k = 0;
  bool trans_b = false;
  DType ab = DType::BF16, c = DType::BF16;
  uint32_t align_a = 0, align_b = 0, align_c = 0;  // pointer alignment in bytes (<= 256)
  bool operator<(const MatmulKey& o) const {
    auto tie = [](const MatmulKey& x) {
      return std::make_tuple(x.m, x.n, x.k, x.trans_b, int(x.ab), int(x.c), x.align_a, x.align_b,
                             x.align_c);
    };
    return tie(*this) < tie(o);
  }
};

// Descriptors and the heuristic's algorithm for one MatmulKey, or the
// fallback kernel when cuBLASLt has no algorithm for the shape.
struct MatmulPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool fallback = false;
  MatmulPlan() = default;
  MatmulPlan(const MatmulPlan&) = delete;
  MatmulPlan& operator=(const MatmulPlan&) = delete;
  ~MatmulPlan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

}  // namespace sptrain::cuda

namespace sptrain {

struct CudaBackend::Impl {
  cuda::Where where;
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;  // cuBLASLt workspace
  size_t workspace_bytes = size_t(32) << 20;
  std::map<cuda::MatmulKey, std::unique_ptr<cuda::MatmulPlan>> plans;
  int attention_keys = 0;        // most keys per query reserve_attention prepared for
  size_t shared_optin = 0;       // most shared memory a block may opt in to
  std::string device_name;
  int cc_major = 0, cc_minor = 0;
  // Pinned host memory that copy_from_host_async copies through; `staged`
  // bytes of it are in use by copies the device may not have made yet.
  void* staging = nullptr;
  size_t staging_bytes = 0, staged = 0;
  // Pinned memory small copies to the host land in first (a step's scalars):
  // a copy into pageable memory would make the runtime wait a second time.
  static constexpr size_t kReadbackBytes = 4096;
  void* readback = nullptr;
  int64_t host_waits = 0;
  // The host waits for the stream: every wait goes through here (counted, and
  // the staging space is free again afterwards).
  void wait();

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();  // frees everything above, ignoring errors (destructors must not throw)
};

}  // namespace sptrain
