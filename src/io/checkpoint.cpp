#include "sptrain/io/checkpoint.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/io/h5.hpp"

namespace sptrain {
namespace fs = std::filesystem;
namespace {

// Dataset and attribute names of the layout (docs/formats.md).
constexpr const char* kPrompt = "prompt";
constexpr const char* kOptimizerGroup = "optimizer";
constexpr const char* kRng = "rng_state";
constexpr const char* kConfig = "config_yaml";
constexpr const char* kLabelValues = "verbalizer/labels";
constexpr const char* kLabelWords = "verbalizer/words";

Shape shape_of(const std::vector<int64_t>& dims, const std::string& what) {
  SPT_CHECK(dims.size() >= 1 && dims.size() <= 4, "checkpoint: ", what, " has rank ", dims.size(),
            " (1 to 4 supported)");
  Shape s;
  for (int64_t d : dims) {
    SPT_CHECK(d >= 0, "checkpoint: ", what, " has a negative dimension");
    s.dims[size_t(s.rank++)] = d;
  }
  return s;
}

// A prompt with a NaN or an infinity makes every loss NaN: never written, never used.
void check_finite_prompt(const std::vector<float>& prompt, const std::string& where) {
  for (size_t i = 0; i < prompt.size(); ++i)
    if (!std::isfinite(prompt[i]))
      fail(where, ": the prompt holds ", prompt[i], " at value ", i, " (a prompt must be finite)");
}

int64_t numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

void write_contents(h5::File& f, const Checkpoint& c) {
  SPT_CHECK(c.prompt_rows >= 1 && c.prompt_cols >= 1, "checkpoint: prompt shape [", c.prompt_rows,
            ", ", c.prompt_cols, "] is empty");
  SPT_CHECK(int64_t(c.prompt.size()) == c.prompt_rows * c.prompt_cols, "checkpoint: prompt has ",
            c.prompt.size(), " values, expected ", c.prompt_rows, " x ", c.prompt_cols);
  SPT_CHECK(c.step >= 0 && c.epoch >= 0 && c.epoch_position >= 0,
            "checkpoint: step, epoch and epoch_position must be >= 0");

  check_finite_prompt(c.prompt, "checkpoint");

  f.set_attr("/", "format", kCheckpointFormat);
  f.set_attr("/", "format_version", kCheckpointFormatVersion);
  write_prompt_metadata(f, c);
  f.set_attr("/", "epoch", c.epoch);
  f.set_attr("/", "epoch_position", c.epoch_position);
  f.set_attr("/", "optimizer", c.optimizer_name);

  f.write(kPrompt, DType::F32, Shape{c.prompt_rows, c.prompt_cols}, c.prompt.data());

  std::set<std::string> seen;
  for (const NamedState& s : c.optimizer) {
    SPT_CHECK(!s.name.empty() && s.name.find('/') == std::string::npos && seen.insert(s.name).second,
              "checkpoint: optimizer state name '", s.name, "' is empty, has a '/' or repeats");
    SPT_CHECK(numel(s.shape) == int64_t(s.values.size()), "checkpoint: optimizer state '", s.name,
              "' has ", s.values.size(), " values for its shape");
    f.write(std::string(kOptimizerGroup) + "/" + s.name, DType::F32, shape_of(s.shape, s.name),
            s.values.data());
  }

  // HDF5 here has no unsigned 64-bit dtype: the words are stored as int64
  // with the same bits.
  std::vector<int64_t> rng(c.rng_state.size());
  if (!rng.empty()) std::memcpy(rng.data(), c.rng_state.data(), rng.size() * sizeof(int64_t));
  if (rng.empty())
    f.create_dataset(kRng, DType::I64, Shape{0});
  else
    f.write(kRng, DType::I64, Shape{int64_t(rng.size())}, rng.data());

  f.write_strings(kConfig, {c.config_yaml});
}

}  // namespace

void write_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) fail(parent.string(), ": cannot create checkpoint folder: ", ec.message());
  }
  write_file_atomically(path, [&](const std::string& tmp) {
    h5::File f = h5::File::create(tmp);
    write_contents(f, ckpt);
    f.close();  // checked: a full disk fails here, before the rename
  });
}

