#include "sptrain/convert/model_writer.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/io/fingerprint.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain::convert {
namespace fs = std::filesystem;

ModelConfig model_config_of(const ModelHeader& h, const std::string& where) {
  ModelConfig c;
  SPT_CHECK(h.family == "gpt" || h.family == "llama", where, ": unknown family '", h.family, "'");
  c.family = h.family == "gpt" ? Family::Gpt : Family::Llama;
  c.name = h.name;
  // "llama.block_count (n_layers)" where the converter says which key a field came from.
  auto label = [&](const std::string& name) {
    const auto it = h.source_keys.find(name);
    return it == h.source_keys.end() || it->second == name ? name : it->second + " (" + name + ")";
  };
  // Each size within the limits before it is narrowed to an int.
  auto size = [&](int64_t v, int64_t max, const char* name) {
    SPT_CHECK(v >= 1 && v <= max, where, ": ", label(name), " = ", v, " is outside [1, ", max, "]");
    return int(v);
  };
  c.n_layers = size(h.n_layers, kMaxLayers, "n_layers");
  c.d_model = size(h.d_model, kMaxWidth, "d_model");
  c.n_heads = size(h.n_heads, kMaxWidth, "n_heads");
  c.n_kv_heads = size(h.n_kv_heads, kMaxWidth, "n_kv_heads");
  c.head_dim = size(h.head_dim, kMaxWidth, "head_dim");
  c.d_ffn = size(h.d_ffn, kMaxWidth, "d_ffn");
  c.vocab_size = size(h.vocab_size, kMaxRows, "vocab_size");
  c.max_positions = size(h.max_positions, kMaxRows, "max_positions");
  SPT_CHECK(h.norm == "layernorm" || h.norm == "rmsnorm", where, ": unknown norm '", h.norm, "'");
  c.norm = h.norm == "layernorm" ? NormKind::LayerNorm : NormKind::RmsNorm;
  // Checked here too (check_model_config checks them again) to name the source's key.
  SPT_CHECK(std::isfinite(h.norm_eps) && h.norm_eps > 0 && std::isfinite(float(h.norm_eps)), where, ": ",
            label("norm_eps"), " = ", h.norm_eps, " must be a finite number > 0");
  c.norm_eps = float(h.norm_eps);
  if (h.activation == "gelu") c.activation = Activation::Gelu;
  else if (h.activation == "gelu_tanh") c.activation = Activation::GeluTanh;
  else if (h.activation == "relu") c.activation = Activation::Relu;
  else if (h.activation == "swiglu") c.activation = Activation::SwiGlu;
  else fail(where, ": unknown activation '", h.activation, "'");
  SPT_CHECK(h.position == "learned" || h.position == "rope", where, ": unknown position '", h.position, "'");
  c.position = h.position == "rope" ? PositionKind::Rope : PositionKind::Learned;
  SPT_CHECK(h.position != "rope" || (std::isfinite(h.rope_theta) && h.rope_theta > 0 &&
                                      std::isfinite(float(h.rope_theta))),
            where, ": ", label("rope_theta"), " = ", h.rope_theta, " must be a finite number > 0");
  c.rope_theta = float(h.rope_theta);
  c.tied_embeddings = h.tied_embeddings;
  c.bias = h.bias;
  check_model_config(c, where);
  return c;
}

std::vector<std::pair<std::string, Shape>> expected_datasets(const ModelHeader& h) {
  return model_datasets(model_config_of(h, "model"));
}

