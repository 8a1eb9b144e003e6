#include "sptrain/prompt/export.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "sptrain/cli/commands.hpp"
#include "sptrain/config/config.hpp"
#include "sptrain/core/dtype.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/io/safetensors.hpp"
#include "sptrain/model/model_config.hpp"

namespace sptrain {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// Names of the hdf5 export layout (docs/export.md).
constexpr const char* kHdf5Format = "sptrain-prompt";
constexpr int64_t kHdf5FormatVersion = 1;
// PEFT's file names and the tensor name its prompt-tuning state dict uses.
constexpr const char* kPeftWeights = "adapter_model.safetensors";
constexpr const char* kPeftConfig = "adapter_config.json";
constexpr const char* kPeftTensor = "prompt_embeddings";
constexpr char kNpyMagic[] = "\x93NUMPY";
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

// ---- atomic file writes ----

// Flushes a file's (or folder's) data to the disk, so that a rename after it
// never exposes a file whose bytes are still only in the page cache.
void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) fail(path, ": cannot open to sync: ", std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems cannot sync a folder (EINVAL); the file itself is synced.
  if (rc != 0 && !(directory && err == EINVAL)) fail(path, ": fsync failed: ", std::strerror(err));
}

std::string parent_or_dot(const std::string& path) {
  const fs::path p = fs::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

// Runs write(tmp) for path + ".tmp", syncs it and renames it to `path`; on
// any error the temporary file is removed and `path` is left as it was.
template <typename Write>
void replace_atomically(const std::string& path, Write&& write) {
  const std::string tmp = path + ".tmp";
  try {
    write(tmp);
    fsync_path(tmp, false);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) fail(path, ": cannot rename ", tmp, " to it: ", ec.message());
    fsync_path(parent_or_dot(path), true);
  } catch (...) {
    std::error_code ignore;
    fs::remove(tmp, ignore);
    throw;
  }
}

// Writes the parts one after another to `path` (a plain file).
void write_parts(const std::string& path, const std::vector<std::pair<const void*, size_t>>& parts) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, ": cannot create: ", std::strerror(errno));
  for (const auto& [data, size] : parts) {
    const char* p = static_cast<const char*>(data);
    size_t left = size;
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = errno;
        ::close(fd);
        fail(path, ": write failed: ", std::strerror(err));
      }
      p += n;
      left -= size_t(n);
    }
  }
  if (::close(fd) != 0) fail(path, ": close failed: ", std::strerror(errno));
}

int64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot stat: ", ec.message());
  return int64_t(n);
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void check_values(const StoredPrompt& p) {
  SPT_CHECK(p.rows >= 1 && p.cols >= 1 && int64_t(p.values.size()) == p.rows * p.cols,
            p.path, ": prompt [", p.rows, ", ", p.cols, "] with ", p.values.size(), " values");
}

// ---- npy (NumPy format 1.0; 2.0 and 3.0 are read too) ----

std::string npy_header(const std::string& descr, int64_t rows, int64_t cols) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n', a multiple
  // of 64 bytes as numpy writes it (so the data is aligned).
  const size_t unpadded = 10 + dict.size() + 1;
  const size_t total = (unpadded + 63) / 64 * 64;
  SPT_CHECK(total - 10 <= 65535, "npy header too long");
  dict.append(total - unpadded, ' ');
  dict += '\n';
  std::string h(kNpyMagic, 6);
  h += char(1);
  h += char(0);
  const uint16_t len = uint16_t(dict.size());
  h += char(len & 0xff);
  h += char(len >> 8);
  return h + dict;
}

// The value of `key` in a NumPy header dict (a Python literal): the text
// after "'key':" up to the next top-level ',' or '}'.
std::string npy_field(const std::string& dict, const std::string& key, const std::string& path) {
  const std::string k = "'" + key + "'";
  size_t at = dict.find(k);
  if (at == std::string::npos) fail(path, ": npy header has no ", k, " (header: ", dict, ")");
  at = dict.find(':', at + k.size());
  if (at == std::string::npos) fail(path, ": npy header is malformed: ", dict);
  size_t end = at + 1;
  int depth = 0;
  while (end < dict.size()) {
    const char ch = dict[end];
    if (ch == '(') ++depth;
    if (ch == ')') --depth;
    if (depth == 0 && (ch == ',' || ch == '}')) break;
    ++end;
  }
  std::string v = dict.substr(at + 1, end - at - 1);
  const size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t");
  return b == std::string::npos ? "" : v.substr(b, e - b + 1);
}

