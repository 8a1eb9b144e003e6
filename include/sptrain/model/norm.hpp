#pragma once
// LayerNorm (GPT family) or RMSNorm (Llama family), replicated on every
// tensor-parallel rank.
#include "sptrain/model/context.hpp"

namespace sptrain {

struct Norm {
  NormKind kind = NormKind::RmsNorm;
  float eps = 1e-5f;
  Buffer weight;  // [d]
  Buffer bias;    // [d], LayerNorm with bias only

  // mean is unused (may be empty) for RMSNorm.
  void forward(const ModelContext& ctx, const Tensor& out, const Tensor& x, const Tensor& mean,
               const Tensor& rstd) const {
    if (kind == NormKind::LayerNorm) {
      ctx.backend.layernorm_forward(out, mean, rstd, x, weight, bias, eps);
    } else {
      ctx.backend.rmsnorm_forward(out, rstd, x, weight, eps);
    }
  }
  // dx += the input gradient.
  void backward(const ModelContext& ctx, const Tensor& dx, const Tensor& dout, const Tensor& x,
                const Tensor& mean, const Tensor& rstd) const {
    if (kind == NormKind::LayerNorm) {
      ctx.backend.layernorm_backward(dx, dout, x, mean, rstd, weight);
    } else {
      ctx.backend.rmsnorm_backward(dx, dout, x, rstd, weight);
    }
  }
};

}  // namespace sptrain
