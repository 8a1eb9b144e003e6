#include "sptrain/train/session.hpp"

#include <algorithm>
#include <cstring>

#include "sptrain/backend/factory.hpp"
#include "sptrain/data/dataset.hpp"
#include "sptrain/train/control.hpp"
#ifdef SPTRAIN_WITH_CUDA
#include "sptrain/backend/cuda/cuda_backend.hpp"
#include "sptrain/comm/nccl_group.hpp"
#endif

namespace sptrain {

namespace {

int64_t longest(const std::vector<EncodedExample>& data) {
  size_t n = 0;
  for (const auto& e : data) n = std::max(n, e.tokens.size());
  return int64_t(n);
}

DType compute_dtype(const Config& c, const Backend& be) {
  if (be.device() == Device::CUDA) return DType::BF16;
  return c.model.dtype == "f64" ? DType::F64 : DType::F32;
}

}  // namespace

Session::Session(const Config& config, ProcessGrid& grid, bool eval_only)
    : config_(config), grid_(grid), model_file_(h5::File::open_read(config.model.path)) {
  model_ = read_model_config(model_file_);
  // Check the layout against the model before any weight is read.
  local_dims(model_, grid.coords.tp, grid.layout.tensor);
  const StageSpec spec =
      plan_stage(model_.n_layers, grid.layout.pipeline, grid.coords.pp, config.parallel.stage_layers);

  const TrainSection& t = config.train;
  SPT_CHECK(t.batch_size % grid.layout.data == 0, "train.batch_size (", t.batch_size,
            ") must be divisible by the data-parallel size (", grid.layout.data, " = ", grid.world_size(),
            " ranks / (tensor ", grid.layout.tensor, " x pipeline ", grid.layout.pipeline, "))");
  const int local_batch = t.batch_size / grid.layout.data;
  SPT_CHECK(local_batch % t.micro_batch_size == 0, "train.micro_batch_size (",
            t.micro_batch_size, ") must divide the per-replica batch (", local_batch, " = ",
            t.batch_size, " / ", grid.layout.data, " replicas)");
  const int micro_batches = local_batch / t.micro_batch_size;

  backend_ = make_backend(config, grid.world_rank);
  tp_group_ = grid.tp.get();
  pp_group_ = grid.pp.get();
  dp_group_ = grid.dp.get();
#ifdef SPTRAIN_WITH_CUDA
  if (backend_->device() == Device::CUDA) {
    auto& cuda = static_cast<CudaBackend&>(*backend_);
    DeviceGroups g = make_device_groups(grid, cuda.device_index(), cuda.stream());
    tp_group_ = g.tp.get();
    pp_group_ = g.pp.get();
    dp_group_ = g.dp.get();
    device_groups_.push_back(std::move(g.tp));
    device_groups_.push_back(std::move(g.pp));
    device_groups_.push_back(std::move(g.dp));
  }
#endif
  const DType act = compute_dtype(config, *backend_);
  ctx_ = std::make_unique<ModelContext>(
      ModelContext{*backend_, *tp_group_, act, act == DType::F64 ? DType::F64 : DType::F32});

  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(model_file_));
  SPT_CHECK(tokenizer_->vocab_size() <= model_.vocab_size, config.model.path, ": the tokenizer has ",
            tokenizer_->vocab_size(), " tokens but the model only ", model_.vocab_size, " embeddings");
  task_ = std::make_unique<Task>(config.task, *tokenizer_);
  if (!eval_only) train_ = task_->encode_all(read_dataset(config.task.train, config.task.format),
                                             config.task.train);
  if (!config.task.eval.empty())
    eval_ = task_->encode_all(read_dataset(config.task.eval, config.task.format), config.task.eval);
  if (t.eval_max_examples > 0 && int64_t(eval_.size()) > t.eval_max_examples)
    eval_.resize(size_t(t.eval_max_examples));

