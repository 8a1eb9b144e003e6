#include "sptrain/model/random_model.hpp"

#include <cmath>
#include <vector>

#include "sptrain/io/file.hpp"
#include "sptrain/io/fingerprint.hpp"

namespace sptrain {

double Rng::normal() {
  // Box-Muller; u1 in (0, 1].
  const double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

namespace {

class RandomWriter {
 public:
  RandomWriter(h5::File& f, Rng& rng, double std) : f_(f), rng_(rng), std_(std) {}

  void matrix(const std::string& name, int64_t rows, int64_t cols) {
    fill(name, Shape{rows, cols}, 0.0, std_);
  }
  void vector(const std::string& name, int64_t n, double mean, double std) {
    fill(name, Shape{n}, mean, std);
  }
  std::string fingerprint() const { return fp_.hex(); }

 private:
  void fill(const std::string& name, Shape shape, double mean, double std) {
    std::vector<float> v(size_t(shape.numel()));
    for (auto& x : v) x = float(mean + std * rng_.normal());
    f_.write(name, DType::F32, shape, v.data());
    fp_.update(name);
    fp_.update(v.data(), v.size() * sizeof(float));
  }
  h5::File& f_;
  Rng& rng_;
  double std_;
  Fingerprint fp_;
};

}  // namespace

void write_random_model(const std::string& path, ModelConfig c, uint64_t seed, double std,
                        const std::function<void(h5::File&)>& write_tokenizer) {
  c.random = true;
  c.dtype = "f32";
  write_file_atomically(path, [&](const std::string& tmp) {
    h5::File f = h5::File::create(tmp);
    Rng rng(seed);
    RandomWriter w(f, rng, std);
    const int64_t d = c.d_model;
    const bool ln = c.norm == NormKind::LayerNorm;
    auto norm = [&](const std::string& p) {
      w.vector(p + "/weight", d, 1.0, 0.1);
      if (c.bias && ln) w.vector(p + "/bias", d, 0.0, 0.1);
    };
    auto linear = [&](const std::string& p, int64_t out, int64_t in) {
      w.matrix(p + "/weight", out, in);
      if (c.bias) w.vector(p + "/bias", out, 0.0, std);
    };
    w.matrix("embeddings/tokens", c.vocab_size, d);
    if (c.position == PositionKind::Learned) w.matrix("embeddings/positions", c.max_positions, d);
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string p = "layers/" + std::to_string(l);
      norm(p + "/attn_norm");
      linear(p + "/attn/q", c.q_dim(), d);
      linear(p + "/attn/k", c.kv_dim(), d);
      linear(p + "/attn/v", c.kv_dim(), d);
      linear(p + "/attn/o", d, c.q_dim());
      norm(p + "/mlp_norm");
      if (c.activation == Activation::SwiGlu) w.matrix(p + "/mlp/gate/weight", c.d_ffn, d);
      linear(p + "/mlp/up", c.d_ffn, d);
      linear(p + "/mlp/down", d, c.d_ffn);
    }
    norm("final_norm");
    if (!c.tied_embeddings) w.matrix("lm_head/weight", c.vocab_size, d);
    write_model_config(f, c);
    f.set_attr("/", "seed", int64_t(seed));
    f.set_attr("/", "fingerprint", w.fingerprint());
    f.set_attr("/", "source_format", "random");
    if (write_tokenizer) write_tokenizer(f);
    f.close();
  });
}

}  // namespace sptrain
