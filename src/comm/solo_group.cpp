#include <cstring>

#include "sptrain/comm/communicator.hpp"

namespace sptrain {

void SoloGroup::all_gather(const Tensor& out, const Tensor& in) {
  SPT_ASSERT(out.bytes() == in.bytes());
  if (out.data == in.data) return;
  SPT_CHECK(in.device == Device::CPU, "SoloGroup::all_gather: device tensors need the back end's copy");
  std::memcpy(out.data, in.data, in.bytes());
}

}  // namespace sptrain
