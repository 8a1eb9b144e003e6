// The emulated CUDA runtime and cuBLASLt for run_emulated.sh: device memory
// is host memory (exact sizes, so AddressSanitizer sees out-of-bounds
// accesses), streams are immediate, and cublasLtMatmul is a plain
// column-major GEMM that rejects inconsistent layouts like the real one.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "emu.hpp"

namespace emu {

thread_local Ids ids;

namespace {

constexpr int kMaxThreads = 256;  // the largest block the back end launches
std::atomic<int64_t> waits{0};
std::mutex pinned_mutex;
std::map<const char*, size_t> pinned;  // cudaHostAlloc'ed ranges: start -> bytes

bool is_pinned(const void* p) {
  std::lock_guard<std::mutex> lock(pinned_mutex);
  const char* c = static_cast<const char*>(p);
  auto it = pinned.upper_bound(c);
  if (it == pinned.begin()) return false;
  --it;
  return c < it->first + it->second;
}
cudaError_t last_error = cudaSuccess;
std::map<const void*, int> max_dynamic_shared;  // from cudaFuncSetAttribute

struct LaunchState {
  std::unique_ptr<std::barrier<>> block_barrier;
  std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
  std::vector<double> warp_values;  // one slot per thread
  std::vector<unsigned char> shared;
};
LaunchState* current = nullptr;
thread_local int linear_id = 0;

// kMaxThreads persistent workers; worker w runs thread w of each block.
struct Pool {
  std::vector<std::thread> workers;
  std::barrier<> start{kMaxThreads + 1}, end{kMaxThreads + 1};
  const std::function<void()>* body = nullptr;
  dim3 bid, bdim, gdim;
  bool quit = false;
  Pool() {
    for (int w = 0; w < kMaxThreads; ++w)
      workers.emplace_back([this, w] {
        for (;;) {
          start.arrive_and_wait();
          if (quit) return;
          if (w < int(bdim.x)) {
            ids.tid = dim3(unsigned(w), 0, 0);
            ids.bid = bid;
            ids.bdim = bdim;
            ids.gdim = gdim;
            linear_id = w;
            (*body)();
          }
          end.arrive_and_wait();
        }
      });
  }
  ~Pool() {
    quit = true;
    start.arrive_and_wait();
    for (auto& t : workers) t.join();
  }
};
Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void syncthreads() { current->block_barrier->arrive_and_wait(); }

double shfl_xor_double(double v, int lane_mask) {
  const int lane = linear_id & 31, warp = linear_id >> 5;
  current->warp_values[size_t(linear_id)] = v;
  current->warp_barriers[size_t(warp)]->arrive_and_wait();
  const double r = current->warp_values[size_t(warp * 32 + (lane ^ lane_mask))];
  current->warp_barriers[size_t(warp)]->arrive_and_wait();  // nobody overwrites before all read
  return r;
}

void* dynamic_shared_ptr() { return current->shared.data(); }

void run_launch(dim3 grid, dim3 block, size_t shared, const void* kernel,
                const std::function<void()>& body) {
  // What the real runtime refuses (reported by the next cudaGetLastError).
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 ||
      block.x == 0 || block.y != 1 || block.z != 1 || block.x > 1024) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  auto attr = max_dynamic_shared.find(kernel);
  const size_t allowed = attr == max_dynamic_shared.end() ? 48 * 1024 : size_t(attr->second);
  if (shared > allowed) {
    last_error = cudaErrorInvalidValue;
    return;
  }
  if (block.x > unsigned(kMaxThreads) || block.x % 32 != 0) {
    std::fprintf(stderr, "emu: blocks of %u threads are not emulated\n", block.x);
    std::abort();
  }
  LaunchState st;
  st.block_barrier = std::make_unique<std::barrier<>>(int(block.x));
  for (unsigned w = 0; w < block.x / 32; ++w)
    st.warp_barriers.push_back(std::make_unique<std::barrier<>>(32));
  st.warp_values.assign(block.x, 0.0);
  current = &st;
  Pool& p = pool();
  p.body = &body;
  p.bdim = block;
  p.gdim = grid;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        p.bid = dim3(x, y, z);
        st.shared.assign(shared, 0xcd);  // garbage, as on a GPU
        p.start.arrive_and_wait();
        p.end.arrive_and_wait();
      }
  current = nullptr;
}

