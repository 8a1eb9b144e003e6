#pragma once
// Helpers shared by the tests: random tensors, host copies, temporary files,
// tiny model configurations and central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "sptrain/backend/backend.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/model/random_model.hpp"

namespace sptrain::test {

inline Buffer random_tensor(Backend& be, DType dtype, Shape shape, Rng& rng, double scale = 1.0) {
  Buffer b = be.allocate(dtype, shape);
  std::vector<double> v(size_t(shape.numel()));
  for (auto& x : v) x = scale * rng.normal();
  Buffer f64 = be.allocate(DType::F64, shape);
  be.copy_from_host(f64, v.data());
  be.convert(b, f64);
  return b;
}

inline std::vector<double> to_host(Backend& be, const Tensor& t) {
  Buffer f64 = be.allocate(DType::F64, t.shape);
  be.convert(f64, t);
  std::vector<double> v(size_t(t.numel()));
  be.copy_to_host(v.data(), f64);
  return v;
}

inline void set_element(Backend& be, const Tensor& t, int64_t i, double value) {
  SPT_ASSERT(t.device == Device::CPU && t.dtype == DType::F64);
  static_cast<double*>(t.data)[i] = value;
  (void)be;
}
inline double get_element(const Tensor& t, int64_t i) {
  SPT_ASSERT(t.device == Device::CPU && t.dtype == DType::F64);
  return static_cast<const double*>(t.data)[i];
}

// Central difference of loss() with respect to element i of the f64 CPU tensor t.
inline double finite_difference(const Tensor& t, int64_t i, const std::function<double()>& loss,
                                double h = 1e-6) {
  double* p = static_cast<double*>(t.data) + i;
  const double x = *p;
  *p = x + h;
  const double up = loss();
  *p = x - h;
  const double down = loss();
  *p = x;
  return (up - down) / (2 * h);
}

// Checks analytic[i] against finite differences at `count` spread-out elements of t.
inline void expect_gradient(const Tensor& t, const std::vector<double>& analytic,
                            const std::function<double()>& loss, int count, double rel_tol,
                            const std::string& what) {
  const int64_t n = t.numel();
  ASSERT_EQ(int64_t(analytic.size()), n) << what;
  double max_abs = 1e-12;
  for (double g : analytic) max_abs = std::max(max_abs, std::abs(g));
  Rng rng(12345);
  for (int k = 0; k < count && k < n; ++k) {
    const int64_t i = count >= n ? k : int64_t(rng.below(uint64_t(n)));
    const double fd = finite_difference(t, i, loss);
    // Relative to the gradient's scale, so tiny entries do not dominate.
    EXPECT_NEAR(analytic[size_t(i)], fd, rel_tol * max_abs)
        << what << " element " << i << " (max |grad| " << max_abs << ")";
  }
}

// A fresh folder for the current test (named after it), removed afterwards.
class ScratchDir {
 public:
  ScratchDir()
      : dir_(std::filesystem::temp_directory_path() /
             ("sptrain_test_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~ScratchDir() {
    std::error_code ignore;
    std::filesystem::remove_all(dir_, ignore);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

inline std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sptrain_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// Small configurations of both families, with the features that matter
// (grouped-query heads, untied head, biases, learned positions).
inline ModelConfig tiny_config(Family family) {
  ModelConfig c;
  c.family = family;
  c.name = family == Family::Gpt ? "tiny-gpt" : "tiny-llama";
  c.n_layers = 2;
  c.d_model = 16;
  c.head_dim = 4;
  c.vocab_size = 40;
  c.max_positions = 64;
  if (family == Family::Gpt) {
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.d_ffn = 32;
    c.norm = NormKind::LayerNorm;
    c.activation = Activation::Gelu;
    c.position = PositionKind::Learned;
    c.tied_embeddings = true;
    c.bias = true;
  } else {
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.d_ffn = 24;
    c.norm = NormKind::RmsNorm;
    c.activation = Activation::SwiGlu;
    c.position = PositionKind::Rope;
    c.rope_theta = 10000.f;
    c.tied_embeddings = false;
    c.bias = false;
  }
  c.norm_eps = 1e-5f;
  return c;
}

// The message of the sptrain::Error `f` throws; fails the test if none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an sptrain::Error";
  return "";
}

// A file's bytes.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Bit-for-bit equality (NaN payloads and signed zeros included).
inline ::testing::AssertionResult same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], 4) != 0)
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

}  // namespace sptrain::test
