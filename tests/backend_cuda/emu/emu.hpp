#pragma once
// A CPU emulation of the CUDA execution model, to run the CUDA back end's
// kernels where there is no GPU (see run_emulated.sh and docs/cuda.md). Not a
// simulator of performance or of the memory model beyond barriers: each
// block's threads are real OS threads, so __syncthreads is a real barrier and
// a warp shuffle a real exchange between 32 threads; blocks run one after
// another. Included by transform.py after the CUDA headers in internal.cuh.
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#define __global__
#define __device__
#define __host__
#define __shared__ static  // one copy shared by the block's threads (blocks run in turn)

namespace emu {

// Times the host waited for the emulated device: stream or device
// synchronisations, and copies from or to host memory that is not pinned
// (cudaHostAlloc), which the real runtime makes synchronous.
int64_t host_waits();

struct Ids {
  dim3 tid, bid, bdim, gdim;
};
extern thread_local Ids ids;

void syncthreads();
double shfl_xor_double(double v, int lane_mask);
template <typename T>
T shfl_xor(T v, int lane_mask) {
  return T(shfl_xor_double(double(v), lane_mask));
}
void* dynamic_shared_ptr();
template <typename T>
T* dynamic_shared() {
  return static_cast<T*>(dynamic_shared_ptr());
}
void run_launch(dim3 grid, dim3 block, size_t shared, const void* kernel,
                const std::function<void()>& body);

// kernel<<<grid, block, shared, stream>>>(args) becomes Launch(grid, block, shared, stream)(kernel, args).
struct Launch {
  dim3 grid, block;
  size_t shared;
  Launch(dim3 g, dim3 b, size_t s = 0, cudaStream_t = nullptr) : grid(g), block(b), shared(s) {}
  template <class K, class... A>
  void operator()(K kernel, A... args) {
    run_launch(grid, block, shared, reinterpret_cast<const void*>(kernel),
               [=] { kernel(args...); });
  }
};

inline unsigned float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace emu

#define threadIdx (::emu::ids.tid)
#define blockIdx (::emu::ids.bid)
#define blockDim (::emu::ids.bdim)
#define gridDim (::emu::ids.gdim)
#define __syncthreads() ::emu::syncthreads()
#define __shfl_xor_sync(mask, v, o) ::emu::shfl_xor((v), (o))
#define __float_as_uint(f) ::emu::float_as_uint(f)
#define __uint_as_float(u) ::emu::uint_as_float(u)

// nvcc's overloads taking a kernel (declared only under __CUDACC__).
template <class T>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, T* entry) {
  return ::cudaFuncGetAttributes(a, reinterpret_cast<const void*>(entry));
}
template <class T>
cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute at, int v) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), at, v);
}
