#include "sptrain/bench/device_peak.hpp"

namespace sptrain {

namespace {
bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
}  // namespace

double bf16_dense_peak_tflops(const std::string& name, int cc_major, int cc_minor) {
  // Hopper: the SXM parts (H100 SXM, H200, H800, GH200) run at 989.4; the
  // H100 PCIe card at 756.5 (fewer SMs, lower clock); H100 NVL at 835.5.
  if (cc_major == 9 && cc_minor == 0) {
    if (has(name, "H100") && has(name, "PCIe")) return 756.5;
    if (has(name, "H100") && has(name, "NVL")) return 835.5;
    if (has(name, "H100") || has(name, "H200") || has(name, "H800") || has(name, "GH200"))
      return 989.4;
    return 0;
  }
  if (cc_major == 8 && cc_minor == 0 && (has(name, "A100") || has(name, "A800"))) return 312.0;
  if (cc_major == 8 && cc_minor == 9 && has(name, "L40S")) return 362.05;
  return 0;
}

double model_flops_utilisation(double achieved_gflops_per_s, double peak_tflops_per_device,
                               int devices) {
  if (peak_tflops_per_device <= 0 || devices <= 0) return 0;
  return achieved_gflops_per_s / (peak_tflops_per_device * 1e3 * devices);
}

}  // namespace sptrain
