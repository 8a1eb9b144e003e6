#include "sptrain/plan/hardware.hpp"

#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "sptrain/bench/device_peak.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"

namespace sptrain::plan {

namespace {

// The defaults docs/plan.md states. GPUs: the step's bf16 products at 60%
// of the dense peak and attention (our kernels, not tensor cores) at 25%;
// NCCL at 80% of a link's bandwidth, 10 us a call inside a node and 25 us
// across nodes; 2.5 GB per GPU for the CUDA context, cuBLASLt and NCCL's
// buffers; 1 ms a step of host work and 0.1 ms per layer and pass of
// kernel launches. None of it measured yet (docs/benchmarks/gpu.md).
constexpr double kGpuMatmulShare = 0.6, kGpuAttentionShare = 0.25, kGpuLinkShare = 0.8;
constexpr double kGpuNodeLatency = 10e-6, kGpuFabricLatency = 25e-6;
constexpr double kGpuRuntimeBytes = 2.5e9, kGpuStepOverhead = 1e-3, kGpuLayerOverhead = 0.1e-3;
// The CPU back end on this machine, before --calibrate: 20 GFLOP/s a core
// for every counted FLOP (docs/benchmarks/cpu.md measured 191 GFLOP/s on
// 2 cores with SmolLM2; smaller products reach less), MPI over shared
// memory at 4 GB/s and 30 us a call, and the fixed memory of an sptrain
// process measured on it (docs/plan.md, "The CPU").
constexpr double kCpuFlopsPerCore = 20e9, kCpuLinkBytes = 4e9, kCpuLatency = 30e-6;
constexpr double kCpuRuntimeBytes = 31e6, kCpuStepOverhead = 5e-3;

// One measured run: the seconds rank 0 spent in its forward and backward
// passes (their tensor all-reduces left out), its counted FLOPs, and its
// layer passes (a forward or backward of one layer on one micro-batch).
struct Measured {
  double busy = 0, flops = 0, passes = 0, overhead = 0, threads = 0, ranks = 1;
  bool gpu = false;
};

Measured read_measurement(const std::string& path) {
  const std::string text = read_whole_file(path, 16u << 20, "--calibrate");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(path, ": --calibrate expects the JSON of `sptrain bench --json`: ", e.what());
  }
  auto number = [&](const nlohmann::json& at, const char* key) {
    SPT_CHECK(at.is_object() && at.contains(key) && at[key].is_number(), path,
              ": --calibrate: no number '", key, "' (is it `sptrain bench --json` output?)");
    return at[key].get<double>();
  };
  Measured m;
  m.ranks = number(j, "ranks");
  const nlohmann::json& t = j.contains("step_time_s") ? j["step_time_s"] : nlohmann::json{};
  const nlohmann::json& comm = t.contains("comm") ? t["comm"] : nlohmann::json{};
  m.busy = number(t, "forward") + number(t, "backward") - number(comm, "tensor");
  SPT_CHECK(m.ranks >= 1 && m.busy > 0, path, ": --calibrate: no forward or backward time");
  // The job's FLOPs shared evenly (exact with one rank; rank 0's time).
  m.flops = number(j, "gflop_per_step") * 1e9 / m.ranks;
  const nlohmann::json& layout = j.contains("layout") ? j["layout"] : nlohmann::json{};
  const double micro_batches = number(j, "batch_size") / number(layout, "data") / number(j, "micro_batch_size");
  m.passes = 2 * number(j, "stage_layers") * micro_batches;
  // What the step took besides its passes and the pipeline's messages.
  m.overhead = std::max(0.0, number(t, "total") - number(t, "forward") - number(t, "backward") - number(comm, "pipeline"));
  m.threads = number(j, "threads_per_rank");
  m.gpu = j.contains("device");
  return m;
}

// Fits seconds = flops / rate + passes * per_pass over the runs (least
// squares; one run fixes the rate alone, the pass cost kept).
void calibrate(Hardware& h, const std::vector<std::string>& paths) {
  std::vector<Measured> runs;
  for (const std::string& path : paths) {
    runs.push_back(read_measurement(path));
    SPT_CHECK(runs.back().gpu != h.cpu, path, ": --calibrate: measured on ",
              runs.back().gpu ? "a GPU" : "the CPU", " but planning for --gpu ", h.gpu);
  }
  // The rank's share of the machine's rate (CPU: its threads' share of the cores).
  auto share = [&](const Measured& m) {
    return h.cpu ? std::min(m.threads, double(h.cores) / m.ranks) / h.cores : 1.0;
  };
  double inv_rate = 0, per_pass = h.layer_overhead_s;
  if (runs.size() == 1) {
    const Measured& m = runs[0];
    inv_rate = std::max(0.0, m.busy - m.passes * per_pass) / m.flops * share(m);
  } else {
    // Normal equations of busy = (flops / share) * inv_rate + passes * per_pass.
    double sxx = 0, sxy = 0, syy = 0, sxb = 0, syb = 0;
    for (const Measured& m : runs) {
      const double x = m.flops / share(m), y = m.passes;
      sxx += x * x, sxy += x * y, syy += y * y, sxb += x * m.busy, syb += y * m.busy;
    }
    const double det = sxx * syy - sxy * sxy;
    SPT_CHECK(det > 1e-12 * sxx * syy, "--calibrate: the runs do not separate the rate from the cost per "
              "layer pass (give runs with different micro-batch sizes)");
    inv_rate = (sxb * syy - syb * sxy) / det;
    per_pass = std::max(0.0, (sxx * syb - sxy * sxb) / det);
  }
  SPT_CHECK(inv_rate > 0, "--calibrate: the measured runs give no positive compute rate");
  const double rate = 1 / inv_rate;  // the machine's (CPU) or the device's FLOP/s
  if (h.cpu) {
    h.peak_flops = rate;
    h.matmul_share = h.attention_share = 1.0;
  } else {
    h.matmul_share = h.attention_share = rate / h.peak_flops;
  }
  h.layer_overhead_s = per_pass;
  double overhead = 0;
  for (const Measured& m : runs) overhead += m.overhead / double(runs.size());
  h.step_overhead_s = overhead;
  std::string files;
  for (const std::string& p : paths) files += (files.empty() ? "" : ", ") + p;
  h.calibration = str("measured: ", files, " (", int(rate / 1e9 + 0.5), " GFLOP/s",
                      h.cpu ? " for the machine" : " per device", ", ", per_pass * 1e6, " us per layer pass)");
}

}  // namespace

