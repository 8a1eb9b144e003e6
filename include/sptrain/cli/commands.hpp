#pragma once
// What each `sptrain` subcommand does, separated from how its arguments are
// parsed (src/cli/main.cpp). Each returns the process exit code.
#include <cstdint>
#include <string>
#include <vector>

#include "sptrain/config/config.hpp"
#include "sptrain/plan/hardware.hpp"
#include "sptrain/plan/workload.hpp"

namespace sptrain {

struct TrainOptions {
  bool dry_run = false;  // print the resolved configuration and exit
};
int run_train(const Config& config, const TrainOptions& options);

struct EvalOptions {
  // Checkpoints (or exported prompts) to evaluate; none = the prompt's
  // initializer; several = a prompt ensemble (docs/methods.md).
  std::vector<std::string> prompts;
  std::string data;    // dataset to evaluate on; "" = task.eval
};
int run_eval(const Config& config, const EvalOptions& options);

struct BenchOptions {
  int steps = 10;           // timed steps
  int warmup = 3;           // untimed steps first
  bool json = false;        // one JSON object instead of the table
  std::string batches_out;  // write each step's example indices (JSONL) here
  double peak_tflops = 0;   // the GPU's dense bf16 peak for MFU (0 = from the device table)
};
int run_bench(const Config& config, const BenchOptions& options);

// Dimensions given on the plan's command line (0 or "" = from the model file or --shape).
struct ModelDims {
  std::string family;  // gpt | llama (only without a model file or --shape)
  int layers = 0, d_model = 0, heads = 0, kv_heads = 0, head_dim = 0, d_ffn = 0, vocab = 0;
};

struct PlanOptions {
  int gpus = 0;                    // devices (ranks) to plan for
  bool json = false;               // one JSON object instead of the table
  int top = 5;                     // layouts shown in full
  std::string shape;               // a named model shape (plan/model_shapes.hpp) instead of the model file
  ModelDims dims;
  int tensor = 0, pipeline = 0, micro_batch = 0;  // only layouts with these (0 = any)
  std::string schedule;            // only this schedule ("" = both)
  plan::HardwareOptions hardware;  // --gpu, --gpus-per-node, rates, links, --calibrate
  plan::WorkloadOptions workload;  // --tokenizer, --example-tokens, --first-step, --steps
};
int run_plan(const Config& config, const PlanOptions& options);

struct InitModelOptions {
  std::string out;                 // HDF5 model file to write
  std::string family = "llama";    // llama | gpt
  int layers = 2;
  int d_model = 64;
  int heads = 4;
  int kv_heads = 0;                // 0 = heads (no grouping)
  int head_dim = 0;                // 0 = d_model / heads
  int d_ffn = 0;                   // 0 = 4*d_model (gpt) or 8/3*d_model rounded (llama)
  int max_positions = 512;
  std::string tokenizer;           // model file or tokenizer.json to copy the tokenizer from; "" = byte-level tokenizer
  int vocab = 0;                   // 0 = the tokenizer's size
  std::string activation;          // "" = family default (gelu for gpt, swiglu for llama)
  bool tied = true;                // llama only: tie the LM head to the embeddings
  uint64_t seed = 1;
  double std = 0.02;               // weight init standard deviation
};
int run_init_model(const InitModelOptions& options);

struct ConvertOptions {
  std::string from;   // safetensors | gguf
  std::string src;    // folder (safetensors) or file (gguf)
  std::string out;    // HDF5 model file
  std::string dtype = "f32";  // dtype of the weights in the model file: f32 | bf16
};
int run_convert(const ConvertOptions& options);

struct ExportOptions {
  std::string checkpoint;  // checkpoint (or hdf5 export) to export
  std::string format;      // hdf5 | npy | peft
  std::string out;         // file (hdf5, npy) or folder (peft)
  std::string dtype = "f32";  // npy only: f32 | bf16 (bf16 bits stored as uint16)
  std::string model;       // peft: model file (default: the one the checkpoint records)
  std::string base_model;  // peft: base_model_name_or_path (default: the model's name)
};
int run_export(const ExportOptions& options);

struct InferOptions {
  std::string model;                 // HDF5 model file
  std::vector<std::string> prompts;  // NAME=PATH (checkpoint or hdf5 export), one per task
  std::string input = "-";           // JSONL input, "-" = standard input
  int batch_size = 32;               // examples per forward pass (tasks mixed)
  int threads = 0;                   // CPU threads, 0 = all cores
};
int run_infer(const InferOptions& options);

struct GenerateOptions {
  std::string model;                 // HDF5 model file
  std::vector<std::string> prompts;  // NAME=PATH (checkpoint or hdf5 export of a generate task)
  std::string input = "-";           // JSONL input, "-" = standard input
  int max_new_tokens = 0;            // 0 = the largest task.max_target_length of the prompts
  double temperature = 0;            // 0 = greedy
  int top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;     // stop strings
  bool ids = false;                  // print the generated token ids too
  int batch_size = 16;               // inputs generated together (tasks mixed)
  int threads = 0;                   // CPU threads per rank
  int tensor = 1, pipeline = 1;      // layout under mpirun (the ranks must be tensor x pipeline)
};
int run_generate(const GenerateOptions& options);

}  // namespace sptrain
