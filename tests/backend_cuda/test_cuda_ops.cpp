// Every op of the CUDA back end against the CPU back end on fresh random data
// (seed printed), in f32 (tight: checks the index math) and in bf16 (the
// training dtype: checks the rounding stays within the stated tolerance).
// Inputs are rounded to bf16 first, so both back ends see the same numbers;
// the CPU always computes in f32. Every test skips without a GPU.
#include <cmath>

#include "cuda_test_util.hpp"

namespace sptrain {
namespace {

using namespace cuda_test;

constexpr DType kActs[] = {DType::F32, DType::BF16};

class CudaOps : public GpuTest {};

// ---- memory ----

TEST_F(CudaOps, AllocateIsZeroAndCopiesRoundTripEveryDtype) {
  const int64_t n = random_int(rng_, 1, 5000);
  for (DType t : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32, DType::I64}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    const size_t bytes = size_t(n) * dtype_size(t);
    Buffer b = gpu().allocate(t, Shape{n});
    std::vector<unsigned char> back(bytes, 0xff);
    gpu().copy_to_host(back.data(), b);
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(back[i], 0) << "byte " << i << " not zeroed";
    std::vector<unsigned char> src(bytes);
    for (auto& c : src) c = static_cast<unsigned char>(rng_.below(256));
    gpu().copy_from_host(b, src.data());
    gpu().copy_to_host(back.data(), b);
    EXPECT_EQ(back, src);
  }
}

TEST_F(CudaOps, ConvertRoundsLikeTheHost) {
  const int64_t n = random_int(rng_, 1, 3000);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = std::ldexp(rng_.normal(), random_int(rng_, -12, 12));  // not pre-rounded
  const DType floats[] = {DType::F64, DType::F32, DType::BF16, DType::F16};
  for (DType a : floats) {
    for (DType b : floats) {
      SCOPED_TRACE(str(dtype_name(a), " -> ", dtype_name(b)));
      auto chain = [&](Backend& be) {  // f64 -> a -> b -> f64
        Buffer src = put(be, a, Shape{n}, v);
        Buffer dst = be.allocate(b, Shape{n});
        be.convert(dst, src);
        return get(be, dst);
      };
      EXPECT_EQ(chain(gpu()), chain(cpu_));  // both round to nearest even, through f32
    }
  }
}

TEST_F(CudaOps, FillEveryDtype) {
  const int64_t n = random_int(rng_, 1, 3000);
  for (double value : {0.0, 2.5, -3.0}) {
    for (DType t : {DType::F32, DType::F64, DType::BF16, DType::F16}) {
      Buffer b = gpu().allocate(t, Shape{n});
      gpu().fill(b, value);
      const auto got = get(gpu(), b);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], value) << dtype_name(t);
    }
    Buffer i32 = gpu().allocate(DType::I32, Shape{n});
    gpu().fill(i32, value);
    std::vector<int32_t> h32(static_cast<size_t>(n));
    gpu().copy_to_host(h32.data(), i32);
    for (int32_t x : h32) ASSERT_EQ(x, int32_t(value));
    Buffer i64 = gpu().allocate(DType::I64, Shape{n});
    gpu().fill(i64, value);
    std::vector<int64_t> h64(static_cast<size_t>(n));
    gpu().copy_to_host(h64.data(), i64);
    for (int64_t x : h64) ASSERT_EQ(x, int64_t(value));
  }
}

TEST_F(CudaOps, AllocationFailureNamesRankAndDevice) {
  try {
    gpu().allocate(DType::F32, Shape{int64_t(1) << 42});  // 16 TiB
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank 0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("device 0"), std::string::npos) << msg;
  }
  // The back end still works afterwards.
  Buffer b = put(gpu(), DType::F32, Shape{3}, {1, 2, 3});
  EXPECT_EQ(get(gpu(), b), (std::vector<double>{1, 2, 3}));
}

// ---- dense ----

