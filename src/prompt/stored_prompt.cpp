#include "sptrain/prompt/stored_prompt.hpp"

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

namespace {
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
}  // namespace

void check_prompt_values(const StoredPrompt& p) {
  // Not yet: PEFT's PREFIX_TUNING layout and the hdf5/npy files of keys and
  // values (docs/methods.md, "Not yet"). `sptrain eval --prompt` reads the checkpoint.
  SPT_CHECK(!p.deep(), p.path, ": a deep prompt (prompt.method deep: keys and values [",
            p.prefix_layers, ", ", p.rows, ", ", p.prefix_cols,
            "]) cannot be exported yet; only prompt_tuning and p_tuning prompts can");
  SPT_CHECK(p.rows >= 1 && p.cols >= 1 && int64_t(p.values.size()) == p.rows * p.cols,
            p.path, ": prompt [", p.rows, ", ", p.cols, "] with ", p.values.size(), " values");
}

StoredPrompt stored_prompt_of(const Checkpoint& c, const std::string& path) {
  StoredPrompt p;
  p.path = path;
  p.format = "checkpoint";
  p.values = c.prompt;
  p.rows = c.prompt_rows;
  p.cols = c.prompt_cols;
  if (!c.prefix.empty()) {
    p.prefix = c.prefix;
    p.prefix_layers = c.prefix_layers;
    p.rows = c.prefix_rows;
    p.prefix_cols = c.prefix_cols;
  }
  p.model_fingerprint = c.model_fingerprint;
  p.model_path = c.model_path;
  p.step = c.step;
  p.eval_accuracy = c.eval_accuracy;
  p.eval_loss = c.eval_loss;
  p.task_template = c.task_template;
  p.labels = c.labels;
  // task.max_length is part of the configuration the run recorded; a key
  // missing there had its default.
  p.task_max_length = TaskSection{}.max_length;
  try {
    const YAML::Node root = YAML::Load(c.config_yaml);
    if (root["task"] && root["task"]["max_length"]) p.task_max_length = root["task"]["max_length"].as<int>();
  } catch (const YAML::Exception& e) {
    fail(path, ": the recorded configuration (config_yaml) cannot be read: ", e.what());
  }
  p.has_task = !p.labels.empty();
  return p;
}

StoredPrompt read_stored_prompt(const std::string& path) {
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
  if (got >= 8 && std::memcmp(head, kHdf5Signature, 8) == 0) {
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

void check_prompt_matches_model(const StoredPrompt& p, const ModelConfig& m, const std::string& model_path) {
  if (p.deep()) {
    const int64_t width = 2 * int64_t(m.n_kv_heads) * m.head_dim;
    SPT_CHECK(p.prefix_layers == m.n_layers && p.prefix_cols == width, p.path, ": the deep prompt has ",
              p.prefix_layers, " layers of keys and values ", p.prefix_cols, " wide, but the model ",
              model_path, " has ", m.n_layers, " layers and 2 x ", m.n_kv_heads, " kv heads x ",
              m.head_dim, " = ", width);
  } else {
    SPT_CHECK(p.cols == m.d_model, p.path, ": the prompt has d_model ", p.cols, " but the model ",
              model_path, " has d_model ", m.d_model);
  }
  SPT_CHECK(p.model_fingerprint.empty() || m.fingerprint.empty() || p.model_fingerprint == m.fingerprint,
            p.path, ": the prompt was trained on another model: its model fingerprint is ",
            p.model_fingerprint, ", the model ", model_path, " has fingerprint ", m.fingerprint);
}

}  // namespace sptrain