  const int P = config.prompt.length;
  const int64_t train_tokens = std::max<int64_t>(longest(train_), 1);
  const int64_t eval_tokens = std::max(longest(eval_), train_tokens);
  SPT_CHECK(P + eval_tokens <= model_.max_positions, "prompt.length + the longest example (",
            P + eval_tokens, " tokens) exceeds the model's ", model_.max_positions,
            " positions; lower task.max_length or prompt.length");
  // The prompt's rows are computed once per micro-batch and shared by its examples.
  const int64_t train_rows = BatchBuilder::rows_needed(P, t.micro_batch_size, train_tokens, true);
  const int64_t eval_rows = BatchBuilder::rows_needed(P, t.eval_batch_size, eval_tokens, true);
  StageShape shape;
  shape.train = Capacity{train_rows, P + train_tokens};
  shape.train_seqs = t.micro_batch_size;
  shape.activation_sets = eval_only ? 1
                                    : activation_slots(schedule_kind(config.parallel.schedule),
                                                       grid.layout.pipeline, grid.coords.pp, micro_batches);
  shape.eval = Capacity{eval_rows, P + eval_tokens};
  shape.eval_seqs = t.eval_batch_size;
  stage_ = std::make_unique<Stage>(*ctx_, model_, model_file_, spec, task_->head_spec(), shape);
  runner_ = std::make_unique<PipelineRunner>(*stage_, *pp_group_,
                                             schedule_kind(config.parallel.schedule));

  if (!eval_only) {
    for (int i = 0; i < micro_batches; ++i)
      builders_.push_back(std::make_unique<BatchBuilder>(*backend_, P, shape.train.rows,
                                                         t.micro_batch_size));
    micro_batches_.resize(size_t(micro_batches));
    for (auto& mb : micro_batches_) mb_ptrs_.push_back(&mb);
    local_.reserve(size_t(local_batch));
  }
  eval_builder_ = std::make_unique<BatchBuilder>(*backend_, P, shape.eval.rows, t.eval_batch_size);

  prompt_.assign(size_t(P) * size_t(model_.d_model), 0.f);
  grad_.assign(prompt_.size(), 0.f);
  staging_.assign(prompt_.size(), 0.0);
  if (holds_prompt()) {
    prompt_dev_ = ctx_->alloc_stat(Shape{P, model_.d_model});
    dprompt_dev_ = ctx_->alloc_stat(Shape{P, model_.d_model});
  }
}

Session::~Session() = default;

std::vector<EncodedExample> Session::encode_file(const std::string& path) const {
  return task_->encode_all(read_dataset(path, config_.task.format), path);
}

void Session::upload_prompt() {
  if (!holds_prompt()) return;
  if (prompt_dev_.view().dtype == DType::F32) {
    backend_->copy_from_host(prompt_dev_, prompt_.data());
  } else {
    for (size_t i = 0; i < prompt_.size(); ++i) staging_[i] = prompt_[i];
    backend_->copy_from_host(prompt_dev_, staging_.data());
  }
}

void Session::fill_micro_batches(const std::vector<const EncodedExample*>& local, int per_micro) {
  static thread_local std::vector<const EncodedExample*> part;
  text_rows_ = prompt_rows_ = 0;
  for (size_t k = 0; k < micro_batches_.size(); ++k) {
    part.assign(local.begin() + long(k) * per_micro, local.begin() + long(k + 1) * per_micro);
    builders_[k]->fill(micro_batches_[k], part);
    text_rows_ += micro_batches_[k].text_rows;
    prompt_rows_ += micro_batches_[k].prompt_rows;
  }
}

