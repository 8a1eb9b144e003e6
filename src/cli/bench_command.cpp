// `sptrain bench`: the config's real training step (same data path, same
// batches), timed, with the figures docs/performance.md defines.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "sptrain/backend/cpu/blas_kernel.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/bench/device_peak.hpp"
#include "sptrain/cli/commands.hpp"
#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/optim/optimizer.hpp"
#include "sptrain/optim/schedule.hpp"
#include "sptrain/prompt/prompt_init.hpp"
#include "sptrain/comm/control.hpp"
#include "sptrain/train/sampler.hpp"
#include "sptrain/train/train_step.hpp"

namespace sptrain {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The BLAS rate at this model's own matrix shapes: every product of one
// layer's forward and input-gradient backward for a micro-batch of `rows`
// rows, each repeated for ~0.2 s; the rate is their total FLOPs over total time.
double blas_rate_at_model_shapes(Backend& be, const LocalDims& d, int64_t rows) {
  struct Product {
    int64_t m, n, k;
    bool trans_b;
  };
  const int64_t D = d.d_model, A = int64_t(d.heads) * d.head_dim;
  const std::vector<Product> products = {
      {rows, d.qkv_width(), D, true}, {rows, D, A, true},   {rows, d.up_width(), D, true},
      {rows, D, d.ffn, true},         {rows, D, d.qkv_width(), false}, {rows, A, D, false},
      {rows, D, d.up_width(), false}, {rows, d.ffn, D, false}};
  double flops = 0, seconds = 0;
  for (const Product& p : products) {
    Buffer a = be.allocate(DType::F32, Shape{p.m, p.k});
    Buffer b = be.allocate(DType::F32, p.trans_b ? Shape{p.n, p.k} : Shape{p.k, p.n});
    Buffer c = be.allocate(DType::F32, Shape{p.m, p.n});
    be.fill(a, 0.01);
    be.fill(b, 0.02);
    be.matmul(c, a, b, p.trans_b, false);  // warm
    int reps = 0;
    const auto t0 = Clock::now();
    do {
      be.matmul(c, a, b, p.trans_b, false);
      ++reps;
    } while (since(t0) < 0.2);
    seconds += since(t0);
    flops += 2.0 * double(p.m) * double(p.n) * double(p.k) * reps;
  }
  return flops / seconds / 1e9;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

}  // namespace

// Sums over the timed steps of one rank.
struct BenchTotals {
  StepTimes times;            // this rank's
  double flops = 0;           // summed over ranks below
  double text_rows = 0, prompt_rows = 0, prompt_positions = 0;  // job-wide
  PerKind<double> bytes;      // summed over ranks below
};

int run_bench(const Config& config, const BenchOptions& o) {
  SPT_CHECK(o.steps >= 1 && o.warmup >= 0, "bench: --steps must be >= 1 and --warmup >= 0");
  MpiRuntime mpi(MpiStart::WhenLaunched);
  try {
    Session session(config, make_process_grid(config.parallel.tensor, config.parallel.pipeline),
                    SessionMode::Train);
    const ParallelState& ps = *session.parallel;
    const bool lead = ps.world_rank() == 0;
    const ModelConfig& m = session.model;
    Rng rng(config.train.seed);
    session.prompt->values() =
        init_prompt(config.prompt, m, session.model_file, *session.tokenizer, *session.task, rng);
    auto optimizer = make_prompt_optimizer(session);
    const LrSchedule schedule(config.optim, config.train.steps);
    DataSampler sampler(int64_t(session.data.train.size()), config.train.seed, config.train.shuffle);
    std::optional<OutputFile> batches;
    if (lead && !o.batches_out.empty()) batches.emplace(o.batches_out, OutputFile::Mode::Truncate);
    const int B = config.train.batch_size;
    std::vector<int64_t> batch;
    BenchTotals sum;
    double loss_last = 0;
    for (int step = 1; step <= o.warmup + o.steps; ++step) {
      sampler.next(B, batch);
      if (batches) batches->write(nlohmann::json{{"step", step}, {"examples", batch}}.dump() + '\n');
      const StepResult r = train_step(session, *optimizer, batch, schedule.lr(step));
      loss_last = r.loss;
      if (step <= o.warmup) continue;
      sum.times.forward += r.times.forward;
      sum.times.backward += r.times.backward;
      sum.times.pipeline += r.times.pipeline;
      sum.times.optimizer += r.times.optimizer;
      sum.times.total += r.times.total;
      for (CommKind k : kCommKinds) {
        sum.times.comm[k] += r.times.comm[k];
        sum.bytes[k] += double(r.bytes[k]);
      }
      sum.flops += r.flops;
      sum.text_rows += double(r.text_rows);
      sum.prompt_rows += double(r.prompt_rows);
      sum.prompt_positions += double(B) * config.prompt.length;
    }
    // FLOPs and bytes are summed over ranks. Times are rank 0's: it holds
    // stage 0, whose step ends only after every other stage's work reached it.
    control_sum(ps.host(), {&sum.flops, &sum.bytes.tensor, &sum.bytes.pipeline, &sum.bytes.data});
    // Each rank's peak RSS (for checking memory plans, docs/plan.md).
    std::vector<double> rss_by_rank(size_t(ps.world_size()), 0.0);
    rss_by_rank[size_t(ps.world_rank())] = peak_rss_mb();
    control_sum(ps.host(), rss_by_rank);
    const double n = o.steps;
    const StepTimes& t = sum.times;
    const double step_s = t.total / n;
    const double flops = sum.flops / n;
    const double text = sum.text_rows / n, prompt_rows = sum.prompt_rows / n,
                 prompt_positions = sum.prompt_positions / n;
    const int micro_batches = std::max(1, B / config.train.micro_batch_size);
    double blas = 0;
    if (lead && session.backend->device() == Device::CPU)
      blas = blas_rate_at_model_shapes(*session.backend, session.stage->dims(),
                                       int64_t((text + prompt_rows) / micro_batches));
    const double gflops = flops / step_s / 1e9;
    // Bytes sent per step by kind, all ranks together.
    const double tensor_bytes = sum.bytes.tensor / n, pipeline_bytes = sum.bytes.pipeline / n,
                 data_bytes = sum.bytes.data / n;
    // On a GPU: model FLOPs utilisation against the device's dense bf16 peak
    // (rank 0's device; the job's peak is that times the ranks).
    const DeviceStats dev = session.backend->device_stats();
    const double peak_tflops = o.peak_tflops > 0 ? o.peak_tflops
                                                 : bf16_dense_peak_tflops(dev.name, dev.cc_major, dev.cc_minor);
    const bool on_gpu = session.backend->device() == Device::CUDA;
    const double mfu = on_gpu ? model_flops_utilisation(gflops, peak_tflops, ps.world_size()) : 0.0;
    const GridLayout& layout = ps.layout();
    const auto* cpu = dynamic_cast<const CpuBackend*>(session.backend.get());
    nlohmann::json j = {
        {"tool", "sptrain"},
        {"model", m.name},
        {"config", config.source_path},
        {"ranks", ps.world_size()},
        {"layout", {{"tensor", layout.tensor}, {"pipeline", layout.pipeline}, {"data", layout.data}}},
        {"backend", session.backend->name()},
        {"threads", config.threads},
        {"threads_per_rank", cpu ? cpu->threads() : 0},
        {"batch_size", B},
        {"micro_batch_size", config.train.micro_batch_size},
        {"stage_layers", session.stage->spec().num_layers},  // rank 0's
        {"steps", o.steps},
        {"warmup", o.warmup},
        {"examples_per_s", B / step_s},
        {"positions_per_s",
         {{"text", text / step_s},
          {"prompt", prompt_rows / step_s},
          {"prompt_per_example", prompt_positions / step_s},
          {"padding", 0.0},
          {"total", (text + prompt_rows) / step_s}}},
        {"step_time_s",
         {{"forward", t.forward / n},
          {"backward", t.backward / n},
          {"optimizer", t.optimizer / n},
          {"comm", {{"tensor", t.comm.tensor / n}, {"pipeline", t.pipeline / n}, {"data", t.comm.data / n}}},
          {"total", step_s}}},
        {"gflop_per_step", flops / 1e9},
        {"gflops_per_s", gflops},
        {"blas", blas_description()},
        {"blas_gflops_per_s_at_model_shapes", blas},
        {"share_of_blas", blas > 0 ? gflops / blas : 0.0},
        {"comm_bytes_per_step", {{"tensor", tensor_bytes}, {"pipeline", pipeline_bytes}, {"data", data_bytes}}},
        {"comm_bytes_timed_steps",  // all ranks, the timed steps together: whole numbers
         {{"tensor", uint64_t(sum.bytes.tensor)},
          {"pipeline", uint64_t(sum.bytes.pipeline)},
          {"data", uint64_t(sum.bytes.data)}}},
        {"peak_rss_mb", peak_rss_mb()},
        {"peak_rss_mb_by_rank", rss_by_rank},
        {"last_loss", loss_last}};
    if (on_gpu)
      j["device"] = {{"name", dev.name},
                     {"peak_bf16_tflops", peak_tflops},
                     {"mfu", mfu},
                     {"memory_used_mb", dev.memory_used_mb},
                     {"memory_total_mb", dev.memory_total_mb}};
    if (lead) {
      if (o.json) {
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("sptrain bench: %s, %s\n", m.name.c_str(), session.backend->name().c_str());
        std::printf("  %d timed steps after %d warm-up, batch %d (micro-batch %d), %d rank(s)\n",
                    o.steps, o.warmup, B, config.train.micro_batch_size, ps.world_size());
        std::printf("  examples/s          %10.2f\n", B / step_s);
        std::printf("  positions/s         %10.1f  (text %.1f, prompt %.1f computed / %.1f per example, padding 0)\n",
                    (text + prompt_rows) / step_s, text / step_s, prompt_rows / step_s,
                    prompt_positions / step_s);
        std::printf("  step time           %10.3f s (forward %.3f, backward %.3f, optimizer %.4f; "
                    "communication: tensor %.3f inside forward/backward, pipeline %.3f, data %.4f)\n",
                    step_s, t.forward / n, t.backward / n, t.optimizer / n, t.comm.tensor / n,
                    t.pipeline / n, t.comm.data / n);
        std::printf("  bytes sent per step %10.0f tensor, %.0f pipeline, %.0f data (all ranks)\n",
                    tensor_bytes, pipeline_bytes, data_bytes);
        std::printf("  work                %10.1f GFLOP/step, %.1f GFLOP/s\n", flops / 1e9, gflops);
        if (blas > 0)
          std::printf("  BLAS at these shapes %9.1f GFLOP/s -> %.0f%% of it\n", blas, 100 * gflops / blas);
        if (on_gpu) {
          std::printf("  device              %s, %.0f of %.0f MB in use\n", dev.name.c_str(),
                      dev.memory_used_mb, dev.memory_total_mb);
          if (mfu > 0)
            std::printf("  MFU                 %10.1f%% of %.1f bf16 dense TFLOP/s x %d device(s)\n",
                        100 * mfu, peak_tflops, ps.world_size());
          else
            std::printf("  MFU                 unknown: no bf16 peak for this device (give --peak-tflops)\n");
        } else {
          std::printf("  BLAS                %s\n", blas_description().c_str());
        }
        std::printf("  peak RSS            %10.0f MB (rank 0)\n", peak_rss_mb());
      }
    }
    return 0;
  } catch (const std::exception& e) {
    if (mpi.world_size() > 1) abort_job(e.what());
    throw;
  }
}

}  // namespace sptrain
