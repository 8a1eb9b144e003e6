#pragma once
// Multi-task generation (`sptrain generate`): one frozen model and one
// trained prompt per generate task, on one rank or split tensor- and
// pipeline-parallel over the job's ranks (no data parallelism: every rank
// serves the same requests). Requests of different tasks share the
// decoder's steps: each attends to its own task's prompt (generate/decoder.hpp).
#include <memory>
#include <string>
#include <vector>

#include "sptrain/comm/parallel_state.hpp"
#include "sptrain/generate/decoder.hpp"
#include "sptrain/infer/task_prompts.hpp"

namespace sptrain {

struct GeneratorOptions {
  int batch_size = 16;      // requests per generate() call
  int threads = 0;          // CPU threads per rank, 0 = the node's cores shared among its ranks
  int max_new_tokens = 64;  // the most any call may ask for
  int64_t max_input = 0;    // longest request in tokens; 0 = the longest task.max_length
};

class Generator {
 public:
  // Loads this rank's part of the model (the grid's tensor x pipeline layout,
  // data size 1) and checks every prompt against it: it must be a generate
  // task's checkpoint or hdf5 export of this model.
  Generator(const std::string& model_path, std::vector<TaskPrompt> tasks, ProcessGrid grid,
            const GeneratorOptions& options);
  ~Generator();

  const TaskPrompts& tasks() const { return *tasks_; }
  int batch_size() const { return options_.batch_size; }
  int world_rank() const { return parallel_->world_rank(); }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

  // Up to batch_size() requests (request.prompt = the task's index), the
  // same on every rank; every rank returns the same results.
  std::vector<Generation> generate(const std::vector<const GenerationRequest*>& requests,
                                   const DecodeOptions& options);

 private:
  GeneratorOptions options_;
  h5::File model_file_;
  ModelConfig model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<TaskPrompts> tasks_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ParallelState> parallel_;
  std::unique_ptr<ModelContext> ctx_;
  std::unique_ptr<Stage> stage_;
  std::unique_ptr<PipelineRunner> runner_;
  std::unique_ptr<Decoder> decoder_;
  TaskPromptBuffers prompts_;  // every task's prompt, stacked (deep: this rank's layers and kv heads)
};

}  // namespace sptrain