std::string gpu_names() {
  std::string names;
  for (const DeviceSpec& d : device_table()) names += d.name + ", ";
  return names + "cpu";
}

Hardware make_hardware(const HardwareOptions& o) {
  Hardware h;
  h.gpu = o.gpu;
  if (o.gpu == "cpu") {
    h.cpu = true;
    h.label = "this machine's CPU";
    h.cores = int(std::max(1u, std::thread::hardware_concurrency()));
    h.memory_bytes = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
    h.gpus_per_node = 1 << 30;  // every rank on this machine
    h.peak_flops = kCpuFlopsPerCore * h.cores;
    h.matmul_share = h.attention_share = 1.0;
    h.node_link_bytes_per_s = h.fabric_bytes_per_s = kCpuLinkBytes;
    h.link_share = 1.0;
    h.node_latency_s = h.fabric_latency_s = kCpuLatency;
    h.runtime_bytes = kCpuRuntimeBytes;
    h.step_overhead_s = kCpuStepOverhead;
  } else {
    const DeviceSpec* d = find_device(o.gpu);
    SPT_CHECK(d, "--gpu: unknown device '", o.gpu, "' (known: ", gpu_names(), ")");
    h.label = d->label;
    h.memory_bytes = d->memory_gb * 1e9;
    h.gpus_per_node = d->gpus_per_node;
    h.peak_flops = d->bf16_tflops * 1e12;
    h.matmul_share = kGpuMatmulShare;
    h.attention_share = kGpuAttentionShare;
    h.node_link_bytes_per_s = d->node_link_gbps * 1e9;
    h.fabric_bytes_per_s = d->fabric_gbps * 1e9;
    h.link_share = kGpuLinkShare;
    h.node_latency_s = kGpuNodeLatency;
    h.fabric_latency_s = kGpuFabricLatency;
    h.runtime_bytes = kGpuRuntimeBytes;
    h.step_overhead_s = kGpuStepOverhead;
    h.layer_overhead_s = kGpuLayerOverhead;
  }
  if (o.gpus_per_node > 0) h.gpus_per_node = o.gpus_per_node;
  if (o.peak_tflops > 0) h.peak_flops = o.peak_tflops * 1e12;
  if (!o.calibrate.empty()) calibrate(h, o.calibrate);
  if (o.matmul_share > 0) h.matmul_share = o.matmul_share;
  if (o.attention_share > 0) h.attention_share = o.attention_share;
  if (o.link_share > 0) h.link_share = o.link_share;
  if (o.node_link_gbps > 0) h.node_link_bytes_per_s = o.node_link_gbps * 1e9;
  if (o.fabric_gbps > 0) h.fabric_bytes_per_s = o.fabric_gbps * 1e9;
  if (o.node_latency_us >= 0) h.node_latency_s = o.node_latency_us * 1e-6;
  if (o.fabric_latency_us >= 0) h.fabric_latency_s = o.fabric_latency_us * 1e-6;
  if (o.overhead_gb >= 0) h.runtime_bytes = o.overhead_gb * 1e9;
  if (o.step_overhead_ms >= 0) h.step_overhead_s = o.step_overhead_ms * 1e-3;
  if (o.layer_overhead_us >= 0) h.layer_overhead_s = o.layer_overhead_us * 1e-6;
  return h;
}

}  // namespace sptrain::plan
