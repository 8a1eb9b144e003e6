#include "sptrain/plan/workload.hpp"

#include <malloc.h>
#include <cstdio>

#include <algorithm>

#include "sptrain/data/task_data.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"
#include "sptrain/train/sampler.hpp"

namespace sptrain::plan {

namespace {

// Heap memory the process holds (glibc's main arena and its mapped blocks):
// what loading the tokenizer and the data leaves resident, its freed
// scratch included, is measured, not estimated.
int64_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return int64_t(m.arena + m.hblkhd);
}

}  // namespace

Workload make_workload(const Config& config, const ModelConfig& model, const std::string& model_path,
                       const WorkloadOptions& o) {
  SPT_CHECK(o.first_step >= 1 && o.steps >= 1, "plan: --first-step and --steps must be at least 1");
  Workload w;
  w.first_step = o.first_step;
  w.n_labels = int(config.task.labels.size());
  const int B = config.train.batch_size;
  const std::string tokenizer_path = !o.tokenizer.empty() ? o.tokenizer : model_path;
  if (!tokenizer_path.empty() && o.example_tokens == 0) {
    const int64_t heap_before = heap_in_use();
    const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
    SPT_CHECK(tokenizer.vocab_size() <= model.vocab_size, tokenizer_path, ": the tokenizer has ",
              tokenizer.vocab_size(), " tokens but the model only ", model.vocab_size);
    const Task task(config.task, tokenizer);
    TaskData data = load_task_data(config, task, false);
    SPT_CHECK(!data.train.empty(), config.task.train, ": no training examples");
    w.train_tokens = std::max<int64_t>(TaskData::longest(data.train), 1);
    w.eval_tokens = std::max(TaskData::longest(data.eval), w.train_tokens);
    w.host_bytes = heap_in_use() - heap_before;
    w.n_labels = task.num_labels();
    DataSampler sampler(int64_t(data.train.size()), config.train.seed, config.train.shuffle);
    std::vector<int64_t> batch;
    for (int step = 1; step < o.first_step + o.steps; ++step) {
      sampler.next(B, batch);
      if (step >= o.first_step) w.steps.push_back(batch);
    }
    w.source = config.task.train + " encoded with " + tokenizer_path + "'s tokenizer (" +
               std::to_string(data.train.size()) + " examples), steps " + std::to_string(o.first_step) +
               "-" + std::to_string(o.first_step + o.steps - 1);
    w.train = std::move(data.train);
    return w;
  }
  // No tokenizer: one batch of examples of the given length, every step.
  const int tokens = o.example_tokens > 0 ? o.example_tokens : config.task.max_length;
  w.train.assign(size_t(B), EncodedExample{std::vector<int32_t>(size_t(tokens), 0), 0, 0});
  w.train_tokens = w.eval_tokens = std::max(tokens, config.task.max_length);
  std::vector<int64_t> batch(static_cast<size_t>(B));
  for (int i = 0; i < B; ++i) batch[size_t(i)] = i;
  w.steps.assign(size_t(o.steps), batch);
  w.source = std::to_string(B) + " examples of " + std::to_string(tokens) + " text tokens a step" +
             (o.example_tokens > 0 ? "" : " (task.max_length; no tokenizer: give --tokenizer or --example-tokens)") +
             ", buffers sized for task.max_length " + std::to_string(config.task.max_length);
  return w;
}

}  // namespace sptrain::plan
