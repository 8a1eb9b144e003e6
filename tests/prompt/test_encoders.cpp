// The reparameterisations of a prompt (prompt/encoder.hpp): each backward
// against central finite differences of its forward, the LSTM's forward
// against a plain per-step reference, and the parameter set's start of
// prefix tuning's MLP (it starts at the prefix it was given).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include <fstream>
#include <sstream>

#include "../support/test_util.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/prompt/peft.hpp"
#include "sptrain/prompt/encoder.hpp"
#include "sptrain/prompt/prompt_parameter.hpp"

namespace sptrain {
namespace {

std::vector<float> random_vector(Rng& rng, int64_t n, double scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = float((2 * rng.uniform() - 1) * scale);
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}

// Checks d loss / d x[i] for every element of x against (loss(x + h) -
// loss(x - h)) / 2h, h = 1e-3 (small: ReLU kinks; large enough for fp32 outputs),
// within tol x the gradient's largest magnitude.
void expect_matches_finite_differences(std::vector<float>& x, const std::vector<float>& grad,
                                       const std::function<double()>& loss, double tol,
                                       const std::string& what) {
  ASSERT_EQ(x.size(), grad.size()) << what;
  double top = 1e-12;
  for (float g : grad) top = std::max(top, double(std::abs(g)));
  const float h = 1e-3f;
  for (size_t i = 0; i < x.size(); ++i) {
    const float keep = x[i];
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    const double fd = (up - down) / (2.0 * double(h));
    EXPECT_NEAR(grad[i], fd, tol * top) << what << " element " << i;
  }
}

class PTuningEncoder : public ::testing::TestWithParam<const char*> {};

TEST_P(PTuningEncoder, BackwardMatchesFiniteDifferences) {
  const int d = 5, h = 4, rows = 3;
  auto enc = make_ptuning_encoder(GetParam(), d, h);
  Rng rng(12);
  std::vector<float> w(size_t(enc->size()));
  enc->init(w.data(), rng);
  for (float& v : w) v *= 3.0f;  // larger than PyTorch's init, so the ReLUs and gates bend
  std::vector<float> in = random_vector(rng, int64_t(rows) * d, 1.0), r = random_vector(rng, int64_t(rows) * d, 1.0);
  std::vector<float> out(in.size());
  auto loss = [&] {
    enc->forward(w.data(), in.data(), rows, out.data());
    return dot(out, r);
  };
  loss();
  std::vector<float> dw(w.size()), din(in.size());
  enc->backward(w.data(), r.data(), dw.data(), din.data());
  expect_matches_finite_differences(w, dw, loss, 2e-3, std::string(GetParam()) + " weights");
  expect_matches_finite_differences(in, din, loss, 2e-3, std::string(GetParam()) + " input");
}

INSTANTIATE_TEST_SUITE_P(Kinds, PTuningEncoder, ::testing::Values("mlp", "lstm"));

TEST(PTuningEncoder, LayoutIsPeftsNamesAndShapes) {
  const int d = 6, h = 3;
  const auto mlp = make_ptuning_encoder("mlp", d, h)->tensors();
  ASSERT_EQ(mlp.size(), 6u);
  EXPECT_EQ(mlp[0].name, "mlp_head.0.weight");
  EXPECT_EQ(mlp[4].name, "mlp_head.4.weight");
  EXPECT_EQ(mlp[4].rows, d);
  EXPECT_EQ(mlp[4].cols, h);
  const auto lstm = make_ptuning_encoder("lstm", d, h)->tensors();
  ASSERT_EQ(lstm.size(), 20u);
  EXPECT_EQ(lstm[0].name, "lstm_head.weight_ih_l0");
  EXPECT_EQ(lstm[0].rows, 4 * h);
  EXPECT_EQ(lstm[0].cols, d);
  EXPECT_EQ(lstm[4].name, "lstm_head.weight_ih_l0_reverse");
  EXPECT_EQ(lstm[8].name, "lstm_head.weight_ih_l1");
  EXPECT_EQ(lstm[8].cols, 2 * h);
  EXPECT_EQ(lstm[18].name, "mlp_head.2.weight");
  EXPECT_EQ(lstm[18].rows, d);
  EXPECT_EQ(lstm[18].cols, 2 * h);
  EXPECT_NEAR(lstm[1].init_bound, 1.0 / std::sqrt(3.0), 1e-12);  // U(-1/sqrt(h), 1/sqrt(h))
}

// One LSTM direction written out step by step (PyTorch's equations, gates
// i, f, g, o), against the encoder's first layer: an encoder whose later
// parts pass the first forward direction through unchanged is not available,
// so the reference runs the whole encoder: two bidirectional layers and the
// MLP head, each written plainly here.
TEST(PTuningEncoder, LstmForwardMatchesAPlainReference) {
  const int d = 3, h = 2, T = 4;
  auto enc = make_ptuning_encoder("lstm", d, h);
  const auto list = enc->tensors();
  Rng rng(11);
  std::vector<float> w(size_t(enc->size()));
  enc->init(w.data(), rng);
  const std::vector<float> in = random_vector(rng, int64_t(T) * d, 1.0);
  std::vector<float> got(in.size());
  enc->forward(w.data(), in.data(), T, got.data());

  std::vector<const float*> t;
  const float* at = w.data();
  for (const auto& e : list) {
    t.push_back(at);
    at += e.size();
  }
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  // x: [T, n]; returns [T, h] of one direction.
  auto direction = [&](const std::vector<double>& x, int n, int k, bool reverse) {
    const float *wi = t[size_t(4 * k)], *wh = t[size_t(4 * k + 1)], *bi = t[size_t(4 * k + 2)],
                *bh = t[size_t(4 * k + 3)];
    std::vector<double> out(size_t(T * h)), hp(size_t(h), 0.0), cp(size_t(h), 0.0);
    for (int s = 0; s < T; ++s) {
      const int tt = reverse ? T - 1 - s : s;
      std::vector<double> z(size_t(4 * h));
      for (int g = 0; g < 4 * h; ++g) {
        double v = double(bi[g]) + double(bh[g]);
        for (int j = 0; j < n; ++j) v += double(wi[g * n + j]) * x[size_t(tt * n + j)];
        for (int j = 0; j < h; ++j) v += double(wh[g * h + j]) * hp[size_t(j)];
        z[size_t(g)] = v;
      }
      for (int j = 0; j < h; ++j) {
        const double i = sig(z[size_t(j)]), f = sig(z[size_t(h + j)]), g = std::tanh(z[size_t(2 * h + j)]),
                     o = sig(z[size_t(3 * h + j)]);
        cp[size_t(j)] = f * cp[size_t(j)] + i * g;
        hp[size_t(j)] = o * std::tanh(cp[size_t(j)]);
        out[size_t(tt * h + j)] = hp[size_t(j)];
      }
    }
    return out;
  };
  auto concat = [&](const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> c(size_t(T * 2 * h));
    for (int r = 0; r < T; ++r)
      for (int j = 0; j < h; ++j) {
        c[size_t(r * 2 * h + j)] = a[size_t(r * h + j)];
        c[size_t(r * 2 * h + h + j)] = b[size_t(r * h + j)];
      }
    return c;
  };
  const std::vector<double> x0(in.begin(), in.end());
  const auto l0 = concat(direction(x0, d, 0, false), direction(x0, d, 1, true));
  const auto l1 = concat(direction(l0, 2 * h, 2, false), direction(l0, 2 * h, 3, true));
  auto linear = [&](const std::vector<double>& x, int n, const float* wm, const float* b, int m) {
    std::vector<double> y(size_t(T * m));
    for (int r = 0; r < T; ++r)
      for (int o = 0; o < m; ++o) {
        double v = b[o];
        for (int j = 0; j < n; ++j) v += double(wm[o * n + j]) * x[size_t(r * n + j)];
        y[size_t(r * m + o)] = v;
      }
    return y;
  };
  auto a = linear(l1, 2 * h, t[16], t[17], 2 * h);
  for (double& v : a) v = std::max(v, 0.0);
  const auto want = linear(a, 2 * h, t[18], t[19], d);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
}

TEST(PrefixMlp, TrunkAndHeadsBackwardMatchFiniteDifferences) {
  const int d = 4, h = 3, rows = 3, n = 5;
  PrefixTrunk trunk(d, h);
  Rng rng(5);
  std::vector<float> tw(size_t(h * d + h)), e = random_vector(rng, rows * d, 1.0);
  PromptEncoder::init_tensors(trunk.tensors(), tw.data(), rng);
  std::vector<float> w2 = random_vector(rng, n * h, 0.5), b2 = random_vector(rng, n, 0.5);
  const std::vector<float> r = random_vector(rng, rows * n, 1.0);
  std::vector<float> out(size_t(rows * n));
  auto loss = [&] {
    trunk.forward(tw.data(), e.data(), rows);
    prefix_head_forward(trunk.hidden().data(), rows, h, w2.data(), b2.data(), n, out.data());
    return dot(out, r);
  };
  loss();
  std::vector<float> dw2(w2.size()), db2(b2.size()), dtw(tw.size()), de(e.size());
  std::vector<double> dhidden(size_t(rows * h), 0.0);
  prefix_head_backward(trunk.hidden().data(), rows, h, w2.data(), n, r.data(), dw2.data(), db2.data(),
                       dhidden.data());
  trunk.backward(tw.data(), dhidden.data(), dtw.data(), de.data());
  expect_matches_finite_differences(w2, dw2, loss, 2e-3, "w2");
  expect_matches_finite_differences(b2, db2, loss, 2e-3, "b2");
  expect_matches_finite_differences(tw, dtw, loss, 2e-3, "trunk");
  expect_matches_finite_differences(e, de, loss, 2e-3, "embedding");
}

PromptSection section(const char* method, int length, int hidden) {
  PromptSection s;
  s.method = method;
  s.length = length;
  s.encoder_hidden = hidden;
  return s;
}

ModelConfig tiny_gqa_model() {
  ModelConfig m;
  m.n_layers = 3;
  m.d_model = 8;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 2;
  return m;
}

// A deep prompt's units, split by layer and kv head, give back the prefix
// they came from, on one rank and on a rank holding layers 1-2 and kv head 1.
TEST(DeepPrompt, UnitsHoldTheirPartOfThePrefix) {
  CpuBackend be(1);
  const ModelConfig m = tiny_gqa_model();
  const PromptSection s = section("deep", 3, 0);
  const PrefixShape shape = prefix_shape(m, s.length);
  Rng rng(3);
  const std::vector<float> whole = random_vector(rng, shape.size(), 1.0);
  PromptParameter one(be, DType::F32, s, m, PromptPlacement::whole(m));
  one.set_prefix(one.local_prefix(whole), {}, rng);
  EXPECT_EQ(one.computed_prefix(), whole);
  ASSERT_EQ(one.tensors().size(), 6u);
  EXPECT_EQ(one.tensors()[3].name, "prefix.1.1");
  // Unit (1, 1) row 2: layer 1's row 2, kv head 1's key then value.
  const int64_t W = shape.cols(), D = m.head_dim;
  const float* unit = one.values().data() + one.tensors()[3].offset;
  for (int64_t c = 0; c < D; ++c) {
    EXPECT_EQ(unit[2 * 2 * D + c], whole[size_t((1 * 3 + 2) * W + 1 * D + c)]);
    EXPECT_EQ(unit[2 * 2 * D + D + c], whole[size_t((1 * 3 + 2) * W + 2 * D + 1 * D + c)]);
  }
  PromptPlacement part;
  part.first_stage = false;
  part.first_layer = 1;
  part.num_layers = 2;
  part.kv_begin = 1;
  part.kv_heads = 1;
  PromptParameter mine(be, DType::F32, s, m, part);
  mine.set_prefix(mine.local_prefix(whole), {}, rng);
  ASSERT_EQ(mine.tensors().size(), 2u);
  EXPECT_EQ(mine.tensors()[0].name, "prefix.1.1");
  EXPECT_EQ(std::vector<float>(mine.values().begin(), mine.values().begin() + mine.tensors()[0].size()),
            std::vector<float>(unit, unit + one.tensors()[3].size()));
}

// Prefix tuning's MLP starts at (nearly) the prefix it is given: its heads
// are fitted to it from the trunk's output.
TEST(DeepPrompt, TheMlpStartsAtThePrefix) {
  CpuBackend be(1);
  const ModelConfig m = tiny_gqa_model();
  PromptSection s = section("deep", 3, 16);
  s.reparameterize = "mlp";
  Rng rng(9);
  const std::vector<float> whole = random_vector(rng, prefix_shape(m, s.length).size(), 1.0);
  const std::vector<float> embedding = random_vector(rng, int64_t(s.length) * m.d_model, 1.0);
  PromptParameter p(be, DType::F32, s, m, PromptPlacement::whole(m));
  p.set_prefix(p.local_prefix(whole), embedding, rng);
  const std::vector<float> got = p.computed_prefix();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    diff += (got[i] - whole[i]) * (got[i] - whole[i]);
    norm += whole[i] * whole[i];
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-2);
}


// P-tuning's interop: its checkpoint holds the computed prompt (what the
// model reads), which exports as PEFT's PROMPT_TUNING adapter: the same
// outputs as PEFT's P_TUNING without the encoder, which only training needs.
TEST(PTuningEncoder, ExportsTheComputedPromptAsAPeftPromptTuningAdapter) {
  CpuBackend be(1);
  const ModelConfig m = tiny_gqa_model();
  PromptSection s = section("p_tuning", 3, 5);
  s.encoder = "lstm";
  PromptParameter p(be, DType::F32, s, m, PromptPlacement::whole(m));
  Rng rng(5);
  const std::vector<float> input = random_vector(rng, int64_t(s.length) * m.d_model, 1.0);
  p.set_from_prompt(input, rng);
  const std::vector<float> computed = p.computed_prompt();
  ASSERT_EQ(computed.size(), input.size());
  EXPECT_NE(computed, input) << "the encoder's output is not its input";

  Checkpoint c;
  c.prompt_method = "p_tuning";
  c.prompt = computed;
  c.prompt_rows = s.length;
  c.prompt_cols = m.d_model;
  for (const ParameterTensor& t : p.tensors())
    c.parameters.push_back(NamedState{t.name, {t.rows, t.cols},
                                      std::vector<float>(p.values().begin() + t.offset,
                                                         p.values().begin() + t.offset + t.size())});
  const std::string ckpt = test::temp_path("ptuning_ckpt.h5");
  write_checkpoint(ckpt, c);
  const Checkpoint back = read_checkpoint(ckpt);
  EXPECT_EQ(back.prompt_method, "p_tuning");
  EXPECT_EQ(back.parameters.size(), p.tensors().size());

  const std::string dir = test::temp_path("ptuning_peft");
  export_peft(stored_prompt_of(back, ckpt), dir, PeftModelInfo{m.n_layers, m.n_heads, "tiny"});
  const StoredPrompt peft = read_stored_prompt(dir);
  EXPECT_EQ(peft.format, "peft");
  EXPECT_EQ(peft.values, computed);
  std::ifstream config(dir + "/adapter_config.json");
  std::stringstream text;
  text << config.rdbuf();
  EXPECT_NE(text.str().find("\"PROMPT_TUNING\""), std::string::npos) << text.str();
}

// sptrain plan's account of a prompt's memory is every byte the parameter
// allocates: on the back end (counted by it) and in its host vectors, for
// each method, a whole model and a rank's share, f32 and f64 statistics.
TEST(PromptMemory, IsEveryByteThePromptAllocates) {
  const ModelConfig m = tiny_gqa_model();
  PromptPlacement later;  // the second stage's layers 1-2, kv head 1 of a tensor pair
  later.first_stage = false;
  later.first_layer = 1;
  later.num_layers = 2;
  later.kv_begin = 1;
  later.kv_heads = 1;
  struct Case {
    const char* method;
    const char* extra;  // reparameterize (deep) or encoder (p_tuning)
  };
  for (const Case& k : {Case{"prompt_tuning", ""}, Case{"p_tuning", "mlp"}, Case{"p_tuning", "lstm"},
                        Case{"deep", "none"}, Case{"deep", "mlp"}}) {
    PromptSection s = section(k.method, 3, 6);
    if (std::string(k.method) == "deep") s.reparameterize = k.extra;
    if (std::string(k.method) == "p_tuning") s.encoder = k.extra;
    for (const PromptPlacement& place : {PromptPlacement::whole(m), later}) {
      for (DType stat : {DType::F32, DType::F64}) {
        const std::string what = std::string(k.method) + "/" + k.extra + (place.first_stage ? " whole" : " share") +
                                 (stat == DType::F64 ? " f64" : " f32");
        CpuBackend be(1);
        PromptParameter p(be, stat, s, m, place);
        Rng rng(4);
        if (p.holds() && std::string(k.method) == "deep")
          p.set_prefix(p.local_prefix(random_vector(rng, prefix_shape(m, s.length).size(), 1.0)),
                       random_vector(rng, int64_t(s.length) * m.d_model, 1.0), rng);
        else if (p.holds())
          p.set_from_prompt(random_vector(rng, int64_t(s.length) * m.d_model, 1.0), rng);
        if (p.holds()) (void)p.device();  // the trunk's buffers fill on its first forward
        const PromptParameter::Memory planned = PromptParameter::memory(s, m, place, stat);
        EXPECT_EQ(planned.device, be.bytes_allocated()) << what;
        EXPECT_EQ(planned.host, p.host_bytes()) << what;
        EXPECT_EQ(planned.host > 0, p.holds()) << what;
      }
    }
  }
}

}  // namespace
}  // namespace sptrain
