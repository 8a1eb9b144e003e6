#pragma once
// One named fp32 tensor of saved state (an optimizer's moments): what a
// checkpoint stores for it, kept exactly so a reload continues bit for bit.
// Defined here so the checkpoint format does not depend on the optimizers.
#include <cstdint>
#include <string>
#include <vector>

namespace sptrain {

struct NamedState {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

}  // namespace sptrain
