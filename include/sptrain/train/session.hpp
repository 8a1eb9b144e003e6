#pragma once
// What one rank builds before its first step, each part owned by its concern:
// the model file, the back end, the process groups (ParallelState), the task
// and its encoded data, this rank's pipeline stage and its schedule runner,
// the micro-batch buffers and the prompt parameter. Nothing here allocates
// after construction. The step itself is train_step() (train/train_step.hpp),
// evaluation evaluate() (train/evaluate.hpp).
#include <memory>

#include "sptrain/comm/parallel_state.hpp"
#include "sptrain/config/config.hpp"
#include "sptrain/data/task_data.hpp"
#include "sptrain/generate/decoder.hpp"
#include "sptrain/model/stage.hpp"
#include "sptrain/optim/optimizer.hpp"
#include "sptrain/pipeline/runner.hpp"
#include "sptrain/prompt/prompt_parameter.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"
#include "sptrain/train/head_tally.hpp"

namespace sptrain {

enum class SessionMode { Train, EvalOnly };  // EvalOnly: no training data or step buffers

struct Session {
  // Takes over the grid (ParallelState owns it). Checks the layout and batch
  // sizes against the model before reading any weight; errors name the numbers.
  Session(const Config& config, ProcessGrid grid, SessionMode mode);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Config config;
  h5::File model_file;
  ModelConfig model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Task> task;
  TaskData data;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<ParallelState> parallel;
  std::unique_ptr<ModelContext> ctx;
  std::unique_ptr<Stage> stage;
  std::unique_ptr<PipelineRunner> runner;
  std::unique_ptr<MicroBatchSet> train_batches;  // one step's micro-batches (Train only)
  std::unique_ptr<MicroBatchSet> eval_batch;     // one evaluation chunk
  std::unique_ptr<PromptParameter> prompt;
  // Deep prompts with fewer kv heads than tensor ranks: [n_kv, this rank's
  // prefix gradient] for summing each head's gradient over the ranks sharing it.
  Buffer kv_grad_scratch;
  // Generate tasks with evaluation inputs, on the CPU back end: greedy
  // generation for the scores (other back ends lack the cache ops yet).
  std::unique_ptr<Decoder> decoder;
  // On a GPU the step finishes on the device (docs/cuda.md): the loss sum,
  // correct count and the gradient's squared norm gather here (f64 [3]) and
  // come back in the step's one copy to the host. Empty on the CPU.
  Buffer step_sums;
  // Scratch of train_step() and evaluate(), sized here so that a step allocates nothing.
  HeadTally tally;
  std::vector<const EncodedExample*> examples;

  // This rank holds some of the prompt's parameters and their gradient (the
  // first stage; every rank for deep prompts).
  bool holds_prompt() const { return prompt ? prompt->holds() : parallel->first_stage(); }
  // This rank reports its replica's loss (last stage, tensor rank 0).
  bool reports_loss() const { return parallel->last_stage() && parallel->coords().tp == 0; }
  // The step's loss, update and figures stay on the device (the CUDA back end).
  bool device_step() const { return !step_sums.empty(); }
  // Examples of one step on this replica.
  int local_batch() const { return config.train.batch_size / parallel->layout().data; }
};

// The prompt's optimizer for this session (optim.name): one per tensor of
// this rank's share of the prompt's parameters (optim/optimizer.hpp,
// TensorSegment), placed where their master copy lives: on the device for
// prompt tuning's GPU step, on the host otherwise.
std::unique_ptr<Optimizer> make_prompt_optimizer(Session& s);

}  // namespace sptrain
