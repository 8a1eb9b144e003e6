#pragma once
// Device memory for a test, freed at scope exit: for tests that call the CUDA
// runtime directly (the NCCL tests, and their emulated fake).
#include <cuda_runtime_api.h>

#include "sptrain/core/tensor.hpp"

namespace sptrain::test {

struct DeviceTensor {
  Tensor t;
  DeviceTensor(DType dtype, Shape shape) {
    t.dtype = dtype;
    t.device = Device::CUDA;
    t.shape = shape;
    cudaMalloc(&t.data, t.bytes() ? t.bytes() : 1);
  }
  ~DeviceTensor() { cudaFree(t.data); }
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
};

}  // namespace sptrain::test
