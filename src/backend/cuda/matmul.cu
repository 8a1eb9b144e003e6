// Matrix products through cuBLASLt: bf16 (or f32) inputs, f32 compute and
// scale, bf16 or f32 output. One plan (descriptors + the heuristic's
// algorithm) per shape, dtypes and pointer alignment, made on first use;
// shapes cuBLASLt has no algorithm for use a simple kernel instead.
//
// Row-major to column-major: a row-major X[r, c] is the column-major matrix
// Xᵀ[c, r] with leading dimension c. So row-major C = A·op(B) is computed as
// the column-major product Cᵀ[N, M] = op(B)ᵀ[N, K] · Aᵀ[K, M]: cuBLASLt's
// "A" is our b and its "B" is our a.
#include "internal.cuh"

namespace sptrain {

namespace {

using cuda::grid_for;
using cuda::kThreads;
using cuda::load;
using cuda::store;

// The fallback for shapes cuBLASLt has no algorithm for (it may refuse
// leading dimensions that are not multiples of 16 bytes, as the LM head's
// few label rows give): one thread per element of C, f32 accumulation.
template <typename A, typename C>
__global__ void matmul_fallback_kernel(C* c, const A* a, const A* b, int64_t M, int64_t N,
                                       int64_t K, bool trans_b, float beta) {
  const int64_t n = M * N;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = idx / N, j = idx % N;
    float acc = 0.f;
    for (int64_t k = 0; k < K; ++k)
      acc += load(a, i * K + k) * load(b, trans_b ? j * K + k : k * N + j);
    if (beta != 0.f) acc += beta * load(c, idx);
    store(c, idx, acc);
  }
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    default: fail("internal error: matmul: dtype ", dtype_name(t), " (use bf16 or f32)");
  }
}

// Largest power of two (at most 256) that divides the address.
uint32_t alignment_of(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

}  // namespace

