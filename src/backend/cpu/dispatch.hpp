#pragma once
// Internal to the CPU back end: run a kernel template for the tensor's float
// type. On the CPU the statistics dtype equals the activation dtype.
#include <cblas.h>

#include "sptrain/core/tensor.hpp"

namespace sptrain::cpu {

template <typename F>
void dispatch_float(DType t, F&& f) {
  if (t == DType::F32) {
    f(float{});
  } else if (t == DType::F64) {
    f(double{});
  } else {
    fail("CPU back end: dtype ", dtype_name(t), " is not supported for compute (use f32 or f64)");
  }
}

// C[M,N] (+)= A[M,K] * op(B) with leading dimensions, row-major.
inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, double alpha, const double* A,
                 int lda, const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Threads pay off only for loops with enough work: below this many element
// operations a parallel region's start and barrier cost more than they save
// (and far more when the cores are shared with other processes).
inline bool worth_threads(int64_t work) { return work >= (int64_t(1) << 16); }

inline void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  if (!(a.shape == b.shape))
    fail("internal error: ", op, ": shapes ", a.shape.to_string(), " and ", b.shape.to_string(),
         " differ");
}

}  // namespace sptrain::cpu
