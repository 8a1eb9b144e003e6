// Token embedding with the soft prompt in front, the prompt's gradient, and
// the row gathers that pick the answer positions.
#include "internal.cuh"

namespace sptrain {

using cuda::grid_for;
using cuda::kThreads;
using cuda::load;
using cuda::store;

namespace {

// x[t, i] = prompt[-1 - token, i] (prompt rows: token < 0, f32 -> act) or
// table[token - vocab_start, i] (this shard's rows), else 0. One thread per element.
// A prompt token outside the prompt never arrives: PackedBatchWriter refuses
// it where the batch is made (the CPU back end also asserts on one).
template <typename T>
__global__ void embed_forward_kernel(T* x, const int32_t* tokens, const T* table, int64_t V,
                                     int64_t vocab_start, const float* prompt,
                                     int64_t prompt_rows, int64_t n, int64_t C) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = k / C, i = k % C;
    const int64_t tok = tokens[t];
    float v = 0.f;
    if (tok < 0) {
      const int64_t j = -1 - tok;
      if (prompt && j < prompt_rows) v = prompt[j * C + i];
    } else {
      const int64_t local = int64_t(tokens[t]) - vocab_start;
      if (local >= 0 && local < V) v = load(table, local * C + i);
    }
    store(x, k, v);
  }
}

// dprompt[-1 - tokens[t], i] += dx[t, i] for every prompt row t (token < 0):
// one thread per column walks the rows in order, so the sums are race-free
// and deterministic, in the CPU back end's order.
template <typename T>
__global__ void prompt_backward_kernel(float* dprompt, const T* dx, const int32_t* tokens,
                                       int64_t T_rows, int64_t prompt_rows, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < C;
       i += int64_t(gridDim.x) * blockDim.x) {
    for (int64_t t = 0; t < T_rows; ++t) {
      const int64_t j = -1 - int64_t(tokens[t]);
      if (j >= 0 && j < prompt_rows) dprompt[j * C + i] += load(dx, t * C + i);
    }
  }
}

// qkv[t, col + i] = prefix[-1 - tokens[t], i] for prompt rows (token < 0),
// f32 -> act. One thread per element of the [T, C] block.
template <typename T>
__global__ void prefix_kv_forward_kernel(T* qkv, int64_t W, int64_t col, const float* prefix,
                                         int64_t prefix_rows, const int32_t* tokens, int64_t n,
                                         int64_t C) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = k / C, i = k % C;
    const int64_t j = -1 - int64_t(tokens[t]);
    if (j >= 0 && j < prefix_rows) store(qkv, t * W + col + i, prefix[j * C + i]);
  }
}

// dprefix[-1 - tokens[t], i] += dqkv[t, col + i], then dqkv[t, col + i] = 0,
// for prompt rows: one thread per column walks the rows in order (race-free,
// deterministic, in the CPU back end's order).
template <typename T>
__global__ void prefix_kv_backward_kernel(float* dprefix, T* dqkv, int64_t W, int64_t col,
                                          const int32_t* tokens, int64_t T_rows,
                                          int64_t prefix_rows, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < C;
       i += int64_t(gridDim.x) * blockDim.x) {
    for (int64_t t = 0; t < T_rows; ++t) {
      const int64_t j = -1 - int64_t(tokens[t]);
      if (j < 0 || j >= prefix_rows) continue;
      dprefix[j * C + i] += load(dqkv, t * W + col + i);
      store(dqkv, t * W + col + i, 0.f);
    }
  }
}

// out[r, i] = x[rows[r], i], copied as raw elements of E's size. A row index
// outside x (never produced by the batch builder) leaves the output row as it was.
template <typename E>
__global__ void gather_rows_kernel(E* out, const E* x, const int32_t* rows, int64_t R, int64_t n,
                                   int64_t C) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = k / C, i = k % C;
    const int64_t src = rows[r];
    if (src >= 0 && src < R) out[k] = x[src * C + i];
  }
}

