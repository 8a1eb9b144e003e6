#pragma once
// Everything one rank needs to train or evaluate, built once before the
// first step: back end, model stage, task, encoded data, micro-batch buffers
// and the prompt on the device. Nothing here allocates after construction.
#include <memory>
#include <string>
#include <vector>

#include "sptrain/comm/process_grid.hpp"
#include "sptrain/config/config.hpp"
#include "sptrain/model/stage.hpp"
#include "sptrain/pipeline/runner.hpp"
#include "sptrain/prompt/task.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

namespace sptrain {

struct EvalResult {
  int64_t examples = 0;
  double loss = 0;       // mean cross-entropy
  double accuracy = 0;
  std::vector<int64_t> confusion;  // [true label][predicted label], n_labels^2
};

// Seconds spent in one step, by part (summed over micro-batches).
struct StepTimes {
  double compute = 0;    // forward + backward through the pipeline schedule
  double optimizer = 0;  // gradient all-reduce, clipping, update
  double total = 0;
};

class Session {
 public:
  // eval_only: no training data, no optimizer state.
  Session(const Config& config, ProcessGrid& grid, bool eval_only);
  ~Session();

  const Config& config() const { return config_; }
  ProcessGrid& grid() { return grid_; }
  Backend& backend() { return *backend_; }
  const ModelConfig& model() const { return model_; }
  const h5::File& model_file() const { return model_file_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const Task& task() const { return *task_; }
  Stage& stage() { return *stage_; }
  bool holds_prompt() const { return grid_.coords.pp == 0; }
  bool reports_loss() const { return grid_.coords.pp == grid_.layout.pipeline - 1 && grid_.coords.tp == 0; }

  const std::vector<EncodedExample>& train_data() const { return train_; }
  const std::vector<EncodedExample>& eval_data() const { return eval_; }
  // Encodes another data file in the task's format (eval --data).
  std::vector<EncodedExample> encode_file(const std::string& path) const;

  // The prompt as the host keeps it (fp32 [P, d]); upload() copies it to the device.
  std::vector<float>& prompt() { return prompt_; }
  void upload_prompt();
  // One training step's forward and backward over this rank's share of the
  // global batch (indices into train_data()). Leaves the prompt gradient,
  // already averaged over the global batch and all-reduced over replicas,
  // in grad() on the ranks that hold the prompt. Returns the summed loss and
  // correct count of the examples this rank reports (see reports_loss()).
  void forward_backward(const std::vector<int64_t>& global_batch, double& loss_sum,
                        int64_t& correct);
  std::vector<float>& grad() { return grad_; }
  // Loss, accuracy and confusion over `data`, split over the replicas;
  // every rank returns the same result.
  EvalResult evaluate(const std::vector<EncodedExample>& data);

  // Work and time of the latest forward_backward on this rank.
  Stage::Work work_last_step() const;
  PipelineRunner& runner() { return *runner_; }
  const std::vector<MicroBatch>& micro_batches() const { return micro_batches_; }
  int64_t text_rows_last_step() const { return text_rows_; }
  int64_t prompt_rows_last_step() const { return prompt_rows_; }

 private:
  void fill_micro_batches(const std::vector<const EncodedExample*>& local, int per_micro);

  // Adds up the loss, correct predictions and confusion of the examples this
  // rank reports, as the last stage produces them.
  struct Tally final : PipelineRunner::OutputSink {
    const std::vector<MicroBatch*>* batches = nullptr;
    int n_labels = 0;
    double loss_sum = 0;
    int64_t correct = 0, examples = 0;
    std::vector<int64_t> confusion;  // [true][predicted]
    void reset(const std::vector<MicroBatch*>* mbs, int labels);
    void on_output(int micro_batch, const HeadOutput& out) override;
  };
  Tally tally_;
  std::vector<MicroBatch*> eval_ptrs_;

  Config config_;
  ProcessGrid& grid_;
  std::unique_ptr<Backend> backend_;
  // The groups the back end's tensors travel through: the grid's MPI groups
  // for the CPU back end, NCCL groups over the same ranks for CUDA.
  std::vector<std::unique_ptr<Group>> device_groups_;
  Group* tp_group_ = nullptr;
  Group* pp_group_ = nullptr;
  Group* dp_group_ = nullptr;
  std::unique_ptr<ModelContext> ctx_;
  h5::File model_file_;
  ModelConfig model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Task> task_;
  std::vector<EncodedExample> train_, eval_;
  std::unique_ptr<Stage> stage_;
  std::unique_ptr<PipelineRunner> runner_;
  std::vector<std::unique_ptr<BatchBuilder>> builders_;
  std::vector<MicroBatch> micro_batches_;
  std::vector<MicroBatch*> mb_ptrs_;
  std::unique_ptr<BatchBuilder> eval_builder_;
  MicroBatch eval_mb_;
  std::vector<const EncodedExample*> local_;
  std::vector<float> prompt_, grad_;
  std::vector<double> staging_;
  Buffer prompt_dev_, dprompt_dev_;
  int64_t text_rows_ = 0, prompt_rows_ = 0;
};

}  // namespace sptrain
