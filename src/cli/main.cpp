// The sptrain command line: parses arguments with CLI11, loads the
// configuration and hands over to the subcommand (include/sptrain/cli/commands.hpp).
// Exit codes: 0 success, 1 an error in the input or during the run
// ("sptrain: error: ..."), 2 a usage error (unknown subcommand or option),
// 75 (train) stopped by USR1 or SIGTERM after writing a checkpoint
// (kExitStopped), 143 (train) ended by SIGTERM without one
// (comm/stop_signals.hpp, docs/parallelism.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "sptrain/backend/cpu/blas_kernel.hpp"
#include "sptrain/cli/commands.hpp"
#include "sptrain/comm/stop_signals.hpp"
#include "sptrain/config/load.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/core/version.hpp"
#include "sptrain/io/file.hpp"

namespace sptrain {
namespace {

std::string version_text() {
  std::string backends = "cpu";
#ifdef SPTRAIN_WITH_CUDA
  backends += " cuda";
#endif
  return str("sptrain ", kVersion, " (", kGitRevision, ")\n", "backends: ", backends, "\n",
             "blas: ", blas_config(), " (kernel ", blas_kernel_name(), ")");
}

const char* const kSetHelp =
    "Override one configuration key, e.g. --set optim.lr=0.05 or "
    "--set parallel.stage_layers=[12,12]; repeatable, applied in order. The value is "
    "YAML; for a string key it is taken as written unless it starts with a quote";

const std::vector<std::string> kSubcommands = {"train",  "eval",   "init-model", "convert", "bench",
                                               "plan",   "export", "infer",      "generate"};

bool is_subcommand(const std::string& arg) {
  return std::find(kSubcommands.begin(), kSubcommands.end(), arg) != kSubcommands.end();
}

// `sptrain x.yaml ...` means `sptrain train x.yaml ...`.
std::vector<std::string> expand_shorthand(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty()) {
    const std::string& first = args[0];
    auto ends_with = [&](const std::string& suffix) {
      return first.size() > suffix.size() && first.compare(first.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (!is_subcommand(first) && (ends_with(".yaml") || ends_with(".yml")))
      args.insert(args.begin(), "train");
  }
  return args;
}

int run(int argc, char** argv) {
  CLI::App app{"sptrain: prompt tuning of frozen transformers (docs/config.md)", "sptrain"};
  app.set_version_flag("--version", version_text, "Print the version, back ends and BLAS, then exit");
  app.require_subcommand(1);

  // train
  std::string config_path;
  std::vector<std::string> sets;
  TrainOptions train_options;
  CLI::App* train = app.add_subcommand("train", "Train a soft prompt as the configuration file says");
  train->add_option("config", config_path, "YAML configuration file (keys: docs/config.md)")->required();
  train->add_option("--set", sets, kSetHelp)->allow_extra_args(false)->type_name("KEY=VALUE");
  train->add_flag("--dry-run", train_options.dry_run,
                  "Print the resolved configuration (every key, defaults included) and exit without training");

  // eval
  EvalOptions eval_options;
  CLI::App* eval = app.add_subcommand("eval", "Evaluate a prompt on the task's evaluation data");
  eval->add_option("config", config_path, "YAML configuration file")->required();
  eval->add_option("--prompt", eval_options.prompts,
                   "Prompt to evaluate: a checkpoint, an hdf5 export, a .npy file or a PEFT folder; "
                   "its length is the file's (default: the prompt as prompt.init makes it). Repeat it "
                   "for a prompt ensemble (classify tasks; same length and method): each prompt's "
                   "loss and accuracy, and the ensemble's accuracy by mean label probability and by "
                   "majority vote")
      ->allow_extra_args(false)
      ->type_name("PATH");
  eval->add_option("--data", eval_options.data,
                   "Data file in the task's format to evaluate on, all of it (default: task.eval)");
  eval->add_option("--set", sets, kSetHelp)->allow_extra_args(false)->type_name("KEY=VALUE");

  // init-model
  InitModelOptions init;
  bool untied = false;
  CLI::App* init_model = app.add_subcommand(
      "init-model", "Write a model file with random weights (for tests, benchmarks and trying things out)");
  init_model->add_option("--out", init.out, "Model file (HDF5) to write")->required();
  init_model->add_option("--family", init.family, "Model family")
      ->check(CLI::IsMember({"llama", "gpt"}))
      ->capture_default_str();
  init_model->add_option("--layers", init.layers, "Transformer blocks")->capture_default_str();
  init_model->add_option("--d-model", init.d_model, "Hidden size")->capture_default_str();
  init_model->add_option("--heads", init.heads, "Attention (query) heads")->capture_default_str();
  init_model->add_option("--kv-heads", init.kv_heads, "Key/value heads (0 = --heads, no grouping)")
      ->capture_default_str();
  init_model->add_option("--head-dim", init.head_dim,
                         "Width of one attention head (0 = d_model / heads); another width makes "
                         "a model shaped like one tensor-parallel rank's share of a larger one")
      ->capture_default_str();
  init_model->add_option("--d-ffn", init.d_ffn,
                         "MLP inner size (0 = 4*d_model for gpt, about 8/3*d_model for llama)")
      ->capture_default_str();
  init_model->add_option("--max-positions", init.max_positions, "Longest sequence")->capture_default_str();
  init_model->add_option("--tokenizer", init.tokenizer,
                         "Model file or tokenizer.json to take the tokenizer from (default: byte-level tokenizer)");
  init_model->add_option("--vocab", init.vocab, "Vocabulary size (0 = the tokenizer's size)")->capture_default_str();
  init_model->add_option("--activation", init.activation, "MLP activation (default: gelu for gpt, swiglu for llama)");
  init_model->add_flag("--untied", untied, "Give the LM head its own weights instead of tying it to the embeddings (llama)");
  init_model->add_option("--seed", init.seed, "Random seed of the weights")->capture_default_str();
  init_model->add_option("--std", init.std, "Standard deviation of the random weights")->capture_default_str();

  // convert
  ConvertOptions convert_options;
  CLI::App* convert = app.add_subcommand("convert", "Convert Hugging Face safetensors or a GGUF file to a model file");
  convert->add_option("--from", convert_options.from, "Source format")
      ->required()
      ->check(CLI::IsMember({"safetensors", "gguf"}));
  convert->add_option("src", convert_options.src, "Source: a folder of safetensors (with config.json) or a .gguf file")
      ->required();
  convert->add_option("--out", convert_options.out, "Model file (HDF5) to write")->required();
  convert->add_option("--dtype", convert_options.dtype, "Type of the weights in the model file")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();

  // bench
  BenchOptions bench_options;
  CLI::App* bench = app.add_subcommand(
      "bench", "Time the configuration's real training step and report throughput, GFLOP/s "
               "and the share of the BLAS rate (docs/performance.md)");
  bench->add_option("config", config_path, "YAML configuration file")->required();
  bench->add_option("--steps", bench_options.steps, "Timed steps")->capture_default_str();
  bench->add_option("--warmup", bench_options.warmup, "Untimed steps before them")->capture_default_str();
  bench->add_flag("--json", bench_options.json, "Print one JSON object instead of a table");
  bench->add_option("--peak-tflops", bench_options.peak_tflops,
                    "GPU only: the device's dense bf16 peak in TFLOP/s for the MFU figure (default: "
                    "from sptrain's table of A100, H100, H200, H800, L40S)")
      ->check(CLI::PositiveNumber);
  bench->add_option("--batches-out", bench_options.batches_out,
                    "Write each step's global batch (indices into task.train) as JSON lines here");
  bench->add_option("--set", sets, kSetHelp)->allow_extra_args(false)->type_name("KEY=VALUE");

  // plan
  PlanOptions plan_options;
  plan::HardwareOptions& hw = plan_options.hardware;
  plan::WorkloadOptions& work = plan_options.workload;
  CLI::App* plan_cmd = app.add_subcommand(
      "plan", "Will the configuration's job fit on N GPUs, in which parallel layout, and how fast: "
              "memory per rank, step time, tokens/s, MFU and bytes per step of every layout (docs/plan.md)");
  plan_cmd->add_option("config", config_path, "YAML configuration file")->required();
  plan_cmd->add_option("--gpus", plan_options.gpus, "Devices (ranks) to plan for")->required()
      ->check(CLI::PositiveNumber);
  plan_cmd->add_option("--gpu", hw.gpu, "Device: " + plan::gpu_names() + " (cpu: this machine)")
      ->capture_default_str();
  plan_cmd->add_option("--gpus-per-node", hw.gpus_per_node, "Devices per node (default: the device's usual server)")
      ->check(CLI::PositiveNumber);
  plan_cmd->add_flag("--json", plan_options.json, "Print one JSON object instead of the table");
  plan_cmd->add_option("--top", plan_options.top, "Layouts shown in full")->capture_default_str();
  plan_cmd->add_option("--shape", plan_options.shape,
                       "Plan for a published model's shape instead of model.path: gpt3-175b, opt-175b, "
                       "bloom-176b, llama3-70b, llama3-405b");
  ModelDims& dims = plan_options.dims;
  plan_cmd->add_option("--family", dims.family, "Family of explicit dimensions: gpt or llama")
      ->check(CLI::IsMember({"gpt", "llama"}));
  plan_cmd->add_option("--layers", dims.layers, "Override: transformer blocks");
  plan_cmd->add_option("--d-model", dims.d_model, "Override: hidden size");
  plan_cmd->add_option("--heads", dims.heads, "Override: attention heads");
  plan_cmd->add_option("--kv-heads", dims.kv_heads, "Override: key/value heads");
  plan_cmd->add_option("--head-dim", dims.head_dim, "Override: width of one head");
  plan_cmd->add_option("--d-ffn", dims.d_ffn, "Override: MLP inner size");
  plan_cmd->add_option("--vocab", dims.vocab, "Override: vocabulary size");
  plan_cmd->add_option("--tensor", plan_options.tensor, "Only layouts of this tensor-parallel size");
  plan_cmd->add_option("--pipeline", plan_options.pipeline, "Only layouts of this pipeline size");
  plan_cmd->add_option("--micro-batch", plan_options.micro_batch, "Only layouts of this micro-batch size");
  plan_cmd->add_option("--schedule", plan_options.schedule, "Only this pipeline schedule")
      ->check(CLI::IsMember({"gpipe", "1f1b"}));
  plan_cmd->add_option("--tokenizer", work.tokenizer,
                       "Model file or tokenizer.json to encode the task's data with (default: the model file's)");
  plan_cmd->add_option("--example-tokens", work.example_tokens,
                       "Without a tokenizer: text tokens per example (default: task.max_length)");
  plan_cmd->add_option("--first-step", work.first_step, "First training step planned")->capture_default_str();
  plan_cmd->add_option("--steps", work.steps, "Training steps planned (their mean is reported)")
      ->capture_default_str();
  plan_cmd->add_option("--calibrate", hw.calibrate,
                       "A `sptrain bench --json` result measured on the device: its compute rate and step "
                       "overhead replace the defaults; repeat it with runs of other micro-batch sizes to "
                       "measure the cost of a layer pass too");
  plan_cmd->add_option("--peak-tflops", hw.peak_tflops, "The device's dense bf16 peak");
  plan_cmd->add_option("--matmul-share", hw.matmul_share, "Share of the peak the matrix products reach");
  plan_cmd->add_option("--attention-share", hw.attention_share, "Share of the peak attention reaches");
  plan_cmd->add_option("--node-link-gbps", hw.node_link_gbps, "GB/s one way between the devices of a node");
  plan_cmd->add_option("--fabric-gbps", hw.fabric_gbps, "GB/s one way from a device to other nodes");
  plan_cmd->add_option("--link-share", hw.link_share, "Share of a link's bandwidth the collectives reach");
  plan_cmd->add_option("--node-latency-us", hw.node_latency_us, "Microseconds a call inside a node");
  plan_cmd->add_option("--fabric-latency-us", hw.fabric_latency_us, "Microseconds a call between nodes");
  plan_cmd->add_option("--overhead-gb", hw.overhead_gb, "Fixed memory of every rank, GB");
  plan_cmd->add_option("--step-overhead-ms", hw.step_overhead_ms, "Fixed time of every step, ms");
  plan_cmd->add_option("--layer-overhead-us", hw.layer_overhead_us,
                       "Fixed time of every layer's forward or backward of one micro-batch, us");
  plan_cmd->add_option("--set", sets, kSetHelp)->allow_extra_args(false)->type_name("KEY=VALUE");

  // export
  ExportOptions export_options;
  CLI::App* export_cmd = app.add_subcommand(
      "export", "Export a checkpoint's prompt as HDF5, NumPy .npy or a Hugging Face PEFT folder "
                "(docs/export.md)");
  export_cmd->add_option("checkpoint", export_options.checkpoint,
                         "Prompt checkpoint (step_*.h5) or hdf5 export to export")
      ->required();
  export_cmd->add_option("--format", export_options.format,
                         "hdf5: the prompt with its metadata; npy: [P, d_model] array (not for deep "
                         "prompts); peft: folder with adapter_model.safetensors and adapter_config.json "
                         "(PROMPT_TUNING, or PREFIX_TUNING for a deep prompt)")
      ->required()
      ->check(CLI::IsMember({"hdf5", "npy", "peft"}));
  export_cmd->add_option("--out", export_options.out, "File (hdf5, npy) or folder (peft) to write")->required();
  export_cmd->add_option("--dtype", export_options.dtype,
                         "npy only: f32, or bf16 (stored as uint16 bits: numpy has no bf16)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  export_cmd->add_option("--model", export_options.model,
                         "peft only: model file to read num_layers and the attention and key/value heads from "
                         "(default: the model the checkpoint records)");
  export_cmd->add_option("--base-model", export_options.base_model,
                         "peft only: base_model_name_or_path to write (default: the model's name)");

  // infer
  InferOptions infer_options;
  CLI::App* infer = app.add_subcommand(
      "infer", "Classify JSONL lines {\"task\": NAME, \"text\": ...} with one frozen model and one "
               "prompt per task, tasks mixed in each batch (single process, CPU back end)");
  infer->add_option("--model", infer_options.model, "Model file (HDF5)")->required();
  infer->add_option("--prompt", infer_options.prompts,
                    "NAME=PATH: task NAME uses the prompt at PATH (a checkpoint or hdf5 export, which "
                    "carry the template, verbalizer and max_length); repeatable. A NAME given "
                    "several times is a prompt ensemble of those prompts. Deep prompts work too, but "
                    "not beside input-vector prompts in one command")
      ->required()
      ->allow_extra_args(false)
      ->type_name("NAME=PATH");
  infer->add_option("--input", infer_options.input, "JSONL input file (- = standard input)")
      ->capture_default_str();
  infer->add_option("--batch-size", infer_options.batch_size,
                    "Sequences per forward pass (a line takes one per prompt of its task)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  infer->add_option("--threads", infer_options.threads, "CPU threads (0 = all cores)")
      ->check(CLI::Range(0, kMaxThreads))
      ->capture_default_str();
  infer->footer("Prints one JSON line per input line, in order: {\"task\", \"label\" (predicted), "
                "\"scores\": {label: {\"logit\", \"prob\"}}}, and the input's \"id\" when it has one. For "
                "an ensemble: \"label\" by the mean of the members' label probabilities, \"vote\" by "
                "majority (a tie: the larger mean), \"scores\": {label: {\"prob\" (the mean), \"votes\"}}, "
                "\"members\": each member's label.\n"
                "Runs in one process on the CPU back end (no MPI, no tensor or pipeline parallelism).");

  // generate
  GenerateOptions gen_options;
  CLI::App* generate = app.add_subcommand(
      "generate", "Generate text for JSONL lines {\"task\": NAME, \"input\": ...} with one frozen model "
                  "and one prompt per generate task, tasks mixed in each batch (one rank, or tensor and "
                  "pipeline parallel under mpirun)");
  generate->add_option("--model", gen_options.model, "Model file (HDF5)")->required();
  generate->add_option("--prompt", gen_options.prompts,
                       "NAME=PATH: task NAME uses the prompt at PATH (a checkpoint or hdf5 export of a "
                       "task.kind generate run, which carry the template and max_length); repeatable. "
                       "Deep prompts work too, but not beside input-vector prompts in one command")
      ->required()
      ->allow_extra_args(false)
      ->type_name("NAME=PATH");
  generate->add_option("--input", gen_options.input, "JSONL input file (- = standard input)")
      ->capture_default_str();
  generate->add_option("--max-new-tokens", gen_options.max_new_tokens,
                       "Most tokens to generate per input (0 = the task's max_target_length)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  generate->add_option("--temperature", gen_options.temperature, "0 = greedy; else sample from softmax(logits / T)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  generate->add_option("--top-k", gen_options.top_k, "Sample among the k most likely tokens (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  generate->add_option("--top-p", gen_options.top_p,
                       "Sample among the fewest most likely tokens whose probability reaches p")
      ->check(CLI::Range(0.0, 1.0).description("") & CLI::PositiveNumber)
      ->capture_default_str();
  generate->add_option("--seed", gen_options.seed, "Seed of the sampling (each input line its own stream)")
      ->capture_default_str();
  generate->add_option("--stop", gen_options.stop, "Stop string: the text ends before it; repeatable");
  generate->add_flag("--ids", gen_options.ids, "Also print the generated token ids (\"ids\")");
  generate->add_option("--batch-size", gen_options.batch_size, "Inputs generated together")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  generate->add_option("--threads", gen_options.threads, "CPU threads per rank (0 = the cores shared among the ranks)")
      ->check(CLI::Range(0, kMaxThreads))
      ->capture_default_str();
  generate->add_option("--tensor", gen_options.tensor, "Tensor-parallel ranks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  generate->add_option("--pipeline", gen_options.pipeline, "Pipeline stages")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  generate->footer("Prints one JSON line per input line, in order: {\"task\", \"text\" (generated), "
                   "\"tokens\" (how many), \"finish\": eos | stop | length}, and the input's \"id\" "
                   "when it has one. Under mpirun give --input FILE: every rank reads it.");

  // Set after the subcommands so that they do not inherit it.
  app.footer("`sptrain CONFIG.yaml ...` is short for `sptrain train CONFIG.yaml ...`.\n"
             "Run `sptrain SUBCOMMAND --help` for a subcommand's options.");
  train->footer("`sptrain CONFIG.yaml ...` is short for `sptrain train CONFIG.yaml ...`.\n"
                "Relative paths in the configuration are relative to the current directory.");

  std::vector<std::string> args = expand_shorthand(argc, argv);
  if (!args.empty() && !args[0].empty() && args[0][0] != '-' && !is_subcommand(args[0])) {
    std::cerr << "Unknown subcommand '" << args[0]
              << "': expected train, eval, init-model, convert, bench, plan, export, infer or a CONFIG.yaml file\n"
                 "Run with --help for more information.\n";
    return 2;
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments back to front
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints help, the version or the usage error
    return code == 0 ? 0 : 2;
  }

  if (train->parsed()) {
    // Before any slow start-up work (MPI, loading): a USR1 or SIGTERM that
    // comes early must not kill the run unexplained (comm/stop_signals.hpp).
    if (!train_options.dry_run) install_stop_handlers();
    Config config = load_config(config_path, sets);
    if (train_options.dry_run) {
      std::cout << dump_config(config) << std::flush;
      return 0;
    }
    return run_train(config, train_options);
  }
  if (eval->parsed()) return run_eval(load_config(config_path, sets), eval_options);
  if (init_model->parsed()) {
    init.tied = !untied;
    return run_init_model(init);
  }
  if (convert->parsed()) return run_convert(convert_options);
  if (bench->parsed()) return run_bench(load_config(config_path, sets), bench_options);
  if (plan_cmd->parsed()) return run_plan(load_config(config_path, sets), plan_options);
  if (export_cmd->parsed()) return run_export(export_options);
  if (infer->parsed()) return run_infer(infer_options);
  if (generate->parsed()) return run_generate(gen_options);
  return 2;  // unreachable: a subcommand is required
}

}  // namespace
}  // namespace sptrain

int main(int argc, char** argv) {
  sptrain::ensure_runtime_environment(argv);
  try {
    const int status = sptrain::run(argc, argv);
    // Output that did not reach its file (a full disk, /dev/full) is a failure.
    sptrain::flush_checked(stdout, "standard output");
    return status;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "sptrain: error: %s\n", e.what());
  } catch (...) {
    std::fflush(stdout);
    std::fprintf(stderr, "sptrain: error: unknown failure\n");
  }
  return 1;
}
