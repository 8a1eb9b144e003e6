// The device optimizer updates against a plain host reimplementation of the
// documented formulas (include/sptrain/optim/adamw.hpp, adafactor.hpp): double
// arithmetic, state stored in f32 as the host optimizers do. Several steps on
// random prompts and gradients; parameters and state compared after each.
// Both sides do the same double arithmetic and round to f32 the same way, so
// they agree to about one f32 rounding (relative 1e-6; bound 1e-5).
#include <cmath>

#include "cuda_test_util.hpp"
#include "sptrain/backend/cuda/optimizer_kernels.hpp"

namespace sptrain {
namespace {

using namespace cuda_test;

constexpr double kTolOptim = 1e-5;

std::vector<float> to_f32(const std::vector<double>& v) { return {v.begin(), v.end()}; }
std::vector<double> to_f64(const std::vector<float>& v) { return {v.begin(), v.end()}; }

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
  for (int64_t step = 1; step <= 5; ++step) {
    const auto g = to_f32(random_values(rng_, n, 0.1));
    gpu().copy_from_host(gg, g.data());
    const double lr = 1e-2 / double(step);
    adamw_update(gpu(), gp, gg, gm, gv, step, lr, h);
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
    Buffer scratch = gpu().allocate(DType::F64, Shape{adafactor_scratch_size(R)});
    Buffer gg = gpu().allocate(DType::F32, Shape{R, C});
    for (int64_t step = 1; step <= 5; ++step) {
      auto g = to_f32(random_values(rng_, n, 0.1));
      if (step == 3) g[0] = 0.f;  // a zero gradient stays finite thanks to eps1
      gpu().copy_from_host(gg, g.data());
      const double lr = 0.3 / double(step);
      adafactor_update(gpu(), gp, gg, grow, gcol, scratch, step, lr, h);
      adafactor_reference(p, g, row, col, R, C, step, lr, h);
      expect_close(get(gpu(), gp), to_f64(p), kTolOptim, str("adafactor param, step ", step));
      expect_close(get(gpu(), grow), to_f64(row), kTolOptim, str("adafactor row, step ", step));
      expect_close(get(gpu(), gcol), to_f64(col), kTolOptim, str("adafactor col, step ", step));
    }
  }
}

TEST_F(CudaOptimizer, BadArgumentsAreErrors) {
  Buffer p = gpu().allocate(DType::F32, Shape{2, 3}), g = gpu().allocate(DType::F32, Shape{2, 3});
  Buffer m = gpu().allocate(DType::F32, Shape{2, 3}), wrong = gpu().allocate(DType::F32, Shape{5});
  EXPECT_THROW(adamw_update(gpu(), p, g, m, wrong, 1, 0.1, AdamWHyper{}), Error);
  EXPECT_THROW(adamw_update(gpu(), p, g, m, m, 0, 0.1, AdamWHyper{}), Error);  // step starts at 1
  Buffer row = gpu().allocate(DType::F32, Shape{2}), col = gpu().allocate(DType::F32, Shape{3});
  Buffer small = gpu().allocate(DType::F64, Shape{3});
  EXPECT_THROW(adafactor_update(gpu(), p, g, row, col, small, 1, 0.1, AdafactorHyper{}), Error);
}

}  // namespace
}  // namespace sptrain