TEST_F(CudaOps, MatmulMatchesCpu) {
  struct Types {
    DType ab, c;
    double tol;
  };
  // bf16 -> bf16: the result is rounded once (2^-9) and C, when accumulated,
  // is bf16 too; f32 outputs only differ in summation order.
  const Types types[] = {{DType::BF16, DType::BF16, kTolBf16Product},
                         {DType::BF16, DType::F32, kTolF32Sum},
                         {DType::F32, DType::F32, kTolF32Sum}};
  // Sizes that are multiples of 16 (what cuBLASLt's fastest kernels want)
  // and any sizes (odd leading dimensions, which it may refuse: then the back
  // end's fallback kernel runs).
  auto size = [&](bool aligned) {
    return aligned ? 16 * random_int(rng_, 1, 16) : random_int(rng_, 1, 300);
  };
  for (const Types& ty : types) {
    for (int variant = 0; variant < 8; ++variant) {
      const bool trans_b = variant & 1, accumulate = variant & 2, aligned = variant & 4;
      const int M = size(aligned), N = size(aligned), K = size(aligned);
      SCOPED_TRACE(str(dtype_name(ty.ab), "->", dtype_name(ty.c), " M=", M, " N=", N, " K=", K,
                       trans_b ? " trans_b" : "", accumulate ? " accumulate" : ""));
      const Shape sa{M, K}, sb = trans_b ? Shape{N, K} : Shape{K, N}, sc{M, N};
      const auto a = random_values(rng_, sa.numel()), b = random_values(rng_, sb.numel()),
                 c = random_values(rng_, sc.numel());
      Buffer ga = put(gpu(), ty.ab, sa, a), gb = put(gpu(), ty.ab, sb, b),
             gc = put(gpu(), ty.c, sc, c);
      Buffer ca = put(cpu_, DType::F32, sa, a), cb = put(cpu_, DType::F32, sb, b),
             cc = put(cpu_, DType::F32, sc, c);
      gpu().matmul(gc, ga, gb, trans_b, accumulate);
      cpu_.matmul(cc, ca, cb, trans_b, accumulate);
      const auto want = get(cpu_, cc);
      expect_close(get(gpu(), gc), want, ty.tol, "matmul");
      // A second call reuses the cached plan and gives the same result.
      if (!accumulate) {
        gpu().matmul(gc, ga, gb, trans_b, accumulate);
        expect_close(get(gpu(), gc), want, ty.tol, "matmul (cached plan)");
      }
    }
  }
  // The LM head's shapes: bf16 [B, d]·[n_labels, d]ᵀ -> f32 logits, then the
  // backward bf16 [B, n_labels]·[n_labels, d] -> bf16 (odd leading dimensions).
  const int B = random_int(rng_, 1, 16), L = 3, d = 16 * random_int(rng_, 1, 8);
  const auto h = random_values(rng_, B * d), w = random_values(rng_, L * d),
             dz = random_values(rng_, B * L);
  Buffer gh = put(gpu(), DType::BF16, Shape{B, d}, h), gw = put(gpu(), DType::BF16, Shape{L, d}, w);
  Buffer gz = gpu().allocate(DType::F32, Shape{B, L});
  Buffer ch = put(cpu_, DType::F32, Shape{B, d}, h), cw = put(cpu_, DType::F32, Shape{L, d}, w);
  Buffer cz = cpu_.allocate(DType::F32, Shape{B, L});
  gpu().matmul(gz, gh, gw, true, false);
  cpu_.matmul(cz, ch, cw, true, false);
  expect_close(get(gpu(), gz), get(cpu_, cz), kTolF32Sum, "head logits");
  Buffer gdz = put(gpu(), DType::BF16, Shape{B, L}, dz), gdh = gpu().allocate(DType::BF16, Shape{B, d});
  Buffer cdz = put(cpu_, DType::F32, Shape{B, L}, dz), cdh = cpu_.allocate(DType::F32, Shape{B, d});
  gpu().matmul(gdh, gdz, gw, false, false);
  cpu_.matmul(cdh, cdz, cw, false, false);
  expect_close(get(gpu(), gdh), get(cpu_, cdh), kTolBf16Product, "head dhn");
  // Mixed input dtypes are refused with an Error, not computed wrongly.
  Buffer f32w = put(gpu(), DType::F32, Shape{L, d}, w);
  EXPECT_THROW(gpu().matmul(gz, gh, f32w, true, false), Error);
}

TEST_F(CudaOps, AddAndAddBiasMatchCpu) {
  const int R = random_int(rng_, 1, 50), N = random_int(rng_, 1, 700);
  for (DType act : kActs) {
    SCOPED_TRACE(std::string(dtype_name(act)));
    const auto y = random_values(rng_, R * N), x = random_values(rng_, R * N),
               bias = random_values(rng_, N);
    Buffer gy = put(gpu(), act, Shape{R, N}, y), gx = put(gpu(), act, Shape{R, N}, x),
           gb = put(gpu(), act, Shape{N}, bias);
    Buffer cy = put(cpu_, DType::F32, Shape{R, N}, y), cx = put(cpu_, DType::F32, Shape{R, N}, x),
           cb = put(cpu_, DType::F32, Shape{N}, bias);
    gpu().add(gy, gx);
    cpu_.add(cy, cx);
    expect_close(get(gpu(), gy), get(cpu_, cy), tol(act, kTolF32, kTolBf16), "add");
    gpu().add_bias(gy, gb);
    cpu_.add_bias(cy, cb);
    expect_close(get(gpu(), gy), get(cpu_, cy), tol(act, kTolF32, kTolBf16), "add_bias");
  }
}

