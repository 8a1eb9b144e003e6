#pragma once
// One example as the model takes it (data/task.hpp makes it, model/batch.hpp
// packs it into micro-batches).
#include <cstdint>
#include <vector>

namespace sptrain {

// The text tokens (template applied, truncated), the class index and the
// vocabulary id of the label word.
struct EncodedExample {
  std::vector<int32_t> tokens;
  int32_t label = 0;        // class index (order of task.labels)
  int32_t label_token = 0;  // vocabulary id of the label word
};

}  // namespace sptrain
