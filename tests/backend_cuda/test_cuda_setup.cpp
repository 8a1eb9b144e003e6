// Creating the CUDA back end: these run on every machine. Without a GPU the
// constructor and the factory entry point must throw an Error that names the
// rank; with one, asking for a device that does not exist must.
#include <gtest/gtest.h>

#include <string>

#include "sptrain/backend/cuda/cuda_backend.hpp"

namespace sptrain {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(CudaSetup, DeviceQueriesAgree) {
  std::string why;
  const bool available = cuda_device_available(&why);
  EXPECT_EQ(available, cuda_device_count() > 0);
  if (!available) {
    EXPECT_FALSE(why.empty()) << "the reason should be given";
  }
}

TEST(CudaSetup, ConstructionFailsWithAnErrorNamingTheRank) {
  std::string why;
  const bool available = cuda_device_available(&why);
  const int device = available ? cuda_device_count() + 5 : 0;  // no such device
  try {
    CudaBackend be(device, 3);
    FAIL() << "expected an Error for device " << device;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(contains(msg, "rank 3")) << msg;
    EXPECT_TRUE(contains(msg, "device " + std::to_string(device))) << msg;
    if (!available) {
      EXPECT_TRUE(contains(msg, "no usable GPU")) << msg;
    }
  }
}

TEST(CudaSetup, FactoryEntryPoint) {
  std::string why;
  if (!cuda_device_available(&why)) {
    try {
      make_cuda_backend(0, 7);
      FAIL() << "expected an Error without a GPU";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), "rank 7")) << e.what();
    }
    return;
  }
  // Node-local ranks beyond the GPU count wrap around.
  auto be = make_cuda_backend(cuda_device_count(), 7);
  EXPECT_EQ(be->device(), Device::CUDA);
  EXPECT_TRUE(contains(be->name(), "cuda")) << be->name();
}

}  // namespace
}  // namespace sptrain