// ---- norms ----

TEST_F(CudaOps, NormsMatchCpu) {
  for (int C : {random_int(rng_, 1, 64), random_int(rng_, 700, 1300)}) {
    const int T = random_int(rng_, 1, 40);
    for (DType act : kActs) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE(str(dtype_name(act), " T=", T, " C=", C, with_bias ? " bias" : ""));
        // Norms: f32 statistics on both sides; bf16 rounds the output once.
        const double t = tol(act, kTolF32, kTolBf16);
        const Shape s{T, C};
        const auto x = random_values(rng_, T * C, 2.0), w = random_values(rng_, C),
                   b = random_values(rng_, C), dout = random_values(rng_, T * C),
                   dx0 = random_values(rng_, T * C);
        Buffer gx = put(gpu(), act, s, x), gw = put(gpu(), act, Shape{C}, w),
               gb = put(gpu(), act, Shape{C}, b), gd = put(gpu(), act, s, dout);
        Buffer cx = put(cpu_, DType::F32, s, x), cw = put(cpu_, DType::F32, Shape{C}, w),
               cb = put(cpu_, DType::F32, Shape{C}, b), cd = put(cpu_, DType::F32, s, dout);
        Buffer go = gpu().allocate(act, s), gm = gpu().allocate(DType::F32, Shape{T}),
               gr = gpu().allocate(DType::F32, Shape{T});
        Buffer co = cpu_.allocate(DType::F32, s), cm = cpu_.allocate(DType::F32, Shape{T}),
               cr = cpu_.allocate(DType::F32, Shape{T});
        const Tensor gbias = with_bias ? gb.view() : Tensor{};
        const Tensor cbias = with_bias ? cb.view() : Tensor{};

        gpu().layernorm_forward(go, gm, gr, gx, gw, gbias, 1e-5f);
        cpu_.layernorm_forward(co, cm, cr, cx, cw, cbias, 1e-5f);
        expect_close(get(gpu(), go), get(cpu_, co), t, "layernorm out");
        expect_close(get(gpu(), gm), get(cpu_, cm), kTolF32, "layernorm mean");
        expect_close(get(gpu(), gr), get(cpu_, cr), kTolF32, "layernorm rstd");
        // Backward accumulates into dx.
        Buffer gdx = put(gpu(), act, s, dx0), cdx = put(cpu_, DType::F32, s, dx0);
        gpu().layernorm_backward(gdx, gd, gx, gm, gr, gw);
        cpu_.layernorm_backward(cdx, cd, cx, cm, cr, cw);
        expect_close(get(gpu(), gdx), get(cpu_, cdx), t, "layernorm dx");

        if (with_bias) continue;  // RMSNorm has no bias
        gpu().rmsnorm_forward(go, gr, gx, gw, 1e-5f);
        cpu_.rmsnorm_forward(co, cr, cx, cw, 1e-5f);
        expect_close(get(gpu(), go), get(cpu_, co), t, "rmsnorm out");
        expect_close(get(gpu(), gr), get(cpu_, cr), kTolF32, "rmsnorm rstd");
        Buffer gdx2 = put(gpu(), act, s, dx0), cdx2 = put(cpu_, DType::F32, s, dx0);
        gpu().rmsnorm_backward(gdx2, gd, gx, gr, gw);
        cpu_.rmsnorm_backward(cdx2, cd, cx, cr, cw);
        expect_close(get(gpu(), gdx2), get(cpu_, cdx2), t, "rmsnorm dx");
      }
    }
  }
}

// ---- activations ----

