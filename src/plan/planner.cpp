#include "sptrain/plan/planner.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/backend/factory.hpp"
#include "sptrain/model/batch.hpp"
#include "sptrain/model/stage.hpp"
#include "sptrain/model/tensor_parallel.hpp"
#include "sptrain/optim/optimizer.hpp"
#include "sptrain/pipeline/runner.hpp"
#include "sptrain/prompt/prompt_parameter.hpp"
#include "sptrain/train/train_step.hpp"

namespace sptrain::plan {

namespace {

// One packed micro-batch: its rows and the host side of its index (for the
// attention's key counts); the index's device tensors are not kept.
struct Micro {
  int64_t rows = 0, text_rows = 0;
  SequenceIndex seq;
};
// The planned steps' micro-batches, replica by replica: [step][replica][k].
using Packing = std::vector<std::vector<std::vector<Micro>>>;

// Packs each planned step's examples exactly as train_step does: replica r
// takes examples [r*B/D, (r+1)*B/D) of the global batch, MicroBatchSet cuts
// them into micro-batches (on a CPU back end: only the host side is read).
Packing pack(const Workload& w, int prompt_len, int batch, int data, int micro) {
  BackendOptions bo;
  bo.threads = 1;
  const auto backend = make_backend(bo);
  const int local = batch / data;
  MicroBatchSet set(*backend, prompt_len, BatchBuilder::rows_needed(prompt_len, micro, w.train_tokens, true),
                    micro, local / micro);
  Packing p;
  std::vector<const EncodedExample*> examples;
  for (const std::vector<int64_t>& step : w.steps) {
    auto& replicas = p.emplace_back();
    for (int r = 0; r < data; ++r) {
      examples.clear();
      for (int i = 0; i < local; ++i) examples.push_back(&w.train[size_t(step[size_t(r * local + i)])]);
      set.fill(examples);
      auto& micros = replicas.emplace_back();
      for (const MicroBatch* mb : set.batches()) {
        Micro m{mb->seq.num_rows, mb->text_rows, mb->seq};
        m.seq.offsets = m.seq.prefix_start = m.seq.prefix_len = m.seq.prob_offsets = m.seq.positions =
            m.seq.answer_rows = Tensor{};
        micros.push_back(std::move(m));
      }
    }
  }
  return p;
}

std::vector<int> divisors(int n) {
  std::vector<int> d;
  for (int i = 1; i <= n; ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

// Tensor parallel sizes the code accepts (local_dims) and the plan allows:
// at most a node's GPUs and dividing them, so a group never spans nodes.
bool tensor_fits_model(const ModelConfig& m, int T, const Hardware& h) {
  if (m.n_heads % T || m.d_ffn % T || T > m.vocab_size) return false;
  if (m.n_kv_heads % T != 0 && T % m.n_kv_heads != 0) return false;
  return h.cpu || (T <= h.gpus_per_node && h.gpus_per_node % T == 0);
}

// One collective or message: bytes over the link at its achievable share,
// plus a latency per call. ring: an all-reduce over n ranks moves 2(n-1)/n
// of its payload through each rank's link.
double link_seconds(const Hardware& h, bool across_nodes, double bytes, double calls, int ring_ranks) {
  const double bw = (across_nodes ? h.fabric_bytes_per_s : h.node_link_bytes_per_s) * h.link_share;
  const double latency = across_nodes ? h.fabric_latency_s : h.node_latency_s;
  const double factor = ring_ranks > 1 ? 2.0 * (ring_ranks - 1) / ring_ranks : 1.0;
  return bytes * factor / bw + calls * latency;
}

}  // namespace

double pipeline_span(ScheduleKind kind, const std::vector<std::vector<OpCost>>& cost,
                     std::vector<double>& busy) {
  const int S = int(cost.size()), m = int(cost[0].size());
  std::vector<std::vector<PipelineOp>> ops(static_cast<size_t>(S));
  for (int s = 0; s < S; ++s) make_schedule(kind, S, s, m, ops[size_t(s)]);
  std::vector<std::vector<double>> fwd_arrives(size_t(S), std::vector<double>(size_t(m), -1)),
      bwd_arrives = fwd_arrives;
  std::vector<double> free(size_t(S), 0.0);
  std::vector<size_t> next(size_t(S), 0);
  busy.assign(size_t(S), 0.0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int s = 0; s < S; ++s) {
      for (; next[size_t(s)] < ops[size_t(s)].size(); ++next[size_t(s)]) {
        const PipelineOp op = ops[size_t(s)][next[size_t(s)]];
        const OpCost& c = cost[size_t(s)][size_t(op.micro_batch)];
        const bool fwd = op.kind == PipelineOp::Forward;
        double ready = 0;
        if (fwd && s > 0) ready = fwd_arrives[size_t(s - 1)][size_t(op.micro_batch)];
        if (!fwd && s < S - 1) ready = bwd_arrives[size_t(s + 1)][size_t(op.micro_batch)];
        if (ready < 0) break;  // its input has not been sent yet
        const double start = std::max(free[size_t(s)], ready);
        const double end = start + (fwd ? c.forward : c.backward);
        const double send = fwd ? (s < S - 1 ? c.send_forward : 0) : (s > 0 ? c.send_backward : 0);
        (fwd ? fwd_arrives : bwd_arrives)[size_t(s)][size_t(op.micro_batch)] = end + send;
        free[size_t(s)] = end + send;
        busy[size_t(s)] += (fwd ? c.forward : c.backward) + send;
        progress = true;
      }
    }
  }
  for (int s = 0; s < S; ++s)
    SPT_CHECK(next[size_t(s)] == ops[size_t(s)].size(), "internal error: the pipeline simulation stalled");
  return *std::max_element(free.begin(), free.end());
}

namespace {

int cpu_threads(const Config& c, const Hardware& h, int ranks) {
  return c.threads > 0 ? c.threads : std::max(1, h.cores / std::max(1, ranks));
}

struct Candidate {
  int T, P, D, M;
  ScheduleKind kind;
};

class Planner {
 public:
  explicit Planner(const PlanRequest& r) : r_(r), h_(r.hardware), m_(r.model), c_(r.config) {
    const bool f64 = h_.cpu && c_.model.dtype == "f64";
    types_.act = h_.cpu ? (f64 ? DType::F64 : DType::F32) : DType::BF16;
    types_.stat = f64 ? DType::F64 : DType::F32;
    head_.loss = c_.task.loss == "vocab" ? LossKind::Vocab : LossKind::Labels;
    head_.label_tokens.assign(size_t(r.workload.n_labels), 0);
  }