Checkpoint read_checkpoint(const std::string& path) {
  h5::File f = h5::File::open_read(path);  // fails on missing, not HDF5, truncated
  if (!f.has_attr("/", "format"))
    fail(path, ": not a prompt checkpoint (no 'format' attribute; expected '", kCheckpointFormat,
         "')");
  std::string format = f.attr_string("/", "format");
  if (format != kCheckpointFormat)
    fail(path, ": not a prompt checkpoint (format is '", format, "', expected '",
         kCheckpointFormat, "')");
  int64_t version = f.attr_int("/", "format_version");
  if (version != kCheckpointFormatVersion)
    fail(path, ": checkpoint format_version ", version, " is not supported (this build reads ",
         kCheckpointFormatVersion, version > kCheckpointFormatVersion ? "; written by a newer sptrain)" : ")");

  Checkpoint c;
  static_cast<PromptMetadata&>(c) = read_prompt_metadata(f);
  SPT_CHECK(c.step >= 0, path, ": attribute 'step' is ", c.step, "; a checkpoint's step is >= 0");
  c.epoch = f.attr_int("/", "epoch");
  c.epoch_position = f.attr_int("/", "epoch_position");
  SPT_CHECK(c.epoch >= 0 && c.epoch_position >= 0, path, ": attributes 'epoch' (", c.epoch,
            ") and 'epoch_position' (", c.epoch_position, ") must be >= 0");
  c.optimizer_name = f.attr_string("/", "optimizer");

  h5::DatasetInfo pi = f.info(kPrompt);
  if (pi.shape.rank != 2 || pi.shape[0] < 1 || pi.shape[1] < 1)
    fail(path, ": dataset 'prompt' must be 2-D [P, d], has shape ", pi.shape.to_string());
  if (pi.dtype != DType::F32) fail(path, ": dataset 'prompt' holds ", dtype_name(pi.dtype), ", not f32");
  c.prompt_rows = pi.shape[0];
  c.prompt_cols = pi.shape[1];
  c.prompt.resize(size_t(c.prompt_rows * c.prompt_cols));
  f.read(kPrompt, DType::F32, c.prompt.data());
  check_finite_prompt(c.prompt, path);

  if (f.exists(kOptimizerGroup)) {
    for (const std::string& name : f.list(kOptimizerGroup)) {
      std::string ds = std::string(kOptimizerGroup) + "/" + name;
      h5::DatasetInfo si = f.info(ds);
      if (si.dtype != DType::F32) fail(path, ": dataset '", ds, "' holds ", dtype_name(si.dtype), ", not f32");
      NamedState s{name, {}, {}};
      for (int i = 0; i < si.shape.rank; ++i) s.shape.push_back(si.shape[i]);
      s.values.resize(size_t(si.shape.numel()));
      f.read(ds, DType::F32, s.values.data());
      c.optimizer.push_back(std::move(s));
    }
  }

  h5::DatasetInfo ri = f.info(kRng);
  if (ri.shape.rank != 1 || ri.dtype != DType::I64) fail(path, ": dataset 'rng_state' must be 1-D int64");
  std::vector<int64_t> rng(size_t(ri.shape[0]));
  if (!rng.empty()) f.read(kRng, DType::I64, rng.data());
  c.rng_state.resize(rng.size());
  if (!rng.empty()) std::memcpy(c.rng_state.data(), rng.data(), rng.size() * sizeof(int64_t));

  std::vector<std::string> config = f.read_strings(kConfig);
  if (config.size() != 1) fail(path, ": dataset 'config_yaml' must hold one string");
  c.config_yaml = config[0];
  return c;
}

void write_prompt_metadata(h5::File& f, const PromptMetadata& m) {
  f.set_attr("/", "model_fingerprint", m.model_fingerprint);
  f.set_attr("/", "model_path", m.model_path);
  f.set_attr("/", "step", m.step);
  f.set_attr("/", "eval_accuracy", m.eval_accuracy);
  f.set_attr("/", "eval_loss", m.eval_loss);
  f.set_attr("/", "task_template", m.task_template);
  std::vector<std::string> values, words;
  for (const auto& [value, word] : m.labels) {
    values.push_back(value);
    words.push_back(word);
  }
  f.write_strings(kLabelValues, values);
  f.write_strings(kLabelWords, words);
}

