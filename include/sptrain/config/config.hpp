#pragma once
// The training configuration: one typed struct per YAML section. Defaults here
// are the defaults a user gets; docs/config.md lists every key.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sptrain {

struct ModelSection {
  std::string path;            // HDF5 model file (required)
  std::string dtype = "f32";   // compute dtype on the CPU: f32 (f64 only for tests)

  bool operator==(const ModelSection&) const = default;
};

struct TaskSection {
  std::string kind = "classify";            // classify (a label word) | generate (a target text)
  std::string train;                        // training data file (TSV or JSONL)
  std::string eval;                         // evaluation data file ("" = none)
  std::string format = "auto";              // auto | tsv | jsonl (auto: by extension)
  std::string template_text = "{text}";     // YAML key: template; must contain {text}
  // label value in the data -> verbalizer word, in the order the YAML lists them;
  // that order defines the class index of each label.
  // classify only (a generate task has none).
  std::vector<std::pair<std::string, std::string>> labels;
  int max_length = 128;                     // text tokens kept (template included), >= 1
  std::string loss = "labels";              // labels (CE over label words) | vocab (CE over the vocabulary); generate: always vocab
  int max_target_length = 128;              // generate: most target tokens, end-of-sequence included

  bool operator==(const TaskSection&) const = default;
};

struct PromptSection {
  // prompt_tuning: P vectors in front of the input embeddings (Lester et al.)
  // deep: P trainable keys and values at every layer (prefix tuning, P-tuning v2)
  // p_tuning: the P vectors computed by an encoder from P trainable ones (Liu et al.)
  std::string method = "prompt_tuning";
  std::string reparameterize = "none";  // deep: none | mlp (prefix tuning's MLP, training only)
  std::string encoder = "mlp";          // p_tuning: mlp | lstm
  int encoder_hidden = 0;               // hidden width of the MLP / LSTM; 0 = d_model
  int length = 20;                  // P, number of soft prompt vectors
  std::string init = "vocab_sample";  // random_uniform | vocab_sample | text | labels | file:PATH
  std::string init_text;            // for init: text
  double init_range = 0.5;          // for random_uniform: U(-r, r)

  bool operator==(const PromptSection&) const = default;
};

struct AdafactorSection {
  double decay_rate = 0.8;          // beta2_t = 1 - t^(-decay_rate)
  double clip_threshold = 1.0;      // update clipping (RMS)
  double eps1 = 1e-30;              // added to squared gradients
  double eps2 = 1e-3;               // floor of the parameter scale
  bool scale_parameter = true;      // multiply lr by max(eps2, RMS(prompt))

  bool operator==(const AdafactorSection&) const = default;
};

struct OptimSection {
  std::string name = "adamw";       // adamw | adafactor
  double lr = 1e-2;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  int warmup_steps = 0;
  std::string schedule = "constant";  // constant | linear | cosine (after warmup)
  double min_lr_ratio = 0.0;        // floor of linear/cosine decay, as a fraction of lr
  double clip_grad_norm = 1.0;      // 0 = off
  AdafactorSection adafactor;

  bool operator==(const OptimSection&) const = default;
};

struct TrainSection {
  int steps = 300;
  int batch_size = 16;              // global batch (examples per optimizer step)
  int micro_batch_size = 16;        // examples per forward/backward; divides batch_size / dp
  int eval_every = 100;             // 0 = only at the end
  int eval_batch_size = 32;
  int eval_max_examples = 0;        // 0 = all
  int checkpoint_every = 100;       // 0 = only at the end
  int keep_checkpoints = 2;         // newest N kept
  int log_every = 10;               // progress line on stderr every N steps
  std::string run_dir = "checkpoints/run";
  std::string resume = "auto";      // auto | never | PATH to a checkpoint
  uint64_t seed = 1234;
  bool shuffle = true;

  bool operator==(const TrainSection&) const = default;
};

struct ParallelSection {
  int tensor = 1;
  int pipeline = 1;
  std::string schedule = "1f1b";    // gpipe | 1f1b
  std::vector<int> stage_layers;    // explicit layers per stage; empty = balanced
  double timeout_s = 300;           // a collective or pipeline message unfinished this long ends the job
  double stop_timeout_s = 10;       // after a SIGTERM, a rank blocked this long in communication ends now

  bool operator==(const ParallelSection&) const = default;
};

// Upper bound of `threads`: far above any node's cores, far below what
// exhausts memory (each thread has its own stack and BLAS buffers).
inline constexpr int kMaxThreads = 1024;

struct Config {
  std::string backend = "cpu";      // cpu | cuda
  int threads = 0;                  // CPU threads per rank, 0 = the CPUs this rank may use, <= kMaxThreads
  ModelSection model;
  TaskSection task;
  PromptSection prompt;
  OptimSection optim;
  TrainSection train;
  ParallelSection parallel;

  std::string source_path;          // the YAML file it came from ("" = built in code)

  bool operator==(const Config&) const = default;
};

}  // namespace sptrain