WriteStats write_model_file(const std::string& out, DType dtype, const ModelHeader& header,
                            const std::vector<WeightJob>& jobs, const Tokenizer& tokenizer,
                            const SourceInfo& source) {
  SPT_CHECK(dtype == DType::F32 || dtype == DType::BF16, "model dtype must be f32 or bf16, not ",
            dtype_name(dtype));
  model_config_of(header, out);
  SPT_CHECK(!out.empty(), "no output file given");
  SPT_CHECK(!fs::is_directory(out), out, ": is a folder; give the model file's path");
  fs::path parent = fs::path(out).parent_path();
  SPT_CHECK(parent.empty() || fs::is_directory(parent), out, ": the folder ", parent.string(),
            " does not exist");
  SPT_CHECK(tokenizer.vocab_size() <= header.vocab_size, source.path, ": the tokenizer has ",
            tokenizer.vocab_size(), " tokens but the embedding matrix only ", header.vocab_size,
            " rows");

  // The jobs must be exactly the datasets of the format, in its order.
  auto expected = expected_datasets(header);
  SPT_ASSERT(expected.size() == jobs.size());
  for (size_t k = 0; k < jobs.size(); ++k) {
    SPT_ASSERT(jobs[k].name == expected[k].first);
    SPT_ASSERT(jobs[k].shape == expected[k].second);
  }

  uint64_t bytes = 0;
  for (const auto& j : jobs) bytes += uint64_t(j.shape.numel()) * dtype_size(dtype);
  check_free_space(out, bytes, "the converted weights");

  WriteStats stats;
  Fingerprint fp;
  write_file_atomically(out, [&](const std::string& tmp) {
    h5::File f = h5::File::create(tmp);
    uint64_t total = 0;
    for (const auto& j : jobs) total += j.source_bytes;
    Progress progress("converting " + source.path, total);
    for (const auto& j : jobs) {
      const auto n = size_t(j.shape.numel());
      std::vector<float> values(n);
      j.fill(values.data());
      for (size_t k = 0; k < n; ++k)
        if (!std::isfinite(values[k]))
          fail(source.path, ": the weights of ", j.name, " hold ", values[k], " at element ", k,
               " (the loader rejects weights that are not finite)");
      fp.update(j.name);
      if (dtype == DType::F32) {
        fp.update(values.data(), n * sizeof(float));
        f.write(j.name, DType::F32, j.shape, values.data());
      } else {
        std::vector<uint16_t> half(n);
        for (size_t k = 0; k < n; ++k) half[k] = f32_to_bf16(values[k]);
        fp.update(half.data(), n * sizeof(uint16_t));
        f.write(j.name, DType::BF16, j.shape, half.data());
      }
      stats.parameters += int64_t(n);
      stats.bytes_written += n * dtype_size(dtype);
      progress.add(j.source_bytes);
    }
    progress.finish();
    tokenizer.save(f, "tokenizer");

    const std::string root = "/";
    f.set_attr(root, "format", "sptrain-model");
    f.set_attr(root, "format_version", int64_t(1));
    f.set_attr(root, "family", header.family);
    f.set_attr(root, "name", header.name);
    f.set_attr(root, "n_layers", header.n_layers);
    f.set_attr(root, "d_model", header.d_model);
    f.set_attr(root, "n_heads", header.n_heads);
    f.set_attr(root, "n_kv_heads", header.n_kv_heads);
    f.set_attr(root, "head_dim", header.head_dim);
    f.set_attr(root, "d_ffn", header.d_ffn);
    f.set_attr(root, "vocab_size", header.vocab_size);
    f.set_attr(root, "max_positions", header.max_positions);
    f.set_attr(root, "norm", header.norm);
    f.set_attr(root, "norm_eps", header.norm_eps);
    f.set_attr(root, "activation", header.activation);
    f.set_attr(root, "position", header.position);
    if (header.position == "rope") f.set_attr(root, "rope_theta", header.rope_theta);
    f.set_attr(root, "tied_embeddings", header.tied_embeddings);
    f.set_attr(root, "bias", header.bias);
    f.set_attr(root, "dtype", std::string(dtype_name(dtype)));
    f.set_attr(root, "random", int64_t(0));
    stats.fingerprint = fp.hex();
    f.set_attr(root, "fingerprint", stats.fingerprint);
    f.set_attr(root, "source_path", source.path);
    f.set_attr(root, "source_format", source.format);
    f.set_attr(root, "source_hash", source.hash);
    f.close();  // checked: a full disk fails here, before the rename
  });
  return stats;
}

// ---- progress ----

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total), tty_(::isatty(STDERR_FILENO) == 1) {}

void Progress::add(uint64_t bytes) {
  done_ += bytes;
  draw();
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_ && total_ >= kMinBytes) std::fputc('\n', stderr);
}

void Progress::draw() {
  if (total_ < kMinBytes) return;  // small sources finish before a bar helps
  const double frac = total_ ? double(done_) / double(total_) : 1.0;
  const double mb = 1e-6;
  if (tty_) {
    const int width = 30, filled = int(frac * width + 0.5);
    std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %.1f / %.1f MB", label_.c_str(), filled,
                 "##############################", width - filled, "", int(frac * 100 + 0.5),
                 double(done_) * mb, double(total_) * mb);
    std::fflush(stderr);
    return;
  }
  int tenth = int(frac * 10);
  if (tenth > last_tenth_) {
    last_tenth_ = tenth;
    std::fprintf(stderr, "%s: %d%% (%.1f / %.1f MB)\n", label_.c_str(), tenth * 10,
                 double(done_) * mb, double(total_) * mb);
  }
}

}  // namespace sptrain::convert
