// Every CPU op's backward against central finite differences of its forward,
// in double precision; forward products against plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../support/test_util.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "../../src/backend/cpu/dispatch.hpp"

namespace sptrain {
namespace {

using test::expect_gradient;
using test::random_tensor;
using test::to_host;

constexpr DType F64 = DType::F64;
constexpr double kTol = 1e-6;

// Dot product of two f64 tensors: the scalar "loss" sum(r * y).
double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += test::get_element(a, i) * test::get_element(b, i);
  return s;
}

// A segment: its length and its prefix (start row, rows). Positions count
// from the prefix's length.
struct Seg {
  int len;
  int prefix_start = 0;
  int prefix_len = 0;
};

SequenceIndex make_index(CpuBackend& be, std::vector<Buffer>& keep, std::vector<Seg> segs,
                         int prompt_len) {
  SequenceIndex s;
  s.num_segments = int(segs.size());
  s.prompt_len = prompt_len;
  int32_t row = 0;
  int64_t probs = 0;
  for (const Seg& g : segs) {
    s.host_offsets.push_back(row);
    s.host_prefix_start.push_back(g.prefix_start);
    s.host_prefix_len.push_back(g.prefix_len);
    s.host_prob_offsets.push_back(probs);
    for (int i = 0; i < g.len; ++i) s.host_positions.push_back(g.prefix_len + i);
    s.host_answer_rows.push_back(row + g.len - 1);
    row += g.len;
    probs += int64_t(g.len) * (g.prefix_len + g.len);
    s.max_len = std::max(s.max_len, g.len);
    s.max_keys = std::max(s.max_keys, g.prefix_len + g.len);
  }
  s.num_examples = int(segs.size());
  s.host_offsets.push_back(row);
  s.host_prob_offsets.push_back(probs);
  s.num_rows = row;
  auto upload = [&](auto& v, DType t) {
    Buffer b = be.allocate(t, Shape{int64_t(v.size())});
    be.copy_from_host(b, v.data());
    Tensor view = b.view();
    keep.push_back(std::move(b));
    return view;
  };
  s.offsets = upload(s.host_offsets, DType::I32);
  s.prefix_start = upload(s.host_prefix_start, DType::I32);
  s.prefix_len = upload(s.host_prefix_len, DType::I32);
  s.positions = upload(s.host_positions, DType::I32);
  s.answer_rows = upload(s.host_answer_rows, DType::I32);
  s.prob_offsets = upload(s.host_prob_offsets, DType::I64);
  return s;
}

TEST(CpuOps, MatmulMatchesLoops) {
  CpuBackend be(1);
  Rng rng(1);
  for (bool trans_b : {false, true}) {
    for (DType t : {DType::F32, DType::F64}) {
      Buffer a = random_tensor(be, t, Shape{5, 7}, rng);
      Buffer b = random_tensor(be, t, trans_b ? Shape{3, 7} : Shape{7, 3}, rng);
      Buffer c = random_tensor(be, t, Shape{5, 3}, rng);
      const auto c0 = to_host(be, c), av = to_host(be, a), bv = to_host(be, b);
      be.matmul(c, a, b, trans_b, /*accumulate=*/true);
      const auto cv = to_host(be, c);
      for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 3; ++j) {
          double s = c0[size_t(i * 3 + j)];
          for (int k = 0; k < 7; ++k)
            s += av[size_t(i * 7 + k)] * (trans_b ? bv[size_t(j * 7 + k)] : bv[size_t(k * 3 + j)]);
          EXPECT_NEAR(cv[size_t(i * 3 + j)], s, t == DType::F32 ? 1e-4 : 1e-12);
        }
    }
  }
}