void CudaBackend::matmul(const Tensor& c, const Tensor& a, const Tensor& b, bool trans_b,
                         bool accumulate) {
  const int64_t M = a.rows(), K = a.cols();
  const int64_t N = trans_b ? b.rows() : b.cols();
  if ((trans_b ? b.cols() : b.rows()) != K || c.rows() != M || c.cols() != N)
    fail("internal error: matmul shapes a", a.shape.to_string(), " b", b.shape.to_string(),
         trans_b ? "ᵀ" : "", " c", c.shape.to_string());
  cuda::expect_device(a, "matmul", "a");
  cuda::expect_device(b, "matmul", "b");
  cuda::expect_device(c, "matmul", "c");
  if (a.dtype != b.dtype || (a.dtype != DType::BF16 && a.dtype != DType::F32) ||
      (c.dtype != DType::BF16 && c.dtype != DType::F32) ||
      (a.dtype == DType::F32 && c.dtype != DType::F32))
    fail("internal error: CUDA matmul supports bf16·bf16 -> bf16/f32 and f32·f32 -> f32, not ",
         dtype_name(a.dtype), "·", dtype_name(b.dtype), " -> ", dtype_name(c.dtype));
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: c = 0, or c unchanged
    if (!accumulate) fill(c, 0.0);
    return;
  }

  Impl& s = *impl_;
  cuda::MatmulKey key;
  key.m = M;
  key.n = N;
  key.k = K;
  key.trans_b = trans_b;
  key.ab = a.dtype;
  key.c = c.dtype;
  key.align_a = alignment_of(a.data);
  key.align_b = alignment_of(b.data);
  key.align_c = alignment_of(c.data);

  auto it = s.plans.find(key);
  if (it == s.plans.end()) {
    auto plan = std::make_unique<cuda::MatmulPlan>();
    SPT_CUBLASLT(s.where, cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // applies to our b
    const cublasOperation_t op_b = CUBLAS_OP_N;                          // applies to our a
    SPT_CUBLASLT(s.where, cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                         &op_a, sizeof(op_a)));
    SPT_CUBLASLT(s.where, cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                         &op_b, sizeof(op_b)));
    // Layouts describe the stored (column-major) matrices, before op().
    // Our b: row-major [N, K] (trans_b) is column-major K x N, ld K; row-major
    // [K, N] is column-major N x K, ld N.
    const cudaDataType_t ab = cuda_type(a.dtype), ct = cuda_type(c.dtype);
    if (trans_b) {
      SPT_CUBLASLT(s.where, cublasLtMatrixLayoutCreate(&plan->a, ab, uint64_t(K), uint64_t(N), K));
    } else {
      SPT_CUBLASLT(s.where, cublasLtMatrixLayoutCreate(&plan->a, ab, uint64_t(N), uint64_t(K), N));
    }
    // Our a: row-major [M, K] is column-major K x M, ld K.
    SPT_CUBLASLT(s.where, cublasLtMatrixLayoutCreate(&plan->b, ab, uint64_t(K), uint64_t(M), K));
    // Our c: row-major [M, N] is column-major N x M, ld N (also the output D).
    SPT_CUBLASLT(s.where, cublasLtMatrixLayoutCreate(&plan->c, ct, uint64_t(N), uint64_t(M), N));

    cublasLtMatmulPreference_t pref = nullptr;
    SPT_CUBLASLT(s.where, cublasLtMatmulPreferenceCreate(&pref));
    // The preference is freed on every path out of this block.
    std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, cublasStatus_t (*)(cublasLtMatmulPreference_t)>
        pref_owner(pref, cublasLtMatmulPreferenceDestroy);
    const uint64_t ws = s.workspace_bytes;
    SPT_CUBLASLT(s.where, cublasLtMatmulPreferenceSetAttribute(
                              pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    const uint32_t align_lt_a = key.align_b, align_lt_b = key.align_a, align_c = key.align_c;
    SPT_CUBLASLT(s.where, cublasLtMatmulPreferenceSetAttribute(
                              pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_lt_a,
                              sizeof(align_lt_a)));
    SPT_CUBLASLT(s.where, cublasLtMatmulPreferenceSetAttribute(
                              pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_lt_b,
                              sizeof(align_lt_b)));
    SPT_CUBLASLT(s.where, cublasLtMatmulPreferenceSetAttribute(
                              pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c,
                              sizeof(align_c)));
    SPT_CUBLASLT(s.where, cublasLtMatmulPreferenceSetAttribute(
                              pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c,
                              sizeof(align_c)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
        s.lt, plan->desc, plan->a, plan->b, plan->c, plan->c, pref, 1, &result, &found);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED || (st == CUBLAS_STATUS_SUCCESS && found == 0)) {
      plan->fallback = true;  // no algorithm for this shape: our own kernel
    } else {
      cuda::check_cublaslt(st, "cublasLtMatmulAlgoGetHeuristic", s.where, __FILE__, __LINE__);
      plan->algo = result.algo;
    }
    it = s.plans.emplace(key, std::move(plan)).first;
  }

  const cuda::MatmulPlan& plan = *it->second;
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  if (plan.fallback) {
    cuda::dispatch_act(a.dtype, "matmul", [&](auto atag) {
      using A = typename decltype(atag)::type;
      cuda::dispatch_act(c.dtype, "matmul", [&](auto ctag) {
        using C = typename decltype(ctag)::type;
        matmul_fallback_kernel<A, C><<<grid_for(M * N), kThreads, 0, s.stream>>>(
            static_cast<C*>(c.data), static_cast<const A*>(a.data),
            static_cast<const A*>(b.data), M, N, K, trans_b, beta);
        SPT_CUDA_LAUNCHED(s.where, s.stream, "matmul_fallback_kernel");
      });
    });
    return;
  }
  SPT_CUBLASLT(s.where, cublasLtMatmul(s.lt, plan.desc, &alpha, b.data, plan.a, a.data, plan.b,
                                       &beta, c.data, plan.c, c.data, plan.c, &plan.algo,
                                       s.workspace, s.workspace_bytes, s.stream));
  if (cuda::sync_after_launch()) SPT_CUDA(s.where, cudaStreamSynchronize(s.stream));
}

}  // namespace sptrain
