#pragma once
// The examples a plan's steps train on: the configuration's data encoded
// with the model's tokenizer (or another's, --tokenizer), exactly as a run
// encodes them, so the planned micro-batches are the run's own; or, with no
// tokenizer at hand, a batch of examples of a stated length.
#include <cstdint>
#include <string>
#include <vector>

#include "sptrain/config/config.hpp"
#include "sptrain/data/encoded_example.hpp"
#include "sptrain/model/model_config.hpp"

namespace sptrain::plan {

struct WorkloadOptions {
  std::string tokenizer;   // a model file or tokenizer.json; "" = the model file's, when it exists
  int example_tokens = 0;  // no tokenizer: text tokens per example (0 = task.max_length)
  int first_step = 1;      // the planned steps: first_step .. first_step + steps - 1
  int steps = 1;
};

struct Workload {
  std::vector<EncodedExample> train;        // the encoded training data, or one synthetic batch
  std::vector<std::vector<int64_t>> steps;  // each planned step's global batch (indices into train)
  int first_step = 1;
  int64_t train_tokens = 1;  // the longest training example: the step's buffers are sized for it
  int64_t eval_tokens = 1;   // the longest evaluation example (at least train_tokens)
  int n_labels = 0;
  int64_t host_bytes = 0;    // heap the tokenizer, the task and the encoded examples keep (measured)
  std::string source;        // what the examples are, for the output
};

// model_path: the model file when it exists ("" otherwise).
Workload make_workload(const Config& config, const ModelConfig& model, const std::string& model_path,
                       const WorkloadOptions& options);

}  // namespace sptrain::plan
