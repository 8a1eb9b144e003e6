#include "sptrain/infer/predictor.hpp"

#include <algorithm>
#include <cmath>

#include "sptrain/backend/factory.hpp"
#include "sptrain/data/dataset.hpp"

namespace sptrain {

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
  tasks_ = std::make_unique<TaskPrompts>(std::move(tasks), "classify",
                                         "infer scores label words; use sptrain generate", model_,
                                         model_path, *tokenizer_);
  std::vector<int32_t> head_tokens;  // the union of the label words, first seen first
  int64_t max_tokens = 1;
  int max_keys = 1;
  for (int k = 0; k < tasks_->size(); ++k) {
    const TaskEntry& e = (*tasks_)[k];
    const StoredPrompt& p = e.prompt;
    SPT_CHECK(p.rows + p.task_max_length <= model_.max_positions, "task '", e.name, "' (", p.path, "): ",
              p.rows, " prompt vectors + task max_length ", p.task_max_length, " exceed the model's ",
              model_.max_positions, " positions");
    std::vector<int>& columns = columns_.emplace_back();
    for (int32_t tok : e.task->label_tokens()) {
      auto it = std::find(head_tokens.begin(), head_tokens.end(), tok);
      columns.push_back(int(it - head_tokens.begin()));
      if (it == head_tokens.end()) head_tokens.push_back(tok);
    }
    max_tokens = std::max<int64_t>(max_tokens, e.task->max_length());
    max_keys = std::max(max_keys, int(p.rows) + e.task->max_length());
  }
  const std::vector<int> prompt_lens = tasks_->prompt_lens();

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

  prompts_ = upload_task_prompts(*tasks_, *ctx_, model_, PromptPlacement::whole(model_));
}

Predictor::~Predictor() = default;

EncodedExample Predictor::encode(int k, const std::string& text) const {
  const TaskEntry& e = (*tasks_)[k];
  // Task::encode wants a label; any of the task's will do (it is not scored).
  EncodedExample ex = e.task->encode(Example{text, e.task->label_values().front(), 0});
  SPT_CHECK(!ex.tokens.empty(), "the text has no tokens");
  ex.label = columns_[size_t(k)].front();
  ex.label_token = e.task->label_tokens().front();
  return ex;
}

std::vector<Prediction> Predictor::predict(const std::vector<const EncodedExample*>& examples,
                                           const std::vector<int>& task_of) {
  SPT_CHECK(!examples.empty() && int(examples.size()) <= options_.batch_size,
            "internal error: batch of ", examples.size(), " examples (batch size ", options_.batch_size, ")");
  builder_->fill(mb_, examples, task_of);
  stage_->forward(-1, mb_, prompts_.inputs());
  const HeadOutput& out = stage_->head_output();
  const size_t columns = out.label_scores.size() / examples.size();
  std::vector<Prediction> result(examples.size());
  for (size_t b = 0; b < examples.size(); ++b) {
    Prediction& p = result[b];
    p.task = task_of[b];
    for (int c : columns_[size_t(task_of[b])]) p.logits.push_back(out.label_scores[b * columns + size_t(c)]);
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
