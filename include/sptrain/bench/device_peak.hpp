#pragma once
// The accelerators sptrain knows: their dense bf16 peak (the denominator of
// the MFU `sptrain bench` reports with `backend: cuda`, docs/performance.md),
// memory and links (what `sptrain plan` models, docs/plan.md). One table.
#include <string>
#include <vector>

namespace sptrain {

struct DeviceSpec {
  std::string name;      // as `sptrain plan --gpu` takes it, e.g. "h100-80gb"
  std::string label;     // as people write it, e.g. "H100 SXM 80 GB"
  double bf16_tflops;    // dense bf16 matrix products, no sparsity
  double memory_gb;      // device memory, 1e9 bytes (the data sheet's figure)
  double node_link_gbps;  // GB/s one way from a GPU to the others of its node (NVLink, or PCIe)
  double fabric_gbps;     // GB/s one way from a GPU to other nodes (its share of the node's network)
  int gpus_per_node;     // in the usual server (HGX/DGX: 8)
  // How cudaDeviceProp identifies it: compute capability and words of its name.
  int cc_major, cc_minor;
  std::vector<std::string> name_has;
};

// Every known device, NVIDIA's data sheets' figures (docs/plan.md lists
// them with their sources).
const std::vector<DeviceSpec>& device_table();
// The device called `name` (DeviceSpec::name), or null.
const DeviceSpec* find_device(const std::string& name);

// TFLOP/s of dense bf16 matrix products (no sparsity) for the device named
// `name` (cudaDeviceProp::name) of compute capability major.minor; 0 when the
// device is not in the table (then `sptrain bench --peak-tflops` supplies it).
double bf16_dense_peak_tflops(const std::string& name, int cc_major, int cc_minor);

// Model FLOPs utilisation: achieved FLOP/s over the peak of `devices` devices.
// 0 when the peak is unknown.
double model_flops_utilisation(double achieved_gflops_per_s, double peak_tflops_per_device,
                               int devices);

}  // namespace sptrain
