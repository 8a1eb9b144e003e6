#include "sptrain/infer/generator.hpp"

#include <algorithm>

#include "sptrain/backend/factory.hpp"
#include "sptrain/comm/mpi_runtime.hpp"

namespace sptrain {

Generator::Generator(const std::string& model_path, std::vector<TaskPrompt> tasks, ProcessGrid grid,
                     const GeneratorOptions& options)
    : options_(options), model_file_(h5::File::open_read(model_path)) {
  SPT_CHECK(!tasks.empty(), "generate: give at least one --prompt NAME=PATH");
  SPT_CHECK(options.batch_size >= 1, "generate: --batch-size must be >= 1, is ", options.batch_size);
  SPT_CHECK(options.max_new_tokens >= 1, "generate: --max-new-tokens must be >= 1, is ", options.max_new_tokens);
  SPT_CHECK(grid.layout.data == 1, "generate: ", grid.world_size(), " ranks for tensor ", grid.layout.tensor,
            " x pipeline ", grid.layout.pipeline, "; every rank must hold a part of one model (data parallel 1)");
  model_ = read_model_config(model_file_);
  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(model_file_));
  SPT_CHECK(tokenizer_->vocab_size() <= model_.vocab_size, model_path, ": the tokenizer has ",
            tokenizer_->vocab_size(), " tokens but the model only ", model_.vocab_size, " embeddings");

  tasks_ = std::make_unique<TaskPrompts>(
      std::move(tasks), "generate",
      "sptrain generate needs one trained with task.kind: generate (sptrain infer scores label words)", model_,
      model_path, *tokenizer_);
  const std::vector<int> prompt_lens = tasks_->prompt_lens();
  int64_t max_input = 1;
  for (int k = 0; k < tasks_->size(); ++k) max_input = std::max<int64_t>(max_input, (*tasks_)[k].task->max_length());
  if (options_.max_input > 0) max_input = options_.max_input;

  BackendOptions backend;
  backend.threads = options.threads;
  backend.world_rank = grid.world_rank;
  if (grid.world_size() > 1) {  // a one-rank grid makes no MPI call
    const NodeRanks node = node_ranks();
    backend.node_rank = node.rank;
    backend.node_ranks = node.size;
  }
  backend_ = make_backend(backend);
  const GridCoords coords = grid.coords;
  const GridLayout layout = grid.layout;
  local_dims(model_, coords.tp, layout.tensor);  // the layout must divide the model
  parallel_ = std::make_unique<ParallelState>(std::move(grid), *backend_);
  ctx_ = std::make_unique<ModelContext>(ModelContext{*backend_, parallel_->tensor(), DType::F32, DType::F32});

  // The largest step: every prompt's rows, or batch_size inputs.
  const int B = options.batch_size;
  const int64_t prompt_rows = tasks_->prompt_rows();
  const int longest_prompt = *std::max_element(prompt_lens.begin(), prompt_lens.end());
  StageShape shape;
  shape.train = Capacity{1, 1};  // never trains
  shape.activation_sets = 0;
  shape.eval = Capacity{std::max(prompt_rows, int64_t(B) * max_input), longest_prompt + max_input};
  shape.eval_seqs = B;
  const StageSpec spec = plan_stage(model_.n_layers, layout.pipeline, coords.pp, {});
  stage_ = std::make_unique<Stage>(*ctx_, model_, model_file_, spec, HeadSpec{LossKind::Vocab, {}}, shape);
  runner_ = std::make_unique<PipelineRunner>(*stage_, parallel_->pipeline(), ScheduleKind::GPipe);
  decoder_ = std::make_unique<Decoder>(*stage_, *runner_, parallel_->pipeline(), *tokenizer_,
                                       DecoderShape{prompt_lens, B, max_input, options.max_new_tokens});

  prompts_ = upload_task_prompts(*tasks_, *ctx_, model_, PromptPlacement::of_stage(spec, stage_->dims()));
}

Generator::~Generator() = default;

std::vector<Generation> Generator::generate(const std::vector<const GenerationRequest*>& requests,
                                            const DecodeOptions& options) {
  return decoder_->generate(requests, prompts_.inputs(), options);
}

}  // namespace sptrain