TEST_F(CudaOps, ActivationsMatchCpu) {
  const int T = random_int(rng_, 1, 30), F = random_int(rng_, 1, 500);
  for (DType act : kActs) {
    // Element-wise in f32: only erff/tanhf/expf versus the double library;
    // bf16 rounds the result once.
    const double t = tol(act, kTolF32, kTolBf16);
    for (Activation a : {Activation::Gelu, Activation::GeluTanh, Activation::Relu}) {
      SCOPED_TRACE(str(dtype_name(act), " activation ", int(a)));
      const auto x = random_values(rng_, T * F, 2.0), d = random_values(rng_, T * F);
      Buffer gx = put(gpu(), act, Shape{T, F}, x), gd = put(gpu(), act, Shape{T, F}, d);
      Buffer cx = put(cpu_, DType::F32, Shape{T, F}, x), cd = put(cpu_, DType::F32, Shape{T, F}, d);
      Buffer gy = gpu().allocate(act, Shape{T, F}), cy = cpu_.allocate(DType::F32, Shape{T, F});
      gpu().activation_forward(a, gy, gx);
      cpu_.activation_forward(a, cy, cx);
      expect_close(get(gpu(), gy), get(cpu_, cy), t, "activation forward");
      gpu().fill(gy, 5.0);  // backward overwrites
      gpu().activation_backward(a, gy, gd, gx);
      cpu_.activation_backward(a, cy, cd, cx);
      expect_close(get(gpu(), gy), get(cpu_, cy), t, "activation backward");
    }
    SCOPED_TRACE(str(dtype_name(act), " swiglu"));
    const auto gu = random_values(rng_, T * 2 * F, 2.0), d = random_values(rng_, T * F);
    Buffer ggu = put(gpu(), act, Shape{T, 2 * F}, gu), gd = put(gpu(), act, Shape{T, F}, d);
    Buffer cgu = put(cpu_, DType::F32, Shape{T, 2 * F}, gu), cd = put(cpu_, DType::F32, Shape{T, F}, d);
    Buffer gy = gpu().allocate(act, Shape{T, F}), cy = cpu_.allocate(DType::F32, Shape{T, F});
    gpu().swiglu_forward(gy, ggu);
    cpu_.swiglu_forward(cy, cgu);
    expect_close(get(gpu(), gy), get(cpu_, cy), t, "swiglu forward");
    Buffer gdgu = gpu().allocate(act, Shape{T, 2 * F}), cdgu = cpu_.allocate(DType::F32, Shape{T, 2 * F});
    gpu().fill(gdgu, 5.0);  // backward overwrites both halves
    gpu().swiglu_backward(gdgu, gd, ggu);
    cpu_.swiglu_backward(cdgu, cd, cgu);
    expect_close(get(gpu(), gdgu), get(cpu_, cdgu), t, "swiglu backward");
  }
}

// ---- positions ----

TEST_F(CudaOps, RopeAndLearnedPositionsMatchCpu) {
  std::vector<Buffer> keep;
  const auto segs = random_segments(rng_, Layout::SharedPrefix, 5, 40, random_int(rng_, 1, 6));
  const SequenceIndex gs = make_index(gpu(), keep, segs, 0), cs = make_index(cpu_, keep, segs, 0);
  const int T = gs.num_rows, max_pos = gs.max_keys + random_int(rng_, 0, 5);
  const int D = 2 * random_int(rng_, 1, 64), Hq = random_int(rng_, 1, 6), Hkv = random_int(rng_, 1, 3);
  const int W = (Hq + 2 * Hkv) * D;
  std::vector<double> table(size_t(max_pos) * D);
  for (int p = 0; p < max_pos; ++p)
    for (int j = 0; j < D / 2; ++j) {
      const double f = std::pow(10000.0, -2.0 * j / D);
      table[size_t(p * D + j)] = std::cos(p * f);
      table[size_t(p * D + D / 2 + j)] = std::sin(p * f);
    }
  Buffer gcs = put(gpu(), DType::F32, Shape{max_pos, D}, table);
  Buffer ccs = put(cpu_, DType::F32, Shape{max_pos, D}, table);
  for (DType act : kActs) {
    for (bool inverse : {false, true}) {
      SCOPED_TRACE(str(dtype_name(act), " D=", D, " Hq=", Hq, " Hkv=", Hkv, inverse ? " inverse" : ""));
      const auto x = random_values(rng_, int64_t(T) * W);
      Buffer gx = put(gpu(), act, Shape{T, W}, x), cx = put(cpu_, DType::F32, Shape{T, W}, x);
      gpu().rope(gx, Hq + Hkv, D, gs, gcs, inverse);
      cpu_.rope(cx, Hq + Hkv, D, cs, ccs, inverse);
      expect_close(get(gpu(), gx), get(cpu_, cx), tol(act, kTolF32, kTolBf16), "rope");
    }
    const int C = random_int(rng_, 1, 300);
    const auto x = random_values(rng_, int64_t(T) * C), pt = random_values(rng_, int64_t(max_pos) * C);
    Buffer gx = put(gpu(), act, Shape{T, C}, x), cx = put(cpu_, DType::F32, Shape{T, C}, x);
    Buffer gp = put(gpu(), act, Shape{max_pos, C}, pt), cp = put(cpu_, DType::F32, Shape{max_pos, C}, pt);
    gpu().add_positions(gx, gp, gs);
    cpu_.add_positions(cx, cp, cs);
    expect_close(get(gpu(), gx), get(cpu_, cx), tol(act, kTolF32, kTolBf16), "add_positions");
  }
}