void Session::forward_backward(const std::vector<int64_t>& global_batch, double& loss_sum,
                               int64_t& correct) {
  const int B = config_.train.batch_size, local_batch = B / grid_.layout.data;
  SPT_ASSERT(int64_t(global_batch.size()) == B);
  local_.clear();
  for (int i = 0; i < local_batch; ++i)
    local_.push_back(&train_[size_t(global_batch[size_t(grid_.coords.dp * local_batch + i)])]);
  fill_micro_batches(local_, config_.train.micro_batch_size);

  if (holds_prompt()) {
    upload_prompt();
    backend_->fill(dprompt_dev_, 0.0);
  }
  tally_.reset(&mb_ptrs_, task_->num_labels());
  runner_->train(mb_ptrs_, prompt_dev_.view(), dprompt_dev_.view(), 1.0f / float(B), tally_);
  loss_sum = reports_loss() ? tally_.loss_sum : 0.0;
  correct = reports_loss() ? tally_.correct : 0;
  if (holds_prompt()) {
    if (grid_.layout.data > 1) dp_group_->all_reduce(dprompt_dev_, ReduceOp::Sum);
    if (dprompt_dev_.view().dtype == DType::F32) {
      backend_->copy_to_host(grad_.data(), dprompt_dev_);
    } else {
      backend_->copy_to_host(staging_.data(), dprompt_dev_);
      for (size_t i = 0; i < grad_.size(); ++i) grad_[i] = float(staging_[i]);
    }
  }
}

Stage::Work Session::work_last_step() const {
  Stage::Work total;
  for (const MicroBatch& mb : micro_batches_) {
    const Stage::Work w = stage_->work(mb);
    total.forward += w.forward;
    total.backward += w.backward;
  }
  return total;
}

void Session::Tally::reset(const std::vector<MicroBatch*>* mbs, int labels) {
  batches = mbs;
  n_labels = labels;
  loss_sum = 0;
  correct = examples = 0;
  confusion.assign(size_t(labels) * size_t(labels), 0);
}

void Session::Tally::on_output(int micro_batch, const HeadOutput& out) {
  const MicroBatch& mb = *(*batches)[size_t(micro_batch)];
  for (size_t b = 0; b < out.loss.size(); ++b) {
    const double* s = out.label_scores.data() + b * size_t(n_labels);
    const int pred = int(std::max_element(s, s + n_labels) - s);
    const int truth = mb.host_labels[b];
    loss_sum += out.loss[b];
    correct += pred == truth;
    ++examples;
    ++confusion[size_t(truth * n_labels + pred)];
  }
}

EvalResult Session::evaluate(const std::vector<EncodedExample>& data) {
  const int n_labels = task_->num_labels();
  const Range share = split_range(int64_t(data.size()), grid_.layout.data, grid_.coords.dp);
  const int chunk = config_.train.eval_batch_size;
  upload_prompt();
  eval_ptrs_.assign(1, &eval_mb_);
  tally_.reset(&eval_ptrs_, n_labels);
  std::vector<const EncodedExample*> part;
  part.reserve(size_t(chunk));
  for (int64_t begin = share.begin; begin < share.end(); begin += chunk) {
    part.clear();
    for (int64_t i = begin; i < std::min(share.end(), begin + chunk); ++i) part.push_back(&data[size_t(i)]);
    eval_builder_->fill(eval_mb_, part);
    runner_->evaluate(eval_ptrs_, prompt_dev_.view(), tally_);
  }
  // Only one rank per replica reports; the others add zeros.
  std::vector<double> sums(size_t(3 + n_labels * n_labels), 0.0);
  if (reports_loss()) {
    sums[0] = double(tally_.examples);
    sums[1] = tally_.loss_sum;
    sums[2] = double(tally_.correct);
    for (size_t i = 0; i < tally_.confusion.size(); ++i) sums[3 + i] = double(tally_.confusion[i]);
  }
  control_sum(grid_, sums);
  EvalResult r;
  r.examples = int64_t(sums[0]);
  r.loss = sums[0] > 0 ? sums[1] / sums[0] : 0;
  r.accuracy = sums[0] > 0 ? sums[2] / sums[0] : 0;
  for (int i = 0; i < n_labels * n_labels; ++i) r.confusion.push_back(int64_t(sums[size_t(3 + i)]));
  return r;
}

}  // namespace sptrain