StoredPrompt read_npy(const std::string& path) {
  const std::string bytes = read_small_file(path);
  if (bytes.size() < 10 || bytes.compare(0, 6, kNpyMagic, 6) != 0)
    fail(path, ": not a NumPy .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = size_t(static_cast<unsigned char>(bytes[8])) |
                 size_t(static_cast<unsigned char>(bytes[9])) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    SPT_CHECK(bytes.size() >= 12, path, ": truncated npy header");
    for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<unsigned char>(bytes[size_t(8 + i)])) << (8 * i);
    header_start = 12;
  } else {
    fail(path, ": npy format version ", major, " is not supported (1, 2 or 3)");
  }
  SPT_CHECK(header_start + header_len <= bytes.size(), path, ": truncated npy header");
  const std::string dict = bytes.substr(header_start, header_len);
  std::string descr = npy_field(dict, "descr", path);
  const std::string order = npy_field(dict, "fortran_order", path);
  const std::string shape = npy_field(dict, "shape", path);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"'))
    descr = descr.substr(1, descr.size() - 2);
  SPT_CHECK(order == "False" || order == "True", path, ": npy fortran_order is '", order, "'");

  // shape "(P, d)": exactly two dimensions.
  std::vector<int64_t> dims;
  {
    std::string s = shape;
    SPT_CHECK(s.size() >= 2 && s.front() == '(' && s.back() == ')', path, ": npy shape '", shape,
              "' is not a tuple");
    std::stringstream ss(s.substr(1, s.size() - 2));
    std::string item;
    while (std::getline(ss, item, ',')) {
      const size_t b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
      if (b == std::string::npos) continue;  // "(5,)" has an empty last item
      const std::string digits = item.substr(b, e - b + 1);
      size_t used = 0;
      try {
        dims.push_back(std::stoll(digits, &used));
      } catch (const std::exception&) {
        used = 0;
      }
      SPT_CHECK(used == digits.size() && used > 0, path, ": npy shape '", shape,
                "' is not a tuple of integers");
    }
  }
  SPT_CHECK(dims.size() == 2 && dims[0] >= 1 && dims[1] >= 1, path, ": the array has shape ",
            shape, "; a prompt is 2-D [P, d_model]");

  // '<f4' is the prompt exactly; '<u2' holds bf16 bits (what export --dtype bf16 writes).
  int width = 0;
  if (descr == "<f4") width = 4;
  else if (descr == "<u2" || descr == "<f2") width = 2;
  else if (descr == "<f8") width = 8;
  else
    fail(path, ": npy dtype '", descr, "' is not supported (float32 '<f4', float64 '<f8', float16 "
         "'<f2', or bf16 bits as uint16 '<u2')");
  const int64_t n = dims[0] * dims[1];
  const size_t data_start = header_start + header_len;
  SPT_CHECK(bytes.size() - data_start == size_t(n) * size_t(width), path, ": npy data is ",
            bytes.size() - data_start, " bytes but shape ", shape, " of ", descr, " needs ",
            n * width, " (truncated?)");

  StoredPrompt p;
  p.path = path;
  p.format = "npy";
  p.rows = dims[0];
  p.cols = dims[1];
  p.values.resize(size_t(n));
  const char* src = bytes.data() + data_start;
  for (int64_t i = 0; i < n; ++i) {
    // Fortran order: element (r, c) is stored at c * rows + r.
    const int64_t r = i / p.cols, c = i % p.cols;
    const int64_t at = order == "True" ? c * p.rows + r : i;
    float v = 0;
    if (width == 4) {
      std::memcpy(&v, src + at * 4, 4);
    } else if (width == 8) {
      double d;
      std::memcpy(&d, src + at * 8, 8);
      v = float(d);
    } else {
      uint16_t h;
      std::memcpy(&h, src + at * 2, 2);
      v = descr == "<u2" ? bf16_to_f32(h) : f16_to_f32(h);
    }
    p.values[size_t(i)] = v;
  }
  return p;
}