// ---- attention ----

struct AttnCase {
  int heads, kv_heads, head_dim, max_len;
  Layout layout;
  int prefix;
};

// The log-sum-exp of the scores of every row and query head ([T, Hq]), in
// double from the inputs, as an independent check of what the forward keeps.
std::vector<double> reference_lse(const std::vector<Seg>& segs, const std::vector<double>& qkv,
                                  int Hq, int Hkv, int D, double scale) {
  const int W = (Hq + 2 * Hkv) * D;
  std::vector<double> lse;
  int r0 = 0;
  for (const Seg& g : segs) {
    for (int i = 0; i < g.len; ++i) {
      for (int h = 0; h < Hq; ++h) {
        const int kv = h / (Hq / Hkv);
        std::vector<double> scores;
        auto score = [&](int key_row) {
          double dot = 0;
          for (int d = 0; d < D; ++d)
            dot += qkv[size_t(r0 + i) * W + size_t(h * D + d)] *
                   qkv[size_t(key_row) * W + size_t((Hq + kv) * D + d)];
          scores.push_back(scale * dot);
        };
        for (int c = 0; c < g.prefix_len; ++c) score(g.prefix_start + c);
        for (int j = 0; j <= i; ++j) score(r0 + j);
        double mx = -INFINITY, sum = 0;
        for (double v : scores) mx = std::max(mx, v);
        for (double v : scores) sum += std::exp(v - mx);
        lse.push_back(mx + std::log(sum));
      }
    }
    r0 += g.len;
  }
  return lse;
}

