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

namespace {

int64_t total_size(const std::vector<TensorSegment>& segments) {
  int64_t n = 0;
  for (const TensorSegment& s : segments) n += s.rows * s.cols;
  return n;
}

// Several segments of one flat array, each with its own optimizer; every
// update, state and step count is the segments' own.
class SegmentedOptimizer : public Optimizer {
 public:
  SegmentedOptimizer(const OptimSection& cfg, const std::vector<TensorSegment>& segments)
      : Optimizer(1, std::max<int64_t>(1, total_size(segments))), name_(cfg.name) {
    for (const TensorSegment& s : segments) {
      SPT_CHECK(!s.name.empty() && s.name.find('/') == std::string::npos,
                "optimizer: segment name '", s.name, "' is empty or has a '/'");
      parts_.push_back(Part{s.name, offset_, make_optimizer(cfg, s.rows, s.cols)});
      offset_ += s.rows * s.cols;
    }
  }
  std::string name() const override { return name_; }
  void step(float* param, const float* grad, double lr) override {
    ++step_;
    for (const Part& p : parts_) p.opt->step(param + p.offset, grad + p.offset, lr);
  }
  std::vector<NamedState> state() const override {
    std::vector<NamedState> all;
    for (const Part& p : parts_)
      for (NamedState s : p.opt->state()) {
        s.name = p.name + "." + s.name;
        all.push_back(std::move(s));
      }
    return all;
  }
  void load_state(const std::vector<NamedState>& states) override {
    size_t used = 0;
    for (const Part& p : parts_) {
      std::vector<NamedState> mine;
      const std::string prefix = p.name + ".";
      for (const NamedState& s : states)
        if (s.name.rfind(prefix, 0) == 0 && s.name.find('.', prefix.size()) == std::string::npos) {
          mine.push_back(s);
          mine.back().name = s.name.substr(prefix.size());
        }
      SPT_CHECK(!mine.empty(), name_, " optimizer state: nothing for '", p.name, "'");
      p.opt->load_state(mine);
      used += mine.size();
    }
    SPT_CHECK(used == states.size(), name_, " optimizer state: ", states.size() - used,
              " entries belong to no tensor of this prompt (state of another method?)");
  }
  void set_step_count(int64_t steps) override {
    Optimizer::set_step_count(steps);
    for (const Part& p : parts_) p.opt->set_step_count(steps);
  }
  // A method's tensors update on the host (their gradient comes through a
  // reparameterisation there); only prompt tuning's one tensor updates on a GPU.
  void place_on(Backend&) override {
    fail("internal error: an optimizer of several tensors runs on the host, not on the device");
  }
  void step_on_device(const Tensor&, const Tensor&, const Tensor&, double) override {
    fail("internal error: an optimizer of several tensors runs on the host, not on the device");
  }

 private:
  struct Part {
    std::string name;
    int64_t offset;
    std::unique_ptr<Optimizer> opt;
  };
  std::string name_;
  int64_t offset_ = 0;
  std::vector<Part> parts_;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimSection& cfg,
                                          const std::vector<TensorSegment>& segments) {
  SPT_CHECK(!segments.empty(), "optimizer: no tensors to optimize");
  return std::make_unique<SegmentedOptimizer>(cfg, segments);
}

}  // namespace sptrain
