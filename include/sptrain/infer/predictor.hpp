#pragma once
// Multi-task inference: one frozen model and several trained prompts, one
// per task. Examples of different tasks share a forward pass: each example's
// text attends to its own task's prompt (MixedPromptBatchBuilder), so a
// batch costs what it would for one task. The LM head scores the union of
// all tasks' label words; each example keeps its task's columns.
//
// Single process, CPU back end, whole model on this rank (no tensor or
// pipeline parallelism).
#include <memory>
#include <string>
#include <vector>

#include "sptrain/comm/communicator.hpp"
#include "sptrain/infer/task_prompts.hpp"
#include "sptrain/model/stage.hpp"

namespace sptrain {

struct Prediction {
  int task = 0;
  int label = 0;               // predicted class: index into the task's labels
  std::vector<double> logits;  // the label words' logits, in the task's label order
  std::vector<double> probs;   // softmax over the task's label words
};

struct PredictorOptions {
  int batch_size = 32;  // examples per forward pass
  int threads = 0;      // CPU threads, 0 = all cores
};

class Predictor {
 public:
  // Loads the model and checks every prompt against it (d_model, model
  // fingerprint, prompt + max_length within the model's positions).
  Predictor(const std::string& model_path, std::vector<TaskPrompt> tasks, const PredictorOptions& options);
  ~Predictor();

  int num_tasks() const { return tasks_->size(); }
  int find_task(const std::string& name) const { return tasks_->find(name); }  // -1 when there is none
  const std::string& task_name(int k) const { return (*tasks_)[k].name; }
  const Task& task(int k) const { return *(*tasks_)[k].task; }
  std::string task_names() const { return tasks_->names(); }  // "a, b, c", for messages
  int batch_size() const { return options_.batch_size; }
  const ModelConfig& model() const { return model_; }

  // The text's tokens for task k: template applied, truncated to max_length.
  EncodedExample encode(int task, const std::string& text) const;
  // Scores up to batch_size() examples, of any tasks, in one forward pass.
  std::vector<Prediction> predict(const std::vector<const EncodedExample*>& examples,
                                  const std::vector<int>& task_of);

 private:

  PredictorOptions options_;
  SoloGroup tensor_group_{CommKind::Tensor, nullptr};  // the whole model on this rank
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ModelContext> ctx_;
  h5::File model_file_;
  ModelConfig model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<TaskPrompts> tasks_;
  std::vector<std::vector<int>> columns_;  // per task, the head's column of each of its labels
  std::unique_ptr<Stage> stage_;
  std::unique_ptr<MixedPromptBatchBuilder> builder_;
  MicroBatch mb_;
  TaskPromptBuffers prompts_;  // every task's prompt, stacked
};

}  // namespace sptrain
