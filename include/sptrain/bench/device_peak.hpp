#pragma once
// The dense bf16 tensor-core peak of known GPUs, the denominator of the MFU
// that `sptrain bench` reports with `backend: cuda` (docs/performance.md).
#include <string>

namespace sptrain {

// TFLOP/s of dense bf16 matrix products (no sparsity) for the device named
// `name` (cudaDeviceProp::name) of compute capability major.minor; 0 when the
// device is not in the table (then `sptrain bench --peak-tflops` supplies it).
// Figures: NVIDIA's data sheets for A100, H100 (SXM and PCIe), H200, H800, L40S.
double bf16_dense_peak_tflops(const std::string& name, int cc_major, int cc_minor);

// Model FLOPs utilisation: achieved FLOP/s over the peak of `devices` devices.
// 0 when the peak is unknown.
double model_flops_utilisation(double achieved_gflops_per_s, double peak_tflops_per_device,
                               int devices);

}  // namespace sptrain
