#include "sptrain/model/random_model.hpp"

#include <algorithm>
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

// Draws each weight row block by row block (so memory stays small whatever the
// model's size) and adds its name and bytes to the fingerprint as written.
class RandomWriter {
 public:
  RandomWriter(h5::File& f, Rng& rng) : f_(f), rng_(rng) {}

  void fill(const std::string& name, Shape shape, double mean, double std) {
    f_.create_dataset(name, DType::F32, shape);
    fp_.update(name);
    const int64_t rows = shape[0], row = shape.row_size();
    const int64_t block = std::max<int64_t>(1, (int64_t(1) << 20) / row);
    std::vector<float> v;
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
      const int64_t nr = std::min(block, rows - r0);
      v.resize(size_t(nr * row));
      for (auto& x : v) x = float(mean + std * rng_.normal());
      f_.write_rows(name, r0, nr, v.data(), DType::F32);
      fp_.update(v.data(), v.size() * sizeof(float));
    }
  }
  std::string fingerprint() const { return fp_.hex(); }

 private:
  h5::File& f_;
  Rng& rng_;
  Fingerprint fp_;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void write_random_model(const std::string& path, ModelConfig c, uint64_t seed, double std,
                        const std::function<void(h5::File&)>& write_tokenizer) {
  c.random = true;
  c.dtype = "f32";
  check_model_config(c, path);
  SPT_CHECK(std::isfinite(std) && std >= 0, path, ": the weights' standard deviation ", std,
            " must be a finite number >= 0");
  const auto datasets = model_datasets(c);
  uint64_t bytes = 0;
  for (const auto& [name, shape] : datasets) bytes += uint64_t(shape.numel()) * sizeof(float);
  check_free_space(path, bytes, "the model's weights");
  write_file_atomically(path, [&](const std::string& tmp) {
    h5::File f = h5::File::create(tmp);
    Rng rng(seed);
    RandomWriter w(f, rng);
    // Norm weights 1 + N(0, 0.1^2), norm biases N(0, 0.1^2), the rest N(0, std^2).
    for (const auto& [name, shape] : datasets) {
      const bool norm = name.find("_norm/") != std::string::npos;
      w.fill(name, shape, norm && ends_with(name, "/weight") ? 1.0 : 0.0, norm ? 0.1 : std);
    }
    write_model_config(f, c);
    f.set_attr("/", "seed", int64_t(seed));
    f.set_attr("/", "fingerprint", w.fingerprint());
    f.set_attr("/", "source_format", "random");
    if (write_tokenizer) write_tokenizer(f);
    f.close();
  });
}

}  // namespace sptrain
