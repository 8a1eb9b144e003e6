#pragma once
// Published model shapes to plan for without their weights (`sptrain plan
// --shape NAME`): the 350 GB file does not have to exist to plan for it.
#include <string>
#include <vector>

#include "sptrain/model/model_config.hpp"

namespace sptrain::plan {

// gpt3-175b, opt-175b, bloom-176b, llama3-70b, llama3-405b.
std::vector<std::string> shape_names();
// The shape called `name`; an error lists the known ones.
ModelConfig named_shape(const std::string& name);

}  // namespace sptrain::plan