  LayoutPlan layout(const Candidate& k);

 private:
  const Packing& packing(int D, int M) {
    auto it = packings_.find({D, M});
    if (it == packings_.end())
      it = packings_.emplace(std::make_pair(D, M), pack(r_.workload, c_.prompt.length, c_.train.batch_size, D, M))
               .first;
    return it->second;
  }
  RankMemory stage_memory(const Candidate& k, const StageSpec& spec, const LocalDims& dims, int sets) const;

  const PlanRequest& r_;
  const Hardware& h_;
  const ModelConfig& m_;
  const Config& c_;
  ElemTypes types_;
  HeadSpec head_;
  std::map<std::pair<int, int>, Packing> packings_;
};

RankMemory Planner::stage_memory(const Candidate& k, const StageSpec& spec, const LocalDims& dims,
                                 int sets) const {
  const Workload& w = r_.workload;
  const int P = c_.prompt.length, eval_bs = c_.train.eval_batch_size;
  StageShape shape;  // as Session sizes it
  shape.train = Capacity{BatchBuilder::rows_needed(P, k.M, w.train_tokens, true), P + w.train_tokens};
  shape.train_seqs = k.M;
  shape.activation_sets = sets;
  shape.eval = Capacity{BatchBuilder::rows_needed(P, eval_bs, w.eval_tokens, true), P + w.eval_tokens};
  shape.eval_seqs = eval_bs;
  const StageMemory sm =
      Stage::memory(m_, dims, spec, head_, shape, types_, h_.cpu ? saved_probabilities : saved_log_sum_exp);
  RankMemory mem;
  mem.weights = sm.weights;
  mem.activations = sm.activations;
  mem.workspace = sm.workspace;
  mem.tables = sm.tables;
  if (h_.cpu) {
    const int64_t rows = std::max(shape.train.rows, shape.eval.rows);
    const int keys = int(std::max(shape.train.max_keys, shape.eval.max_keys));
    mem.workspace += cpu_threads(c_, h_, k.T * k.P * k.D) *
                     CpuBackend::attention_scratch_bytes_per_thread(rows, keys, dims.qkv_width());
  }
  const int micro_batches = c_.train.batch_size / k.D / k.M;
  mem.batches = MicroBatchSet::device_bytes(shape.train.rows, k.M, micro_batches) +
                MicroBatchSet::device_bytes(shape.eval.rows, eval_bs, 1);
  // The prompt's parameters as Session places them on this rank (the
  // layout's first tensor rank: every tensor rank holds as many kv heads).
  const PromptPlacement place = PromptPlacement::of_stage(spec, dims);
  const PromptParameter::Memory pm = PromptParameter::memory(c_.prompt, m_, place, types_.stat);
  int64_t device_prompt = pm.device;
  const std::vector<ParameterTensor> tensors = PromptParameter::layout(c_.prompt, m_, place);
  const bool deep = c_.prompt.method == "deep";
  // A kv head on several tensor ranks gathers their gradients (Session::kv_grad_scratch).
  if (deep && k.T > m_.n_kv_heads && !tensors.empty())
    device_prompt += int64_t(m_.n_kv_heads) * spec.num_layers * P * 2 * dims.kv_heads * m_.head_dim *
                     int64_t(dtype_size(types_.stat));
  // The optimizer's state, as make_prompt_optimizer makes it.
  std::unique_ptr<Optimizer> optimizer;
  if (c_.prompt.method == "prompt_tuning" || tensors.empty()) {
    optimizer = make_optimizer(c_.optim, P, m_.d_model);
  } else {
    std::vector<TensorSegment> segments;
    for (const ParameterTensor& t : tensors) segments.push_back({t.name, t.rows, t.cols});
    optimizer = make_optimizer(c_.optim, segments);
  }
  int64_t optimizer_bytes = 0;
  for (const NamedState& s : optimizer->state()) optimizer_bytes += int64_t(s.values.size() * sizeof(float));
  mem.prompt = pm.host + optimizer_bytes + device_prompt;
  mem.data = w.host_bytes;
  mem.runtime = int64_t(h_.runtime_bytes);
  mem.on_device = h_.cpu ? mem.total()
                         : mem.weights + mem.activations + mem.workspace + mem.batches + mem.tables +
                               device_prompt + mem.runtime;
  return mem;
}

LayoutPlan Planner::layout(const Candidate& k) {
  LayoutPlan lp;
  lp.tensor = k.T;
  lp.pipeline = k.P;
  lp.data = k.D;
  lp.micro_batch = k.M;
  lp.schedule = k.kind;
  const int ranks = k.T * k.P * k.D, P = c_.prompt.length, d = m_.d_model;
  const int micro_batches = c_.train.batch_size / k.D / k.M;
  const LocalDims dims = local_dims(m_, 0, k.T);
  const std::vector<int> explicit_layers =
      int(c_.parallel.stage_layers.size()) == k.P ? c_.parallel.stage_layers : std::vector<int>{};
  const bool vocab = head_.loss == LossKind::Vocab;
  const double head_cols = vocab ? double(dims.vocab_range.count) : double(head_.label_tokens.size());

  // Memory, stage by stage; the largest rank decides whether it fits.
  std::vector<StageSpec> specs;
  int64_t machine = 0;
  for (int s = 0; s < k.P; ++s) {
    const StageSpec spec = plan_stage(m_.n_layers, k.P, s, explicit_layers);
    specs.push_back(spec);
    StagePlan sp;
    sp.stage = s;
    sp.first_layer = spec.first_layer;
    sp.layers = spec.num_layers;
    sp.activation_sets = activation_slots(k.kind, k.P, s, micro_batches);
    sp.memory = stage_memory(k, spec, dims, sp.activation_sets);
    machine += sp.memory.total() * k.T * k.D;
    if (s == 0 || sp.memory.on_device > lp.memory.on_device) {
      lp.memory = sp.memory;
      lp.memory_stage = s;
    }
    lp.stages.push_back(sp);
  }
  lp.fits = h_.cpu ? double(machine) <= h_.memory_bytes : double(lp.memory.on_device) <= h_.memory_bytes;

  // Where each kind of group's ranks sit (world rank = (pp * D + dp) * T + tp,
  // nodes filled in order): a pipeline or data group inside one node uses its
  // links, otherwise the fabric. A tensor group never spans nodes.
  const int G = h_.gpus_per_node;
  const bool pipeline_across = int64_t(k.P) * k.D * k.T > G;
  const bool data_across = int64_t(k.D) * k.T > G;
  // Compute rates of one rank: a GPU's; on the CPU, the rank's threads' share of the machine.
  const double cpu_share = h_.cpu ? double(std::min(cpu_threads(c_, h_, ranks), h_.cores)) / h_.cores : 1.0;
  const double matmul_rate = h_.flops_rate(false) * cpu_share, attention_rate = h_.flops_rate(true) * cpu_share;
  const int64_t a = int64_t(dtype_size(types_.act)), sb = int64_t(dtype_size(types_.stat));

  const Packing& packed = packing(k.D, k.M);
  double step_sum = 0, flops_sum = 0;
  PerKind<double> bytes_sum;
  std::vector<PerKind<double>> stage_bytes(size_t(k.P));
  for (const auto& replicas : packed) {
    PerKind<uint64_t> step_bytes_job;
    double flops = 0, worst_span = -1, node_work = 0;
    StepTime worst;
    for (const auto& micros : replicas) {
      std::vector<std::vector<OpCost>> cost(size_t(k.P));
      std::vector<MicroBatchSize> sizes;
      // A stage's work is its layers' times one layer's, plus the head's on the last.
      std::vector<Stage::Work> layer_work, head_work;
      for (const Micro& mb : micros) {
        // A classify task: one target row per example.
        sizes.push_back(MicroBatchSize{mb.rows, mb.seq.num_examples});
        layer_work.push_back(Stage::work(m_, dims, 1, 0.0, mb.seq.num_examples, mb.seq));
        head_work.push_back(Stage::work(m_, dims, 0, head_cols, mb.seq.num_examples, mb.seq));
      }
      for (int s = 0; s < k.P; ++s) {
        const StageSpec& spec = specs[size_t(s)];
        const tensor_parallel::StageParts parts{spec.first(), spec.num_layers, spec.last() && vocab};
        for (size_t i = 0; i < micros.size(); ++i) {
          const Micro& mb = micros[i];
          Stage::Work w;
          w.forward = spec.num_layers * layer_work[i].forward + (spec.last() ? head_work[i].forward : 0.0);
          w.backward = spec.num_layers * layer_work[i].backward + (spec.last() ? head_work[i].backward : 0.0);
          w.attention = spec.num_layers * layer_work[i].attention;
          const double matmul = w.forward + w.backward - w.attention;
          flops += (w.forward + w.backward) * k.T;
          OpCost c;
          c.compute = matmul / matmul_rate + w.attention / attention_rate +
                      2.0 * spec.num_layers * h_.layer_overhead_s;
          node_work += (w.forward + w.backward) * k.T / h_.peak_flops;
          const double tp_bytes = double(tensor_parallel::bytes_per_micro_batch(
              parts, k.T, mb.rows, mb.seq.num_examples, d, a, sb));
          c.tensor = link_seconds(h_, false, tp_bytes, tensor_parallel::calls_per_micro_batch(parts, k.T), k.T);
          // Forward and backward share the compute as their FLOPs do, the all-reduces evenly.
          const double fwd_share = w.forward / (w.forward + w.backward);
          c.forward = c.compute * fwd_share + c.tensor / 2;
          c.backward = c.compute * (1 - fwd_share) + c.tensor / 2;
          const double message = double(mb.rows) * d * a;
          c.send_forward = c.send_backward = link_seconds(h_, pipeline_across, message, 1, 1);
          cost[size_t(s)].push_back(c);
        }
        // The bytes each rank of the stage counts, as the run's counters do.
        StepShape shape;
        shape.stage = spec;
        shape.layout = GridLayout{k.T, k.P, k.D};
        shape.d_model = d;
        shape.vocab_loss = vocab;
        shape.act_bytes = a;
        shape.stat_bytes = sb;
        set_prompt_shape(shape, c_.prompt, m_, dims.kv_heads);
        const PerKind<uint64_t> b = step_bytes(shape, sizes);
        for (CommKind kind : kCommKinds) {
          step_bytes_job[kind] += b[kind] * uint64_t(k.T);
          stage_bytes[size_t(s)][kind] += double(b[kind]) / double(k.D * packed.size());
        }
      }
      std::vector<double> busy;
      const double span = pipeline_span(k.kind, cost, busy);
      if (span > worst_span) {
        worst_span = span;
        const int s = int(std::max_element(busy.begin(), busy.end()) - busy.begin());
        worst = StepTime{};
        for (const OpCost& c : cost[size_t(s)]) {
          worst.compute += c.compute;
          worst.tensor += c.tensor;
          worst.pipeline += (s < k.P - 1 ? c.send_forward : 0) + (s > 0 ? c.send_backward : 0);
        }
        worst.bubble = span - busy[size_t(s)];
      }
    }
    // On the CPU the ranks share the machine's cores: the step takes at
    // least all ranks' work at the machine's rate.
    if (h_.cpu && node_work > worst_span) {
      worst.compute += node_work - worst_span;
      worst_span = node_work;
    }
    worst.data = k.D > 1 ? link_seconds(h_, data_across, double(int64_t(P) * d * sb), 1, k.D) : 0.0;
    worst.overhead = h_.step_overhead_s;
    lp.time.compute += worst.compute;
    lp.time.tensor += worst.tensor;
    lp.time.pipeline += worst.pipeline;
    lp.time.bubble += worst.bubble;
    lp.time.data += worst.data;
    lp.time.overhead += worst.overhead;
    step_sum += worst.total();
    flops_sum += flops;
    lp.bytes_by_step.push_back(step_bytes_job);
    for (CommKind kind : kCommKinds) bytes_sum[kind] += double(step_bytes_job[kind]);
  }
  const double n = double(packed.size());
  for (double* t : {&lp.time.compute, &lp.time.tensor, &lp.time.pipeline, &lp.time.bubble, &lp.time.data,
                    &lp.time.overhead})
    *t /= n;
  for (CommKind kind : kCommKinds) lp.bytes_per_step[kind] = bytes_sum[kind] / n;
  for (int s = 0; s < k.P; ++s) lp.stages[size_t(s)].bytes_per_step = stage_bytes[size_t(s)];
  lp.step_seconds = step_sum / n;
  lp.flops_per_step = flops_sum / n;
  lp.examples_per_second = c_.train.batch_size / lp.step_seconds;
  lp.mfu = lp.flops_per_step / lp.step_seconds / (h_.cpu ? h_.peak_flops : h_.peak_flops * ranks);
  return lp;
}

// Why a layout ranks below the best: the part of its step that grew most.
std::string why_it_loses(const LayoutPlan& lp, const LayoutPlan& best, const Hardware& h) {
  if (!lp.fits) return "does not fit";
  const StepTime& a = lp.time;
  const StepTime& b = best.time;
  const std::pair<double, const char*> parts[] = {
      {a.bubble - b.bubble, "bubble"},
      {a.tensor - b.tensor, "tensor communication"},
      {a.pipeline - b.pipeline, "pipeline communication"},
      {a.data - b.data, "data communication"},
      {a.compute - b.compute, h.layer_overhead_s > 0 ? "compute (fewer rows per launch, uneven stages)" : "compute"},
      {a.overhead - b.overhead, "overhead"}};
  const auto* worst = std::max_element(std::begin(parts), std::end(parts),
                                       [](const auto& x, const auto& y) { return x.first < y.first; });
  return worst->first > 0 ? worst->second : "ties";
}

}  // namespace

const char* schedule_name(ScheduleKind kind) { return kind == ScheduleKind::GPipe ? "gpipe" : "1f1b"; }

Plan make_plan(const PlanRequest& request) {
  const ModelConfig& m = request.model;
  const Config& c = request.config;
  const Hardware& h = request.hardware;
  SPT_CHECK(request.gpus >= 1, "plan: --gpus must be at least 1");
  SPT_CHECK(!request.workload.steps.empty(), "internal error: a plan without steps");
  Plan plan;
  plan.request = request;
  Planner planner(plan.request);
  const int B = c.train.batch_size;
  for (int T : divisors(request.gpus)) {
    if ((request.tensor && T != request.tensor) || !tensor_fits_model(m, T, h)) continue;
    for (int P : divisors(request.gpus / T)) {
      if ((request.pipeline && P != request.pipeline) || P > m.n_layers) continue;
      const int D = request.gpus / T / P;
      if (B % D) continue;
      for (int M : divisors(B / D)) {
        if (request.micro_batch && M != request.micro_batch) continue;
        for (ScheduleKind kind : {ScheduleKind::OneFOneB, ScheduleKind::GPipe}) {
          if (!request.schedule.empty() && schedule_kind(request.schedule) != kind) continue;
          plan.layouts.push_back(planner.layout(Candidate{T, P, D, M, kind}));
        }
      }
    }
  }
  SPT_CHECK(!plan.layouts.empty(), "plan: no layout of ", request.gpus, " GPUs suits this model (",
            m.n_heads, " heads, ", m.n_layers, " layers) and train.batch_size ", B,
            " (the data-parallel size must divide it)");
  std::stable_sort(plan.layouts.begin(), plan.layouts.end(), [](const LayoutPlan& x, const LayoutPlan& y) {
    if (x.fits != y.fits) return x.fits;
    if (x.fits) return x.step_seconds < y.step_seconds;
    return x.memory.on_device < y.memory.on_device;
  });
  if (plan.layouts[0].fits) plan.best = 0;
  for (size_t i = 1; i < plan.layouts.size(); ++i)
    plan.layouts[i].loses = plan.best < 0 ? "does not fit"
                                          : why_it_loses(plan.layouts[i], plan.layouts[0], h);
  int64_t tokens = 0;
  for (const auto& step : request.workload.steps)
    for (int64_t i : step) tokens += int64_t(request.workload.train[size_t(i)].tokens.size());
  plan.text_tokens_per_step = tokens / int64_t(request.workload.steps.size());
  for (LayoutPlan& lp : plan.layouts) lp.tokens_per_second = double(plan.text_tokens_per_step) / lp.step_seconds;
  return plan;
}

nlohmann::json to_json(const Plan& plan) {
  const PlanRequest& r = plan.request;
  const Hardware& h = r.hardware;
  auto kinds = [](const auto& b) {
    return nlohmann::json{{"tensor", b.tensor}, {"pipeline", b.pipeline}, {"data", b.data}};
  };
  auto memory = [](const RankMemory& m) {
    return nlohmann::json{{"weights", m.weights},
                          {"activations", m.activations},
                          {"other", m.on_device - m.weights - m.activations},
                          {"total", m.on_device},
                          {"detail",
                           {{"workspace", m.workspace},
                            {"batches", m.batches},
                            {"prompt_and_optimizer", m.prompt},
                            {"tables", m.tables},
                            {"data", m.data},
                            {"runtime", m.runtime},
                            {"host_and_device", m.total()}}}};
  };
  nlohmann::json layouts = nlohmann::json::array();
  for (const LayoutPlan& lp : plan.layouts) {
    nlohmann::json stages = nlohmann::json::array();
    for (const StagePlan& s : lp.stages)
      stages.push_back({{"stage", s.stage},
                        {"first_layer", s.first_layer},
                        {"layers", s.layers},
                        {"activation_sets", s.activation_sets},
                        {"memory_bytes", memory(s.memory)},
                        {"bytes_per_step", kinds(s.bytes_per_step)}});
    nlohmann::json by_step = nlohmann::json::array();
    for (const auto& b : lp.bytes_by_step) by_step.push_back(kinds(b));
    layouts.push_back({{"tensor", lp.tensor},
                       {"pipeline", lp.pipeline},
                       {"data", lp.data},
                       {"micro_batch", lp.micro_batch},
                       {"schedule", schedule_name(lp.schedule)},
                       {"fits", lp.fits},
                       {"memory_bytes", memory(lp.memory)},
                       {"memory_stage", lp.memory_stage},
                       {"step_seconds", lp.step_seconds},
                       {"step_seconds_by_part",
                        {{"compute", lp.time.compute},
                         {"tensor", lp.time.tensor},
                         {"pipeline", lp.time.pipeline},
                         {"bubble", lp.time.bubble},
                         {"data", lp.time.data},
                         {"overhead", lp.time.overhead}}},
                       {"tokens_per_second", lp.tokens_per_second},
                       {"examples_per_second", lp.examples_per_second},
                       {"mfu", lp.mfu},
                       {"flops_per_step", lp.flops_per_step},
                       {"bytes_per_step", kinds(lp.bytes_per_step)},
                       {"bytes_by_step", by_step},
                       {"stages", stages},
                       {"loses", lp.loses}});
  }
  const Workload& w = r.workload;
  return {{"gpu", h.gpu},
          {"gpus", r.gpus},
          {"model", r.model.name},
          {"hardware",
           {{"label", h.label},
            {"memory_bytes", h.memory_bytes},
            {"gpus_per_node", h.cpu ? r.gpus : h.gpus_per_node},
            {"peak_flops", h.peak_flops},
            {"matmul_share", h.matmul_share},
            {"attention_share", h.attention_share},
            {"node_link_bytes_per_s", h.node_link_bytes_per_s},
            {"fabric_bytes_per_s", h.fabric_bytes_per_s},
            {"link_share", h.link_share},
            {"node_latency_s", h.node_latency_s},
            {"fabric_latency_s", h.fabric_latency_s},
            {"runtime_bytes", h.runtime_bytes},
            {"step_overhead_s", h.step_overhead_s},
            {"layer_overhead_s", h.layer_overhead_s},
            {"calibration", h.calibration}}},
          {"workload",
           {{"source", w.source},
            {"first_step", w.first_step},
            {"steps", w.steps.size()},
            {"batch_size", r.config.train.batch_size},
            {"text_tokens_per_step", plan.text_tokens_per_step},
            {"longest_train_example", w.train_tokens},
            {"longest_eval_example", w.eval_tokens}}},
          {"layouts", layouts},
          {"best", plan.best < 0 ? nlohmann::json(nullptr) : nlohmann::json(plan.best)}};
}

}  // namespace sptrain::plan