TEST_F(CudaOps, AttentionMatchesCpu) {
  const AttnCase cases[] = {
      // grouped-query, short segments, no prefix
      {4, 2, 8, random_int(rng_, 1, 20), Layout::Plain, 0},
      // the prompt-sharing layout: one prefix segment read by every segment
      {4, 2, 8, random_int(rng_, 1, 20), Layout::SharedPrefix, random_int(rng_, 1, 8)},
      // multi-head, several warps per row, shared prefix
      {3, 3, 64, random_int(rng_, 40, 80), Layout::SharedPrefix, random_int(rng_, 1, 20)},
      // one kv head, head_dim > 128, two different prefixes
      {6, 1, 160, random_int(rng_, 20, 50), Layout::TwoPrefixes, random_int(rng_, 2, 10)},
      // smallest bf16 head, long rows
      {2, 1, 2, random_int(rng_, 100, 140), Layout::Plain, 0},
  };
  for (const AttnCase& ac : cases) {
    std::vector<Buffer> keep;
    const auto segs = random_segments(rng_, ac.layout, 4, ac.max_len, ac.prefix);
    const SequenceIndex gs = make_index(gpu(), keep, segs, 0), cs = make_index(cpu_, keep, segs, 0);
    const int T = gs.num_rows, Hq = ac.heads, Hkv = ac.kv_heads, D = ac.head_dim;
    const int W = (Hq + 2 * Hkv) * D;
    const AttentionSavedSize gsize = gpu().attention_saved_size(T, gs.max_keys, Hq, D);
    const AttentionSavedSize csize = cpu_.attention_saved_size(T, cs.max_keys, Hq, D);
    ASSERT_TRUE(gsize.stat_dtype);
    ASSERT_FALSE(csize.stat_dtype);
    const float scale = float(1.0 / std::sqrt(double(D)));
    gpu().reserve_attention(T, gs.max_keys, Hq, W);
    cpu_.reserve_attention(T, cs.max_keys, Hq, W);
    for (DType act : kActs) {
      SCOPED_TRACE(str(dtype_name(act), " Hq=", Hq, " Hkv=", Hkv, " D=", D, " layout ",
                       int(ac.layout), " prefix=", ac.prefix, " segments=", gs.num_segments,
                       " rows=", T, " max_keys=", gs.max_keys));
      // Scores and softmax in f32; the output sums up to max_keys products of rounded inputs.
      const double t = tol(act, kTolF32Sum, kTolBf16Product);
      const auto qkv = random_values(rng_, int64_t(T) * W), dout = random_values(rng_, int64_t(T) * Hq * D);
      Buffer gq = put(gpu(), act, Shape{T, W}, qkv), cq = put(cpu_, DType::F32, Shape{T, W}, qkv);
      Buffer go = gpu().allocate(act, Shape{T, Hq * D}), co = cpu_.allocate(DType::F32, Shape{T, Hq * D});
      Buffer glse = gpu().allocate(DType::F32, Shape{gsize.elems});
      Buffer cp = cpu_.allocate(DType::F32, Shape{csize.elems});
      gpu().fill(glse, 7.0);  // the forward must write every row's statistic
      gpu().attention_forward(go, glse, gq, Hq, Hkv, gs, scale);
      cpu_.attention_forward(co, cp, cq, Hq, Hkv, cs, scale);
      expect_close(get(gpu(), go), get(cpu_, co), t, "attention out");
      // The kept log-sum-exp: f32 sums of the same (bf16-exact) inputs in both dtypes.
      expect_close(get(gpu(), glse), reference_lse(segs, qkv, Hq, Hkv, D, scale), kTolF32,
                   "attention log-sum-exp");

      // Backward: the GPU recomputes the probabilities from what its forward
      // kept, the CPU reads the ones its forward stored.
      Buffer gd = put(gpu(), act, Shape{T, Hq * D}, dout), cd = put(cpu_, DType::F32, Shape{T, Hq * D}, dout);
      Buffer gdq = gpu().allocate(act, Shape{T, W}), cdq = cpu_.allocate(DType::F32, Shape{T, W});
      gpu().fill(gdq, 3.0);  // the backward overwrites
      gpu().attention_backward(gdq, gd, gq, glse, Hq, Hkv, gs, scale);
      cpu_.attention_backward(cdq, cd, cq, cp, Hq, Hkv, cs, scale);
      const auto want = get(cpu_, cdq), got = get(gpu(), gdq);
      expect_close(got, want, t, "attention dqkv");
      // Also q, k and v parts, and the prefix rows, separately, so that a
      // small part cannot hide behind a large one.
      auto part = [&](const std::vector<double>& v, int row0, int rows, int from, int width) {
        std::vector<double> out;
        for (int r = row0; r < row0 + rows; ++r)
          for (int c = from; c < from + width; ++c) out.push_back(v[size_t(r) * W + size_t(c)]);
        return out;
      };
      expect_close(part(got, 0, T, 0, Hq * D), part(want, 0, T, 0, Hq * D), t, "attention dq");
      expect_close(part(got, 0, T, Hq * D, Hkv * D), part(want, 0, T, Hq * D, Hkv * D), t, "attention dk");
      expect_close(part(got, 0, T, (Hq + Hkv) * D, Hkv * D), part(want, 0, T, (Hq + Hkv) * D, Hkv * D), t,
                   "attention dv");
      if (ac.prefix > 0)
        expect_close(part(got, 0, ac.prefix, Hq * D, 2 * Hkv * D),
                     part(want, 0, ac.prefix, Hq * D, 2 * Hkv * D), t, "attention prefix dk|dv");
      // Deterministic: a second backward gives the same bits.
      if (act == DType::BF16) {
        gpu().attention_backward(gdq, gd, gq, glse, Hq, Hkv, gs, scale);
        EXPECT_EQ(get(gpu(), gdq), got) << "attention backward differs between two runs";
      }
    }
  }
}

TEST_F(CudaOps, AttentionKeepsOneF32PerRowAndHead) {
  // The 175B tensor-parallel-8 shape of docs/cuda.md: 12 heads of 128, 20
  // prompt rows + 16 examples of 64 tokens = 1044 rows, 84 keys.
  const AttentionSavedSize z = gpu().attention_saved_size(1044, 84, 12, 128);
  EXPECT_EQ(z.elems, 1044 * 12);
  EXPECT_TRUE(z.stat_dtype);
}

TEST_F(CudaOps, AttentionNeedsReserveAndAnF32Statistic) {
  std::vector<Buffer> keep;
  const SequenceIndex s = make_index(gpu(), keep, {{2}, {3, 0, 2}}, 0);
  Buffer qkv = gpu().allocate(DType::BF16, Shape{5, 4 * 4});
  Buffer out = gpu().allocate(DType::BF16, Shape{5, 2 * 4});
  Buffer lse = gpu().allocate(DType::F32, Shape{5 * 2});
  EXPECT_THROW(gpu().attention_forward(out, lse, qkv, 2, 1, s, 0.5f), Error);
  gpu().reserve_attention(5, 5, 2, 16);
  Buffer act_lse = gpu().allocate(DType::BF16, Shape{5 * 2});
  EXPECT_THROW(gpu().attention_forward(out, act_lse, qkv, 2, 1, s, 0.5f), Error);
  gpu().attention_forward(out, lse, qkv, 2, 1, s, 0.5f);
  gpu().synchronize();
}

