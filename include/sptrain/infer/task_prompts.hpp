#pragma once
// The tasks of a multi-task command (`sptrain infer`, `sptrain generate`):
// each a name and a trained prompt that carries its task (a checkpoint or an
// hdf5 export), checked against the one frozen model they share.
#include <memory>
#include <string>
#include <vector>

#include "sptrain/data/task.hpp"
#include "sptrain/model/context.hpp"
#include "sptrain/model/prompt_inputs.hpp"
#include "sptrain/prompt/export.hpp"
#include "sptrain/prompt/prompt_parameter.hpp"

namespace sptrain {

// One task: a name and a prompt that carries its task (template, verbalizer or
// target length, max_length): a checkpoint or an hdf5 export.
struct TaskPrompt {
  std::string name;
  StoredPrompt prompt;
};

// "NAME=PATH": reads the prompt at PATH. Errors name the argument.
TaskPrompt parse_task_prompt(const std::string& arg);

struct TaskEntry {
  std::string name;
  StoredPrompt prompt;
  std::unique_ptr<Task> task;
};

class TaskPrompts {
 public:
  // Checks that the names differ, that every prompt belongs to the model
  // (d_model, fingerprint) and is a `kind` task's (else the error says
  // `other_kind`, what to use instead), that all are deep or none, and
  // builds each task with the model's tokenizer. Errors name the task and
  // its file.
  TaskPrompts(std::vector<TaskPrompt> tasks, const std::string& kind, const std::string& other_kind,
              const ModelConfig& model, const std::string& model_path, const Tokenizer& tokenizer);

  int size() const { return int(entries_.size()); }
  const TaskEntry& operator[](int k) const { return entries_[size_t(k)]; }
  int find(const std::string& name) const;  // -1 when there is none
  std::string names() const;                // "a, b, c", for messages
  std::vector<int> prompt_lens() const;
  // Every task's prompt rows together: the rows stacked_* hold.
  int64_t prompt_rows() const;
  // Deep prompts (all or none are).
  bool deep() const { return !entries_.empty() && entries_.front().prompt.deep(); }
  // Every task's prompt, stacked in task order: [sum of P_k, d] fp32 (empty
  // for deep prompts).
  std::vector<float> stacked_values() const;
  // Deep: the keys and values of every task's prompt rows that a rank at
  // `place` holds, stacked in task order per layer: [place.num_layers,
  // sum of P_k, 2 * place.kv_heads * head_dim] fp32 (PromptInputs::prefix).
  std::vector<float> stacked_prefix(const ModelConfig& model, const PromptPlacement& place) const;

 private:
  std::vector<TaskEntry> entries_;
};

// The tasks' prompts on the device as a stage reads them: the stacked input
// vectors, or (deep prompts) the stacked keys and values of the layers and kv
// heads of a rank at `place`.
struct TaskPromptBuffers {
  Buffer prompts, prefix;
  PromptInputs inputs() const { return PromptInputs(prompts.view(), prefix.view()); }
};
TaskPromptBuffers upload_task_prompts(const TaskPrompts& tasks, const ModelContext& ctx, const ModelConfig& model,
                                      const PromptPlacement& place);

}  // namespace sptrain
