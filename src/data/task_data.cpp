#include "sptrain/data/task_data.hpp"

#include <algorithm>
#include <unordered_map>

#include "sptrain/core/error.hpp"

namespace sptrain {

int64_t TaskData::longest(const std::vector<EncodedExample>& examples) {
  int64_t n = 0;
  for (const auto& e : examples) n = std::max(n, e.input_rows());
  return n;
}

int64_t TaskData::longest_answer(const std::vector<EncodedExample>& examples) {
  int64_t n = 0;
  for (const auto& e : examples) n = std::max(n, e.answer_tokens());
  return n;
}

std::vector<EncodedExample> encode_file(const Task& task, const std::string& path,
                                        const std::string& format) {
  return task.encode_all(read_dataset(path, format, task.fields()), path);
}

void read_referenced_inputs(const Task& task, const std::string& path, const std::string& format,
                            int64_t max_inputs, std::vector<ReferencedInput>& inputs,
                            std::vector<EncodedExample>& first_references) {
  SPT_CHECK(task.generative(), "internal error: references of a classify task");
  const std::vector<Example> lines = read_dataset(path, format, task.fields());
  std::vector<Example> firsts;
  std::unordered_map<std::string, size_t> index;  // input text -> its entry
  inputs.clear();
  for (const Example& ex : lines) {
    auto it = index.find(ex.text);
    if (it == index.end()) {
      if (max_inputs > 0 && int64_t(inputs.size()) == max_inputs) continue;
      it = index.emplace(ex.text, inputs.size()).first;
      inputs.push_back(ReferencedInput{ex.text, task.encode_input(ex.text), {}});
      firsts.push_back(ex);
    }
    inputs[it->second].references.push_back(ex.label);
  }
  first_references = task.encode_all(firsts, path);
}

TaskData load_task_data(const Config& config, const Task& task, bool eval_only) {
  const TaskSection& t = config.task;
  TaskData data;
  if (!eval_only) data.train = encode_file(task, t.train, t.format);
  const int64_t cap = config.train.eval_max_examples;
  if (t.eval.empty()) return data;
  if (task.generative()) {
    read_referenced_inputs(task, t.eval, t.format, cap, data.eval_inputs, data.eval);
    return data;
  }
  data.eval = encode_file(task, t.eval, t.format);
  if (cap > 0 && int64_t(data.eval.size()) > cap) data.eval.resize(size_t(cap));
  return data;
}

}  // namespace sptrain
