#include "sptrain/convert/model_writer.hpp"

#include <unistd.h>

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

std::vector<std::pair<std::string, Shape>> expected_datasets(const ModelHeader& h) {
  const int64_t d = h.d_model, q = h.n_heads * h.head_dim, kv = h.n_kv_heads * h.head_dim;
  std::vector<std::pair<std::string, Shape>> out;
  auto add = [&](std::string name, Shape s) { out.emplace_back(std::move(name), s); };
  auto linear = [&](const std::string& p, int64_t rows, int64_t cols) {
    add(p + "/weight", {rows, cols});
    if (h.bias) add(p + "/bias", {rows});
  };
  auto norm = [&](const std::string& p) {
    add(p + "/weight", {d});
    if (h.bias) add(p + "/bias", {d});
  };
  add("embeddings/tokens", {h.vocab_size, d});
  if (h.position == "learned") add("embeddings/positions", {h.max_positions, d});
  for (int64_t i = 0; i < h.n_layers; ++i) {
    std::string l = "layers/" + std::to_string(i);
    norm(l + "/attn_norm");
    linear(l + "/attn/q", q, d);
    linear(l + "/attn/k", kv, d);
    linear(l + "/attn/v", kv, d);
    linear(l + "/attn/o", d, q);
    norm(l + "/mlp_norm");
    if (h.activation == "swiglu") add(l + "/mlp/gate/weight", {h.d_ffn, d});
    linear(l + "/mlp/up", h.d_ffn, d);
    linear(l + "/mlp/down", d, h.d_ffn);
  }
  norm("final_norm");
  if (!h.tied_embeddings) add("lm_head/weight", {h.vocab_size, d});
  return out;
}

namespace {

void check_header(const ModelHeader& h, const std::string& out) {
  auto positive = [&](int64_t v, const char* what) {
    SPT_CHECK(v > 0, out, ": cannot write a model with ", what, " = ", v);
  };
  positive(h.n_layers, "n_layers");
  positive(h.d_model, "d_model");
  positive(h.n_heads, "n_heads");
  positive(h.n_kv_heads, "n_kv_heads");
  positive(h.head_dim, "head_dim");
  positive(h.d_ffn, "d_ffn");
  positive(h.vocab_size, "vocab_size");
  positive(h.max_positions, "max_positions");
  SPT_CHECK(h.n_heads % h.n_kv_heads == 0, out, ": n_heads ", h.n_heads,
            " is not a multiple of n_kv_heads ", h.n_kv_heads);
  SPT_CHECK(h.family == "gpt" || h.family == "llama", out, ": unknown family '", h.family, "'");
  SPT_CHECK(h.norm == "layernorm" || h.norm == "rmsnorm", out, ": unknown norm '", h.norm, "'");
  SPT_CHECK(h.activation == "gelu" || h.activation == "gelu_tanh" || h.activation == "relu" ||
                h.activation == "swiglu",
            out, ": unknown activation '", h.activation, "'");
  SPT_CHECK(h.position == "learned" || h.position == "rope", out, ": unknown position '",
            h.position, "'");
}

}  // namespace

WriteStats write_model_file(const std::string& out, DType dtype, const ModelHeader& header,
                            const std::vector<WeightJob>& jobs, const Tokenizer& tokenizer,
                            const SourceInfo& source) {
  SPT_CHECK(dtype == DType::F32 || dtype == DType::BF16, "model dtype must be f32 or bf16, not ",
            dtype_name(dtype));
  check_header(header, out);
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
