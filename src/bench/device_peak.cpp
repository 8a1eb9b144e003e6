#include "sptrain/bench/device_peak.hpp"

namespace sptrain {

const std::vector<DeviceSpec>& device_table() {
  // Peak: dense bf16 tensor-core TFLOP/s. Links: NVLink's bandwidth per GPU
  // one way (half the data sheet's bidirectional figure), or PCIe's; the
  // fabric: one 400 Gb/s (NDR) or 200 Gb/s (HDR) InfiniBand port per GPU.
  // Rows are matched in order: the more specific names first.
  static const std::vector<DeviceSpec> table = {
      {"h100-pcie", "H100 PCIe 80 GB", 756.5, 80, 64, 50, 8, 9, 0, {"H100", "PCIe"}},
      {"h100-nvl", "H100 NVL 94 GB", 835.5, 94, 300, 50, 8, 9, 0, {"H100", "NVL"}},
      {"h100-80gb", "H100 SXM 80 GB", 989.4, 80, 450, 50, 8, 9, 0, {"H100"}},
      {"gh200", "GH200 96 GB", 989.4, 96, 450, 50, 4, 9, 0, {"GH200"}},
      {"h200", "H200 SXM 141 GB", 989.4, 141, 450, 50, 8, 9, 0, {"H200"}},
      {"h800", "H800 SXM 80 GB", 989.4, 80, 200, 50, 8, 9, 0, {"H800"}},
      {"a100-40gb", "A100 SXM 40 GB", 312, 40, 300, 25, 8, 8, 0, {"A100", "40GB"}},
      {"a100-80gb", "A100 SXM 80 GB", 312, 80, 300, 25, 8, 8, 0, {"A100"}},
      {"a800", "A800 SXM 80 GB", 312, 80, 200, 25, 8, 8, 0, {"A800"}},
      {"l40s", "L40S 48 GB", 362.05, 48, 32, 25, 8, 8, 9, {"L40S"}},
      {"b200", "B200 180 GB", 2250, 180, 900, 50, 8, 10, 0, {"B200"}},
  };
  return table;
}

const DeviceSpec* find_device(const std::string& name) {
  for (const DeviceSpec& d : device_table())
    if (d.name == name) return &d;
  return nullptr;
}

double bf16_dense_peak_tflops(const std::string& name, int cc_major, int cc_minor) {
  for (const DeviceSpec& d : device_table()) {
    if (d.cc_major != cc_major || d.cc_minor != cc_minor) continue;
    bool all = true;
    for (const std::string& word : d.name_has) all = all && name.find(word) != std::string::npos;
    if (all) return d.bf16_tflops;
  }
  return 0;
}

double model_flops_utilisation(double achieved_gflops_per_s, double peak_tflops_per_device,
                               int devices) {
  if (peak_tflops_per_device <= 0 || devices <= 0) return 0;
  return achieved_gflops_per_s / (peak_tflops_per_device * 1e3 * devices);
}

}  // namespace sptrain