// ---- safetensors (one tensor) ----

std::string safetensors_header(const std::string& dtype, int64_t rows, int64_t cols, uint64_t nbytes,
                               const std::map<std::string, std::string>& metadata) {
  ordered_json h;
  h["__metadata__"] = metadata;
  h[kPeftTensor] = {{"dtype", dtype}, {"shape", {rows, cols}}, {"data_offsets", {0, nbytes}}};
  std::string text = h.dump();
  // Padded with spaces so that the data starts 8-byte aligned, as the
  // safetensors library writes it.
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + text;
}

StoredPrompt read_peft_weights(const std::string& path) {
  auto shard = safetensors::Shard::open(path);
  const safetensors::TensorInfo* t = nullptr;
  std::string names;
  for (const auto& info : shard->tensors()) {
    if (info.name == kPeftTensor) t = &info;
    names += (names.empty() ? "" : ", ") + info.name;
  }
  if (!t)
    fail(path, ": no tensor '", kPeftTensor, "' (a PEFT prompt-tuning adapter has it); the file has: ",
         names.empty() ? "no tensors" : names);
  SPT_CHECK(t->shape.size() == 2 && t->shape[0] >= 1 && t->shape[1] >= 1, path, ": '", kPeftTensor,
            "' has ", t->shape.size(), " dimensions; expected [P, d_model]");
  StoredPrompt p;
  p.path = path;
  p.format = "peft";
  p.rows = t->shape[0];
  p.cols = t->shape[1];
  const size_t n = size_t(t->numel);
  p.values.resize(n);
  if (t->dtype == "F32") {
    shard->read(t->file_offset, t->nbytes, p.values.data(), kPeftTensor);
  } else if (t->dtype == "BF16" || t->dtype == "F16") {
    std::vector<uint16_t> half(n);
    shard->read(t->file_offset, t->nbytes, half.data(), kPeftTensor);
    for (size_t i = 0; i < n; ++i)
      p.values[i] = t->dtype == "BF16" ? bf16_to_f32(half[i]) : f16_to_f32(half[i]);
  } else {
    fail(path, ": '", kPeftTensor, "' is ", t->dtype, "; F32, BF16 or F16 expected");
  }
  // sptrain records the model's fingerprint and the step in the metadata;
  // adapters from elsewhere have neither.
  const json h = json::parse(shard->header_json(), nullptr, false);
  if (h.is_object() && h.contains("__metadata__") && h["__metadata__"].is_object()) {
    const json& m = h["__metadata__"];
    if (m.contains("sptrain_model_fingerprint") && m["sptrain_model_fingerprint"].is_string())
      p.model_fingerprint = m["sptrain_model_fingerprint"].get<std::string>();
    if (m.contains("sptrain_step") && m["sptrain_step"].is_string()) {
      try {
        p.step = std::stoll(m["sptrain_step"].get<std::string>());
      } catch (const std::exception&) {
        p.step = -1;
      }
    }
  }
  return p;
}

