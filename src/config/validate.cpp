// Range, allowed-value and cross-key checks of a Config. The loader has already
// checked types; here every number gets its sensible range and every enum-like
// string its list of allowed values.
#include <initializer_list>
#include <set>

#include "fields.hpp"
#include "sptrain/config/load.hpp"
#include "sptrain/core/error.hpp"

namespace sptrain {
namespace config_detail {
namespace {

class Checker {
 public:
  explicit Checker(const Origins& origins) : origins_(origins) {}

  // Where to point for a message about `path`: its own origin, else that of
  // the first of `fallbacks` that was given, else the nearest section's.
  std::string where(const std::string& path, std::initializer_list<const char*> fallbacks = {}) const {
    if (origins_.has(path)) return origins_.of(path);
    for (const char* f : fallbacks)
      if (origins_.has(f)) return origins_.of(f);
    return origins_.of(path);
  }

  [[noreturn]] void error(const std::string& path, const std::string& message,
                          std::initializer_list<const char*> fallbacks = {}) const {
    fail(where(path, fallbacks), ": ", path, ": ", message);
  }

  void one_of(const std::string& path, const std::string& value,
              std::initializer_list<const char*> allowed) const {
    std::string list;
    for (const char* a : allowed) {
      if (value == a) return;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    error(path, "must be one of " + list + "; got '" + value + "'");
  }

  void at_least(const std::string& path, long long value, long long min) const {
    if (value < min) error(path, str("must be >= ", min, ", got ", value));
  }

  // Written so that NaN fails every check.
  void above(const std::string& path, double value, double min) const {
    if (!(value > min)) error(path, str("must be > ", format_number(min), ", got ", format_number(value)));
  }
  void at_least(const std::string& path, double value, double min) const {
    if (!(value >= min)) error(path, str("must be >= ", format_number(min), ", got ", format_number(value)));
  }
  void in_range(const std::string& path, double value, double lo, bool hi_included, double hi) const {
    if (!(value >= lo && (hi_included ? value <= hi : value < hi)))
      error(path, str("must be in [", format_number(lo), ", ", format_number(hi), hi_included ? "]" : ")",
                      ", got ", format_number(value)));
  }

  void required(const std::string& path, bool empty) const {
    if (!empty) return;
    if (origins_.has(path)) error(path, "must not be empty");
    fail(origins_.source(), ": ", path, ": required key is missing");
  }

 private:
  const Origins& origins_;
};

}  // namespace

void validate(const Config& c, const Origins& origins) {
  const Checker check(origins);

  check.one_of("backend", c.backend, {"cpu", "cuda"});
  check.at_least("threads", c.threads, 0LL);
  if (c.threads > kMaxThreads)
    check.error("threads", str("must be <= ", kMaxThreads, " (threads per rank), got ", c.threads));

  check.required("model.path", c.model.path.empty());
  check.one_of("model.dtype", c.model.dtype, {"f32", "f64"});

  check.required("task.train", c.task.train.empty());
  check.one_of("task.format", c.task.format, {"auto", "tsv", "jsonl"});
  if (c.task.template_text.find("{text}") == std::string::npos)
    check.error("task.template", "must contain {text} (where the example's text goes), got '" +
                                     c.task.template_text + "'");
  check.one_of("task.kind", c.task.kind, {"classify", "generate"});
  const bool generate = c.task.kind == "generate";
  if (generate) {
    // A generative task answers with text: no label words, the loss over the vocabulary.
    if (!c.task.labels.empty())
      check.error("task.labels", "a generate task has no labels (remove task.labels, or set task.kind: classify)");
    if (origins.has("task.loss") && c.task.loss != "vocab")
      check.error("task.loss", "a generate task's loss is over the whole vocabulary: remove task.loss or set it to vocab");
    if (c.prompt.init == "labels")
      check.error("prompt.init", "labels needs the label words of a classify task; a generate task has none");
  } else {
    check.required("task.labels", c.task.labels.empty());
    if (c.task.labels.size() < 2)
      check.error("task.labels", str("needs at least 2 labels, got ", c.task.labels.size()));
  }
  std::set<std::string> labels_seen;
  for (size_t i = 0; i < c.task.labels.size(); ++i) {
    const auto& [label, word] = c.task.labels[i];
    const std::string entry = "task.labels." + label;
    if (label.empty()) check.error("task.labels", "a label must not be empty");
    if (!labels_seen.insert(label).second) check.error(entry, "duplicate label");
    if (word.empty()) check.error(entry, "the verbalizer word must not be empty");
    for (size_t j = 0; j < i; ++j) {
      if (c.task.labels[j].second == word)
        check.error(entry, "word '" + word + "' is already the word of label '" + c.task.labels[j].first +
                               "'; each label needs its own word");
    }
  }
  check.at_least("task.max_length", c.task.max_length, 1LL);
  check.one_of("task.loss", c.task.loss, {"labels", "vocab"});
  check.at_least("task.max_target_length", c.task.max_target_length, 1LL);

  check.one_of("prompt.method", c.prompt.method, {"prompt_tuning", "deep", "p_tuning"});
  check.one_of("prompt.reparameterize", c.prompt.reparameterize, {"none", "mlp"});
  if (c.prompt.reparameterize != "none" && c.prompt.method != "deep")
    check.error("prompt.reparameterize", "applies to prompt.method deep only (got method " +
                                             c.prompt.method + ")", {"prompt.method"});
  check.one_of("prompt.encoder", c.prompt.encoder, {"mlp", "lstm"});
  check.at_least("prompt.encoder_hidden", c.prompt.encoder_hidden, 0LL);
  check.at_least("prompt.length", c.prompt.length, 0LL);  // 0: the template alone (zero-shot eval); training checks >= 1
  if (c.prompt.init.rfind("file:", 0) == 0) {
    if (c.prompt.init.size() == 5) check.error("prompt.init", "file: needs a path, e.g. file:prompt.h5");
  } else {
    check.one_of("prompt.init", c.prompt.init,
                 {"random_uniform", "vocab_sample", "text", "labels", "file:PATH"});
  }
  if (c.prompt.init == "text" && c.prompt.init_text.empty())
    check.error("prompt.init_text", "must not be empty when prompt.init is text", {"prompt.init"});
  check.above("prompt.init_range", c.prompt.init_range, 0.0);

  check.one_of("optim.name", c.optim.name, {"adamw", "adafactor"});
  check.above("optim.lr", c.optim.lr, 0.0);
  check.at_least("optim.weight_decay", c.optim.weight_decay, 0.0);
  check.in_range("optim.beta1", c.optim.beta1, 0.0, false, 1.0);
  check.in_range("optim.beta2", c.optim.beta2, 0.0, false, 1.0);
  check.above("optim.eps", c.optim.eps, 0.0);
  check.at_least("optim.warmup_steps", c.optim.warmup_steps, 0LL);
  check.one_of("optim.schedule", c.optim.schedule, {"constant", "linear", "cosine"});
  check.in_range("optim.min_lr_ratio", c.optim.min_lr_ratio, 0.0, true, 1.0);
  check.at_least("optim.clip_grad_norm", c.optim.clip_grad_norm, 0.0);
  const AdafactorSection& af = c.optim.adafactor;
  if (!(af.decay_rate > 0.0 && af.decay_rate <= 1.0))
    check.error("optim.adafactor.decay_rate", "must be in (0, 1], got " + format_number(af.decay_rate));
  check.above("optim.adafactor.clip_threshold", af.clip_threshold, 0.0);
  check.above("optim.adafactor.eps1", af.eps1, 0.0);
  check.above("optim.adafactor.eps2", af.eps2, 0.0);

  const TrainSection& t = c.train;
  check.at_least("train.steps", t.steps, 1LL);
  check.at_least("train.batch_size", t.batch_size, 1LL);
  check.at_least("train.micro_batch_size", t.micro_batch_size, 1LL);
  if (t.batch_size % t.micro_batch_size != 0)
    check.error("train.micro_batch_size",
                str("must divide train.batch_size (", t.batch_size, "), got ", t.micro_batch_size),
                {"train.batch_size"});
  check.at_least("train.eval_every", t.eval_every, 0LL);
  check.at_least("train.eval_batch_size", t.eval_batch_size, 1LL);
  check.at_least("train.eval_max_examples", t.eval_max_examples, 0LL);
  check.at_least("train.checkpoint_every", t.checkpoint_every, 0LL);
  check.at_least("train.keep_checkpoints", t.keep_checkpoints, 1LL);
  check.at_least("train.log_every", t.log_every, 1LL);
  if (t.run_dir.empty()) check.error("train.run_dir", "must not be empty");
  if (t.resume.empty()) check.error("train.resume", "must be auto, never or the path of a checkpoint; got ''");

  const ParallelSection& p = c.parallel;
  check.at_least("parallel.tensor", p.tensor, 1LL);
  check.at_least("parallel.pipeline", p.pipeline, 1LL);
  check.one_of("parallel.schedule", p.schedule, {"gpipe", "1f1b"});
  check.above("parallel.timeout_s", p.timeout_s, 0.0);
  check.in_range("parallel.timeout_s", p.timeout_s, 0.0, true, 7 * 24 * 3600.0);
  check.above("parallel.stop_timeout_s", p.stop_timeout_s, 0.0);
  check.in_range("parallel.stop_timeout_s", p.stop_timeout_s, 0.0, true, 7 * 24 * 3600.0);
  if (!p.stage_layers.empty()) {
    if (p.stage_layers.size() != static_cast<size_t>(p.pipeline))
      check.error("parallel.stage_layers",
                  str("has ", p.stage_layers.size(), " entries but parallel.pipeline is ", p.pipeline,
                      "; give one layer count per stage, or [] to balance"),
                  {"parallel.pipeline"});
    for (size_t i = 0; i < p.stage_layers.size(); ++i) {
      if (p.stage_layers[i] < 1)
        check.error("parallel.stage_layers",
                    str("stage ", i, " must have >= 1 layer, got ", p.stage_layers[i]));
    }
  }
}

}  // namespace config_detail

void validate_config(const Config& config) {
  config_detail::validate(config, config_detail::Origins(config.source_path.empty() ? "config" : config.source_path));
}

}  // namespace sptrain
