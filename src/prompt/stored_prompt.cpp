#include "sptrain/prompt/stored_prompt.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <yaml-cpp/yaml.h>

#include "sptrain/config/config.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/io/npy.hpp"
#include "sptrain/prompt/hdf5_export.hpp"
#include "sptrain/prompt/peft.hpp"

namespace sptrain {
namespace fs = std::filesystem;

void check_prompt_values(const StoredPrompt& p) {
  if (p.deep()) {
    SPT_CHECK(p.rows >= 1 && p.prefix_cols >= 1 &&
                  int64_t(p.prefix.size()) == p.prefix_layers * p.rows * p.prefix_cols,
              p.path, ": deep prompt [", p.prefix_layers, ", ", p.rows, ", ", p.prefix_cols, "] with ",
              p.prefix.size(), " values");
    for (size_t i = 0; i < p.prefix.size(); ++i)
      if (!std::isfinite(p.prefix[i]))
        fail(p.path, ": the deep prompt holds ", p.prefix[i], " at value ", i, " (a prompt must be finite)");
    return;
  }
  SPT_CHECK(p.rows >= 1 && p.cols >= 1 && p.rows <= int64_t(p.values.size()) &&
                int64_t(p.values.size()) == p.rows * p.cols,
            p.path, ": prompt [", p.rows, ", ", p.cols, "] with ", p.values.size(), " values");
  for (size_t i = 0; i < p.values.size(); ++i)
    if (!std::isfinite(p.values[i]))
      fail(p.path, ": the prompt holds ", p.values[i], " at row ", int64_t(i) / p.cols, ", column ",
           int64_t(i) % p.cols, " (a prompt must be finite)");
}

void check_prompt_exportable(const StoredPrompt& p) { check_prompt_values(p); }

StoredPrompt stored_prompt_of(const Checkpoint& c, const std::string& path) {
  StoredPrompt p;
  p.path = path;
  p.format = "checkpoint";
  static_cast<PromptMetadata&>(p) = c;
  p.values = c.prompt;
  p.rows = c.prompt_rows;
  p.cols = c.prompt_cols;
  if (!c.prefix.empty()) {
    p.prefix = c.prefix;
    p.prefix_layers = c.prefix_layers;
    p.rows = c.prefix_rows;
    p.prefix_cols = c.prefix_cols;
  }
  // task.max_length is part of the configuration the run recorded; a key
  // missing there had its default.
  const TaskSection defaults;
  p.task_max_length = defaults.max_length;
  p.task_max_target_length = defaults.max_target_length;
  try {
    const YAML::Node root = YAML::Load(c.config_yaml);
    if (root.IsMap() && root["task"].IsMap()) {
      const YAML::Node task = root["task"];
      if (task["max_length"]) p.task_max_length = task["max_length"].as<int>();
      if (task["kind"]) p.task_kind = task["kind"].as<std::string>();
      if (task["max_target_length"]) p.task_max_target_length = task["max_target_length"].as<int>();
    }
  } catch (const YAML::Exception& e) {
    fail(path, ": the recorded configuration (config_yaml) cannot be read: ", e.what());
  }
  SPT_CHECK(p.task_max_length >= 1 && p.task_max_length <= kMaxRows, path,
            ": the recorded configuration has task.max_length ", p.task_max_length, " (1 to ", kMaxRows, ")");
  SPT_CHECK(p.task_max_target_length >= 1 && p.task_max_target_length <= kMaxRows, path,
            ": the recorded configuration has task.max_target_length ", p.task_max_target_length, " (1 to ",
            kMaxRows, ")");
  p.has_task = p.task_kind == "generate" || !p.labels.empty();
  return p;
}

TaskSection task_section_of(const StoredPrompt& p) {
  SPT_CHECK(p.has_task, p.path, ": the prompt does not record its task");
  TaskSection t;
  t.kind = p.task_kind;
  t.template_text = p.task_template;
  t.labels = p.labels;
  t.max_length = p.task_max_length;
  if (p.task_max_target_length > 0) t.max_target_length = p.task_max_target_length;
  if (t.kind == "generate") t.loss = "vocab";
  return t;
}

namespace {
StoredPrompt read_any_prompt(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail(path, ": no such file or folder");
  if (fs::is_directory(st)) return read_peft_folder(path);

  unsigned char head[16] = {};
  size_t got = 0;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, ": cannot open");
    in.read(reinterpret_cast<char*>(head), sizeof head);
    got = size_t(in.gcount());
  }
  if (npy::has_magic(head, got)) {
    npy::Matrix m = npy::read_matrix(path);
    StoredPrompt p;
    p.path = path;
    p.format = "npy";
    p.rows = m.rows;
    p.cols = m.cols;
    p.values = std::move(m.values);
    return p;
  }
  if (h5::looks_like_hdf5(head, got)) {
    h5::File f = h5::File::open_read(path);
    const std::string format = f.has_attr("/", "format") ? f.attr_string("/", "format") : "";
    if (format == kHdf5PromptFormat) return read_hdf5_export(f);
    f.close();
    if (format == kCheckpointFormat) return stored_prompt_of(read_checkpoint(path), path);
    fail(path, ": an HDF5 file but not a prompt (format '", format, "'; expected '",
         kCheckpointFormat, "' or '", kHdf5PromptFormat, "')");
  }
  // safetensors: an 8-byte little-endian length, then a JSON object.
  if (got >= 9 && head[8] == '{') return read_peft_weights(path);
  fail(path, ": not a prompt file: expected a checkpoint or hdf5 export (.h5), a NumPy .npy file, "
       "a PEFT folder or its ", kPeftWeightsFile);
}
}  // namespace