// A PEFT folder: the weights, checked against adapter_config.json when present.
StoredPrompt read_peft_folder(const std::string& dir) {
  const std::string weights = (fs::path(dir) / kPeftWeights).string();
  std::error_code ec;
  if (!fs::exists(weights, ec))
    fail(dir, ": a folder without ", kPeftWeights,
         " (only a PEFT prompt-tuning folder can be read as a prompt)");
  StoredPrompt p = read_peft_weights(weights);
  const std::string config_path = (fs::path(dir) / kPeftConfig).string();
  if (!fs::exists(config_path, ec)) return p;
  json c;
  try {
    c = json::parse(read_small_file(config_path));
  } catch (const json::parse_error& e) {
    fail(config_path, ": invalid JSON: ", e.what());
  }
  SPT_CHECK(c.is_object(), config_path, ": not a JSON object");
  auto get_string = [&](const char* key) {
    return c.contains(key) && c[key].is_string() ? c[key].get<std::string>() : std::string();
  };
  auto get_int = [&](const char* key, int64_t fallback) {
    return c.contains(key) && c[key].is_number_integer() ? c[key].get<int64_t>() : fallback;
  };
  const std::string type = get_string("peft_type");
  SPT_CHECK(type == "PROMPT_TUNING", config_path, ": peft_type is '", type,
            "'; only PROMPT_TUNING adapters are soft prompts sptrain can use");
  const int64_t submodules = get_int("num_transformer_submodules", 1);
  SPT_CHECK(submodules == 1, config_path, ": num_transformer_submodules is ", submodules,
            " (an encoder-decoder prompt); sptrain's models are decoders (1)");
  const int64_t virtual_tokens = get_int("num_virtual_tokens", p.rows);
  const int64_t token_dim = get_int("token_dim", p.cols);
  SPT_CHECK(virtual_tokens == p.rows && token_dim == p.cols, config_path,
            ": num_virtual_tokens ", virtual_tokens, " and token_dim ", token_dim,
            " disagree with '", kPeftTensor, "' [", p.rows, ", ", p.cols, "] in ", weights);
  p.path = dir;
  return p;
}

// ---- hdf5 export ----

StoredPrompt read_hdf5_export(h5::File& f) {
  const std::string& path = f.path();
  const int64_t version = f.attr_int("/", "format_version");
  SPT_CHECK(version == kHdf5FormatVersion, path, ": prompt export format_version ", version,
            " is not supported (this build reads ", kHdf5FormatVersion, ")");
  StoredPrompt p;
  p.path = path;
  p.format = "hdf5";
  const h5::DatasetInfo info = f.info("prompt");
  SPT_CHECK(info.shape.rank == 2 && info.shape[0] >= 1 && info.shape[1] >= 1, path,
            ": dataset 'prompt' must be 2-D [P, d_model]");
  p.rows = info.shape[0];
  p.cols = info.shape[1];
  SPT_CHECK(f.attr_int("/", "prompt_length") == p.rows && f.attr_int("/", "d_model") == p.cols, path,
            ": attributes prompt_length/d_model disagree with the 'prompt' dataset [", p.rows, ", ",
            p.cols, "]");
  p.values.resize(size_t(p.rows * p.cols));
  f.read("prompt", DType::F32, p.values.data());
  p.model_fingerprint = f.attr_string("/", "model_fingerprint");
  p.model_path = f.attr_string("/", "model_path");
  p.step = f.attr_int("/", "step");
  p.eval_accuracy = f.attr_double("/", "eval_accuracy");
  p.eval_loss = f.attr_double("/", "eval_loss");
  p.task_template = f.attr_string("/", "task_template");
  p.task_max_length = int(f.attr_int("/", "task_max_length"));
  p.labels = read_verbalizer(f, path);
  p.has_task = !p.labels.empty() && p.task_max_length > 0;
  return p;
}

}  // namespace

// ---- reading any format ----

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
  if (got >= 6 && std::memcmp(head, kNpyMagic, 6) == 0) return read_npy(path);
  if (got >= 8 && std::memcmp(head, kHdf5Signature, 8) == 0) {
    h5::File f = h5::File::open_read(path);
    const std::string format = f.has_attr("/", "format") ? f.attr_string("/", "format") : "";
    if (format == kHdf5Format) return read_hdf5_export(f);
    f.close();
    if (format == kCheckpointFormat) return stored_prompt_of(read_checkpoint(path), path);
    fail(path, ": an HDF5 file but not a prompt (format '", format, "'; expected '",
         kCheckpointFormat, "' or '", kHdf5Format, "')");
  }
  // safetensors: an 8-byte little-endian length, then a JSON object.
  if (got >= 9 && head[8] == '{') return read_peft_weights(path);
  fail(path, ": not a prompt file: expected a checkpoint or hdf5 export (.h5), a NumPy .npy file, "
       "a PEFT folder or its ", kPeftWeights);
}

