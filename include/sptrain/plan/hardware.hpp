#pragma once
// What `sptrain plan` assumes about the machine: the device's memory and
// peak, the share of the peak the step's products reach, the links between
// devices, and the fixed costs. Every default is stated in docs/plan.md; each
// has a flag, and `--calibrate FILE` takes the compute rate (and, from two
// runs of different micro-batch sizes, the cost of a layer pass) from
// measured `sptrain bench --json` runs.
#include <string>
#include <vector>

namespace sptrain::plan {

struct Hardware {
  std::string gpu;    // as --gpu names it: a row of device_table() (bench/device_peak.hpp), or "cpu"
  std::string label;  // e.g. "H100 SXM 80 GB"
  bool cpu = false;   // the CPU back end on this machine: f32, ranks share its cores and memory
  double memory_bytes = 0;  // one device's; cpu: the machine's, shared by its ranks
  int gpus_per_node = 8;    // cpu: ranks on this machine (all of them)
  int cores = 0;            // cpu: this machine's cores
  // Compute: FLOP/s of one device (cpu: of the whole machine, all cores
  // busy), and the share of it each kind of work reaches.
  double peak_flops = 0;
  double matmul_share = 0;
  double attention_share = 0;
  // Links, one way, per device: inside a node (NVLink; cpu: shared memory)
  // and between nodes (the fabric), at link_share of their bandwidth, plus a
  // latency per call.
  double node_link_bytes_per_s = 0, fabric_bytes_per_s = 0;
  double link_share = 0;
  double node_latency_s = 0, fabric_latency_s = 0;
  // Fixed costs: memory every rank holds whatever the model (cpu: the
  // process, its libraries, MPI, the tokenizer; GPU: the CUDA context,
  // cuBLASLt and NCCL), time every step takes (host work, the step's control
  // message) and every layer's forward or backward of one micro-batch (GPU:
  // kernel launches).
  double runtime_bytes = 0;
  double step_overhead_s = 0;
  double layer_overhead_s = 0;
  std::string calibration = "defaults";  // where the compute rate comes from

  double flops_rate(bool attention) const { return peak_flops * (attention ? attention_share : matmul_share); }
};

// Flags that override the defaults; negative or empty = keep the default.
struct HardwareOptions {
  std::string gpu = "h100-80gb";
  int gpus_per_node = 0;
  double peak_tflops = -1;
  double matmul_share = -1, attention_share = -1, link_share = -1;
  double node_link_gbps = -1, fabric_gbps = -1;
  double node_latency_us = -1, fabric_latency_us = -1;
  double overhead_gb = -1;
  double step_overhead_ms = -1, layer_overhead_us = -1;
  std::vector<std::string> calibrate;  // `sptrain bench --json` results measured on the device
};

Hardware make_hardware(const HardwareOptions& options);

// The known --gpu names, for help and errors.
std::string gpu_names();

}  // namespace sptrain::plan