// dx[rows[r], i] += dout[r, i]: one thread per column, rows in order, so
// repeated row indices add up without races, as on the CPU.
template <typename T>
__global__ void scatter_add_rows_kernel(T* dx, const T* dout, const int32_t* rows, int64_t R,
                                        int64_t n_rows, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < C;
       i += int64_t(gridDim.x) * blockDim.x) {
    for (int64_t r = 0; r < n_rows; ++r) {
      const int64_t dst = rows[r];
      if (dst >= 0 && dst < R) store(dx, dst * C + i, load(dx, dst * C + i) + load(dout, r * C + i));
    }
  }
}

}  // namespace

void CudaBackend::embed_forward(const Tensor& x, const Tensor& tokens, const Tensor& table,
                                int64_t vocab_start, const Tensor& prompt,
                                const SequenceIndex& seq) {
  const char* op = "embed_forward";
  cuda::expect_device(x, op, "x");
  cuda::expect_device(tokens, op, "tokens");
  cuda::expect_device(table, op, "table");
  cuda::expect_device(prompt, op, "prompt");
  cuda::expect_device(seq.positions, op, "seq.positions");
  cuda::expect_same_dtype(x, table, op);
  cuda::expect_dtype(tokens, DType::I32, op, "tokens");
  const int64_t T = x.rows(), C = x.cols(), n = x.numel();
  (void)seq;
  SPT_ASSERT(table.cols() == C && tokens.numel() >= T);
  if (!prompt.empty()) {
    cuda::expect_dtype(prompt, DType::F32, op, "prompt");
    SPT_ASSERT(prompt.cols() == C);
  }
  if (n == 0) return;
  cuda::dispatch_act(x.dtype, op, [&](auto tag) {
    using F = typename decltype(tag)::type;
    embed_forward_kernel<F><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(x.data), static_cast<const int32_t*>(tokens.data),
        static_cast<const F*>(table.data), table.rows(), vocab_start,
        prompt.empty() ? nullptr : static_cast<const float*>(prompt.data),
        prompt.empty() ? 0 : prompt.rows(), n, C);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "embed_forward_kernel");
  });
}

void CudaBackend::prompt_backward(const Tensor& dprompt, const Tensor& dx, const Tensor& tokens,
                                  const SequenceIndex& seq) {
  const char* op = "prompt_backward";
  cuda::expect_device(dprompt, op, "dprompt");
  cuda::expect_device(dx, op, "dx");
  cuda::expect_device(tokens, op, "tokens");
  cuda::expect_dtype(dprompt, DType::F32, op, "dprompt");
  cuda::expect_dtype(tokens, DType::I32, op, "tokens");
  const int64_t C = dx.cols(), T = seq.num_rows;
  SPT_ASSERT(dprompt.cols() == C);
  SPT_ASSERT(dx.rows() >= T && tokens.numel() >= T);
  if (C == 0 || T == 0 || dprompt.rows() == 0) return;
  cuda::dispatch_act(dx.dtype, op, [&](auto tag) {
    using F = typename decltype(tag)::type;
    prompt_backward_kernel<F><<<grid_for(C), kThreads, 0, impl_->stream>>>(
        static_cast<float*>(dprompt.data), static_cast<const F*>(dx.data),
        static_cast<const int32_t*>(tokens.data), T, dprompt.rows(), C);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "prompt_backward_kernel");
  });
}

void CudaBackend::prefix_kv_forward(const Tensor& qkv, int64_t col, const Tensor& prefix,
                                    const Tensor& tokens, const SequenceIndex& seq) {
  const char* op = "prefix_kv_forward";
  cuda::expect_device(qkv, op, "qkv");
  cuda::expect_device(prefix, op, "prefix");
  cuda::expect_device(tokens, op, "tokens");
  cuda::expect_dtype(prefix, DType::F32, op, "prefix");
  cuda::expect_dtype(tokens, DType::I32, op, "tokens");
  const int64_t W = qkv.cols(), C = prefix.cols(), T = seq.num_rows, n = T * C;
  SPT_ASSERT(col >= 0 && col + C <= W && qkv.rows() >= T && tokens.numel() >= T);
  if (n == 0) return;
  cuda::dispatch_act(qkv.dtype, op, [&](auto tag) {
    using F = typename decltype(tag)::type;
    prefix_kv_forward_kernel<F><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(qkv.data), W, col, static_cast<const float*>(prefix.data), prefix.rows(),
        static_cast<const int32_t*>(tokens.data), n, C);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "prefix_kv_forward_kernel");
  });
}

