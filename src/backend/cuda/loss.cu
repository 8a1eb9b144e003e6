// Cross-entropy over a (shard of the) vocabulary, in the pieces that the
// model all-reduces between. logits [B, V_local] f32 (or bf16); the row
// statistics are f32; one block per row for the reductions.
#include "internal.cuh"

namespace sptrain {

using cuda::block_max;
using cuda::block_sum;
using cuda::grid_for;
using cuda::kThreads;
using cuda::load;
using cuda::store;

namespace {

template <typename T>
__global__ void row_max_kernel(float* out, const T* logits, int64_t V) {
  __shared__ float red[33];
  const int64_t b = blockIdx.x;
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, load(logits, b * V + v));
  m = block_max(m, red);
  if (threadIdx.x == 0) out[b] = m;
}

template <typename T>
__global__ void row_sumexp_kernel(float* out, const T* logits, const float* max, int64_t V) {
  __shared__ float red[33];
  const int64_t b = blockIdx.x;
  const float m = max[b];
  float s = 0.f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) s += expf(load(logits, b * V + v) - m);
  s = block_sum(s, red);
  if (threadIdx.x == 0) out[b] = s;
}

template <typename T>
__global__ void pick_target_kernel(float* out, const T* logits, const int32_t* targets,
                                   int64_t offset, int64_t B, int64_t V) {
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < B;
       b += int64_t(gridDim.x) * blockDim.x) {
    const int64_t local = int64_t(targets[b]) - offset;
    out[b] = (local >= 0 && local < V) ? load(logits, b * V + local) : 0.f;
  }
}

// dlogits = weight * (exp(l - max) / sumexp - onehot(target - offset)).
template <typename D, typename T>
__global__ void cross_entropy_backward_kernel(D* dlogits, const T* logits, const float* max,
                                              const float* sumexp, const int32_t* targets,
                                              int64_t offset, float weight, int64_t n, int64_t V) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = k / V, v = k % V;
    float d = weight * expf(load(logits, k) - max[b]) * (1.0f / sumexp[b]);
    if (int64_t(targets[b]) - offset == v) d -= weight;
    store(dlogits, k, d);
  }
}

// One thread, examples in order, in double: the sums the host's HeadTally
// makes from the same f32 statistics (train/head_tally.cpp), bit for bit.
__global__ void accumulate_loss_kernel(double* sums, const float* max, const float* sumexp,
                                       const float* target, const float* label_logits,
                                       const int32_t* labels, int64_t N, int64_t B, int64_t L) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double loss = 0, correct = 0;
  for (int64_t n = 0; n < N; ++n) loss += log(double(sumexp[n])) + double(max[n]) - double(target[n]);
  for (int64_t b = 0; b < B; ++b) {
    int64_t best = 0;
    for (int64_t l = 1; l < L; ++l)
      if (label_logits[b * L + l] > label_logits[b * L + best]) best = l;
    correct += best == labels[b] ? 1.0 : 0.0;
  }
  sums[0] += loss;
  sums[1] += correct;
}

void check_stat(const Tensor& t, int64_t B, const char* op, const char* what) {
  cuda::expect_device(t, op, what);
  cuda::expect_dtype(t, DType::F32, op, what);
  SPT_ASSERT(t.numel() >= B);
}

}  // namespace

void CudaBackend::row_max(const Tensor& out, const Tensor& logits) {
  const int64_t B = logits.rows(), V = logits.cols();
  cuda::expect_device(logits, "row_max", "logits");
  check_stat(out, B, "row_max", "out");
  if (B == 0) return;
  cuda::dispatch_act(logits.dtype, "row_max", [&](auto tag) {
    using F = typename decltype(tag)::type;
    row_max_kernel<F><<<unsigned(B), kThreads, 0, impl_->stream>>>(
        static_cast<float*>(out.data), static_cast<const F*>(logits.data), V);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "row_max_kernel");
  });
}

void CudaBackend::row_sumexp(const Tensor& out, const Tensor& logits, const Tensor& max) {
  const int64_t B = logits.rows(), V = logits.cols();
  cuda::expect_device(logits, "row_sumexp", "logits");
  check_stat(out, B, "row_sumexp", "out");
  check_stat(max, B, "row_sumexp", "max");
  if (B == 0) return;
  cuda::dispatch_act(logits.dtype, "row_sumexp", [&](auto tag) {
    using F = typename decltype(tag)::type;
    row_sumexp_kernel<F><<<unsigned(B), kThreads, 0, impl_->stream>>>(
        static_cast<float*>(out.data), static_cast<const F*>(logits.data),
        static_cast<const float*>(max.data), V);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "row_sumexp_kernel");
  });
}

