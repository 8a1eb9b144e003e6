#pragma once
// Internal to the CPU back end: run a kernel template for the tensor's float
// type. On the CPU the statistics dtype equals the activation dtype.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "sptrain/core/tensor.hpp"

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
}

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

// BLAS by element type.
inline void gemm_blas(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float* A,
                      int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm_blas(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, double alpha, const double* A,
                      int lda, const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemv_blas(CBLAS_TRANSPOSE t, int rows, int cols, float alpha, const float* A, int lda, const float* x,
                      int incx, float beta, float* y, int incy) {
  cblas_sgemv(CblasRowMajor, t, rows, cols, alpha, A, lda, x, incx, beta, y, incy);
}
inline void gemv_blas(CBLAS_TRANSPOSE t, int rows, int cols, double alpha, const double* A, int lda,
                      const double* x, int incx, double beta, double* y, int incy) {
  cblas_dgemv(CblasRowMajor, t, rows, cols, alpha, A, lda, x, incx, beta, y, incy);
}

// C[M,N] (+)= op(A)[M,K] * op(B)[K,N] with leading dimensions, row-major.
// A product with one row or one column of C is a matrix-vector product:
// gemv reads the matrix once, where gemm first copies it into packed panels
// (at batch 1, decoding a token spent 56% of its time in those copies).
template <typename F>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, F alpha, const F* A, int lda, const F* B, int ldb,
          F beta, F* C, int ldc) {
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  if (K == 0 || (M != 1 && N != 1)) return gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // gemv with beta = 0 overwrites y, NaN included, as gemm does (BLAS's
  // definition; CpuOps.GemmMatchesLoopsForEveryTransposeAndVectorShape checks it).
  if (M == 1) {  // C's row = op(B)ᵀ · (A's row): B as stored is [N, K] (trans_b) or [K, N]
    const int incx = trans_a ? lda : 1;
    if (trans_b) gemv_blas(CblasNoTrans, N, K, alpha, B, ldb, A, incx, beta, C, 1);
    else gemv_blas(CblasTrans, K, N, alpha, B, ldb, A, incx, beta, C, 1);
  } else {  // N == 1: C's column = op(A) · (op(B)'s column): A as stored is [K, M] (trans_a) or [M, K]
    const int incx = trans_b ? 1 : ldb;
    if (trans_a) gemv_blas(CblasTrans, K, M, alpha, A, lda, B, incx, beta, C, ldc);
    else gemv_blas(CblasNoTrans, M, K, alpha, A, lda, B, incx, beta, C, ldc);
  }
}

// OpenBLAS's pthreads build, called from several OpenMP threads at once,
// splits each product over its own threads as well: more threads than
// cores, spinning in sched_yield for each other. While one of these is
// alive, each product runs on the thread that calls it: around attention's
// per-head loops, where it halved the E2E training step on 2 cores
// (docs/performance.md). Cached attention keeps BLAS's threads: generation
// measured no faster without them.
class SerialBlas {
 public:
  SerialBlas() : saved_(openblas_get_num_threads()) {
    if (saved_ > 1) openblas_set_num_threads(1);
  }
  ~SerialBlas() {
    if (saved_ > 1) openblas_set_num_threads(saved_);
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int saved_;
};

// Threads pay off only for loops with enough work: below this many element
// operations a parallel region's start and barrier cost more than they save
// (and far more when the cores are shared with other processes).
inline bool worth_threads(int64_t work) { return work >= (int64_t(1) << 16); }

// Softmax in place over each of L rows of `keys` scores, row i over its first
// seen0 + i keys (causal), the rest set to 0: attention's probabilities.
template <typename F>
void causal_softmax_rows(F* scores, int L, int keys, int seen0) {
  for (int i = 0; i < L; ++i) {
    F* row = scores + int64_t(i) * keys;
    const int seen = seen0 + i;
    F mx = -std::numeric_limits<F>::infinity();
    for (int j = 0; j < seen; ++j) mx = std::max(mx, row[j]);
    F sum = 0;
    for (int j = 0; j < seen; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    const F inv = F(1) / sum;
    for (int j = 0; j < seen; ++j) row[j] *= inv;
    for (int j = seen; j < keys; ++j) row[j] = F(0);
  }
}

inline void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  if (!(a.shape == b.shape))
    fail("internal error: ", op, ": shapes ", a.shape.to_string(), " and ", b.shape.to_string(),
         " differ");
}

}  // namespace sptrain::cpu
