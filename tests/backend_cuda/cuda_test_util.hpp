#pragma once
// Helpers for the GPU-versus-CPU tests: a fixture that skips without a GPU
// and seeds a generator from the clock (printed, and overridable with
// SPTRAIN_TEST_SEED to replay a failure), inputs rounded to bf16 so both
// back ends see exactly the same numbers, and a norm-relative comparison.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "../support/test_util.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/backend/cuda/cuda_backend.hpp"

namespace sptrain::cuda_test {

inline uint64_t test_seed() {
  const char* env = std::getenv("SPTRAIN_TEST_SEED");
  const uint64_t seed =
      env ? std::strtoull(env, nullptr, 10)
          : uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  std::cout << "[   seed   ] " << seed << " (replay with SPTRAIN_TEST_SEED=" << seed << ")\n";
  return seed;
}

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_device_available(&why)) GTEST_SKIP() << "no usable CUDA device: " << why;
    gpu_ = std::make_unique<CudaBackend>(0, 0);
    rng_ = Rng(test_seed());
  }
  CudaBackend& gpu() { return *gpu_; }
  CpuBackend cpu_{1};
  std::unique_ptr<CudaBackend> gpu_;
  Rng rng_{0};
};

inline double round_bf16(double v) { return bf16_to_f32(f32_to_bf16(float(v))); }

// n normal draws times scale, rounded to bf16 (exact in f32 and bf16 alike).
inline std::vector<double> random_values(Rng& rng, int64_t n, double scale = 1.0) {
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = round_bf16(scale * rng.normal());
  return v;
}

inline int random_int(Rng& rng, int lo, int hi) {  // in [lo, hi]
  return lo + int(rng.below(uint64_t(hi - lo + 1)));
}

// A tensor of `dtype` on `be` holding `values` (converted from f64 on the device).
inline Buffer put(Backend& be, DType dtype, Shape shape, const std::vector<double>& values) {
  SPT_ASSERT(int64_t(values.size()) == shape.numel());
  Buffer f64 = be.allocate(DType::F64, shape);
  be.copy_from_host(f64, values.data());
  Buffer b = be.allocate(dtype, shape);
  be.convert(b, f64);
  return b;
}

inline std::vector<double> get(Backend& be, const Tensor& t) { return test::to_host(be, t); }

// max_i |got - want| <= tol * max_i |want| (a scale-relative bound, so that
// entries near zero after cancellation do not dominate).
inline void expect_close(const std::vector<double>& got, const std::vector<double>& want,
                         double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0, err = 0;
  size_t worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    const double e = std::abs(got[i] - want[i]);
    if (!(e <= err)) {  // also catches NaN
      err = e;
      worst = i;
    }
  }
  if (scale == 0) scale = 1;
  EXPECT_LE(err, tol * scale) << what << ": largest difference at element " << worst << " (gpu "
                              << got[worst] << ", cpu " << want[worst] << "), scale " << scale
                              << ", tolerance " << tol << " x scale";
}

// A segment: its length and its prefix (first row, rows). Positions count on
// from the prefix's length, as the batch builder numbers them.
struct Seg {
  int len;
  int prefix_start = 0;
  int prefix_len = 0;
};

inline SequenceIndex make_index(Backend& be, std::vector<Buffer>& keep,
                                const std::vector<Seg>& segs, int prompt_len) {
  SequenceIndex s;
  s.num_segments = int(segs.size());
  s.num_examples = int(segs.size());
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

// Random layouts of up to max_segs text segments of 1..max_len rows, with
// `prefix` rows in front: none, one shared prefix segment (the prompt-sharing
// layout), or two prefix segments read by alternate segments.
enum class Layout { Plain, SharedPrefix, TwoPrefixes };
inline std::vector<Seg> random_segments(Rng& rng, Layout layout, int max_segs, int max_len,
                                        int prefix) {
  std::vector<Seg> segs;
  auto rand_len = [&] { return 1 + int(rng.below(uint64_t(max_len))); };
  if (layout == Layout::SharedPrefix) segs.push_back({prefix});
  if (layout == Layout::TwoPrefixes) {
    segs.push_back({prefix});
    segs.push_back({1 + prefix / 2});
  }
  const int n = 1 + int(rng.below(uint64_t(max_segs)));
  for (int k = 0; k < n; ++k) {
    switch (layout) {
      case Layout::Plain: segs.push_back({rand_len()}); break;
      case Layout::SharedPrefix: segs.push_back({rand_len(), 0, prefix}); break;
      case Layout::TwoPrefixes:
        segs.push_back(k % 2 == 0 ? Seg{rand_len(), 0, prefix} : Seg{rand_len(), prefix, 1 + prefix / 2});
        break;
    }
  }
  return segs;
}

// Tolerances (scale-relative, see expect_close). In f32 the two back ends
// differ only in summation order and f32-versus-f64 statistics; in bf16 every
// stored result is rounded to 8 significant bits (relative error up to
// 2^-9 ≈ 0.2% per rounding), so the bounds leave room for one or two
// roundings plus f32 accumulation.
constexpr double kTolF32 = 1e-5;          // element-wise, norms, gathers in f32
constexpr double kTolF32Sum = 1e-4;       // f32 products and attention (sums over K or L terms)
constexpr double kTolBf16 = 1e-2;         // one bf16 rounding of the result (norms, activations)
constexpr double kTolBf16Product = 2e-2;  // bf16 products and attention (rounded inputs to later sums)

inline double tol(DType act, double f32, double bf16) { return act == DType::F32 ? f32 : bf16; }

}  // namespace sptrain::cuda_test
