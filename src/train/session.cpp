#include "sptrain/train/session.hpp"

#include <algorithm>

#include "sptrain/backend/factory.hpp"
#include "sptrain/comm/mpi_runtime.hpp"

namespace sptrain {

namespace {

DType compute_dtype(const Config& c, const Backend& be) {
  if (be.device() == Device::CUDA) return DType::BF16;
  return c.model.dtype == "f64" ? DType::F64 : DType::F32;
}

BackendOptions backend_options(const Config& c, const ProcessGrid& grid) {
  BackendOptions o;
  o.kind = c.backend;
  o.threads = c.threads;
  o.world_rank = grid.world_rank;
  if (grid.world_size() > 1) {  // a one-rank grid makes no MPI call, even inside an MPI job
    const NodeRanks node = node_ranks();
    o.node_rank = node.rank;
    o.node_ranks = node.size;
  }
  return o;
}

}  // namespace

Session::Session(const Config& cfg, ProcessGrid grid, SessionMode mode)
    : config(cfg), model_file(h5::File::open_read(cfg.model.path)) {
  const bool eval_only = mode == SessionMode::EvalOnly;
  model = read_model_config(model_file);
  const GridLayout layout = grid.layout;
  const GridCoords coords = grid.coords;
  // Check the layout against the model before any weight is read.
  local_dims(model, coords.tp, layout.tensor);
  const StageSpec spec = plan_stage(model.n_layers, layout.pipeline, coords.pp, config.parallel.stage_layers);

  const TrainSection& t = config.train;
  SPT_CHECK(t.batch_size % layout.data == 0, "train.batch_size (", t.batch_size,
            ") must be divisible by the data-parallel size (", layout.data, " = ", layout.world_size(),
            " ranks / (tensor ", layout.tensor, " x pipeline ", layout.pipeline, "))");
  const int local_batch = t.batch_size / layout.data;
  SPT_CHECK(local_batch % t.micro_batch_size == 0, "train.micro_batch_size (",
            t.micro_batch_size, ") must divide the per-replica batch (", local_batch, " = ",
            t.batch_size, " / ", layout.data, " replicas)");
  const int micro_batches = local_batch / t.micro_batch_size;

  backend = make_backend(backend_options(config, grid));
  CommOptions comm;
  comm.timeout_s = config.parallel.timeout_s;
  parallel = std::make_unique<ParallelState>(std::move(grid), *backend, comm);
  const DType act = compute_dtype(config, *backend);
  ctx = std::make_unique<ModelContext>(
      ModelContext{*backend, parallel->tensor(), act, act == DType::F64 ? DType::F64 : DType::F32});

  tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(model_file));
  SPT_CHECK(tokenizer->vocab_size() <= model.vocab_size, config.model.path, ": the tokenizer has ",
            tokenizer->vocab_size(), " tokens but the model only ", model.vocab_size, " embeddings");
  task = std::make_unique<Task>(config.task, *tokenizer);
  data = load_task_data(config, *task, eval_only);

  const int P = config.prompt.length;
  // Rows of the longest example (a target's rows included) and its most answer tokens.
  const int64_t train_tokens = std::max<int64_t>(TaskData::longest(data.train), 1);
  const int64_t eval_tokens = std::max(TaskData::longest(data.eval), train_tokens);
  const int64_t train_answer = std::max<int64_t>(TaskData::longest_answer(data.train), 1);
  const int64_t eval_answer = std::max(TaskData::longest_answer(data.eval), train_answer);
  SPT_CHECK(P + eval_tokens <= model.max_positions, "prompt.length + the longest example (",
            P + eval_tokens, " tokens) exceeds the model's ", model.max_positions,
            " positions; lower task.max_length or prompt.length");
  // The prompt's rows are computed once per micro-batch and shared by its examples.
  StageShape shape;
  shape.train = Capacity{BatchBuilder::rows_needed(P, t.micro_batch_size, train_tokens, true), P + train_tokens};
  shape.train_seqs = t.micro_batch_size;
  shape.train_targets = int64_t(t.micro_batch_size) * train_answer;
  shape.activation_sets =
      eval_only ? 1
                : activation_slots(schedule_kind(config.parallel.schedule), layout.pipeline, coords.pp, micro_batches);
  shape.eval = Capacity{BatchBuilder::rows_needed(P, t.eval_batch_size, eval_tokens, true), P + eval_tokens};
  shape.eval_seqs = t.eval_batch_size;
  shape.eval_targets = int64_t(t.eval_batch_size) * eval_answer;
  const HeadSpec head{task->vocab_loss() ? LossKind::Vocab : LossKind::Labels, task->label_tokens()};
  stage = std::make_unique<Stage>(*ctx, model, model_file, spec, head, shape);
  runner = std::make_unique<PipelineRunner>(*stage, parallel->pipeline(), schedule_kind(config.parallel.schedule));