void check_prompt_matches_model(const StoredPrompt& p, const ModelConfig& m, const std::string& model_path) {
  SPT_CHECK(p.cols == m.d_model, p.path, ": the prompt has d_model ", p.cols, " but the model ",
            model_path, " has d_model ", m.d_model);
  SPT_CHECK(p.model_fingerprint.empty() || m.fingerprint.empty() || p.model_fingerprint == m.fingerprint,
            p.path, ": the prompt was trained on another model: its model fingerprint is ",
            p.model_fingerprint, ", the model ", model_path, " has fingerprint ", m.fingerprint);
}

// ---- writing ----

ExportFormat parse_export_format(const std::string& name) {
  if (name == "hdf5") return ExportFormat::Hdf5;
  if (name == "npy") return ExportFormat::Npy;
  if (name == "peft") return ExportFormat::Peft;
  fail("unknown export format '", name, "' (hdf5, npy or peft)");
}

const char* export_format_name(ExportFormat f) {
  switch (f) {
    case ExportFormat::Hdf5: return "hdf5";
    case ExportFormat::Npy: return "npy";
    case ExportFormat::Peft: return "peft";
  }
  return "?";
}

int64_t npy_file_bytes(int64_t rows, int64_t cols, int bytes_per_value) {
  return int64_t(npy_header("<f4", rows, cols).size()) + rows * cols * bytes_per_value;
}

ExportResult export_hdf5(const StoredPrompt& p, const std::string& out) {
  check_values(p);
  replace_atomically(out, [&](const std::string& tmp) {
    h5::File f = h5::File::create(tmp);
    f.set_attr("/", "format", kHdf5Format);
    f.set_attr("/", "format_version", kHdf5FormatVersion);
    f.set_attr("/", "prompt_length", p.rows);
    f.set_attr("/", "d_model", p.cols);
    f.set_attr("/", "model_fingerprint", p.model_fingerprint);
    f.set_attr("/", "model_path", p.model_path);
    f.set_attr("/", "step", p.step);
    f.set_attr("/", "eval_accuracy", p.eval_accuracy);
    f.set_attr("/", "eval_loss", p.eval_loss);
    f.set_attr("/", "task_template", p.task_template);
    f.set_attr("/", "task_max_length", int64_t(p.has_task ? p.task_max_length : 0));
    f.write("prompt", DType::F32, Shape{p.rows, p.cols}, p.values.data());
    if (!p.labels.empty()) write_verbalizer(f, p.labels);
    f.flush();
  });
  return ExportResult{{out}, file_size(out), p.rows * p.cols * 4};
}

ExportResult export_npy(const StoredPrompt& p, const std::string& out, const std::string& dtype) {
  check_values(p);
  SPT_CHECK(dtype == "f32" || dtype == "bf16", "npy dtype '", dtype, "' (f32 or bf16)");
  const bool bf16 = dtype == "bf16";
  const std::string header = npy_header(bf16 ? "<u2" : "<f4", p.rows, p.cols);
  std::vector<uint16_t> half;
  if (bf16) {
    half.resize(p.values.size());
    for (size_t i = 0; i < half.size(); ++i) half[i] = f32_to_bf16(p.values[i]);
  }
  const size_t value_bytes = p.values.size() * (bf16 ? 2 : 4);
  replace_atomically(out, [&](const std::string& tmp) {
    write_parts(tmp, {{header.data(), header.size()},
                      {bf16 ? static_cast<const void*>(half.data()) : p.values.data(), value_bytes}});
  });
  return ExportResult{{out}, file_size(out), int64_t(value_bytes)};
}

