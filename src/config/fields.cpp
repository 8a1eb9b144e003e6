// The table of YAML keys of a Config, and helpers to answer questions about key
// paths: the loader, the validator and dump_config all work from this one table.
#include "fields.hpp"

#include <algorithm>
#include <charconv>
#include <set>

namespace sptrain::config_detail {

std::vector<Field> fields_of(Config& c) {
  return {
      {"backend", &c.backend},
      {"threads", &c.threads},

      {"model.path", &c.model.path},
      {"model.dtype", &c.model.dtype},

      {"task.kind", &c.task.kind},
      {"task.train", &c.task.train},
      {"task.eval", &c.task.eval},
      {"task.format", &c.task.format},
      {"task.template", &c.task.template_text},
      {"task.labels", &c.task.labels},
      {"task.max_length", &c.task.max_length},
      {"task.loss", &c.task.loss},
      {"task.max_target_length", &c.task.max_target_length},

      {"prompt.method", &c.prompt.method},
      {"prompt.reparameterize", &c.prompt.reparameterize},
      {"prompt.encoder", &c.prompt.encoder},
      {"prompt.encoder_hidden", &c.prompt.encoder_hidden},
      {"prompt.length", &c.prompt.length},
      {"prompt.init", &c.prompt.init},
      {"prompt.init_text", &c.prompt.init_text},
      {"prompt.init_range", &c.prompt.init_range},

      {"optim.name", &c.optim.name},
      {"optim.lr", &c.optim.lr},
      {"optim.weight_decay", &c.optim.weight_decay},
      {"optim.beta1", &c.optim.beta1},
      {"optim.beta2", &c.optim.beta2},
      {"optim.eps", &c.optim.eps},
      {"optim.warmup_steps", &c.optim.warmup_steps},
      {"optim.schedule", &c.optim.schedule},
      {"optim.min_lr_ratio", &c.optim.min_lr_ratio},
      {"optim.clip_grad_norm", &c.optim.clip_grad_norm},
      {"optim.adafactor.decay_rate", &c.optim.adafactor.decay_rate},
      {"optim.adafactor.clip_threshold", &c.optim.adafactor.clip_threshold},
      {"optim.adafactor.eps1", &c.optim.adafactor.eps1},
      {"optim.adafactor.eps2", &c.optim.adafactor.eps2},
      {"optim.adafactor.scale_parameter", &c.optim.adafactor.scale_parameter},

      {"train.steps", &c.train.steps},
      {"train.batch_size", &c.train.batch_size},
      {"train.micro_batch_size", &c.train.micro_batch_size},
      {"train.eval_every", &c.train.eval_every},
      {"train.eval_batch_size", &c.train.eval_batch_size},
      {"train.eval_max_examples", &c.train.eval_max_examples},
      {"train.checkpoint_every", &c.train.checkpoint_every},
      {"train.keep_checkpoints", &c.train.keep_checkpoints},
      {"train.log_every", &c.train.log_every},
      {"train.run_dir", &c.train.run_dir},
      {"train.resume", &c.train.resume},
      {"train.seed", &c.train.seed},
      {"train.shuffle", &c.train.shuffle},

      {"parallel.tensor", &c.parallel.tensor},
      {"parallel.pipeline", &c.parallel.pipeline},
      {"parallel.schedule", &c.parallel.schedule},
      {"parallel.stage_layers", &c.parallel.stage_layers},
      {"parallel.timeout_s", &c.parallel.timeout_s},
      {"parallel.stop_timeout_s", &c.parallel.stop_timeout_s},
  };
}

namespace {

// The key paths and their kinds, computed once from a default Config.
struct KeyTable {
  std::set<std::string> fields, sections, labels, strings;
  std::vector<std::string> all;  // fields and sections, table order
  KeyTable() {
    Config c;
    sections.insert("");
    for (const Field& f : fields_of(c)) {
      fields.insert(f.path);
      if (std::holds_alternative<Labels*>(f.ref)) labels.insert(f.path);
      if (std::holds_alternative<std::string*>(f.ref)) strings.insert(f.path);
      for (size_t dot = f.path.find('.'); dot != std::string::npos; dot = f.path.find('.', dot + 1)) {
        std::string section = f.path.substr(0, dot);
        if (sections.insert(section).second) all.push_back(section);
      }
      all.push_back(f.path);
    }
  }
};

const KeyTable& keys() {
  static const KeyTable table;
  return table;
}

std::string last_component(const std::string& path) {
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

std::string parent_of(const std::string& path) {
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

// Edit distance counting a swap of two neighbouring letters as one edit
// (optimal string alignment), so "stpes" is one edit from "steps".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

bool is_field(const std::string& path) { return keys().fields.count(path) != 0; }
bool is_section(const std::string& path) { return keys().sections.count(path) != 0; }
bool is_labels_field(const std::string& path) { return keys().labels.count(path) != 0; }
bool is_string_field(const std::string& path) { return keys().strings.count(path) != 0; }

std::string join_path(const std::string& section, const std::string& key) {
  return section.empty() ? key : section + "." + key;
}

std::string did_you_mean(const std::string& section, const std::string& key) {
  // 1. A known key of the same section with a close spelling, or one that is a
  //    prefix of the other ("optimizer" -> "optim").
  std::string best;
  size_t best_distance = std::string::npos;
  for (const std::string& path : keys().all) {
    if (parent_of(path) != section) continue;
    std::string name = last_component(path);
    size_t d = edit_distance(key, name);
    bool prefix = std::min(key.size(), name.size()) >= 3 &&
                  (key.rfind(name, 0) == 0 || name.rfind(key, 0) == 0);
    size_t allowed = key.size() <= 3 ? 1 : 2;
    if ((d <= allowed || prefix) && d < best_distance) {
      best = path;
      best_distance = d;
    }
  }
  // 2. The same name in another section ("train.lr" -> "optim.lr").
  if (best.empty()) {
    for (const std::string& path : keys().all) {
      if (last_component(path) == key) {
        best = path;
        break;
      }
    }
  }
  return best.empty() ? std::string() : " (did you mean " + best + "?)";
}

const std::string& Origins::of(const std::string& path) const {
  for (std::string p = path; !p.empty(); p = parent_of(p)) {
    auto it = where_.find(p);
    if (it != where_.end()) return it->second;
  }
  return source_;
}

std::string format_number(double value) {
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, result.ptr);
}

}  // namespace sptrain::config_detail
