#include "sptrain/data/task_data.hpp"

#include <algorithm>

namespace sptrain {

int64_t TaskData::longest(const std::vector<EncodedExample>& examples) {
  size_t n = 0;
  for (const auto& e : examples) n = std::max(n, e.tokens.size());
  return int64_t(n);
}

std::vector<EncodedExample> encode_file(const Task& task, const std::string& path,
                                        const std::string& format) {
  return task.encode_all(read_dataset(path, format), path);
}

TaskData load_task_data(const Config& config, const Task& task, bool eval_only) {
  const TaskSection& t = config.task;
  TaskData data;
  if (!eval_only) data.train = encode_file(task, t.train, t.format);
  if (!t.eval.empty()) data.eval = encode_file(task, t.eval, t.format);
  const int64_t cap = config.train.eval_max_examples;
  if (cap > 0 && int64_t(data.eval.size()) > cap) data.eval.resize(size_t(cap));
  return data;
}

}  // namespace sptrain