// ---- embedding and prompt ----

TEST_F(CudaOps, EmbeddingAndPromptMatchCpu) {
  for (bool shared : {true, false}) {
    std::vector<Buffer> keep;
    const int P = random_int(rng_, 0, 4);
    // Shared: [prompt | text...] with positions P.. in the text segments;
    // unshared: each segment [prompt, text] with positions from 0.
    std::vector<Seg> segs;
    if (shared) {
      segs = random_segments(rng_, Layout::SharedPrefix, 5, 20, P);
      if (P == 0) segs.erase(segs.begin());
    } else {
      for (int k = random_int(rng_, 1, 5); k > 0; --k) segs.push_back({P + random_int(rng_, 1, 20)});
    }
    const SequenceIndex gs = make_index(gpu(), keep, segs, P), cs = make_index(cpu_, keep, segs, P);
    const int T = gs.num_rows, C = random_int(rng_, 1, 200), V = 20, vocab_start = 5;
    std::vector<int32_t> tokens(static_cast<size_t>(T));
    for (int t = 0; t < T; ++t)
      tokens[size_t(t)] = gs.host_positions[size_t(t)] < P ? -1 - gs.host_positions[size_t(t)]
                                                           : random_int(rng_, 0, 39);
    Buffer gt = gpu().allocate(DType::I32, Shape{T}), ct = cpu_.allocate(DType::I32, Shape{T});
    gpu().copy_from_host(gt, tokens.data());
    cpu_.copy_from_host(ct, tokens.data());
    const auto table = random_values(rng_, V * C), prompt = random_values(rng_, int64_t(P) * C);
    Buffer gpr = put(gpu(), DType::F32, Shape{P, C}, prompt), cpr = put(cpu_, DType::F32, Shape{P, C}, prompt);
    for (DType act : kActs) {
      SCOPED_TRACE(str(dtype_name(act), shared ? " shared" : " unshared", " P=", P, " C=", C,
                       " rows=", T));
      Buffer gtab = put(gpu(), act, Shape{V, C}, table), ctab = put(cpu_, DType::F32, Shape{V, C}, table);
      Buffer gx = gpu().allocate(act, Shape{T, C}), cx = cpu_.allocate(DType::F32, Shape{T, C});
      for (bool with_prompt : {true, false}) {
        gpu().fill(gx, 9.0);  // every row is written
        gpu().embed_forward(gx, gt, gtab, vocab_start, with_prompt ? gpr.view() : Tensor{}, gs);
        cpu_.embed_forward(cx, ct, ctab, vocab_start, with_prompt ? cpr.view() : Tensor{}, cs);
        // Copies (and f32 -> bf16 for the prompt rows): exact in f32, one rounding in bf16.
        expect_close(get(gpu(), gx), get(cpu_, cx), tol(act, 0.0, kTolBf16), "embed_forward");
      }
      // prompt_backward accumulates into dprompt (f32), by prompt row.
      const auto dx = random_values(rng_, int64_t(T) * C), dp0 = random_values(rng_, int64_t(P) * C);
      Buffer gdx = put(gpu(), act, Shape{T, C}, dx), cdx = put(cpu_, DType::F32, Shape{T, C}, dx);
      Buffer gdp = put(gpu(), DType::F32, Shape{P, C}, dp0), cdp = put(cpu_, DType::F32, Shape{P, C}, dp0);
      gpu().prompt_backward(gdp, gdx, gt, gs);
      cpu_.prompt_backward(cdp, cdx, ct, cs);
      // The same f32 additions in the same order on both sides.
      expect_close(get(gpu(), gdp), get(cpu_, cdp), kTolF32, "prompt_backward");
    }
  }
}

