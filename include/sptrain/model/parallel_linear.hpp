#pragma once
// Frozen linear layers split over the tensor-parallel group (Megatron-style).
// Only input gradients are computed: dX = dY·W, never dW, so the input of a
// linear layer is not kept for the backward.
#include "sptrain/model/tensor_parallel.hpp"

namespace sptrain {

// Y_local = X·W_localᵀ + b_local, W split by output rows. The input is
// replicated; the input gradient is a partial sum that backward all-reduces.
struct ColumnParallelLinear {
  Buffer weight;  // [out_local, in]
  Buffer bias;    // [out_local] or empty

  void forward(const ModelContext& ctx, const Tensor& y, const Tensor& x) const {
    ctx.backend.matmul(y, x, weight, /*trans_b=*/true, /*accumulate=*/false);
    if (!bias.empty()) ctx.backend.add_bias(y, bias);
  }
  // dx = dy·W summed over the group (one all-reduce).
  void backward(const ModelContext& ctx, const Tensor& dx, const Tensor& dy) const {
    ctx.backend.matmul(dx, dy, weight, /*trans_b=*/false, /*accumulate=*/false);
    tensor_parallel::copy_to_region_backward(ctx, dx);
  }
};

// Y = Σ_ranks X_local·W_localᵀ + b, W split by input columns. Forward
// all-reduces the partial products; the input gradient stays local.
struct RowParallelLinear {
  Buffer weight;  // [out, in_local]
  Buffer bias;    // [out] (replicated) or empty

  void forward(const ModelContext& ctx, const Tensor& y, const Tensor& x) const {
    ctx.backend.matmul(y, x, weight, /*trans_b=*/true, /*accumulate=*/false);
    tensor_parallel::reduce_from_region(ctx, y);
    if (!bias.empty()) ctx.backend.add_bias(y, bias);
  }
  void backward(const ModelContext& ctx, const Tensor& dx, const Tensor& dy) const {
    ctx.backend.matmul(dx, dy, weight, /*trans_b=*/false, /*accumulate=*/false);
  }
};

}  // namespace sptrain
