#include "sptrain/infer/predictor.hpp"

#include <algorithm>
#include <cmath>

#include "sptrain/backend/factory.hpp"
#include "sptrain/data/dataset.hpp"

namespace sptrain {

TaskPrompt parse_task_prompt(const std::string& arg) {
  const size_t eq = arg.find('=');
  SPT_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < arg.size(), "--prompt '", arg,
            "': expected NAME=PATH (a task name, then a checkpoint or hdf5 export)");
  TaskPrompt t{arg.substr(0, eq), read_stored_prompt(arg.substr(eq + 1))};
  SPT_CHECK(t.prompt.has_task, "--prompt ", arg, ": a ", t.prompt.format,
            " prompt does not say its task (template, verbalizer, max_length); give a checkpoint "
            "or an hdf5 export (sptrain export --format hdf5)");
  return t;
}

Predictor::Predictor(const std::string& model_path, std::vector<TaskPrompt> tasks,
                     const PredictorOptions& options)
    : options_(options), model_file_(h5::File::open_read(model_path)) {
  SPT_CHECK(!tasks.empty(), "infer: give at least one --prompt NAME=PATH");
  SPT_CHECK(options.batch_size >= 1, "infer: --batch-size must be >= 1, is ", options.batch_size);
  model_ = read_model_config(model_file_);
  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(model_file_));
  SPT_CHECK(tokenizer_->vocab_size() <= model_.vocab_size, model_path, ": the tokenizer has ",
            tokenizer_->vocab_size(), " tokens but the model only ", model_.vocab_size, " embeddings");

  BackendOptions backend;
  backend.threads = options.threads;
  backend_ = make_backend(backend);
  ctx_ = std::make_unique<ModelContext>(ModelContext{*backend_, tensor_group_, DType::F32, DType::F32});

  // Each task's prompt must belong to this model; its task comes with it.
  std::vector<int32_t> head_tokens;  // the union of the label words, first seen first
  std::vector<int> prompt_lens;
  int64_t max_tokens = 1;
  int max_keys = 1;
  for (TaskPrompt& t : tasks) {
    const std::string where = "task '" + t.name + "' (" + t.prompt.path + ")";
    SPT_CHECK(find_task(t.name) < 0, where, ": the task name is given twice");
    const StoredPrompt& p = t.prompt;
    try {
      check_prompt_matches_model(p, model_, model_path);
    } catch (const Error& err) {
      fail("task '", t.name, "': ", err.what());
    }
    SPT_CHECK(p.rows + p.task_max_length <= model_.max_positions, where, ": ", p.rows,
              " prompt vectors + task max_length ", p.task_max_length, " exceed the model's ",
              model_.max_positions, " positions");
    SPT_CHECK(p.task_kind == "classify", where, ": a ", p.task_kind,
              " task's prompt: infer scores label words; use sptrain generate");
    const TaskSection section = task_section_of(p);
    Entry e;
    e.name = t.name;
    try {
      e.task = std::make_unique<Task>(section, *tokenizer_);
    } catch (const Error& err) {
      fail(where, ": the prompt's task does not fit this model's tokenizer: ", err.what());
    }
    for (int32_t tok : e.task->label_tokens()) {
      auto it = std::find(head_tokens.begin(), head_tokens.end(), tok);
      e.columns.push_back(int(it - head_tokens.begin()));
      if (it == head_tokens.end()) head_tokens.push_back(tok);
    }
    e.prompt = std::move(t.prompt);
    prompt_lens.push_back(int(e.prompt.rows));
    max_tokens = std::max<int64_t>(max_tokens, e.task->max_length());
    max_keys = std::max(max_keys, int(e.prompt.rows) + e.task->max_length());
    tasks_.push_back(std::move(e));
  }

  const int B = options.batch_size;
  const int64_t rows = MixedPromptBatchBuilder::rows_needed(prompt_lens, B, max_tokens);
  StageShape shape;
  shape.train = Capacity{1, 1};  // never trains
  shape.train_seqs = 1;
  shape.activation_sets = 0;
  shape.eval = Capacity{rows, max_keys};
  shape.eval_seqs = B;
  const StageSpec spec = plan_stage(model_.n_layers, 1, 0, {});
  stage_ = std::make_unique<Stage>(*ctx_, model_, model_file_, spec,
                                   HeadSpec{LossKind::Labels, head_tokens}, shape);
  builder_ = std::make_unique<MixedPromptBatchBuilder>(*backend_, prompt_lens, rows, B);

  std::vector<float> stacked;
  for (const Entry& e : tasks_) stacked.insert(stacked.end(), e.prompt.values.begin(), e.prompt.values.end());
  prompts_ = ctx_->alloc_stat(Shape{builder_->prompt_rows(), model_.d_model});
  backend_->copy_from_host(prompts_, stacked.data());
}

Predictor::~Predictor() = default;

int Predictor::find_task(const std::string& name) const {
  for (size_t k = 0; k < tasks_.size(); ++k)
    if (tasks_[k].name == name) return int(k);
  return -1;
}

std::string Predictor::task_names() const {
  std::string s;
  for (const Entry& e : tasks_) s += (s.empty() ? "" : ", ") + e.name;
  return s;
}

EncodedExample Predictor::encode(int k, const std::string& text) const {
  const Entry& e = tasks_[size_t(k)];
  // Task::encode wants a label; any of the task's will do (it is not scored).
  EncodedExample ex = e.task->encode(Example{text, e.task->label_values().front(), 0});
  SPT_CHECK(!ex.tokens.empty(), "the text has no tokens");
  ex.label = e.columns.front();
  ex.label_token = e.task->label_tokens().front();
  return ex;
}

std::vector<Prediction> Predictor::predict(const std::vector<const EncodedExample*>& examples,
                                           const std::vector<int>& task_of) {
  SPT_CHECK(!examples.empty() && int(examples.size()) <= options_.batch_size,
            "internal error: batch of ", examples.size(), " examples (batch size ", options_.batch_size, ")");
  builder_->fill(mb_, examples, task_of);
  stage_->forward(-1, mb_, prompts_.view());
  const HeadOutput& out = stage_->head_output();
  const size_t columns = out.label_scores.size() / examples.size();
  std::vector<Prediction> result(examples.size());
  for (size_t b = 0; b < examples.size(); ++b) {
    const Entry& e = tasks_[size_t(task_of[b])];
    Prediction& p = result[b];
    p.task = task_of[b];
    for (int c : e.columns) p.logits.push_back(out.label_scores[b * columns + size_t(c)]);
    // Softmax over the task's own labels, shifted by the largest logit.
    const double top = *std::max_element(p.logits.begin(), p.logits.end());
    double sum = 0;
    for (double z : p.logits) sum += std::exp(z - top);
    for (double z : p.logits) p.probs.push_back(std::exp(z - top) / sum);
    p.label = int(std::max_element(p.logits.begin(), p.logits.end()) - p.logits.begin());
  }
  return result;
}

}  // namespace sptrain
