#include "sptrain/infer/task_prompts.hpp"

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

TaskPrompts::TaskPrompts(std::vector<TaskPrompt> tasks, const std::string& kind,
                         const std::string& other_kind, const ModelConfig& model,
                         const std::string& model_path, const Tokenizer& tokenizer) {
  for (TaskPrompt& t : tasks) {
    const std::string where = "task '" + t.name + "' (" + t.prompt.path + ")";
    SPT_CHECK(find(t.name) < 0, where, ": the task name is given twice");
    try {
      check_prompt_matches_model(t.prompt, model, model_path);
    } catch (const Error& err) {
      fail("task '", t.name, "': ", err.what());
    }
    SPT_CHECK(t.prompt.task_kind == kind, where, ": the prompt of a ", t.prompt.task_kind, " task; ", other_kind);
    TaskEntry e;
    e.name = t.name;
    try {
      e.task = std::make_unique<Task>(task_section_of(t.prompt), tokenizer);
    } catch (const Error& err) {
      fail(where, ": the prompt's task does not fit this model's tokenizer: ", err.what());
    }
    e.prompt = std::move(t.prompt);
    entries_.push_back(std::move(e));
  }
  // A deep prompt's keys and values replace those of every prompt row at
  // every layer, so one batch cannot also hold prompts whose rows compute
  // theirs.
  for (const TaskEntry& e : entries_)
    SPT_CHECK(e.prompt.deep() == deep(), "task '", e.name, "' (", e.prompt.path, ") has ",
              e.prompt.deep() ? "a deep prompt" : "a prompt of input vectors", " but task '",
              entries_.front().name, "' (", entries_.front().prompt.path, ") ",
              deep() ? "a deep one" : "one of input vectors",
              "; one command runs deep prompts or input-vector prompts, not both (run two)");
}

int TaskPrompts::find(const std::string& name) const {
  for (size_t k = 0; k < entries_.size(); ++k)
    if (entries_[k].name == name) return int(k);
  return -1;
}

std::string TaskPrompts::names() const {
  std::string s;
  for (const TaskEntry& e : entries_) s += (s.empty() ? "" : ", ") + e.name;
  return s;
}

std::vector<int> TaskPrompts::prompt_lens() const {
  std::vector<int> lens;
  for (const TaskEntry& e : entries_) lens.push_back(int(e.prompt.rows));
  return lens;
}

int64_t TaskPrompts::prompt_rows() const {
  int64_t rows = 0;
  for (const TaskEntry& e : entries_) rows += e.prompt.rows;
  return rows;
}

std::vector<float> TaskPrompts::stacked_values() const {
  std::vector<float> stacked;
  for (const TaskEntry& e : entries_) stacked.insert(stacked.end(), e.prompt.values.begin(), e.prompt.values.end());
  return stacked;
}

std::vector<float> TaskPrompts::stacked_prefix(const ModelConfig& model, const PromptPlacement& place) const {
  const PrefixShape local = local_prefix_shape(model, prompt_rows(), place);
  const int64_t rows = local.rows, W = local.cols();
  std::vector<float> stacked(size_t(local.size()));
  int64_t row = 0;  // the task's first row among the stacked prompts
  for (const TaskEntry& e : entries_) {
    const int64_t P = e.prompt.rows;
    const std::vector<float> mine = local_prefix(e.prompt.prefix, prefix_shape(model, P), place);
    for (int i = 0; i < place.num_layers; ++i)
      std::copy(mine.begin() + i * P * W, mine.begin() + (i + 1) * P * W,
                stacked.begin() + (i * rows + row) * W);
    row += P;
  }
  return stacked;
}

TaskPromptBuffers upload_task_prompts(const TaskPrompts& tasks, const ModelContext& ctx, const ModelConfig& model,
                                      const PromptPlacement& place) {
  const int64_t rows = tasks.prompt_rows();
  TaskPromptBuffers b;
  if (tasks.deep()) {
    const PrefixShape local = local_prefix_shape(model, rows, place);
    b.prefix = ctx.alloc_stat(Shape{local.layers, local.rows, local.cols()});
    ctx.backend.copy_from_host(b.prefix, tasks.stacked_prefix(model, place).data());
  } else {
    b.prompts = ctx.alloc_stat(Shape{rows, model.d_model});
    ctx.backend.copy_from_host(b.prompts, tasks.stacked_values().data());
  }
  return b;
}

}  // namespace sptrain
