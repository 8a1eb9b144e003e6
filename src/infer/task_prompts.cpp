#include "sptrain/infer/task_prompts.hpp"

namespace sptrain {

TaskPrompt parse_task_prompt(const std::string& arg) {
  const size_t eq = arg.find('=');
  SPT_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < arg.size(), "--prompt '", arg,
            "': expected NAME=PATH (a task name, then a checkpoint or hdf5 export)");
  TaskPrompt t{arg.substr(0, eq), read_stored_prompt(arg.substr(eq + 1))};
  SPT_CHECK(!t.prompt.deep(), "--prompt ", arg, ": a deep prompt (prompt.method deep); infer and "
            "generate do not run deep prompts yet (sptrain eval --prompt does)");
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

std::vector<float> TaskPrompts::stacked_values() const {
  std::vector<float> stacked;
  for (const TaskEntry& e : entries_) stacked.insert(stacked.end(), e.prompt.values.begin(), e.prompt.values.end());
  return stacked;
}

}  // namespace sptrain