void CudaBackend::prefix_kv_backward(const Tensor& dprefix, const Tensor& dqkv, int64_t col,
                                     const Tensor& tokens, const SequenceIndex& seq) {
  const char* op = "prefix_kv_backward";
  cuda::expect_device(dprefix, op, "dprefix");
  cuda::expect_device(dqkv, op, "dqkv");
  cuda::expect_device(tokens, op, "tokens");
  cuda::expect_dtype(dprefix, DType::F32, op, "dprefix");
  cuda::expect_dtype(tokens, DType::I32, op, "tokens");
  const int64_t W = dqkv.cols(), C = dprefix.cols(), T = seq.num_rows;
  SPT_ASSERT(col >= 0 && col + C <= W && dqkv.rows() >= T && tokens.numel() >= T);
  if (C == 0 || T == 0 || dprefix.rows() == 0) return;
  cuda::dispatch_act(dqkv.dtype, op, [&](auto tag) {
    using F = typename decltype(tag)::type;
    prefix_kv_backward_kernel<F><<<grid_for(C), kThreads, 0, impl_->stream>>>(
        static_cast<float*>(dprefix.data), static_cast<F*>(dqkv.data), W, col,
        static_cast<const int32_t*>(tokens.data), T, dprefix.rows(), C);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "prefix_kv_backward_kernel");
  });
}

void CudaBackend::gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) {
  const char* op = "gather_rows";
  cuda::expect_device(out, op, "out");
  cuda::expect_device(x, op, "x");
  cuda::expect_device(rows, op, "rows");
  cuda::expect_same_dtype(out, x, op);
  cuda::expect_dtype(rows, DType::I32, op, "rows");
  const int64_t C = x.cols(), n_rows = rows.numel(), n = n_rows * C;
  SPT_ASSERT(out.rows() >= n_rows && out.cols() == C);
  if (n == 0) return;
  auto launch = [&](auto* dst, const auto* src) {
    using E = std::remove_const_t<std::remove_pointer_t<decltype(src)>>;
    gather_rows_kernel<E><<<grid_for(n), kThreads, 0, impl_->stream>>>(
        dst, src, static_cast<const int32_t*>(rows.data), x.rows(), n, C);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "gather_rows_kernel");
  };
  switch (dtype_size(x.dtype)) {
    case 2: launch(static_cast<uint16_t*>(out.data), static_cast<const uint16_t*>(x.data)); break;
    case 4: launch(static_cast<uint32_t*>(out.data), static_cast<const uint32_t*>(x.data)); break;
    case 8: launch(static_cast<uint64_t*>(out.data), static_cast<const uint64_t*>(x.data)); break;
    default: fail("internal error: gather_rows: dtype ", dtype_name(x.dtype));
  }
}

void CudaBackend::scatter_add_rows(const Tensor& dx, const Tensor& dout, const Tensor& rows) {
  const char* op = "scatter_add_rows";
  cuda::expect_device(dx, op, "dx");
  cuda::expect_device(dout, op, "dout");
  cuda::expect_device(rows, op, "rows");
  cuda::expect_same_dtype(dx, dout, op);
  cuda::expect_dtype(rows, DType::I32, op, "rows");
  const int64_t C = dx.cols(), n_rows = rows.numel();
  SPT_ASSERT(dout.rows() >= n_rows && dout.cols() == C);
  if (C == 0 || n_rows == 0) return;
  cuda::dispatch_act(dx.dtype, op, [&](auto tag) {
    using F = typename decltype(tag)::type;
    scatter_add_rows_kernel<F><<<grid_for(C), kThreads, 0, impl_->stream>>>(
        static_cast<F*>(dx.data), static_cast<const F*>(dout.data),
        static_cast<const int32_t*>(rows.data), dx.rows(), n_rows, C);
    SPT_CUDA_LAUNCHED(impl_->where, impl_->stream, "scatter_add_rows_kernel");
  });
}

}  // namespace sptrain