void CudaBackend::pick_target(const Tensor& out, const Tensor& logits, const Tensor& targets,
                              int64_t offset) {
  const int64_t B = logits.rows(), V = logits.cols();
  cuda::expect_device(logits, "pick_target", "logits");
  cuda::expect_device(targets, "pick_target", "targets");
  cuda::expect_dtype(targets, DType::I32, "pick_target", "targets");
  check_stat(out, B, "pick_target", "out");
  SPT_ASSERT(targets.numel() >= B);
  if (B == 0) return;
  cuda::dispatch_act(logits.dtype, "pick_target", [&](auto tag) {
    using F = typename decltype(tag)::type;
    pick_target_kernel<F><<<grid_for(B), kThreads, 0, impl_->stream>>>(
        static_cast<float*>(out.data), static_cast<const F*>(logits.data),
        static_cast<const int32_t*>(targets.data), offset, B, V);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "pick_target_kernel");
  });
}

void CudaBackend::cross_entropy_backward(const Tensor& dlogits, const Tensor& logits,
                                         const Tensor& max, const Tensor& sumexp,
                                         const Tensor& targets, int64_t offset, float weight) {
  const char* op = "cross_entropy_backward";
  const int64_t B = logits.rows(), V = logits.cols(), n = logits.numel();
  cuda::expect_device(dlogits, op, "dlogits");
  cuda::expect_device(logits, op, "logits");
  cuda::expect_device(targets, op, "targets");
  cuda::expect_dtype(targets, DType::I32, op, "targets");
  check_stat(max, B, op, "max");
  check_stat(sumexp, B, op, "sumexp");
  SPT_ASSERT(dlogits.rows() == B && dlogits.cols() == V && targets.numel() >= B);
  if (n == 0) return;
  cuda::dispatch_act(dlogits.dtype, op, [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    cuda::dispatch_act(logits.dtype, op, [&](auto ltag) {
      using L = typename decltype(ltag)::type;
      cross_entropy_backward_kernel<D, L><<<grid_for(n), kThreads, 0, impl_->stream>>>(
          static_cast<D*>(dlogits.data), static_cast<const L*>(logits.data),
          static_cast<const float*>(max.data), static_cast<const float*>(sumexp.data),
          static_cast<const int32_t*>(targets.data), offset, weight, n, V);
      SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "cross_entropy_backward_kernel");
    });
  });
}

void CudaBackend::accumulate_loss(const Tensor& sums, const Tensor& max, const Tensor& sumexp,
                                  const Tensor& target, const Tensor& label_logits,
                                  const Tensor& labels) {
  const char* op = "accumulate_loss";
  // N target rows' losses; B examples' label predictions (none without labels).
  const int64_t N = max.numel(), L = label_logits.cols();
  const int64_t B = L > 0 ? label_logits.rows() : 0;
  cuda::expect_device(sums, op, "sums");
  cuda::expect_dtype(sums, DType::F64, op, "sums");
  SPT_ASSERT(sums.numel() >= 2);
  check_stat(max, N, op, "max");
  check_stat(sumexp, N, op, "sumexp");
  check_stat(target, N, op, "target");
  if (B > 0) {
    check_stat(label_logits, B * L, op, "label_logits");
    cuda::expect_device(labels, op, "labels");
    cuda::expect_dtype(labels, DType::I32, op, "labels");
  }
  if (N == 0) return;
  // One warp of which thread 0 adds the rows up in order (deterministic; B
  // is one micro-batch). A whole warp, not one thread: the emulator
  // (tests/backend_cuda/emu) runs warps of 32.
  accumulate_loss_kernel<<<1, 32, 0, impl_->stream>>>(
      static_cast<double*>(sums.data), static_cast<const float*>(max.data),
      static_cast<const float*>(sumexp.data), static_cast<const float*>(target.data),
      static_cast<const float*>(label_logits.data), static_cast<const int32_t*>(labels.data), N, B, L);
  SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "accumulate_loss_kernel");
}

}  // namespace sptrain