// cpu::gemm against loops for every transpose, with leading dimensions wider
// than the rows, and for the shapes it hands to gemv (one row or one column
// of C): beta = 0 overwrites C even where it holds NaN, beta = 1 adds to it.
template <typename F>
void check_gemm_shapes(double tol) {
  Rng rng(11);
  struct Dims { int M, N, K; };
  for (const Dims d : {Dims{3, 5, 7}, Dims{1, 5, 7}, Dims{4, 1, 7}, Dims{1, 1, 7}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (F beta : {F(0), F(1)}) {
          const int M = d.M, N = d.N, K = d.K;
          // Stored shapes: A is [M, K] or, transposed, [K, M]; B is [K, N] or [N, K].
          const int a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
          const int lda = a_cols + 2, ldb = b_cols + 3, ldc = N + 1;
          std::vector<F> A(size_t(a_rows * lda)), B(size_t(b_rows * ldb)), C(size_t(M * ldc));
          for (F& x : A) x = F(rng.normal());
          for (F& x : B) x = F(rng.normal());
          for (F& x : C) x = beta == F(0) ? std::numeric_limits<F>::quiet_NaN() : F(rng.normal());
          const std::vector<F> C0 = C;
          const F alpha = F(0.5);
          sptrain::cpu::gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          for (int i = 0; i < M; ++i)
            for (int j = 0; j < N; ++j) {
              double s = 0;
              for (int k = 0; k < K; ++k)
                s += double(ta ? A[size_t(k * lda + i)] : A[size_t(i * lda + k)]) *
                     double(tb ? B[size_t(j * ldb + k)] : B[size_t(k * ldb + j)]);
              const double want = double(alpha) * s + (beta == F(0) ? 0.0 : double(C0[size_t(i * ldc + j)]));
              EXPECT_NEAR(double(C[size_t(i * ldc + j)]), want, tol)
                  << "M " << M << " N " << N << " K " << K << " trans_a " << ta << " trans_b " << tb
                  << " beta " << beta << " at (" << i << ", " << j << ")";
            }
          // Past each row's N columns C is untouched.
          for (int i = 0; i < M; ++i)
            for (int j = N; j < ldc; ++j) {
              if (beta != F(0)) {
                EXPECT_EQ(C[size_t(i * ldc + j)], C0[size_t(i * ldc + j)]);
              } else {
                EXPECT_TRUE(std::isnan(double(C[size_t(i * ldc + j)])));
              }
            }
        }
}

TEST(CpuOps, GemmMatchesLoopsForEveryTransposeAndVectorShape) {
  check_gemm_shapes<float>(1e-4);
  check_gemm_shapes<double>(1e-12);
}

TEST(CpuOps, LayerNormBackwardMatchesFiniteDifferences) {
  CpuBackend be(1);
  Rng rng(2);
  const Shape s{5, 7};
  Buffer x = random_tensor(be, F64, s, rng), w = random_tensor(be, F64, Shape{7}, rng),
         b = random_tensor(be, F64, Shape{7}, rng), r = random_tensor(be, F64, s, rng);
  Buffer y = be.allocate(F64, s), mean = be.allocate(F64, Shape{5}), rstd = be.allocate(F64, Shape{5});
  auto loss = [&] {
    be.layernorm_forward(y, mean, rstd, x, w, b, 1e-5f);
    return dot(y, r);
  };
  loss();
  Buffer dx = be.allocate(F64, s);
  be.layernorm_backward(dx, r, x, mean, rstd, w);
  expect_gradient(x, to_host(be, dx), loss, 35, kTol, "layernorm dx");
  loss();  // finite differences left y at a perturbed x
  // Forward against the definition.
  const auto xv = to_host(be, x), yv = to_host(be, y), wv = to_host(be, w), bv = to_host(be, b);
  for (int t = 0; t < 5; ++t) {
    double m = 0, v = 0;
    for (int i = 0; i < 7; ++i) m += xv[size_t(t * 7 + i)] / 7;
    for (int i = 0; i < 7; ++i) v += std::pow(xv[size_t(t * 7 + i)] - m, 2) / 7;
    for (int i = 0; i < 7; ++i)
      EXPECT_NEAR(yv[size_t(t * 7 + i)],
                  (xv[size_t(t * 7 + i)] - m) / std::sqrt(v + double(1e-5f)) * wv[size_t(i)] + bv[size_t(i)], 1e-12);
  }
}

TEST(CpuOps, RmsNormBackwardMatchesFiniteDifferences) {
  CpuBackend be(1);
  Rng rng(3);
  const Shape s{4, 9};
  Buffer x = random_tensor(be, F64, s, rng), w = random_tensor(be, F64, Shape{9}, rng),
         r = random_tensor(be, F64, s, rng);
  Buffer y = be.allocate(F64, s), rstd = be.allocate(F64, Shape{4});
  auto loss = [&] {
    be.rmsnorm_forward(y, rstd, x, w, 1e-5f);
    return dot(y, r);
  };
  loss();
  Buffer dx = be.allocate(F64, s);
  be.rmsnorm_backward(dx, r, x, rstd, w);
  expect_gradient(x, to_host(be, dx), loss, 36, kTol, "rmsnorm dx");
  loss();
  const auto xv = to_host(be, x), yv = to_host(be, y), wv = to_host(be, w);
  for (int t = 0; t < 4; ++t) {
    double ms = 0;
    for (int i = 0; i < 9; ++i) ms += xv[size_t(t * 9 + i)] * xv[size_t(t * 9 + i)] / 9;
    for (int i = 0; i < 9; ++i)
      EXPECT_NEAR(yv[size_t(t * 9 + i)], xv[size_t(t * 9 + i)] / std::sqrt(ms + double(1e-5f)) * wv[size_t(i)], 1e-12);
  }
}

TEST(CpuOps, ActivationsBackwardMatchFiniteDifferences) {
  CpuBackend be(1);
  Rng rng(4);
  const Shape s{3, 8};
  for (Activation a : {Activation::Gelu, Activation::GeluTanh, Activation::Relu}) {
    Buffer x = random_tensor(be, F64, s, rng), r = random_tensor(be, F64, s, rng);
    Buffer y = be.allocate(F64, s);
    auto loss = [&] {
      be.activation_forward(a, y, x);
      return dot(y, r);
    };
    loss();
    Buffer dx = be.allocate(F64, s);
    be.activation_backward(a, dx, r, x);
    expect_gradient(x, to_host(be, dx), loss, 24, kTol, "activation dx");
  }
  // Forward values at known points.
  Buffer x = be.allocate(F64, Shape{3}), y = be.allocate(F64, Shape{3});
  const double xs[3] = {-1.0, 0.5, 2.0};
  be.copy_from_host(x, xs);
  be.activation_forward(Activation::Gelu, y, x);
  auto yv = to_host(be, y);
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(yv[size_t(i)], 0.5 * xs[i] * (1 + std::erf(xs[i] / std::sqrt(2.0))), 1e-14);
}

TEST(CpuOps, SwiGluBackwardMatchesFiniteDifferences) {
  CpuBackend be(1);
  Rng rng(5);
  Buffer gu = random_tensor(be, F64, Shape{3, 10}, rng), r = random_tensor(be, F64, Shape{3, 5}, rng);
  Buffer y = be.allocate(F64, Shape{3, 5});
  auto loss = [&] {
    be.swiglu_forward(y, gu);
    return dot(y, r);
  };
  loss();
  Buffer dgu = be.allocate(F64, Shape{3, 10});
  be.swiglu_backward(dgu, r, gu);
  expect_gradient(gu, to_host(be, dgu), loss, 30, kTol, "swiglu dgate_up");
  loss();
  const auto g = to_host(be, gu), yv = to_host(be, y);
  for (int t = 0; t < 3; ++t)
    for (int i = 0; i < 5; ++i) {
      const double a = g[size_t(t * 10 + i)], u = g[size_t(t * 10 + 5 + i)];
      EXPECT_NEAR(yv[size_t(t * 5 + i)], a / (1 + std::exp(-a)) * u, 1e-14);
    }
}

TEST(CpuOps, RopeBackwardMatchesFiniteDifferences) {
  CpuBackend be(1);
  Rng rng(6);
  std::vector<Buffer> keep;
  SequenceIndex seq = make_index(be, keep, {{3}, {5}}, 2);
  const int D = 4, Hq = 2, Hkv = 1, W = (Hq + 2 * Hkv) * D;
  // cos/sin table for 8 positions, theta 10000.
  std::vector<double> cs(8 * D);
  for (int p = 0; p < 8; ++p)
    for (int j = 0; j < D / 2; ++j) {
      const double f = std::pow(10000.0, -2.0 * j / D);
      cs[size_t(p * D + j)] = std::cos(p * f);
      cs[size_t(p * D + D / 2 + j)] = std::sin(p * f);
    }
  Buffer table = be.allocate(F64, Shape{8, D});
  be.copy_from_host(table, cs.data());
  Buffer x = random_tensor(be, F64, Shape{8, W}, rng), r = random_tensor(be, F64, Shape{8, W}, rng);
  Buffer y = be.allocate(F64, Shape{8, W});
  auto loss = [&] {
    be.convert(y, x);
    be.rope(y, Hq + Hkv, D, seq, table, false);
    return dot(y, r);
  };
  loss();
  // The rotation at position 0 is the identity; v heads are never rotated.
  const auto xv = to_host(be, x), yv = to_host(be, y);
  for (int i = 0; i < W; ++i) EXPECT_DOUBLE_EQ(yv[size_t(i)], xv[size_t(i)]);
  Buffer dx = be.allocate(F64, Shape{8, W});
  be.convert(dx, r);
  be.rope(dx, Hq + Hkv, D, seq, table, true);
  expect_gradient(x, to_host(be, dx), loss, 64, kTol, "rope dx");
}

// Direct attention for query row `qrow` of head h over the given key rows.
std::vector<double> attend(const std::vector<double>& x, int W, int D, int Hq, int Hkv, int h,
                           int qrow, const std::vector<int>& key_rows, double scale) {
  const int g = h / (Hq / Hkv);
  std::vector<double> s;
  double mx = -1e300, sum = 0;
  for (int kr : key_rows) {
    double d = 0;
    for (int k = 0; k < D; ++k) d += x[size_t(qrow * W + h * D + k)] * x[size_t(kr * W + (Hq + g) * D + k)];
    s.push_back(d * scale);
    mx = std::max(mx, s.back());
  }
  for (auto& v : s) sum += (v = std::exp(v - mx));
  std::vector<double> out(size_t(D), 0.0);
  for (size_t j = 0; j < key_rows.size(); ++j)
    for (int k = 0; k < D; ++k) out[size_t(k)] += s[j] / sum * x[size_t(key_rows[j] * W + (Hq + Hkv + g) * D + k)];
  return out;
}

class Attention : public ::testing::TestWithParam<bool> {};

// Plain segments, and a shared prefix read by two segments.
TEST_P(Attention, BackwardMatchesFiniteDifferencesAndForwardMatchesDefinition) {
  const bool prefix = GetParam();
  CpuBackend be(2);
  Rng rng(7);
  std::vector<Buffer> keep;
  const std::vector<Seg> segs = prefix ? std::vector<Seg>{{2}, {3, 0, 2}, {4, 0, 2}}
                                       : std::vector<Seg>{{3}, {5}};
  SequenceIndex seq = make_index(be, keep, segs, 0);
  const int D = 3, Hq = 4, Hkv = 2, W = (Hq + 2 * Hkv) * D, T = seq.num_rows;
  be.reserve_attention(T, seq.max_keys, Hq, W);
  Buffer qkv = random_tensor(be, F64, Shape{T, W}, rng);
  Buffer r = random_tensor(be, F64, Shape{T, Hq * D}, rng);
  Buffer out = be.allocate(F64, Shape{T, Hq * D});
  Buffer probs = be.allocate(F64, Shape{Hq * seq.host_prob_offsets.back()});
  const float scale = 0.7f;
  auto loss = [&] {
    be.attention_forward(out, probs, qkv, Hq, Hkv, seq, scale);
    return dot(out, r);
  };
  loss();
  const auto x = to_host(be, qkv), o = to_host(be, out);
  for (size_t s = 0; s < segs.size(); ++s) {
    const int r0 = seq.host_offsets[s];
    for (int i = 0; i < segs[s].len; ++i) {
      std::vector<int> keys;
      for (int j = 0; j < segs[s].prefix_len; ++j) keys.push_back(segs[s].prefix_start + j);
      for (int j = 0; j <= i; ++j) keys.push_back(r0 + j);
      for (int h = 0; h < Hq; ++h) {
        const auto ref = attend(x, W, D, Hq, Hkv, h, r0 + i, keys, double(scale));
        for (int k = 0; k < D; ++k)
          EXPECT_NEAR(o[size_t((r0 + i) * Hq * D + h * D + k)], ref[size_t(k)], 1e-12)
              << "segment " << s << " row " << i << " head " << h;
      }
    }
  }
  Buffer dqkv = be.allocate(F64, Shape{T, W});
  be.attention_backward(dqkv, r, qkv, probs, Hq, Hkv, seq, scale);
  expect_gradient(qkv, to_host(be, dqkv), loss, T * W, kTol, "attention dqkv");
}

INSTANTIATE_TEST_SUITE_P(Layouts, Attention, ::testing::Values(false, true),
                         [](const auto& test_info) { return test_info.param ? "SharedPrefix" : "Plain"; });

// The backward pass gives the same bits every time with the same threads,
// also where many segments add into one shared prefix (the prompt): its
// share must not be summed in an order that depends on thread timing. Large
// enough to run on two threads; repeated, since a timing-dependent order
// shows only on some calls.
TEST(CpuOps, AttentionBackwardIsDeterministicWithASharedPrefix) {
  CpuBackend be(2);
  Rng rng(11);
  std::vector<Buffer> keep;
  std::vector<Seg> segs = {{20}};
  for (int i = 0; i < 24; ++i) segs.push_back({8 + (i * 7) % 30, 0, 20});
  SequenceIndex seq = make_index(be, keep, segs, 20);
  const int D = 16, Hq = 6, Hkv = 2, W = (Hq + 2 * Hkv) * D, T = seq.num_rows;
  ASSERT_GE(int64_t(T) * seq.max_keys * W, 65536) << "too small to run on two threads";
  be.reserve_attention(T, seq.max_keys, Hq, W);
  Buffer qkv = random_tensor(be, DType::F32, Shape{T, W}, rng);
  Buffer r = random_tensor(be, DType::F32, Shape{T, Hq * D}, rng);
  Buffer out = be.allocate(DType::F32, Shape{T, Hq * D});
  Buffer probs = be.allocate(DType::F32, Shape{Hq * seq.host_prob_offsets.back()});
  be.attention_forward(out, probs, qkv, Hq, Hkv, seq, 0.25f);
  Buffer dqkv = be.allocate(DType::F32, Shape{T, W});
  be.attention_backward(dqkv, r, qkv, probs, Hq, Hkv, seq, 0.25f);
  const std::vector<float> first(dqkv.ptr<float>(), dqkv.ptr<float>() + dqkv.view().numel());
  for (int rep = 0; rep < 40; ++rep) {
    be.attention_backward(dqkv, r, qkv, probs, Hq, Hkv, seq, 0.25f);
    ASSERT_EQ(0, std::memcmp(first.data(), dqkv.ptr<float>(), first.size() * sizeof(float)))
        << "call " << rep << " differs from the first";
  }
}

// The CPU keeps every probability: Hq x rows x max_keys act elements bound
// the [Hq, L, p + L] blocks of any batch that fits. E.g. the 175B
// tensor-parallel-8 shape of docs/cuda.md (12 heads, 20 prompt rows + 16
// examples of 64 tokens: 1044 rows, 84 keys).
TEST(CpuOps, AttentionKeepsTheProbabilities) {
  CpuBackend be(1);
  const AttentionSavedSize z = be.attention_saved_size(1044, 84, 12, 128);
  EXPECT_EQ(z.elems, 12 * 1044 * 84);
  EXPECT_FALSE(z.stat_dtype);
}

TEST(CpuOps, EmbeddingAndPromptGradient) {
  CpuBackend be(1);
  Rng rng(8);
  std::vector<Buffer> keep;
  const int P = 2, C = 3;
  SequenceIndex seq = make_index(be, keep, {{4}, {3}}, P);
  const int32_t toks[7] = {-1, -2, 5, 1, -1, -2, 2};
  Buffer tokens = be.allocate(DType::I32, Shape{7});
  be.copy_from_host(tokens, toks);
  Buffer table = random_tensor(be, F64, Shape{6, C}, rng);  // vocabulary shard [0, 6)
  Buffer prompt = random_tensor(be, F64, Shape{P, C}, rng);
  Buffer x = be.allocate(F64, Shape{7, C}), r = random_tensor(be, F64, Shape{7, C}, rng);
  auto loss = [&] {
    be.embed_forward(x, tokens, table, 0, prompt, seq);
    return dot(x, r);
  };
  loss();
  const auto xv = to_host(be, x), tv = to_host(be, table), pv = to_host(be, prompt);
  for (int k = 0; k < C; ++k) {
    EXPECT_EQ(xv[size_t(0 * C + k)], pv[size_t(0 * C + k)]);
    EXPECT_EQ(xv[size_t(5 * C + k)], pv[size_t(1 * C + k)]);
    EXPECT_EQ(xv[size_t(2 * C + k)], tv[size_t(5 * C + k)]);
    EXPECT_EQ(xv[size_t(6 * C + k)], tv[size_t(2 * C + k)]);
  }
  Buffer dprompt = be.allocate(F64, Shape{P, C});
  be.prompt_backward(dprompt, r, tokens, seq);
  expect_gradient(prompt, to_host(be, dprompt), loss, P * C, kTol, "dprompt");
  // A shard that does not hold token 5 gives zeros there.
  be.embed_forward(x, tokens, table.view().slice_rows(0, 3), 3, Tensor{}, seq);
  const auto xs = to_host(be, x);
  for (int k = 0; k < C; ++k) {
    EXPECT_EQ(xs[size_t(0 * C + k)], 0.0);                     // prompt left to rank 0
    EXPECT_EQ(xs[size_t(2 * C + k)], tv[size_t(2 * C + k)]);   // token 5 = local row 2
    EXPECT_EQ(xs[size_t(3 * C + k)], 0.0);                     // token 1 is on another shard
  }
}

// A deep prompt's keys and values: two examples, each [prompt, text] (the
// prompt rows twice, as without a shared prompt segment), qkv rows of 2
// query heads, 1 kv head of width 2 (k at columns 4-5, v at 6-7).
TEST(CpuOps, PrefixKeysAndValuesAndTheirGradient) {
  CpuBackend be(1);
  Rng rng(10);
  std::vector<Buffer> keep;
  const int P = 2, D = 2, W = 4 * D, col = 2 * D, C = 2 * D;
  SequenceIndex seq = make_index(be, keep, {{4}, {3}}, P);
  const int32_t toks[7] = {-1, -2, 5, 1, -1, -2, 2};
  Buffer tokens = be.allocate(DType::I32, Shape{7});
  be.copy_from_host(tokens, toks);
  Buffer prefix = random_tensor(be, F64, Shape{P, C}, rng);
  Buffer qkv0 = random_tensor(be, F64, Shape{7, W}, rng);
  Buffer qkv = be.allocate(F64, Shape{7, W}), r = random_tensor(be, F64, Shape{7, W}, rng);
  auto loss = [&] {
    be.convert(qkv, qkv0);
    be.prefix_kv_forward(qkv, col, prefix, tokens, seq);
    return dot(qkv, r);
  };
  loss();
  const auto x = to_host(be, qkv), x0 = to_host(be, qkv0), pv = to_host(be, prefix);
  for (int t = 0; t < 7; ++t)
    for (int c = 0; c < W; ++c) {
      const bool replaced = toks[t] < 0 && c >= col && c < col + C;
      const double want = replaced ? pv[size_t((-1 - toks[t]) * C + c - col)] : x0[size_t(t * W + c)];
      EXPECT_EQ(x[size_t(t * W + c)], want) << "row " << t << " column " << c;
    }
  // The gradient: each prompt row sums the two rows that hold it; those rows'
  // k and v columns pass nothing back, every other column is left as it was.
  Buffer dprefix = be.allocate(F64, Shape{P, C});
  Buffer dqkv = be.allocate(F64, Shape{7, W});
  be.convert(dqkv, r);
  be.prefix_kv_backward(dprefix, dqkv, col, tokens, seq);
  expect_gradient(prefix, to_host(be, dprefix), loss, P * C, kTol, "dprefix");
  const auto g = to_host(be, dqkv), rv = to_host(be, r);
  for (int t = 0; t < 7; ++t)
    for (int c = 0; c < W; ++c) {
      const bool replaced = toks[t] < 0 && c >= col && c < col + C;
      EXPECT_EQ(g[size_t(t * W + c)], replaced ? 0.0 : rv[size_t(t * W + c)]) << t << "," << c;
    }
}

TEST(CpuOps, CrossEntropyBackwardMatchesFiniteDifferences) {
  CpuBackend be(1);
  Rng rng(9);
  const int B = 3, V = 6;
  Buffer logits = random_tensor(be, F64, Shape{B, V}, rng, 2.0);
  const int32_t tg[B] = {0, 5, 2};
  Buffer targets = be.allocate(DType::I32, Shape{B});
  be.copy_from_host(targets, tg);
  Buffer mx = be.allocate(F64, Shape{B}), se = be.allocate(F64, Shape{B}), pick = be.allocate(F64, Shape{B});
  const double w = 0.25;
  auto loss = [&] {
    be.row_max(mx, logits);
    be.row_sumexp(se, logits, mx);
    be.pick_target(pick, logits, targets, 0);
    double s = 0;
    for (int b = 0; b < B; ++b)
      s += w * (std::log(test::get_element(se, b)) + test::get_element(mx, b) - test::get_element(pick, b));
    return s;
  };
  const double l = loss();
  // Against log-softmax computed directly.
  const auto lv = to_host(be, logits);
  double ref = 0;
  for (int b = 0; b < B; ++b) {
    double z = 0;
    for (int v = 0; v < V; ++v) z += std::exp(lv[size_t(b * V + v)]);
    ref += w * (std::log(z) - lv[size_t(b * V + tg[b])]);
  }
  EXPECT_NEAR(l, ref, 1e-12);
  Buffer d = be.allocate(F64, Shape{B, V});
  be.cross_entropy_backward(d, logits, mx, se, targets, 0, float(w));
  expect_gradient(logits, to_host(be, d), loss, B * V, kTol, "dlogits");
}

TEST(CpuOps, GatherScatterAndPositions) {
  CpuBackend be(1);
  Rng rng(10);
  std::vector<Buffer> keep;
  SequenceIndex seq = make_index(be, keep, {{2}, {3}}, 0);
  Buffer x = random_tensor(be, F64, Shape{5, 2}, rng);
  Buffer g = be.allocate(F64, Shape{2, 2});
  be.gather_rows(g, x, seq.answer_rows);
  const auto xv = to_host(be, x), gv = to_host(be, g);
  EXPECT_EQ(gv[0], xv[2]);  // row 1
  EXPECT_EQ(gv[2], xv[8]);  // row 4
  Buffer dx = be.allocate(F64, Shape{5, 2});
  be.scatter_add_rows(dx, g, seq.answer_rows);
  const auto dv = to_host(be, dx);
  EXPECT_EQ(dv[2], xv[2]);
  EXPECT_EQ(dv[0], 0.0);
  Buffer table = random_tensor(be, F64, Shape{4, 2}, rng);
  Buffer y = be.allocate(F64, Shape{5, 2});
  be.add_positions(y, table, seq);
  const auto yv = to_host(be, y), tv = to_host(be, table);
  EXPECT_EQ(yv[4 * 2 + 1], tv[2 * 2 + 1]);  // row 4 is position 2
}

// The step's sums on the device side of the interface: the loss
// log(sumexp) + max - target summed over examples and the count of
// examples whose largest label logit (the first of ties) is the truth,
// against a direct computation from the logits.
TEST(CpuOps, AccumulateLossAndSumSquares) {
  CpuBackend be(1);
  Rng rng(17);
  const int64_t B = 6, L = 3;
  std::vector<double> z(size_t(B * L));
  for (auto& v : z) v = rng.normal();
  z[size_t(2 * L + 1)] = z[size_t(2 * L + 0)];  // a tie in example 2: the first wins
  const std::vector<int32_t> labels = {0, 1, 0, 2, 2, 1};
  Buffer logits = be.allocate(F64, Shape{B, L});
  be.copy_from_host(logits, z.data());
  Buffer mx = be.allocate(F64, Shape{B}), se = be.allocate(F64, Shape{B}), tg = be.allocate(F64, Shape{B});
  Buffer lab = be.allocate(DType::I32, Shape{B});
  be.copy_from_host(lab, labels.data());
  be.row_max(mx, logits);
  be.row_sumexp(se, logits, mx);
  be.pick_target(tg, logits, lab, 0);
  Buffer sums = be.allocate(F64, Shape{2});
  const double start[2] = {1.5, 2.0};  // it adds to what is there
  be.copy_from_host(sums, start);
  be.accumulate_loss(sums, mx, se, tg, logits, lab);
  double loss = 0, correct = 0;
  for (int64_t b = 0; b < B; ++b) {
    double m = -1e300, sum = 0;
    int best = 0;
    for (int64_t l = 0; l < L; ++l) {
      m = std::max(m, z[size_t(b * L + l)]);
      if (z[size_t(b * L + l)] > z[size_t(b * L + best)]) best = int(l);
    }
    for (int64_t l = 0; l < L; ++l) sum += std::exp(z[size_t(b * L + l)] - m);
    loss += std::log(sum) + m - z[size_t(b * L + labels[size_t(b)])];
    correct += best == labels[size_t(b)];
  }
  const auto got = to_host(be, sums);
  EXPECT_NEAR(got[0], 1.5 + loss, 1e-12);
  EXPECT_EQ(got[1], 2.0 + correct);

  // A generate task: N target rows (here B, read as tokens) and no labels
  // (label logits of 0 columns): every row's loss, no count.
  Buffer no_labels = be.allocate(F64, Shape{B, 0});
  be.accumulate_loss(sums, mx, se, tg, no_labels, Tensor{});
  const auto got2 = to_host(be, sums);
  EXPECT_NEAR(got2[0], 1.5 + 2 * loss, 1e-12);
  EXPECT_EQ(got2[1], 2.0 + correct);

  Buffer x = random_tensor(be, F64, Shape{4, 5}, rng);
  Buffer out = be.allocate(F64, Shape{1});
  be.sum_squares(out, x);
  const auto xv = to_host(be, x);
  double sq = 0;
  for (double v : xv) sq += v * v;
  EXPECT_NEAR(to_host(be, out)[0], sq, 1e-12);
  // The CPU back end updates the prompt on the host: the device update ops are not its.
  EXPECT_THROW(be.clip_by_norm(x, out, 1.0), Error);
}

}  // namespace
}  // namespace sptrain