int64_t host_waits() { return waits.load(); }

}  // namespace emu

// ---- the CUDA runtime calls the back end makes ----
extern "C" {
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
  const cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    default: return "cudaError (emulated)";
  }
}
const char* cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::memset(p, 0, sizeof(*p));
  std::strcpy(p->name, "emulated GPU (CPU threads)");
  p->major = 9;
  p->minor = 0;
  p->sharedMemPerBlockOptin = 232448;  // as an H100
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  static int token;
  *s = reinterpret_cast<cudaStream_t>(&token);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  ++emu::waits;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
  ++emu::waits;
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t n, unsigned) {
  *p = std::malloc(n ? n : 1);
  if (!*p) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> lock(emu::pinned_mutex);
  emu::pinned[static_cast<const char*>(*p)] = n;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  {
    std::lock_guard<std::mutex> lock(emu::pinned_mutex);
    emu::pinned.erase(static_cast<const char*>(p));
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaMalloc(void** p, size_t n) {
  if (n > (size_t(16) << 30)) return cudaErrorMemoryAllocation;
  *p = std::malloc(n);
  if (!*p) return cudaErrorMemoryAllocation;
  std::memset(*p, 0xab, n);  // garbage, as fresh device memory
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  // The real runtime waits for a copy between the device and pageable host memory.
  const bool pageable = (kind == cudaMemcpyHostToDevice && !emu::is_pinned(s)) ||
                        (kind == cudaMemcpyDeviceToHost && !emu::is_pinned(d));
  if (pageable) ++emu::waits;
  std::memmove(d, s, n);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *free_bytes = *total = size_t(16) << 30;
  return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, const void*) {
  std::memset(a, 0, sizeof(*a));
  a->sharedSizeBytes = 9 * 1024;  // about the largest static use of the back end's kernels
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) emu::max_dynamic_shared[kernel] = value;
  return cudaSuccess;
}
}

// ---- cuBLASLt: column-major D = alpha op(A) op(B) + beta C, f32 accumulation ----
namespace {
struct Desc {
  int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
};
struct Layout {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};
float get(const void* p, cudaDataType_t t, int64_t i) {
  if (t == CUDA_R_32F) return static_cast<const float*>(p)[i];
  return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
}
void put(void* p, cudaDataType_t t, int64_t i, float v) {
  if (t == CUDA_R_32F) {
    static_cast<float*>(p)[i] = v;
  } else {
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(v);
  }
}
bool supported(cudaDataType_t t) { return t == CUDA_R_32F || t == CUDA_R_16BF; }
}  // namespace

extern "C" {
cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) {
  static int token;
  *h = reinterpret_cast<cublasLtHandle_t>(&token);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t) { return CUBLAS_STATUS_SUCCESS; }
