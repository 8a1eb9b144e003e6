#pragma once
// A task's examples, read and encoded once before the first step.
#include <string>
#include <vector>

#include "sptrain/config/config.hpp"
#include "sptrain/data/task.hpp"

namespace sptrain {

// A generate task's evaluation input: each distinct input of the evaluation
// file once, with every target the file gives it as a reference.
struct ReferencedInput {
  std::string text;
  std::vector<int32_t> tokens;  // template applied, truncated
  std::vector<std::string> references;
};

struct TaskData {
  std::vector<EncodedExample> train;  // empty when only evaluating
  // task.eval, at most train.eval_max_examples of it. For a generate task:
  // one example per distinct input, with its first reference as the target
  // (the evaluation loss), beside eval_inputs (what generation is scored on).
  std::vector<EncodedExample> eval;
  std::vector<ReferencedInput> eval_inputs;  // generate only; eval[i] is eval_inputs[i]'s first reference

  // Rows of the longest example, its answer's input rows included (0 when there is none).
  static int64_t longest(const std::vector<EncodedExample>& examples);
  // Tokens of the longest answer (1 for a classify task, 0 when there is none).
  static int64_t longest_answer(const std::vector<EncodedExample>& examples);
};

// Reads and encodes task.train (unless eval_only) and task.eval; errors name
// the file and line.
TaskData load_task_data(const Config& config, const Task& task, bool eval_only);

// Reads and encodes another data file in the task's format (eval --data).
std::vector<EncodedExample> encode_file(const Task& task, const std::string& path,
                                        const std::string& format);

// A generate task's evaluation file: its distinct inputs, in order of first
// appearance, each with all its targets as references, and the example of
// each input's first reference; at most `max_inputs` inputs (0 = all).
void read_referenced_inputs(const Task& task, const std::string& path, const std::string& format,
                            int64_t max_inputs, std::vector<ReferencedInput>& inputs,
                            std::vector<EncodedExample>& first_references);

}  // namespace sptrain
