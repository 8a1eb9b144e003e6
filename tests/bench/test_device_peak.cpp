// The MFU denominator: the dense bf16 peak looked up by device name and
// compute capability, and the utilisation formula.
#include <gtest/gtest.h>

#include "sptrain/bench/device_peak.hpp"

namespace sptrain {
namespace {

TEST(DevicePeak, KnownDevicesByNameAndComputeCapability) {
  EXPECT_DOUBLE_EQ(bf16_dense_peak_tflops("NVIDIA H100 80GB HBM3", 9, 0), 989.4);
  EXPECT_DOUBLE_EQ(bf16_dense_peak_tflops("NVIDIA H100 PCIe", 9, 0), 756.5);
  EXPECT_DOUBLE_EQ(bf16_dense_peak_tflops("NVIDIA H100 NVL", 9, 0), 835.5);
  EXPECT_DOUBLE_EQ(bf16_dense_peak_tflops("NVIDIA H200", 9, 0), 989.4);
  EXPECT_DOUBLE_EQ(bf16_dense_peak_tflops("NVIDIA A100-SXM4-80GB", 8, 0), 312.0);
  EXPECT_DOUBLE_EQ(bf16_dense_peak_tflops("NVIDIA L40S", 8, 9), 362.05);
}

TEST(DevicePeak, UnknownDevicesHaveNoPeak) {
  EXPECT_EQ(bf16_dense_peak_tflops("NVIDIA GeForce RTX 4090", 8, 9), 0.0);
  EXPECT_EQ(bf16_dense_peak_tflops("NVIDIA A100-SXM4-80GB", 9, 0), 0.0);  // name and arch disagree
  EXPECT_EQ(bf16_dense_peak_tflops("", 0, 0), 0.0);
}

TEST(DevicePeak, UtilisationIsAchievedOverPeakTimesDevices) {
  // 494.7 TFLOP/s achieved on one H100 SXM is 50%; on two, 25%.
  EXPECT_NEAR(model_flops_utilisation(494.7e3, 989.4, 1), 0.5, 1e-12);
  EXPECT_NEAR(model_flops_utilisation(494.7e3, 989.4, 2), 0.25, 1e-12);
  EXPECT_EQ(model_flops_utilisation(1e3, 0.0, 1), 0.0);
}

}  // namespace
}  // namespace sptrain
