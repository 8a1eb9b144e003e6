#pragma once
// A task's examples, read and encoded once before the first step.
#include <string>
#include <vector>

#include "sptrain/config/config.hpp"
#include "sptrain/data/task.hpp"

namespace sptrain {

struct TaskData {
  std::vector<EncodedExample> train;  // empty when only evaluating
  std::vector<EncodedExample> eval;   // task.eval, at most train.eval_max_examples of it

  // Tokens of the longest example (0 when there is none).
  static int64_t longest(const std::vector<EncodedExample>& examples);
};

// Reads and encodes task.train (unless eval_only) and task.eval; errors name
// the file and line.
TaskData load_task_data(const Config& config, const Task& task, bool eval_only);

// Reads and encodes another data file in the task's format (eval --data).
std::vector<EncodedExample> encode_file(const Task& task, const std::string& path,
                                        const std::string& format);

}  // namespace sptrain