ExportResult export_peft(const StoredPrompt& p, const std::string& out, const PeftModelInfo& model) {
  check_values(p);
  SPT_CHECK(model.num_layers >= 1 && model.num_attention_heads >= 1,
            "peft export: num_layers and num_attention_heads of the model are needed");
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    fail(out, ": exists and is not a folder (a PEFT adapter is a folder)");
  fs::create_directories(out, ec);
  if (ec) fail(out, ": cannot create the folder: ", ec.message());

  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (!p.model_fingerprint.empty()) metadata["sptrain_model_fingerprint"] = p.model_fingerprint;
  if (p.step >= 0) metadata["sptrain_step"] = std::to_string(p.step);
  const uint64_t nbytes = uint64_t(p.values.size()) * 4;
  const std::string header = safetensors_header("F32", p.rows, p.cols, nbytes, metadata);
  const std::string weights = (fs::path(out) / kPeftWeights).string();
  replace_atomically(weights, [&](const std::string& tmp) {
    write_parts(tmp, {{header.data(), header.size()}, {p.values.data(), nbytes}});
  });

  // The fields of PEFT's PromptTuningConfig (what save_pretrained writes).
  ordered_json c;
  c["task_type"] = "CAUSAL_LM";
  c["peft_type"] = "PROMPT_TUNING";
  c["auto_mapping"] = nullptr;
  c["base_model_name_or_path"] = model.base_model_name_or_path;
  c["revision"] = nullptr;
  c["inference_mode"] = true;
  c["num_virtual_tokens"] = p.rows;
  c["token_dim"] = p.cols;
  c["num_transformer_submodules"] = 1;
  c["num_attention_heads"] = model.num_attention_heads;
  c["num_layers"] = model.num_layers;
  c["modules_to_save"] = nullptr;
  c["prompt_tuning_init"] = "RANDOM";
  c["prompt_tuning_init_text"] = nullptr;
  c["tokenizer_name_or_path"] = nullptr;
  c["tokenizer_kwargs"] = nullptr;
  const std::string text = c.dump(2) + "\n";
  const std::string config = (fs::path(out) / kPeftConfig).string();
  replace_atomically(config, [&](const std::string& tmp) { write_parts(tmp, {{text.data(), text.size()}}); });
  return ExportResult{{weights, config}, file_size(weights) + file_size(config), int64_t(nbytes)};
}

// ---- `sptrain export` ----

int run_export(const ExportOptions& o) {
  const ExportFormat format = parse_export_format(o.format);
  SPT_CHECK(format == ExportFormat::Npy || o.dtype == "f32",
            "--dtype ", o.dtype, " applies to --format npy only (hdf5 and peft are f32)");
  const StoredPrompt p = read_stored_prompt(o.checkpoint);
  SPT_CHECK(p.format == "checkpoint" || p.format == "hdf5", o.checkpoint, ": a ", p.format,
            " prompt has no metadata to export; give a checkpoint (step_*.h5) or an hdf5 export");

  ExportResult r;
  switch (format) {
    case ExportFormat::Hdf5:
      r = export_hdf5(p, o.out);
      break;
    case ExportFormat::Npy:
      r = export_npy(p, o.out, o.dtype);
      break;
    case ExportFormat::Peft: {
      // adapter_config.json describes the base model: read its dimensions
      // (attributes only, no weights) and check the prompt belongs to it.
      const std::string model_path = o.model.empty() ? p.model_path : o.model;
      SPT_CHECK(!model_path.empty(), o.checkpoint,
                ": no model path recorded; give --model MODEL for the PEFT config");
      std::error_code ec;
      SPT_CHECK(fs::exists(model_path, ec), model_path, ": model file not found",
                o.model.empty() ? " (the path the checkpoint records, relative to where training ran)" : "",
                "; a PEFT export reads num_layers and num_attention_heads from it: give --model MODEL");
      const h5::File mf = h5::File::open_read(model_path);
      const ModelConfig m = read_model_config(mf);
      check_prompt_matches_model(p, m, model_path);
      PeftModelInfo info{m.n_layers, m.n_heads, o.base_model.empty() ? m.name : o.base_model};
      r = export_peft(p, o.out, info);
      break;
    }
  }
  std::printf("exported prompt [%lld x %lld] of %s as %s%s to %s: %lld bytes (%lld bytes of values)\n",
              static_cast<long long>(p.rows), static_cast<long long>(p.cols), o.checkpoint.c_str(),
              export_format_name(format),
              format == ExportFormat::Npy && o.dtype == "bf16" ? " (bf16 bits as uint16)" : "",
              o.out.c_str(), static_cast<long long>(r.bytes), static_cast<long long>(r.value_bytes));
  return 0;
}

}  // namespace sptrain
