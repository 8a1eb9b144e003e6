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
  p.model_fingerprint = c.model_fingerprint;
  p.model_path = c.model_path;
  p.step = c.step;
  p.eval_accuracy = c.eval_accuracy;
  p.eval_loss = c.eval_loss;
  p.task_template = c.task_template;
  p.labels = c.labels;
  // task.max_length is part of the configuration the run recorded; a key
  // missing there had its default.
  const TaskSection defaults;
  p.task_max_length = defaults.max_length;
  p.task_max_target_length = defaults.max_target_length;
  try {
    const YAML::Node root = YAML::Load(c.config_yaml);
    if (const YAML::Node task = root["task"]) {
      if (task["max_length"]) p.task_max_length = task["max_length"].as<int>();
      if (task["kind"]) p.task_kind = task["kind"].as<std::string>();
      if (task["max_target_length"]) p.task_max_target_length = task["max_target_length"].as<int>();
    }
  } catch (const YAML::Exception& e) {
    fail(path, ": the recorded configuration (config_yaml) cannot be read: ", e.what());
  }
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
  SPT_CHECK(p.cols == m.d_model, p.path, ": the prompt has d_model ", p.cols, " but the model ",
            model_path, " has d_model ", m.d_model);
  SPT_CHECK(p.model_fingerprint.empty() || m.fingerprint.empty() || p.model_fingerprint == m.fingerprint,
            p.path, ": the prompt was trained on another model: its model fingerprint is ",
            p.model_fingerprint, ", the model ", model_path, " has fingerprint ", m.fingerprint);
}

}  // namespace sptrain