size_t cublasLtGetVersion(void) { return 0; }
const char* cublasLtGetStatusString(cublasStatus_t) { return "emulated cuBLASLt status"; }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t c,
                                        cudaDataType_t s) {
  if (c != CUBLAS_COMPUTE_32F || s != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  *d = reinterpret_cast<cublasLtMatmulDesc_t>(new Desc);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  delete reinterpret_cast<Desc*>(d);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t a, const void* buf,
                                              size_t n) {
  auto* x = reinterpret_cast<Desc*>(d);
  if (n != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
  if (a == CUBLASLT_MATMUL_DESC_TRANSA) {
    std::memcpy(&x->transa, buf, 4);
  } else if (a == CUBLASLT_MATMUL_DESC_TRANSB) {
    std::memcpy(&x->transb, buf, 4);
  } else {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType t, uint64_t r,
                                          uint64_t c, int64_t ld) {
  if (!supported(t) || ld < int64_t(r)) return CUBLAS_STATUS_INVALID_VALUE;
  *l = reinterpret_cast<cublasLtMatrixLayout_t>(new Layout{t, r, c, ld});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  delete reinterpret_cast<Layout*>(l);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) {
  *p = new cublasLtMatmulPreferenceOpaque_t{};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete p;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t,
                                                    cublasLtMatmulPreferenceAttributes_t a,
                                                    const void*, size_t n) {
  const size_t want = a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES ? 8 : 4;
  return n == want ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
// Like a library of tensor-core kernels only: leading dimensions must be
// multiples of 16 bytes, or there is no algorithm (so that the back end's
// fallback kernel runs for the odd shapes and cuBLASLt's path for the rest).
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t,
                                              cublasLtMatrixLayout_t Ad, cublasLtMatrixLayout_t Bd,
                                              cublasLtMatrixLayout_t Cd, cublasLtMatrixLayout_t,
                                              cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t* r, int* found) {
  if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
  std::memset(r, 0, sizeof(*r));
  *found = 0;
  for (auto l : {Ad, Bd, Cd}) {
    const Layout& x = *reinterpret_cast<const Layout*>(l);
    if (x.ld * (x.type == CUDA_R_32F ? 4 : 2) % 16 != 0) return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  *found = 1;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t desc, const void* alpha,
                              const void* A, cublasLtMatrixLayout_t Ad, const void* B,
                              cublasLtMatrixLayout_t Bd, const void* beta, const void* C,
                              cublasLtMatrixLayout_t Cd, void* D, cublasLtMatrixLayout_t Dd,
                              const cublasLtMatmulAlgo_t*, void*, size_t, cudaStream_t) {
  const Desc& d = *reinterpret_cast<const Desc*>(desc);
  const Layout& a = *reinterpret_cast<const Layout*>(Ad);
  const Layout& b = *reinterpret_cast<const Layout*>(Bd);
  const Layout& c = *reinterpret_cast<const Layout*>(Cd);
  const Layout& dd = *reinterpret_cast<const Layout*>(Dd);
  const bool ta = d.transa != CUBLAS_OP_N, tb = d.transb != CUBLAS_OP_N;
  const uint64_t m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols;
  const uint64_t kb = tb ? b.cols : b.rows, n = tb ? b.rows : b.cols;
  if (k != kb || c.rows != m || c.cols != n || dd.rows != m || dd.cols != n || a.type != b.type) {
    std::fprintf(stderr, "emulated cublasLtMatmul: inconsistent layouts (m %lu, k %lu / %lu, n %lu)\n",
                 (unsigned long)m, (unsigned long)k, (unsigned long)kb, (unsigned long)n);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  std::vector<float> out(m * n);
  for (uint64_t j = 0; j < n; ++j)
    for (uint64_t i = 0; i < m; ++i) {
      float s = 0;
      for (uint64_t p = 0; p < k; ++p) {
        const float x = ta ? get(A, a.type, int64_t(p + i * a.ld)) : get(A, a.type, int64_t(i + p * a.ld));
        const float y = tb ? get(B, b.type, int64_t(j + p * b.ld)) : get(B, b.type, int64_t(p + j * b.ld));
        s += x * y;
      }
      float v = al * s;
      if (be != 0) v += be * get(C, c.type, int64_t(i + j * c.ld));
      out[j * m + i] = v;
    }
  for (uint64_t j = 0; j < n; ++j)
    for (uint64_t i = 0; i < m; ++i) put(D, dd.type, int64_t(i + j * dd.ld), out[j * m + i]);
  return CUBLAS_STATUS_SUCCESS;
}
}
