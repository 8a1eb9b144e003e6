#include "sptrain/optim/optimizer.hpp"

#include <algorithm>

#include "sptrain/core/error.hpp"
#include "sptrain/optim/adafactor.hpp"
#include "sptrain/optim/adamw.hpp"

namespace sptrain {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

Optimizer::Optimizer(int64_t rows, int64_t cols) : rows_(rows), cols_(cols) {
  SPT_CHECK(rows >= 1 && cols >= 1, "optimizer: prompt shape [", rows, ", ", cols,
            "] must have at least one row and one column");
}

void Optimizer::set_step_count(int64_t steps) {
  SPT_CHECK(steps >= 0, "optimizer: step count ", steps, " is negative");
  step_ = steps;
}

void Optimizer::load_one(const std::vector<NamedState>& states, const std::string& key,
                         const std::vector<int64_t>& shape, std::vector<float>& dst) const {
  auto it = std::find_if(states.begin(), states.end(),
                         [&](const NamedState& s) { return s.name == key; });
  SPT_CHECK(it != states.end(), name(), " optimizer state: missing '", key, "'");
  SPT_CHECK(it->shape == shape, name(), " optimizer state '", key, "' has shape ",
            shape_str(it->shape), ", expected ", shape_str(shape),
            " (a checkpoint of a prompt of another size?)");
  SPT_CHECK(it->values.size() == dst.size(), name(), " optimizer state '", key, "' holds ",
            it->values.size(), " values, expected ", dst.size());
  dst = it->values;
}

void Optimizer::check_known(const std::vector<NamedState>& states,
                            const std::vector<std::string>& known) const {
  for (const NamedState& s : states)
    SPT_CHECK(std::find(known.begin(), known.end(), s.name) != known.end(), name(),
              " optimizer state: unexpected entry '", s.name,
              "' (state of another optimizer?)");
}

std::unique_ptr<Optimizer> make_optimizer(const OptimSection& cfg, int64_t rows, int64_t cols) {
  if (cfg.name == "adamw") return std::make_unique<AdamW>(cfg, rows, cols);
  if (cfg.name == "adafactor") return std::make_unique<Adafactor>(cfg, rows, cols);
  fail("optim.name: unknown optimizer '", cfg.name, "' (expected adamw or adafactor)");
}

}  // namespace sptrain
