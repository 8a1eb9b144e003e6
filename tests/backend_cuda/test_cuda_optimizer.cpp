// The device optimizer updates against a plain host reimplementation of the
// documented formulas (include/sptrain/optim/adamw.hpp, adafactor.hpp): double
// arithmetic, state stored in f32 as the host optimizers do. Several steps on
// random prompts and gradients; parameters and state compared after each.
// Both sides do the same double arithmetic and round to f32 the same way, so
// they agree to about one f32 rounding (relative 1e-6; bound 1e-5).
#include <cmath>

#include "cuda_test_util.hpp"
#include "sptrain/optim/clip.hpp"

namespace sptrain {
namespace {

using namespace cuda_test;

constexpr double kTolOptim = 1e-5;

std::vector<float> to_f32(const std::vector<double>& v) { return {v.begin(), v.end()}; }
std::vector<double> to_f64(const std::vector<float>& v) { return {v.begin(), v.end()}; }

using AdamWHyper = Backend::AdamWStep;
using AdafactorHyper = Backend::AdafactorStep;

// A finite norm_sq (the update runs) or NaN (skipped), on the device.
Buffer norm_buffer(CudaBackend& gpu, double value) {
  Buffer b = gpu.allocate(DType::F64, Shape{1});
  gpu.copy_from_host(b, &value);
  return b;
}

// ---- host references ----

void adamw_reference(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m,
                     std::vector<float>& v, int64_t step, double lr, const AdamWHyper& h) {
  const double t = double(step);
  const double bc1 = 1.0 - std::pow(h.beta1, t), bc2 = 1.0 - std::pow(h.beta2, t);
  for (size_t i = 0; i < p.size(); ++i) {
    const double gi = g[i];
    m[i] = float(h.beta1 * m[i] + (1 - h.beta1) * gi);
    v[i] = float(h.beta2 * v[i] + (1 - h.beta2) * gi * gi);
    const double mhat = double(m[i]) / bc1, vhat = double(v[i]) / bc2;
    // lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), written as mhat / (sqrt(vhat) + eps).
    p[i] = float(double(p[i]) * (1 - lr * h.weight_decay) - lr * mhat / (std::sqrt(vhat) + h.eps));
  }
}

void adafactor_reference(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& row,
                         std::vector<float>& col, int64_t R, int64_t C, int64_t step, double lr,
                         const AdafactorHyper& h) {
  const double beta2t = 1.0 - std::pow(double(step), -h.decay_rate);
  const double n = double(R * C);
  double psq = 0;
  for (float x : p) psq += double(x) * x;
  for (int64_t i = 0; i < R; ++i) {
    double s = 0;
    for (int64_t j = 0; j < C; ++j) s += double(g[size_t(i * C + j)]) * g[size_t(i * C + j)] + h.eps1;
    row[size_t(i)] = float(beta2t * row[size_t(i)] + (1 - beta2t) * s / double(C));
  }
  for (int64_t j = 0; j < C; ++j) {
    double s = 0;
    for (int64_t i = 0; i < R; ++i) s += double(g[size_t(i * C + j)]) * g[size_t(i * C + j)] + h.eps1;
    col[size_t(j)] = float(beta2t * col[size_t(j)] + (1 - beta2t) * s / double(R));
  }
  double row_mean = 0;
  for (float r : row) row_mean += r;
  row_mean /= double(R);
  std::vector<double> u(size_t(R * C));
  double usq = 0;
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) {
      // Vhat = R C / mean(R); U = G / sqrt(Vhat).
      const double vhat = double(row[size_t(i)]) * col[size_t(j)] / row_mean;
      const double x = g[size_t(i * C + j)] / std::sqrt(vhat);
      u[size_t(i * C + j)] = x;
      usq += x * x;
    }
  const double clip = std::max(1.0, std::sqrt(usq / n) / h.clip_threshold);
  const double alpha = h.scale_parameter ? lr * std::max(h.eps2, std::sqrt(psq / n)) : lr;
  for (size_t k = 0; k < p.size(); ++k)
    p[k] = float(double(p[k]) - alpha * h.weight_decay * p[k] - alpha * u[k] / clip);
}

class CudaOptimizer : public GpuTest {};

TEST_F(CudaOptimizer, AdamWMatchesHostFormulas) {
  const int R = random_int(rng_, 1, 30), C = random_int(rng_, 1, 600);
  const int64_t n = int64_t(R) * C;
  AdamWHyper h;
  h.weight_decay = 0.01 * random_int(rng_, 0, 3);
  SCOPED_TRACE(str("R=", R, " C=", C, " wd=", h.weight_decay));
  auto p = to_f32(random_values(rng_, n, 0.2));
  std::vector<float> m(size_t(n), 0.f), v(size_t(n), 0.f);
  Buffer gp = put(gpu(), DType::F32, Shape{R, C}, to_f64(p));
  Buffer gm = gpu().allocate(DType::F32, Shape{R, C}), gv = gpu().allocate(DType::F32, Shape{R, C});
  Buffer gg = gpu().allocate(DType::F32, Shape{R, C});
  const Buffer norm = norm_buffer(gpu(), 1.0);
  for (int64_t step = 1; step <= 5; ++step) {
    const auto g = to_f32(random_values(rng_, n, 0.1));
    gpu().copy_from_host(gg, g.data());
    const double lr = 1e-2 / double(step);
    h.step = step;
    h.lr = lr;
    gpu().adamw_update(gp, gg, gm, gv, norm, h);
    adamw_reference(p, g, m, v, step, lr, h);
    expect_close(get(gpu(), gp), to_f64(p), kTolOptim, str("adamw param, step ", step));
    expect_close(get(gpu(), gm), to_f64(m), kTolOptim, str("adamw m, step ", step));
    expect_close(get(gpu(), gv), to_f64(v), kTolOptim, str("adamw v, step ", step));
  }
}

TEST_F(CudaOptimizer, AdafactorMatchesHostFormulas) {
  for (bool scale_parameter : {true, false}) {
    const int R = random_int(rng_, 1, 30), C = random_int(rng_, 1, 600);
    const int64_t n = int64_t(R) * C;
    AdafactorHyper h;
    h.scale_parameter = scale_parameter;
    h.weight_decay = 0.01 * random_int(rng_, 0, 3);
    h.clip_threshold = random_int(rng_, 0, 1) ? 1.0 : 0.05;  // 0.05: clipping active
    SCOPED_TRACE(str("R=", R, " C=", C, " scale_parameter=", scale_parameter, " wd=",
                     h.weight_decay, " clip=", h.clip_threshold));
    auto p = to_f32(random_values(rng_, n, 0.2));
    std::vector<float> row(size_t(R), 0.f), col(size_t(C), 0.f);
    Buffer gp = put(gpu(), DType::F32, Shape{R, C}, to_f64(p));
    Buffer grow = gpu().allocate(DType::F32, Shape{R}), gcol = gpu().allocate(DType::F32, Shape{C});
    Buffer scratch = gpu().allocate(DType::F64, Shape{Backend::adafactor_scratch_size(R)});
    Buffer gg = gpu().allocate(DType::F32, Shape{R, C});
    const Buffer norm = norm_buffer(gpu(), 1.0);
    for (int64_t step = 1; step <= 5; ++step) {
      auto g = to_f32(random_values(rng_, n, 0.1));
      if (step == 3) g[0] = 0.f;  // a zero gradient stays finite thanks to eps1
      gpu().copy_from_host(gg, g.data());
      const double lr = 0.3 / double(step);
      h.step = step;
      h.lr = lr;
      gpu().adafactor_update(gp, gg, grow, gcol, scratch, norm, h);
      adafactor_reference(p, g, row, col, R, C, step, lr, h);
      expect_close(get(gpu(), gp), to_f64(p), kTolOptim, str("adafactor param, step ", step));
      expect_close(get(gpu(), grow), to_f64(row), kTolOptim, str("adafactor row, step ", step));
      expect_close(get(gpu(), gcol), to_f64(col), kTolOptim, str("adafactor col, step ", step));
    }
  }
}

// The norm, clipping and the skip: sum_squares against the host's sum in
// double, clip_by_norm against optim/clip.cpp, and an update with a
// non-finite norm changes neither the parameter nor the state.
TEST_F(CudaOptimizer, NormClipAndSkipMatchTheHost) {
  const int R = random_int(rng_, 1, 30), C = random_int(rng_, 1, 600);
  const int64_t n = int64_t(R) * C;
  for (double max_norm : {0.0, 0.05, 1e9}) {
    SCOPED_TRACE(str("R=", R, " C=", C, " max_norm=", max_norm));
    auto g = to_f32(random_values(rng_, n, 0.1));
    Buffer gg = put(gpu(), DType::F32, Shape{R, C}, to_f64(g));
    Buffer nsq = gpu().allocate(DType::F64, Shape{1});
    gpu().sum_squares(nsq, gg);
    gpu().clip_by_norm(gg, nsq, max_norm);
    const double host_norm = clip_grad_norm(g.data(), g.size(), max_norm);
    double device_sq = 0;
    gpu().copy_to_host(&device_sq, nsq);
    EXPECT_NEAR(std::sqrt(device_sq), host_norm, 1e-12 * host_norm);
    expect_close(get(gpu(), gg), to_f64(g), kTolOptim, "clipped gradient");
  }
  // NaN norm: nothing moves.
  const auto p = to_f32(random_values(rng_, n, 0.2));
  Buffer gp = put(gpu(), DType::F32, Shape{R, C}, to_f64(p));
  Buffer gg = put(gpu(), DType::F32, Shape{R, C}, random_values(rng_, n, 0.1));
  Buffer gm = gpu().allocate(DType::F32, Shape{R, C}), gv = gpu().allocate(DType::F32, Shape{R, C});
  const Buffer nan = norm_buffer(gpu(), std::nan(""));
  gpu().clip_by_norm(gg, nan, 1.0);
  gpu().adamw_update(gp, gg, gm, gv, nan, AdamWHyper{1, 0.1});
  Buffer grow = gpu().allocate(DType::F32, Shape{R}), gcol = gpu().allocate(DType::F32, Shape{C});
  Buffer scratch = gpu().allocate(DType::F64, Shape{Backend::adafactor_scratch_size(R)});
  gpu().adafactor_update(gp, gg, grow, gcol, scratch, nan, AdafactorHyper{1, 0.1});
  expect_close(get(gpu(), gp), to_f64(p), 0.0, "parameter after skipped updates");
  expect_close(get(gpu(), gm), std::vector<double>(size_t(n), 0.0), 0.0, "adamw m after a skip");
  expect_close(get(gpu(), grow), std::vector<double>(size_t(R), 0.0), 0.0, "adafactor row after a skip");
}

// The step's loss sum and correct count on the device against the CPU back
// end's (itself checked against a direct computation, test_cpu_ops.cpp): a
// classify micro-batch (N = B target rows with label logits, ties included)
// and a generate one (N target rows, no labels: no count). Both add in
// double in the same order: equal to 1e-12.
TEST_F(CudaOptimizer, AccumulateLossMatchesTheCpu) {
  for (const bool generate : {false, true}) {
    const int B = random_int(rng_, 1, 9), L = generate ? 0 : random_int(rng_, 2, 5);
    const int N = generate ? B + random_int(rng_, 0, 20) : B;
    SCOPED_TRACE(str("B=", B, " L=", L, " N=", N));
    const auto stats = [&](double scale) { return to_f64(to_f32(random_values(rng_, N, scale))); };
    const std::vector<double> mx = stats(1.0), tg = stats(1.0);
    std::vector<double> se = stats(1.0);
    for (double& v : se) v = 1.0 + std::fabs(v);  // a sum of exponentials is >= 1
    auto z = to_f64(to_f32(random_values(rng_, int64_t(B) * L, 1.0)));
    if (L > 1) z[1] = z[0];  // a tie in example 0: the first wins
    std::vector<int32_t> labels(static_cast<size_t>(B), 0);
    for (int32_t& l : labels) l = L > 0 ? random_int(rng_, 0, L - 1) : 0;
    const double start[2] = {0.25, 3.0};  // it adds to what is there
    double got[2], want[2];
    for (Backend* be : {static_cast<Backend*>(&gpu()), static_cast<Backend*>(&cpu_)}) {
      Buffer sums = be->allocate(DType::F64, Shape{2});
      be->copy_from_host(sums, start);
      const Buffer m = put(*be, DType::F32, Shape{N}, mx), s = put(*be, DType::F32, Shape{N}, se),
                   t = put(*be, DType::F32, Shape{N}, tg);
      const Buffer logits = L > 0 ? put(*be, DType::F32, Shape{B, L}, z) : be->allocate(DType::F32, Shape{B, 0});
      const Buffer lab = be->allocate(DType::I32, Shape{B});
      be->copy_from_host(lab, labels.data());
      be->accumulate_loss(sums, m, s, t, logits, lab);
      be->copy_to_host(be == &cpu_ ? want : got, sums);
    }
    EXPECT_NEAR(got[0], want[0], 1e-12 * std::fabs(want[0]));
    EXPECT_EQ(got[1], want[1]);
    if (generate) {
      EXPECT_EQ(got[1], start[1]) << "a generate micro-batch counts no label";
    }
  }
}

TEST_F(CudaOptimizer, BadArgumentsAreErrors) {
  Buffer p = gpu().allocate(DType::F32, Shape{2, 3}), g = gpu().allocate(DType::F32, Shape{2, 3});
  Buffer m = gpu().allocate(DType::F32, Shape{2, 3}), wrong = gpu().allocate(DType::F32, Shape{5});
  const Buffer norm = norm_buffer(gpu(), 1.0);
  EXPECT_THROW(gpu().adamw_update(p, g, m, wrong, norm, AdamWHyper{1, 0.1}), Error);
  EXPECT_THROW(gpu().adamw_update(p, g, m, m, norm, AdamWHyper{0, 0.1}), Error);  // step starts at 1
  EXPECT_THROW(gpu().adamw_update(p, g, m, m, wrong, AdamWHyper{1, 0.1}), Error);  // norm is f64
  Buffer row = gpu().allocate(DType::F32, Shape{2}), col = gpu().allocate(DType::F32, Shape{3});
  Buffer small = gpu().allocate(DType::F64, Shape{3});
  EXPECT_THROW(gpu().adafactor_update(p, g, row, col, small, norm, AdafactorHyper{1, 0.1}), Error);
}

}  // namespace
}  // namespace sptrain
