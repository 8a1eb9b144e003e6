#include <cstring>

#include "sptrain/comm/communicator.hpp"

namespace sptrain {

void SoloGroup::all_gather(const Tensor& out, const Tensor& in) {
  SPT_ASSERT(out.bytes() == in.bytes());
  if (out.data == in.data) return;
  SPT_CHECK(in.device == Device::CPU, "SoloGroup::all_gather: device tensors need the back end's copy");
  std::memcpy(out.data, in.data, in.bytes());
}

void SoloGroup::send_recv(const Tensor&, int out_peer, const Tensor&, int in_peer) {
  // Skipping both sides is a no-op in any group; anything else needs a peer.
  SPT_CHECK(out_peer == kNoPeer && in_peer == kNoPeer, "send_recv in a group of one rank");
}

}  // namespace sptrain