StoredPrompt read_stored_prompt(const std::string& path) {
  StoredPrompt p = read_any_prompt(path);
  check_prompt_values(p);
  return p;
}

void check_prompt_matches_model(const StoredPrompt& p, const ModelConfig& m, const std::string& model_path) {
  if (p.deep()) {
    const int64_t width = 2 * int64_t(m.n_kv_heads) * m.head_dim;
    // A file that records its kv heads (PEFT) must match them too: the width
    // alone does not tell 2 heads of 8 from 4 heads of 4.
    const std::string heads =
        p.prefix_kv_heads > 0
            ? str(" (2 x ", p.prefix_kv_heads, " kv heads x ", p.prefix_cols / 2 / p.prefix_kv_heads, ")")
            : std::string();
    SPT_CHECK(p.prefix_layers == m.n_layers && p.prefix_cols == width &&
                  (p.prefix_kv_heads == 0 || p.prefix_kv_heads == m.n_kv_heads),
              p.path, ": the deep prompt has ", p.prefix_layers, " layers of keys and values ", p.prefix_cols,
              " wide", heads, ", but the model ", model_path, " has ", m.n_layers, " layers and 2 x ",
              m.n_kv_heads, " kv heads x ", m.head_dim, " = ", width);
  } else {
    SPT_CHECK(p.cols == m.d_model, p.path, ": the prompt has d_model ", p.cols, " but the model ",
              model_path, " has d_model ", m.d_model);
  }
  // sptrain's own files always record the model; a missing fingerprint there
  // would let the prompt pass on any model of its width.
  const bool sptrain_file = p.format == "checkpoint" || p.format == "hdf5";
  SPT_CHECK(!(sptrain_file && p.model_fingerprint.empty()), p.path,
            ": records no model fingerprint, so the model it was trained on is unknown (written for a "
            "model without one); train the prompt again with this model");
  SPT_CHECK(p.model_fingerprint.empty() || p.model_fingerprint == m.fingerprint, p.path,
            ": the prompt was trained on another model: its model fingerprint is ", p.model_fingerprint,
            ", the model ", model_path, " has fingerprint ", m.fingerprint);
}

}  // namespace sptrain