  if (!eval_only)
    train_batches = std::make_unique<MicroBatchSet>(*backend, P, shape.train.rows, t.micro_batch_size,
                                                    micro_batches, train_answer);
  eval_batch = std::make_unique<MicroBatchSet>(*backend, P, shape.eval.rows, t.eval_batch_size, 1, eval_answer);
  // This rank's share of the prompt's parameters: the input rows on the
  // first stage, a deep prompt's units on the ranks of their layer and kv head.
  PromptPlacement place = PromptPlacement::of_stage(spec, stage->dims());
  const int kv_replicas = layout.tensor > model.n_kv_heads ? layout.tensor / model.n_kv_heads : 1;
  place.first_kv_holder = coords.tp % kv_replicas == 0;
  place.counts_units = place.first_kv_holder && coords.dp == 0;
  place.counts_shared = coords.dp == 0 && coords.pp == 0 && coords.tp == 0;
  prompt = std::make_unique<PromptParameter>(*backend, ctx->stat, config.prompt, model, place);
  if (kv_replicas > 1 && prompt->method() == PromptMethod::Deep)
    kv_grad_scratch = ctx->alloc_stat(Shape{model.n_kv_heads, prompt->device_grad().prefix.numel()});
  // Generation needs the key/value cache ops, which only the CPU back end has
  // so far: elsewhere a generate task's evaluation reports its loss alone.
  if (task->generative() && !data.eval_inputs.empty() && backend->device() == Device::CPU) {
    int64_t longest_input = 1;
    for (const ReferencedInput& in : data.eval_inputs)
      longest_input = std::max<int64_t>(longest_input, int64_t(in.tokens.size()));
    decoder = std::make_unique<Decoder>(*stage, *runner, parallel->pipeline(), *tokenizer,
                                        DecoderShape{{P}, t.eval_batch_size, longest_input,
                                                     task->max_target_length()});
  }
  if (backend->device() == Device::CUDA && !eval_only) step_sums = backend->allocate(DType::F64, Shape{3});
  examples.reserve(size_t(std::max(local_batch, t.eval_batch_size)));
  tally.reset(nullptr, task->num_labels());
}

Session::~Session() = default;

std::unique_ptr<Optimizer> make_prompt_optimizer(Session& s) {
  const PromptParameter& prompt = *s.prompt;
  // Prompt tuning: the plain optimizer of [P, d] (its state's names as
  // before), on the device for a GPU step. A rank without parameters never
  // steps; the same optimizer keeps the trainer's code the same on every rank.
  if (prompt.method() == PromptMethod::PromptTuning || !prompt.holds()) {
    auto optimizer = make_optimizer(s.config.optim, prompt.rows(), prompt.cols());
    if (s.device_step() && prompt.holds() && prompt.updates_on_device()) optimizer->place_on(*s.backend);
    return optimizer;
  }
  std::vector<TensorSegment> segments;
  for (const ParameterTensor& t : prompt.tensors()) segments.push_back({t.name, t.rows, t.cols});
  return make_optimizer(s.config.optim, segments);
}

}  // namespace sptrain