TEST_F(CudaOps, GatherAndScatterRowsMatchCpu) {
  const int R = random_int(rng_, 2, 50), C = random_int(rng_, 1, 300), n = random_int(rng_, 1, 8);
  std::vector<int32_t> rows(static_cast<size_t>(n));
  for (auto& r : rows) r = random_int(rng_, 0, R - 1);
  rows[0] = rows[size_t(n - 1)];  // a repeated row must add up twice
  Buffer gr = gpu().allocate(DType::I32, Shape{n}), cr = cpu_.allocate(DType::I32, Shape{n});
  gpu().copy_from_host(gr, rows.data());
  cpu_.copy_from_host(cr, rows.data());
  for (DType act : kActs) {
    SCOPED_TRACE(str(dtype_name(act), " R=", R, " C=", C, " n=", n));
    const auto x = random_values(rng_, int64_t(R) * C), d = random_values(rng_, int64_t(n) * C);
    Buffer gx = put(gpu(), act, Shape{R, C}, x), cx = put(cpu_, DType::F32, Shape{R, C}, x);
    Buffer go = gpu().allocate(act, Shape{n, C}), co = cpu_.allocate(DType::F32, Shape{n, C});
    gpu().gather_rows(go, gx, gr);
    cpu_.gather_rows(co, cx, cr);
    expect_close(get(gpu(), go), get(cpu_, co), 0.0, "gather_rows");  // exact copies
    Buffer gd = put(gpu(), act, Shape{n, C}, d), cd = put(cpu_, DType::F32, Shape{n, C}, d);
    gpu().scatter_add_rows(gx, gd, gr);
    cpu_.scatter_add_rows(cx, cd, cr);
    expect_close(get(gpu(), gx), get(cpu_, cx), tol(act, kTolF32, kTolBf16), "scatter_add_rows");
  }
}

// ---- cross-entropy pieces ----

TEST_F(CudaOps, CrossEntropyPiecesMatchCpu) {
  const int B = random_int(rng_, 1, 20), V = random_int(rng_, 2, 3000);
  const int64_t offset = random_int(rng_, 0, 10);
  std::vector<int32_t> targets(static_cast<size_t>(B));
  for (auto& t : targets) t = int32_t(random_int(rng_, 0, V + 15));  // some outside the shard
  Buffer gt = gpu().allocate(DType::I32, Shape{B}), ct = cpu_.allocate(DType::I32, Shape{B});
  gpu().copy_from_host(gt, targets.data());
  cpu_.copy_from_host(ct, targets.data());
  const auto logits = random_values(rng_, int64_t(B) * V, 3.0);
  Buffer cl = put(cpu_, DType::F32, Shape{B, V}, logits);
  Buffer cm = cpu_.allocate(DType::F32, Shape{B}), cs = cpu_.allocate(DType::F32, Shape{B}),
         cpk = cpu_.allocate(DType::F32, Shape{B}), cd = cpu_.allocate(DType::F32, Shape{B, V});
  const float weight = float(1.0 / B);
  cpu_.row_max(cm, cl);
  cpu_.row_sumexp(cs, cl, cm);
  cpu_.pick_target(cpk, cl, ct, offset);
  cpu_.cross_entropy_backward(cd, cl, cm, cs, ct, offset, weight);
  // The model's logits are f32 (stat); bf16 logits work too (same values, as
  // they are bf16-exact). dlogits is act: bf16 in training.
  for (DType logit_t : kActs) {
    for (DType dlogit_t : kActs) {
      SCOPED_TRACE(str("logits ", dtype_name(logit_t), " dlogits ", dtype_name(dlogit_t), " B=", B,
                       " V=", V, " offset=", offset));
      Buffer gl = put(gpu(), logit_t, Shape{B, V}, logits);
      Buffer gm = gpu().allocate(DType::F32, Shape{B}), gs = gpu().allocate(DType::F32, Shape{B}),
             gpk = gpu().allocate(DType::F32, Shape{B}), gd = gpu().allocate(dlogit_t, Shape{B, V});
      gpu().row_max(gm, gl);
      gpu().row_sumexp(gs, gl, gm);
      gpu().pick_target(gpk, gl, gt, offset);
      gpu().fill(gd, 4.0);  // overwritten
      gpu().cross_entropy_backward(gd, gl, gm, gs, gt, offset, weight);
      expect_close(get(gpu(), gm), get(cpu_, cm), 0.0, "row_max");  // exact
      expect_close(get(gpu(), gs), get(cpu_, cs), kTolF32, "row_sumexp");  // f32 vs f64 sum
      expect_close(get(gpu(), gpk), get(cpu_, cpk), 0.0, "pick_target");  // exact
      expect_close(get(gpu(), gd), get(cpu_, cd), tol(dlogit_t, kTolF32, kTolBf16),
                   "cross_entropy_backward");
    }
  }
}

}  // namespace
}  // namespace sptrain