PromptMetadata read_prompt_metadata(const h5::File& f) {
  const std::string& path = f.path();
  PromptMetadata m;
  m.model_fingerprint = f.attr_string("/", "model_fingerprint");
  SPT_CHECK(m.model_fingerprint.empty() ||
                (m.model_fingerprint.size() == 16 &&
                 m.model_fingerprint.find_first_not_of("0123456789abcdef") == std::string::npos),
            path, ": attribute 'model_fingerprint' is '", m.model_fingerprint, "', expected 16 hex digits");
  m.model_path = f.attr_string("/", "model_path");
  m.step = f.attr_int("/", "step");
  SPT_CHECK(m.step >= -1, path, ": attribute 'step' is ", m.step);
  m.eval_accuracy = f.attr_double("/", "eval_accuracy");
  m.eval_loss = f.attr_double("/", "eval_loss");
  SPT_CHECK(std::isnan(m.eval_accuracy) || (m.eval_accuracy >= 0 && m.eval_accuracy <= 1), path,
            ": attribute 'eval_accuracy' is ", m.eval_accuracy, " (NaN or within [0, 1])");
  SPT_CHECK(std::isnan(m.eval_loss) || (m.eval_loss >= 0 && std::isfinite(m.eval_loss)), path,
            ": attribute 'eval_loss' is ", m.eval_loss, " (NaN or a finite number >= 0)");
  m.task_template = f.attr_string("/", "task_template");
  if (!f.exists(kLabelValues)) return m;
  const std::vector<std::string> values = f.read_strings(kLabelValues);
  const std::vector<std::string> words = f.read_strings(kLabelWords);
  if (values.size() != words.size())
    fail(path, ": 'verbalizer/labels' and 'verbalizer/words' differ in length (", values.size(),
         " vs ", words.size(), ")");
  for (size_t i = 0; i < values.size(); ++i) m.labels.emplace_back(values[i], words[i]);
  return m;
}

std::string checkpoint_name(int64_t step) {
  SPT_CHECK(step >= 0, "checkpoint step ", step, " is negative");
  char buf[40];
  std::snprintf(buf, sizeof buf, "step_%06lld.h5", static_cast<long long>(step));
  return buf;
}

namespace {

// (step, path) of every complete checkpoint in run_dir: names exactly
// step_<digits>.h5. Temporaries (step_<digits>.h5.tmp) do not match.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return out;
  fs::directory_iterator it(run_dir, ec);
  if (ec) fail(run_dir, ": cannot list the checkpoint folder: ", ec.message());
  for (const fs::directory_entry& e : it) {
    if (!e.is_regular_file(ec)) continue;
    const std::string name = e.path().filename().string();
    const std::string prefix = "step_", suffix = ".h5";
    if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const char* b = name.data() + prefix.size();
    const char* end = name.data() + name.size() - suffix.size();
    if (!std::all_of(b, end, [](char ch) { return ch >= '0' && ch <= '9'; })) continue;
    int64_t step = 0;
    auto [ptr, err] = std::from_chars(b, end, step);
    if (err != std::errc() || ptr != end) continue;  // absurdly many digits
    out.emplace_back(step, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

ResumeChoice choose_resume_checkpoint(const std::string& run_dir) {
  ResumeChoice choice;
  const auto all = list_checkpoints(run_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      read_checkpoint(it->second);
      choice.path = it->second;
      choice.step = it->first;
      break;
    } catch (const Error& e) {
      choice.unreadable.emplace_back(it->second, e.what());
    }
  }
  return choice;
}

std::vector<std::string> remove_stale_temporaries(const std::string& run_dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return removed;
  fs::directory_iterator it(run_dir, ec);
  if (ec) fail(run_dir, ": cannot list the checkpoint folder: ", ec.message());
  for (const fs::directory_entry& e : it) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step_", 0) != 0 || name.size() < 9 || name.compare(name.size() - 4, 4, ".tmp") != 0 ||
        !e.is_regular_file(ec))
      continue;
    fs::remove(e.path(), ec);
    if (ec) fail(e.path().string(), ": cannot delete a stale temporary file: ", ec.message());
    removed.push_back(e.path().string());
  }
  return removed;
}

void prune_checkpoints(const std::string& run_dir, int keep) {
  if (keep <= 0) return;
  auto all = list_checkpoints(run_dir);
  if (all.size() <= size_t(keep)) return;
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i].second, ec);
    if (ec) fail(all[i].second, ": cannot delete old checkpoint: ", ec.message());
  }
}

}  // namespace sptrain
